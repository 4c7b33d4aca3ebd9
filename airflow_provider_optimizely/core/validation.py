"""Per-value checks against registered attributes: DCP datatypes/formats, ODP field types (API.md §4.2, §5).

A validator takes one value, either Python-typed (from a SQL cursor: ``int``, ``float``, ``Decimal``,
``bool``, ``date``, ``datetime``, ``None``) or text (a CSV/TSV cell), and returns the *wire value*: what a
JSON body carries for that attribute. A value that does not fit raises ``ValueError`` with a short reason
that quotes it (``not a long: '12x'``), so a report can show it next to the row and column.

``None`` (and, for text, the empty string on every non-string datatype) means "no value for this attribute
in this row" and comes back as ``None``: a profile write leaves the attribute out, a file cell stays empty.

Validators are built once per column (``dcp_validator``/``odp_validator``) because the CSV path calls them
tens of millions of times: each is a small closure with its checks precompiled, no dispatch per value.

Choices where API.md leaves room, all on the strict side (the server refuses a whole file for one bad cell):

- text is never trimmed or re-cased, except ``true``/``false``, which DCP accepts in any case;
- a ``long`` is digits with an optional sign, within 64 bits; an integral float/Decimal from SQL is accepted;
- a ``double`` is a plain decimal or scientific literal (no ``nan``, ``inf``, ``_`` or spaces);
- ``bool`` from SQL also accepts the integers 0 and 1 (SQLite has no boolean type);
- a naive ``datetime`` from SQL is taken as UTC (Airflow's convention); an aware one is converted to UTC.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from datetime import date, datetime, time, timezone
from decimal import Decimal
from typing import Any

Validator = Callable[[Any], Any]

DCP_DATATYPES = ("string", "bool", "long", "double", "datetime")
DCP_DATETIME_FORMATS = ("yyyy-mm-dd", "yyyy-mm-ddThh:mm:ssZ", "epoch")
ODP_FIELD_TYPES = ("string", "number", "boolean", "timestamp")

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_LONG_TEXT = re.compile(r"[+-]?[0-9]+\Z")
_DOUBLE_TEXT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")
_BOOL_TEXT = {"true": True, "false": False}
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _quote(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _refuse(what: str, value: Any) -> ValueError:
    return ValueError(f"not {what}: {_quote(value)}")


def _as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def _checked_int64(number: int, what: str, original: Any) -> int:
    if not _INT64_MIN <= number <= _INT64_MAX:
        raise ValueError(f"not {what}: {_quote(original)} does not fit in 64 bits")
    return number


# --- text checks: the CSV path runs these tens of millions of times, so each is a few C calls -------------


def _check_long_text(text: str, what: str = "a long") -> None:
    digits = text[1:] if text[:1] in ("+", "-") else text
    if not (digits.isascii() and digits.isdigit()):
        raise _refuse(what, text)
    if len(digits) > 18:
        _checked_int64(int(text), what, text)


def _check_double_text(text: str, what: str = "a double") -> None:
    # float() alone would also take "nan", "inf", "1_000" and surrounding spaces.
    if not text.isascii() or "_" in text or text.strip() != text:
        raise _refuse(what, text)
    try:
        number = float(text)
    except ValueError:
        raise _refuse(what, text) from None
    if not math.isfinite(number):
        if not any(ch.isdigit() for ch in text):
            raise _refuse(what, text)
        raise ValueError(f"not {what}: {_quote(text)} is not finite")


def _check_bool_text(text: str, what: str = "a bool (true or false)") -> None:
    if text != "true" and text != "false" and text.lower() not in _BOOL_TEXT:
        raise _refuse(what, text)


def _check_date_text(text: str) -> None:
    what = "a datetime in the format yyyy-mm-dd"
    if len(text) != 10 or text[4] != "-" or text[7] != "-" or not text.isascii():
        raise _refuse(what, text)
    try:
        date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"not {what}: {_quote(text)} is no calendar date") from None


def _check_datetime_z_text(text: str) -> None:
    what = "a datetime in the format yyyy-mm-ddThh:mm:ssZ"
    if (
        len(text) != 20
        or text[19] != "Z"
        or text[10] != "T"
        or text[4] != "-"
        or text[7] != "-"
        or text[13] != ":"
        or text[16] != ":"
        or not text.isascii()
    ):
        raise _refuse(what, text)
    try:
        datetime.fromisoformat(text[:19])
    except ValueError:
        raise ValueError(f"not {what}: {_quote(text)} is no calendar time") from None


def _check_epoch_text(text: str) -> None:
    _check_long_text(text, "a datetime in the format epoch (milliseconds)")


# --- batch checks: the same rules over one column of a batch of rows, at C speed ----------------------------
# Each returns True only when every non-empty cell surely passes its text check; False means "look cell by
# cell" (``dcp_text_check`` then finds and words the problems). They never decide a refusal themselves.

# A regex character class scans a long string several times faster than building a set of its characters.
_DOUBLE_CHARS = re.compile(r"[0-9+\-.eE]*")
_DATE_CHARS = re.compile(r"[0-9\-]*")
_DATETIME_Z_CHARS = re.compile(r"[0-9\-:TZ]*")
_BOOL_CELLS = frozenset({"true", "false", ""})


def _batch_long(cells: Sequence[str]) -> bool:
    values = list(filter(None, cells))
    joined = "".join(values)
    return joined.isascii() and (not joined or joined.isdigit()) and max(map(len, values), default=0) <= 18


def _batch_double(cells: Sequence[str]) -> bool:
    values = list(filter(None, cells))
    if _DOUBLE_CHARS.fullmatch("".join(values)) is None:
        return False
    try:
        return all(map(math.isfinite, map(float, values)))
    except ValueError:
        return False


def _batch_bool(cells: Sequence[str]) -> bool:
    return set(cells) <= _BOOL_CELLS


def _fixed_layout(values: list[str], width: int, chars: re.Pattern[str], marks: dict[int, str]) -> bool:
    """Every value ``width`` long, of ``chars``, with each mark character exactly at its positions."""
    if not values:
        return True
    if set(map(len, values)) != {width}:
        return False
    joined = "".join(values)
    if chars.fullmatch(joined) is None:
        return False
    count = len(values)
    expected: dict[str, int] = {}
    for position, mark in marks.items():
        if joined[position::width] != mark * count:
            return False
        expected[mark] = expected.get(mark, 0) + count
    # The marks sit where they must; counting them proves there are none anywhere else.
    return all(joined.count(mark) == total for mark, total in expected.items())


def _batch_date(cells: Sequence[str]) -> bool:
    values = list(filter(None, cells))
    if not _fixed_layout(values, 10, _DATE_CHARS, {4: "-", 7: "-"}):
        return False
    try:
        all(map(date.fromisoformat, values))
    except ValueError:
        return False
    return True


def _batch_datetime_z(cells: Sequence[str]) -> bool:
    values = list(filter(None, cells))
    marks = {4: "-", 7: "-", 10: "T", 13: ":", 16: ":", 19: "Z"}
    if not _fixed_layout(values, 20, _DATETIME_Z_CHARS, marks):
        return False
    try:
        all(map(datetime.fromisoformat, values))  # takes the trailing Z since Python 3.11
    except ValueError:
        return False
    return True


def _integral(value: Any, what: str) -> int:
    """An int from an int, an integral float/Decimal, or digits; refuses booleans."""
    if type(value) is int:
        return _checked_int64(value, what, value)
    if isinstance(value, str):
        _check_long_text(value, what)
        return int(value)
    if isinstance(value, bool):
        raise _refuse(what, value)
    if isinstance(value, int):
        return _checked_int64(int(value), what, value)
    if isinstance(value, (float, Decimal)) and math.isfinite(value) and value == int(value):
        return _checked_int64(int(value), what, value)
    raise _refuse(what, value)


def _finite_number(value: Any, what: str) -> float:
    if isinstance(value, str):
        _check_double_text(value, what)
        return float(value)
    if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        number = float(value)
    else:
        raise _refuse(what, value)
    if not math.isfinite(number):
        raise ValueError(f"not {what}: {_quote(value)} is not finite")
    return number


def _text(value: Any) -> str:
    """Any scalar as text, for string attributes fed from typed SQL columns."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, Decimal)):
        return str(value)
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    raise _refuse("a string", value)


# --- DCP -----------------------------------------------------------------------------------------------


def _dcp_string(value: Any) -> Any:
    return None if value is None else _text(value)


def _dcp_bool(value: Any) -> Any:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        _check_bool_text(value)
        return value.lower() == "true"
    if type(value) is int and value in (0, 1):
        return value == 1
    raise _refuse("a bool (true or false)", value)


def _dcp_long(value: Any) -> Any:
    if value is None or value == "":
        return None
    return _integral(value, "a long")


def _dcp_double(value: Any) -> Any:
    if value is None or value == "":
        return None
    return _finite_number(value, "a double")


def _dcp_date(value: Any) -> Any:
    what = "a datetime in the format yyyy-mm-dd"
    if value is None or value == "":
        return None
    if isinstance(value, str):
        _check_date_text(value)
        return value
    if isinstance(value, datetime):
        # A timestamp that lands exactly on midnight is a date; anything else would lose its time silently.
        if value.time() != time(0, 0):
            raise ValueError(f"not {what}: {_quote(value)} has a time of day")
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    raise _refuse(what, value)


def _dcp_datetime_z(value: Any) -> Any:
    what = "a datetime in the format yyyy-mm-ddThh:mm:ssZ"
    if value is None or value == "":
        return None
    if isinstance(value, str):
        _check_datetime_z_text(value)
        return value
    if isinstance(value, datetime):
        return _as_utc(value).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, date):
        return value.strftime("%Y-%m-%dT00:00:00Z")
    raise _refuse(what, value)


def _dcp_epoch(value: Any) -> Any:
    what = "a datetime in the format epoch (milliseconds)"
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return int((_as_utc(value) - _EPOCH).total_seconds() * 1000)
    if isinstance(value, date):
        return int((datetime.combine(value, time(0, 0), timezone.utc) - _EPOCH).total_seconds() * 1000)
    return _integral(value, what)


_DCP_VALIDATORS: dict[tuple[str, str | None], Validator] = {
    ("string", None): _dcp_string,
    ("bool", None): _dcp_bool,
    ("long", None): _dcp_long,
    ("double", None): _dcp_double,
    ("datetime", "yyyy-mm-dd"): _dcp_date,
    ("datetime", "yyyy-mm-ddThh:mm:ssZ"): _dcp_datetime_z,
    ("datetime", "epoch"): _dcp_epoch,
}


def dcp_validator(datatype: str, fmt: str | None = None) -> Validator:
    """The validator for a DCP attribute; ``fmt`` only matters (and is required) for ``datetime``."""
    key = (datatype, fmt if datatype == "datetime" else None)
    try:
        return _DCP_VALIDATORS[key]
    except KeyError:
        if datatype == "datetime":
            raise ValueError(
                f"a datetime attribute needs a format in {DCP_DATETIME_FORMATS}, got {fmt!r}"
            ) from None
        raise ValueError(f"unknown DCP datatype {datatype!r}: expected one of {DCP_DATATYPES}") from None


_DCP_TEXT_CHECKS: dict[tuple[str, str | None], Callable[[str], None] | None] = {
    ("string", None): None,
    ("bool", None): _check_bool_text,
    ("long", None): _check_long_text,
    ("double", None): _check_double_text,
    ("datetime", "yyyy-mm-dd"): _check_date_text,
    ("datetime", "yyyy-mm-ddThh:mm:ssZ"): _check_datetime_z_text,
    ("datetime", "epoch"): _check_epoch_text,
}


def dcp_text_check(datatype: str, fmt: str | None = None) -> Callable[[str], None] | None:
    """A check of one non-empty text cell (the CSV hot path): raises ``ValueError``, converts nothing.

    None for ``string``, which takes any text. Same rules as ``dcp_validator`` on text.
    """
    dcp_validator(datatype, fmt)  # the same errors for an unknown datatype or a missing format
    return _DCP_TEXT_CHECKS[(datatype, fmt if datatype == "datetime" else None)]


_DCP_BATCH_CHECKS: dict[tuple[str, str | None], Callable[[Sequence[str]], bool] | None] = {
    ("string", None): None,
    ("bool", None): _batch_bool,
    ("long", None): _batch_long,
    ("double", None): _batch_double,
    ("datetime", "yyyy-mm-dd"): _batch_date,
    ("datetime", "yyyy-mm-ddThh:mm:ssZ"): _batch_datetime_z,
    ("datetime", "epoch"): _batch_long,
}


def dcp_batch_check(datatype: str, fmt: str | None = None) -> Callable[[Sequence[str]], bool] | None:
    """A fast test of a column of text cells: True when ``dcp_text_check`` would pass every non-empty one.

    False does not mean a cell is bad, only that the cells must be checked one by one.
    """
    dcp_validator(datatype, fmt)
    return _DCP_BATCH_CHECKS[(datatype, fmt if datatype == "datetime" else None)]


# Regular expressions that match only text the check of the datatype passes (never the empty cell): a
# whole block of rows is matched at once against them, and a block that does not match is checked cell by
# cell. Calendar days beyond the 28th are taken for the months that have them; 29 February is left to the
# cell-by-cell check, as are the year 0, signs, spaces, any case of true/false but lower and long literals.
_DIGITS_PATTERN = "[0-9]{1,18}"
_DOUBLE_PATTERN = r"[+-]?(?:[0-9]{1,200}(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,2})?"
_DATE_PATTERN = (
    "(?!0000)[0-9]{4}-(?:(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])"
    "|(?:0[13-9]|1[0-2])-(?:29|30)|(?:0[13578]|1[02])-31)"
)
_DATETIME_Z_PATTERN = _DATE_PATTERN + "T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]Z"
_DCP_TEXT_PATTERNS: dict[tuple[str, str | None], str | None] = {
    ("string", None): None,
    ("bool", None): "true|false",
    ("long", None): _DIGITS_PATTERN,
    ("double", None): _DOUBLE_PATTERN,
    ("datetime", "yyyy-mm-dd"): _DATE_PATTERN,
    ("datetime", "yyyy-mm-ddThh:mm:ssZ"): _DATETIME_Z_PATTERN,
    ("datetime", "epoch"): _DIGITS_PATTERN,
}


def dcp_text_pattern(datatype: str, fmt: str | None = None) -> str | None:
    """A regular expression (source) matching only non-empty text ``dcp_text_check`` passes; None for
    ``string``. Not matching does not mean the text is bad, only that it must be checked by itself."""
    dcp_validator(datatype, fmt)
    return _DCP_TEXT_PATTERNS[(datatype, fmt if datatype == "datetime" else None)]


def dcp_value(value: Any, datatype: str, fmt: str | None = None) -> Any:
    """One value checked against a DCP datatype: its wire value, or ``ValueError``."""
    return dcp_validator(datatype, fmt)(value)


def describe_dcp_type(datatype: str, fmt: str | None = None) -> str:
    return f"datetime ({fmt})" if datatype == "datetime" else datatype


# --- ODP -----------------------------------------------------------------------------------------------


def _odp_string(value: Any) -> Any:
    return None if value is None else _text(value)


def _odp_number(value: Any) -> Any:
    if value is None or value == "":
        return None
    if type(value) is int:
        return value
    if isinstance(value, Decimal) and math.isfinite(value) and value == int(value):
        return int(value)
    if isinstance(value, str) and _LONG_TEXT.match(value):
        return int(value)
    return _finite_number(value, "a number")


def _odp_boolean(value: Any) -> Any:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        found = _BOOL_TEXT.get(value.lower())
        if found is None:
            raise _refuse("a boolean (true or false)", value)
        return found
    if type(value) is int and value in (0, 1):
        return value == 1
    raise _refuse("a boolean (true or false)", value)


def _odp_timestamp(value: Any) -> Any:
    """ODP takes ISO 8601 text or Unix seconds; datetimes are sent as ISO 8601 in UTC."""
    what = "a timestamp (ISO 8601 or Unix seconds)"
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return _as_utc(value).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return f"{value.isoformat()}T00:00:00Z"
    if isinstance(value, str):
        if _DOUBLE_TEXT.match(value):
            return _odp_number(value)
        try:
            datetime.fromisoformat(value)
        except ValueError:
            raise _refuse(what, value) from None
        return value
    if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        return _odp_number(value)
    raise _refuse(what, value)


_ODP_VALIDATORS: dict[str, Validator] = {
    "string": _odp_string,
    "number": _odp_number,
    "boolean": _odp_boolean,
    "timestamp": _odp_timestamp,
}


def odp_validator(field_type: str) -> Validator:
    """The validator for an ODP field of ``field_type``."""
    try:
        return _ODP_VALIDATORS[field_type]
    except KeyError:
        raise ValueError(
            f"unknown ODP field type {field_type!r}: expected one of {ODP_FIELD_TYPES}"
        ) from None


def odp_value(value: Any, field_type: str) -> Any:
    """One value checked against an ODP field type: its wire value, or ``ValueError``."""
    return odp_validator(field_type)(value)


def csv_text(wire_value: Any) -> str:
    """A wire value as a CSV cell DCP reads back as the same value (``None`` is an empty cell)."""
    if wire_value is None:
        return ""
    if wire_value is True:
        return "true"
    if wire_value is False:
        return "false"
    return wire_value if isinstance(wire_value, str) else str(wire_value)
