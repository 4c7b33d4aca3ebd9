"""The DCP attribute datatypes and formats (docs/api-contract.md §4.2), each rule written once.

Every place that decides whether a value fits a DCP attribute reads the table below: the profile-write
validators (``core.validation``), the bulk-upload check (``core.csv_check``) and schema inference
(``core.schema_inference``). A rule is the text a value may be, in a bulk-upload cell or in a CSV cell
sent in a profile write; a typed value (from SQL) is turned into that text, or into the JSON value the
text stands for, by ``core.validation``.

The vendor document (seed 000, "CSV Formatting Requirements") says only that "an attribute value" must
"respect the attribute's datatype/format" and names the datatypes ``string``, ``bool``, ``long``,
``double`` and ``datetime`` with the formats ``yyyy-mm-dd``, ``yyyy-mm-ddThh:mm:ssZ`` and ``epoch``
(milliseconds). Where that text can be read more than one way, the client takes the reading that is valid
under every one (docs/api-contract.md §3a), so that DCP never refuses a file or a write the client let
through:

- ``string``: any text. An empty cell is an empty string (or no value): either way not refused.
- ``bool``: exactly ``true`` or ``false``, lower case (not ``TRUE``, ``1``, ``yes``).
- ``long``: an optional ``-`` then digits, within a signed 64-bit integer (not ``+5``, ``5.0``,
  ``1_000``, `` 5``).
- ``double``: a plain decimal number: an optional ``-``, digits, and an optional ``.`` with digits after
  it, finite as a 64-bit double (not ``1e5``, ``.5``, ``5.``, ``+5``, ``NaN``, ``inf``, ``1_000``).
- ``datetime`` ``yyyy-mm-dd``: ``2026-01-31``, a real calendar date.
- ``datetime`` ``yyyy-mm-ddThh:mm:ssZ``: ``2026-01-31T23:59:59Z``, a real date and time of day (hours
  00-23, no leap second), in UTC with the ``Z``; no fraction of a second, no other offset.
- ``datetime`` ``epoch``: milliseconds since 1970-01-01 UTC as digits, not negative, within 64 bits.
- No value has surrounding spaces, and none but a ``string`` may be an empty cell in a file: an empty
  ``long`` (or ``bool``, ``double``, ``datetime``) cell is "no value" under one reading and an invalid
  value, which fails the whole file, under the other. In a profile write an empty cell is simply not sent.

Each rule has a ``shape`` (a regular expression the text must match whole) and, for the few things a
pattern can't say, a ``meaning`` check (a calendar date, a 64-bit range, a finite double). ``fast`` is a
narrower pattern that only matches text the rule accepts, used to vouch for whole columns or blocks of a
file at once; text it does not match is checked by ``check``, which words the reason.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

DCP_DATATYPES = ("string", "bool", "long", "double", "datetime")
DCP_DATETIME_FORMATS = ("yyyy-mm-dd", "yyyy-mm-ddThh:mm:ssZ", "epoch")
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_SHOWN = 60  # characters of a refused value quoted in a reason


def quote(value: Any) -> str:
    """A value as a reason quotes it: text in quotes, shortened."""
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."


def _in_int64(text: str) -> str | None:
    return None if INT64_MIN <= int(text) <= INT64_MAX else "does not fit in 64 bits"


def _finite_double(text: str) -> str | None:
    return None if math.isfinite(float(text)) else "is not finite as a 64-bit double"


def _calendar_date(text: str) -> str | None:
    try:
        date.fromisoformat(text)
    except ValueError:
        return "is no calendar date"
    return None


def _calendar_time(text: str) -> str | None:
    try:
        datetime.fromisoformat(text[:19])
    except ValueError:
        return "is no calendar time"
    return None


@dataclass(frozen=True)
class TextRule:
    """What text a value of one DCP datatype (and format) may be; see the module doc for each reading."""

    datatype: str
    format: str | None
    #: The reason's words: ``not a long: '12x'``.
    what: str
    shape: re.Pattern[str]
    #: Regex source matching only text the rule accepts (a subset of ``shape``), never the empty text.
    fast: str
    #: For text of the right shape: None when it fits, else the reason (calendar, range).
    meaning: Callable[[str], str | None] | None = None

    def check(self, text: str) -> None:
        """Raise ``ValueError`` with a short reason quoting ``text`` unless it fits the rule."""
        if self.shape.fullmatch(text) is None:
            raise ValueError(f"not {self.what}: {quote(text)}")
        if self.meaning is not None and (reason := self.meaning(text)) is not None:
            raise ValueError(f"not {self.what}: {quote(text)} {reason}")

    def empty_cell_reason(self) -> str:
        """Why an empty cell of this datatype is refused in a bulk-upload file (see the module doc)."""
        return (
            f"no value: whether an empty cell is {self.what} is left open by DCP's documents, and one that "
            "is not fails the whole file; fill the cell, or leave the column out of the file"
        )

    def accepts(self, text: str) -> bool:
        try:
            self.check(text)
        except ValueError:
            return False
        return True

    def column_fits(self, cells: Sequence[str]) -> bool:
        """True when every cell is non-empty text the rule surely accepts (one regex pass over the column);
        False only means "check the cells one by one"."""
        joined = "\n".join(cells) + "\n"
        if joined.count("\n") != len(cells):  # a cell holds a line break: no rule accepts that
            return False
        return _column_pattern(self.fast).fullmatch(joined) is not None


_COLUMN_PATTERNS: dict[str, re.Pattern[str]] = {}


def _column_pattern(fast: str) -> re.Pattern[str]:
    if fast not in _COLUMN_PATTERNS:
        _COLUMN_PATTERNS[fast] = re.compile(f"(?:(?:{fast})\\n)*+")
    return _COLUMN_PATTERNS[fast]


_DATE = "[0-9]{4}-[0-9]{2}-[0-9]{2}"
# Calendar days beyond the 28th only for months that have them; 29 February, and the year 0000, are left
# to ``meaning``.
_CALENDAR_DATE = (
    "(?!0000)[0-9]{4}-(?:(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])"
    "|(?:0[13-9]|1[0-2])-(?:29|30)|(?:0[13578]|1[02])-31)"
)
_DATE_TIME_Z = _DATE + "T[0-9]{2}:[0-9]{2}:[0-9]{2}Z"
_CALENDAR_DATE_TIME_Z = _CALENDAR_DATE + "T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]Z"

_RULES: dict[tuple[str, str | None], TextRule] = {
    (rule.datatype, rule.format): rule
    for rule in (
        TextRule("bool", None, "a bool (true or false)", re.compile("true|false"), "true|false"),
        TextRule("long", None, "a long", re.compile("-?[0-9]+"), "-?[0-9]{1,18}", _in_int64),
        TextRule(
            "double",
            None,
            "a double",
            re.compile(r"-?[0-9]+(?:\.[0-9]+)?"),
            r"-?[0-9]{1,300}(?:\.[0-9]+)?",
            _finite_double,
        ),
        TextRule(
            "datetime",
            "yyyy-mm-dd",
            "a datetime in the format yyyy-mm-dd",
            re.compile(_DATE),
            _CALENDAR_DATE,
            _calendar_date,
        ),
        TextRule(
            "datetime",
            "yyyy-mm-ddThh:mm:ssZ",
            "a datetime in the format yyyy-mm-ddThh:mm:ssZ",
            re.compile(_DATE_TIME_Z),
            _CALENDAR_DATE_TIME_Z,
            _calendar_time,
        ),
        TextRule(
            "datetime",
            "epoch",
            "a datetime in the format epoch (milliseconds)",
            re.compile("[0-9]+"),
            "[0-9]{1,18}",
            _in_int64,
        ),
    )
}


def check_datatype(datatype: Any, fmt: Any = None) -> None:
    """``ValueError`` unless ``datatype`` (and ``fmt``, which only a datetime takes and needs) is DCP's."""
    if datatype not in DCP_DATATYPES:
        raise ValueError(f"DCP datatype must be one of {DCP_DATATYPES}, got {datatype!r}")
    if datatype == "datetime" and fmt not in DCP_DATETIME_FORMATS:
        raise ValueError(f"a DCP datetime needs a format, one of {DCP_DATETIME_FORMATS}; got {fmt!r}")
    if datatype != "datetime" and fmt is not None:
        raise ValueError(f"only a datetime takes a format, {datatype} does not")


def text_rule(datatype: str, fmt: str | None = None) -> TextRule | None:
    """The rule of a DCP datatype; None for ``string``, which takes any text. ``fmt`` only matters (and is
    required) for ``datetime``; any other datatype ignores it, as DCP's attribute listing may carry one."""
    fmt = fmt if datatype == "datetime" else None
    check_datatype(datatype, fmt)
    return _RULES.get((datatype, fmt))


def describe(datatype: str, fmt: str | None = None) -> str:
    return f"datetime ({fmt})" if datatype == "datetime" else datatype


def cell_text(wire_value: Any) -> str:
    """A wire value (``core.validation``'s) as the bulk-upload cell DCP reads back as the same value:
    ``None`` is an empty cell, a bool ``true``/``false``, a number plain decimal digits (no exponent, every
    digit a float or ``Decimal`` holds)."""
    if wire_value is None:
        return ""
    if wire_value is True:
        return "true"
    if wire_value is False:
        return "false"
    if isinstance(wire_value, float):
        return format(Decimal(repr(wire_value)), "f")
    if isinstance(wire_value, Decimal):
        return format(wire_value, "f")
    return wire_value if isinstance(wire_value, str) else str(wire_value)
