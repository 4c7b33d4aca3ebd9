"""Per-value checks of a profile write against its registered attributes: DCP datatypes and formats, ODP
field types (docs/api-contract.md §4.2, §5).

A validator takes one value: Python-typed from SQL (``int``, ``float``, ``Decimal``, ``bool``, ``date``,
``datetime``, ``bytes``...), JSON-typed from JSON Lines, or text from a CSV cell; it returns the *wire
value*, what a JSON body carries for that attribute, or raises ``ValueError`` with a short reason that
quotes the value (``not a long: '12x'``), which a report shows beside the row and column. ``None`` (and,
for text, the empty string on every datatype but a string) means "no value for this attribute in this
row" and comes back as ``None``: the write leaves the attribute out.

Nothing is rounded or cut on the way: a value the attribute can't hold exactly is refused, never bent
(docs/values.md lists what each source type becomes).

- Text is checked against the DCP rules of ``core.dcp_datatypes`` (their readings are listed there). A
  number keeps its digits: text or a ``Decimal`` goes out as a ``Decimal`` (a JSON number of its exact
  text), a float as itself.
- ``long``: an integral ``Decimal`` or float is its integer (``5.000`` is 5); a fraction is refused.
- ``bool``: the integers 0 and 1 are accepted (SQLite has no boolean type).
- ``datetime``: a naive datetime is taken as UTC (Airflow's convention), an aware one converted to UTC.
  ``yyyy-mm-ddThh:mm:ssZ`` refuses a fraction of a second, ``epoch`` a fraction of a millisecond or a
  moment before 1970, ``yyyy-mm-dd`` a time of day other than midnight: each would change the value.
- ODP (the OpenAPI document gives no rule but the four type names, and writes every timestamp it shows as
  an RFC 3339 ``date-time`` string), read the same conservative way: a ``number`` is a JSON number (text:
  a plain decimal number, as a DCP double), a ``boolean`` is ``true``/``false`` (text: lower case), a
  ``timestamp`` is an RFC 3339 date-time string with seconds and an offset (``2026-01-01T10:00:00Z``,
  ``2026-01-01T10:00:00.5+02:00``; not ``2026-01-01 10:00``, not a bare date, not Unix seconds).
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any

from airflow_provider_optimizely.core.dcp_datatypes import (
    INT64_MAX,
    INT64_MIN,
    TextRule,
    check_datatype,
    quote,
    text_rule,
)
from airflow_provider_optimizely.core.values import not_finite, refusal_of_number, text_of, utc_iso

Validator = Callable[[Any], Any]

ODP_FIELD_TYPES = ("string", "number", "boolean", "timestamp")

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MILLISECOND = timedelta(milliseconds=1)


def _rule(datatype: str, fmt: str | None = None) -> TextRule:
    rule = text_rule(datatype, fmt)
    assert rule is not None
    return rule


_BOOL = _rule("bool")
_LONG = _rule("long")
_DOUBLE = _rule("double")
_DATE = _rule("datetime", "yyyy-mm-dd")
_DATE_TIME_Z = _rule("datetime", "yyyy-mm-ddThh:mm:ssZ")
_EPOCH_MS = _rule("datetime", "epoch")
_ODP_NUMBER = dataclasses.replace(_DOUBLE, what="a number")
_ODP_BOOLEAN = dataclasses.replace(_BOOL, what="a boolean (true or false)")


def _odp_time_meaning(text: str) -> str | None:
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return "is no calendar time"
    return None


_ODP_TIMESTAMP = TextRule(
    "timestamp",
    None,
    "an RFC 3339 timestamp (like 2026-01-31T10:00:00Z)",
    re.compile(
        r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?(?:Z|[+-][0-9]{2}:[0-9]{2})"
    ),
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[01][0-9]:[0-5][0-9]:[0-5][0-9]Z",
    _odp_time_meaning,
)


def _refuse(what: str, value: Any) -> ValueError:
    return ValueError(f"not {what}: {quote(value)}")


def _as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def _no_value(value: Any) -> bool:
    return value is None or value == ""


def _string(value: Any) -> Any:
    if value is None:
        return None
    try:
        return text_of(value)
    except ValueError as exc:
        raise ValueError(f"not a string: {exc}") from None


def _integral(value: Any, rule: TextRule) -> int:
    """An integer of 64 bits from an int, an integral float or ``Decimal``, or text of the rule."""
    if isinstance(value, str):
        rule.check(value)
        return int(value)
    if isinstance(value, bool):
        raise _refuse(rule.what, value)
    if isinstance(value, int) or (
        isinstance(value, (float, Decimal)) and not not_finite(value) and value == int(value)
    ):
        number = int(value)
    else:
        raise _refuse(rule.what, value)
    if not INT64_MIN <= number <= INT64_MAX:
        raise ValueError(f"not {rule.what}: {quote(value)} does not fit in 64 bits")
    return number


def _number(value: Any, rule: TextRule) -> Any:
    """A JSON number with every digit: an int, a finite float, or a ``Decimal`` (from text, or as given)."""
    if isinstance(value, str):
        rule.check(value)
        return int(value) if "." not in value else Decimal(value)
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        raise _refuse(rule.what, value)
    if not_finite(value):
        raise ValueError(f"not {rule.what}: {refusal_of_number(value)}")
    if isinstance(value, float):
        return float(value)
    if isinstance(value, int):
        number: int | Decimal = int(value)
    else:
        number = value
    try:
        finite = math.isfinite(float(number))
    except OverflowError:  # an int too large for a double: refused like an infinite one, by row
        finite = False
    if not finite:
        raise ValueError(f"not {rule.what}: {quote(value)} is not finite as a 64-bit double")
    return number


def _boolean(value: Any, rule: TextRule) -> Any:
    if _no_value(value):
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        rule.check(value)
        return value == "true"
    if type(value) is int and value in (0, 1):
        return value == 1
    raise _refuse(rule.what, value)


# --- DCP -----------------------------------------------------------------------------------------------


def _dcp_bool(value: Any) -> Any:
    return _boolean(value, _BOOL)


def _dcp_long(value: Any) -> Any:
    return None if _no_value(value) else _integral(value, _LONG)


def _dcp_double(value: Any) -> Any:
    return None if _no_value(value) else _number(value, _DOUBLE)


def _dcp_date(value: Any) -> Any:
    if _no_value(value):
        return None
    if isinstance(value, str):
        _DATE.check(value)
        return value
    if isinstance(value, datetime):
        if value.time() != time(0, 0):
            raise ValueError(f"not {_DATE.what}: {quote(value)} has a time of day")
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    raise _refuse(_DATE.what, value)


def _dcp_datetime_z(value: Any) -> Any:
    if _no_value(value):
        return None
    if isinstance(value, str):
        _DATE_TIME_Z.check(value)
        return value
    if isinstance(value, datetime):
        if value.microsecond:
            raise ValueError(
                f"not {_DATE_TIME_Z.what}: {quote(value)} has a fraction of a second, which the format "
                "can't hold (truncate it in the query, e.g. date_trunc('second', ...))"
            )
        return _as_utc(value).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, date):
        return value.strftime("%Y-%m-%dT00:00:00Z")
    raise _refuse(_DATE_TIME_Z.what, value)


def _dcp_epoch(value: Any) -> Any:
    if _no_value(value):
        return None
    if isinstance(value, date):
        moment = (
            _as_utc(value) if isinstance(value, datetime) else datetime.combine(value, time(0), timezone.utc)
        )
        milliseconds, rest = divmod(moment - _EPOCH, _MILLISECOND)
        if rest:
            raise ValueError(f"not {_EPOCH_MS.what}: {quote(value)} has a fraction of a millisecond")
    else:
        milliseconds = _integral(value, _EPOCH_MS)
    if milliseconds < 0:
        raise ValueError(f"not {_EPOCH_MS.what}: {quote(value)} is before 1970")
    return milliseconds


_DCP_VALIDATORS: dict[tuple[str, str | None], Validator] = {
    ("string", None): _string,
    ("bool", None): _dcp_bool,
    ("long", None): _dcp_long,
    ("double", None): _dcp_double,
    ("datetime", "yyyy-mm-dd"): _dcp_date,
    ("datetime", "yyyy-mm-ddThh:mm:ssZ"): _dcp_datetime_z,
    ("datetime", "epoch"): _dcp_epoch,
}


def dcp_validator(datatype: str, fmt: str | None = None) -> Validator:
    """The validator for a DCP attribute; ``fmt`` only matters (and is required) for ``datetime``."""
    fmt = fmt if datatype == "datetime" else None
    check_datatype(datatype, fmt)
    return _DCP_VALIDATORS[(datatype, fmt)]


def dcp_value(value: Any, datatype: str, fmt: str | None = None) -> Any:
    """One value checked against a DCP datatype: its wire value, or ``ValueError``."""
    return dcp_validator(datatype, fmt)(value)


# --- ODP -----------------------------------------------------------------------------------------------


def _odp_number(value: Any) -> Any:
    return None if _no_value(value) else _number(value, _ODP_NUMBER)


def _odp_boolean(value: Any) -> Any:
    return _boolean(value, _ODP_BOOLEAN)


def _odp_timestamp(value: Any) -> Any:
    if _no_value(value):
        return None
    if isinstance(value, str):
        _ODP_TIMESTAMP.check(value)
        return value
    if isinstance(value, datetime):
        return utc_iso(value)
    if isinstance(value, date):
        return f"{value.isoformat()}T00:00:00Z"
    raise _refuse(_ODP_TIMESTAMP.what, value)


_ODP_VALIDATORS: dict[str, Validator] = {
    "string": _string,
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


# Validators that give back unchanged a value of these exact types (a float only when finite, an int only
# when a double holds its size: checked a column at a time by ``validate_column``).
_UNCHANGED: dict[Validator, frozenset[type]] = {
    _string: frozenset({str}),
    _odp_number: frozenset({int, float}),
    _dcp_double: frozenset({int, float}),
}
_DOUBLE_RANGE = 10**308
# Validators that write a column of exactly ``date`` values as their ISO text (``text_of``, ``yyyy-mm-dd``).
_DATES_AS_ISO = frozenset({_string, _dcp_date})


def validate_column(validator: Validator, values: list[Any]) -> list[Any] | None:
    """``validator`` on each of a column's values: their wire values, or None when one is refused (the
    row-by-row path then reports its row and reason). A column whose values the validator would give
    back unchanged costs a few C-level passes and no call a value."""
    kinds = set(map(type, values))
    if kinds and kinds <= _UNCHANGED.get(validator, frozenset()):
        floats_finite = float not in kinds or math.isfinite(sum(v for v in values if type(v) is float))
        ints = [v for v in values if type(v) is int] if int in kinds else []
        ints_fit = not ints or (min(ints) > -_DOUBLE_RANGE and max(ints) < _DOUBLE_RANGE)
        if floats_finite and ints_fit:
            return values
    if kinds == {date} and validator in _DATES_AS_ISO:
        return list(map(date.isoformat, values))  # what the validator gives each, in one C-level pass
    try:
        return list(map(validator, values))
    except ValueError:
        return None


def validated_records(
    pairs: list[tuple[str, str]], columns: dict[str, list[Any]], validators: dict[str, Validator], rows: int
) -> list[dict[str, Any]] | None:
    """Each of ``rows`` rows as ``{target: wire value}`` for ``pairs`` (source column, target), each column
    checked at once by its target's validator (``validate_column``); a value that comes back None (no
    value) is left out, as the writers' ``prepare`` does. None when a target has no validator or a value is
    refused: the row-by-row path then names the row."""
    targets: list[str] = []
    wires: list[list[Any]] = []
    for column, target in pairs:
        validator = validators.get(target)
        wire = None if validator is None else validate_column(validator, columns[column])
        if wire is None:
            return None
        targets.append(target)
        wires.append(wire)
    # Every column is as long as the page: zip needs no strict= check (a keyword a row costs).
    if not wires:
        return [{} for _ in range(rows)]
    if any(None in wire for wire in wires):
        return [
            {t: v for t, v in zip(targets, values) if v is not None}  # noqa: B905
            for values in zip(*wires)  # noqa: B905
        ]
    return [dict(zip(targets, values)) for values in zip(*wires)]  # noqa: B905
