"""DCP attribute datatypes and formats (docs/api-contract.md §4.2): which values each accepts, and how they
are stored.

Seed 000 says only that a value must "respect the attribute's datatype/format". The emulator's reading,
strict by default (``value_syntax="strict"``), the other reading behind ``value_syntax="permissive"``:

=================  ===========================================  ==========================================
datatype           a file cell (text)                           a profile write (JSON)
=================  ===========================================  ==========================================
``string``         any text, kept as it is                      a string
``bool``           ``true`` or ``false``, lower case            ``true`` or ``false``
``long``           ASCII digits with an optional ``-``, 64 bit  an integer (not ``5.0``, not a boolean)
``double``         ``-?digits(.digits)?(e[+-]?digits)?``,       a number (not a boolean), finite
                   finite
``datetime``       ``yyyy-mm-dd``: a calendar date; ``yyyy-mm-ddThh:mm:ssZ``: a UTC time with ``Z``;
                   ``epoch``: milliseconds, as ``long`` (a JSON integer)
=================  ===========================================  ==========================================

Nothing is trimmed: ``" 2.5 "`` is not a double, ``"TRUE"`` not a bool, ``"1_000"`` not a long, and no
``nan``, ``inf`` or non-ASCII digit passes, though Python's own ``float``/``int`` take them. In strict mode a
JSON string is never read as a number or a boolean (``"5"`` is not a long).

``permissive`` accepts as well: ``bool`` in any case, a leading ``+``, ``5.`` and ``.5`` for a double,
and in JSON the text of a value as a string (``"5"``, ``"TRUE"``).

``null`` is refused in JSON (a profile write sets values, it never clears them). An empty cell is handled
by the caller (``upload_check``), per the ``empty_cells`` setting.
"""

from __future__ import annotations

import math
import re
from datetime import date, datetime
from typing import Any

DATATYPES = ("string", "bool", "long", "double", "datetime")
DATETIME_FORMATS = ("yyyy-mm-dd", "yyyy-mm-ddThh:mm:ssZ", "epoch")

_LONG = {
    "strict": re.compile(r"-?[0-9]+"),
    "permissive": re.compile(r"[+-]?[0-9]+"),
}
_DOUBLE = {
    "strict": re.compile(r"-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?"),
    "permissive": re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"),
}
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DATE_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
_INT64 = (-(2**63), 2**63 - 1)


class ValueRefused(ValueError):
    """A value that does not fit its attribute's datatype or format; the message says why."""


def describe(datatype: str, fmt: str | None) -> str:
    return f"datetime ({fmt})" if datatype == "datetime" else datatype


def from_json(value: Any, datatype: str, fmt: str | None, syntax: str = "strict") -> Any:
    """The stored form of ``value`` sent in a profile write, or ``ValueRefused``."""
    if value is None:
        raise ValueRefused("null is not a value: send the value, or leave the attribute out")
    kind = describe(datatype, fmt)
    if isinstance(value, str):
        if datatype == "string" or (datatype == "datetime" and fmt != "epoch"):
            return from_text(value, datatype, fmt, syntax)
        if syntax == "permissive" and value:
            return from_text(value, datatype, fmt, syntax)
        raise ValueRefused(f"the string {value!r} is not a {kind}: send a JSON {_json_kind(datatype)}")
    if isinstance(value, bool):
        if datatype == "bool":
            return value
        raise ValueRefused(f"a boolean is not a {kind}")
    if isinstance(value, int) and (datatype == "long" or (datatype == "datetime" and fmt == "epoch")):
        return _int64(value)
    if isinstance(value, (int, float)) and datatype == "double":
        return _finite(float(value))
    raise ValueRefused(f"{type(value).__name__} {value!r} is not a {kind}")


def _json_kind(datatype: str) -> str:
    return {"bool": "boolean", "long": "integer", "double": "number"}.get(datatype, "integer")


def from_text(text: str, datatype: str, fmt: str | None, syntax: str = "strict") -> Any:
    """The stored form of ``text`` (a file cell, or a string in JSON), or ``ValueRefused``."""
    if datatype == "string":
        return text
    if datatype == "bool":
        spelled = text.lower() if syntax == "permissive" else text
        if spelled in ("true", "false"):
            return spelled == "true"
        raise ValueRefused(f"{text!r} is not a bool (true or false)")
    if datatype == "long" or (datatype == "datetime" and fmt == "epoch"):
        if not (text.isascii() and _LONG[syntax].fullmatch(text)):
            what = "epoch milliseconds (an integer)" if datatype == "datetime" else "a long"
            raise ValueRefused(f"{text!r} is not {what}")
        return _int64(int(text))
    if datatype == "double":
        if not (text.isascii() and _DOUBLE[syntax].fullmatch(text)):
            raise ValueRefused(f"{text!r} is not a double")
        return _finite(float(text))
    if datatype == "datetime":
        return _datetime(text, fmt)
    raise ValueRefused(f"unknown datatype {datatype!r}")


def _datetime(text: str, fmt: str | None) -> str:
    try:
        if fmt == "yyyy-mm-dd" and text.isascii() and _DATE.fullmatch(text):
            date.fromisoformat(text)
            return text
        if fmt == "yyyy-mm-ddThh:mm:ssZ" and text.isascii() and _DATE_TIME.fullmatch(text):
            datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ")
            return text
    except ValueError:
        pass
    raise ValueRefused(f"{text!r} is not a datetime in the format {fmt}")


def _int64(number: int) -> int:
    if not _INT64[0] <= number <= _INT64[1]:
        raise ValueRefused(f"{number} does not fit in a 64-bit long")
    return number


def _finite(number: float) -> float:
    if not math.isfinite(number):
        raise ValueRefused(f"{number} is not a finite double")
    return number
