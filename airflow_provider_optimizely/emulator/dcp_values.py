"""DCP attribute datatypes and formats (API.md §4.2): which values each accepts, and how they are stored.

The emulator's reading, where API.md leaves a choice (a profile write is JSON, a bulk upload is text),
per datatype:

- ``string``: JSON a string; a cell any text; stored as the string.
- ``bool``: JSON ``true``/``false`` or the strings ``"true"``/``"false"`` (any case); a cell ``true`` or
  ``false`` (any case); stored as a boolean.
- ``long``: JSON an integer (not a boolean, not ``5.0``) or its digits as a string (``"5"``, ``"-5"``); a
  cell digits; stored as a 64-bit integer.
- ``double``: JSON a number (not a boolean) or a string holding one; a cell a number; stored as a finite
  float.
- ``datetime`` ``yyyy-mm-dd``: ``"2024-01-31"`` (a real date), in JSON or a cell; stored as the string.
- ``datetime`` ``yyyy-mm-ddThh:mm:ssZ``: ``"2024-01-31T23:59:59Z"`` (UTC, ``Z`` required); stored as the
  string.
- ``datetime`` ``epoch``: milliseconds, a JSON integer or its digits as a string (or a cell); stored as an
  integer.

``null`` is refused in JSON (a profile write sets values, it never clears them). In a file, an empty cell
means "no value for this attribute in this row" for every datatype, so the stored value is left alone.
"""

from __future__ import annotations

import math
import re
from datetime import date, datetime
from typing import Any

DATATYPES = ("string", "bool", "long", "double", "datetime")
DATETIME_FORMATS = ("yyyy-mm-dd", "yyyy-mm-ddThh:mm:ssZ", "epoch")

_INTEGER = re.compile(r"^[+-]?[0-9]+$")
_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_DATE_TIME = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$")
_INT64 = (-(2**63), 2**63 - 1)


class ValueRefused(ValueError):
    """A value that does not fit its attribute's datatype or format; the message says why."""


def describe(datatype: str, fmt: str | None) -> str:
    return f"datetime ({fmt})" if datatype == "datetime" else datatype


def from_json(value: Any, datatype: str, fmt: str | None) -> Any:
    """The stored form of ``value`` sent in a profile write, or ``ValueRefused``."""
    if value is None:
        raise ValueRefused("null is not a value: send the value, or leave the attribute out")
    if isinstance(value, str):
        return from_text(value, datatype, fmt, empty_allowed=True)
    if datatype == "bool" and isinstance(value, bool):
        return value
    if isinstance(value, bool):
        raise ValueRefused(f"a boolean is not a {describe(datatype, fmt)}")
    if datatype in ("long", "datetime") and isinstance(value, int):
        if datatype == "datetime" and fmt != "epoch":
            raise ValueRefused(f"a number is not a datetime in the format {fmt}")
        return _int64(value)
    if datatype == "double" and isinstance(value, (int, float)):
        return _finite(float(value))
    raise ValueRefused(f"{type(value).__name__} {value!r} is not a {describe(datatype, fmt)}")


def from_text(text: str, datatype: str, fmt: str | None, *, empty_allowed: bool = False) -> Any:
    """The stored form of ``text`` (a file cell, or a string in JSON), or ``ValueRefused``."""
    if datatype == "string":
        return text
    if text == "" and not empty_allowed:
        raise ValueRefused(f"an empty value is not a {describe(datatype, fmt)}")
    if datatype == "bool":
        if text.lower() in ("true", "false"):
            return text.lower() == "true"
        raise ValueRefused(f"{text!r} is not a bool (true or false)")
    if datatype == "long" or (datatype == "datetime" and fmt == "epoch"):
        if not _INTEGER.match(text):
            what = "epoch milliseconds" if datatype == "datetime" else "a long"
            raise ValueRefused(f"{text!r} is not {what} (an integer)")
        return _int64(int(text))
    if datatype == "double":
        try:
            number = float(text)
        except ValueError:
            raise ValueRefused(f"{text!r} is not a double") from None
        return _finite(number)
    if datatype == "datetime":
        return _datetime(text, fmt)
    raise ValueRefused(f"unknown datatype {datatype!r}")


def _datetime(text: str, fmt: str | None) -> str:
    try:
        if fmt == "yyyy-mm-dd" and _DATE.match(text):
            date.fromisoformat(text)
            return text
        if fmt == "yyyy-mm-ddThh:mm:ssZ" and _DATE_TIME.match(text):
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
