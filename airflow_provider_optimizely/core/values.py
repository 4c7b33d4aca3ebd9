"""A source value as JSON carries it: every digit and every instant kept, or refused with the reason.

Sources give Python values: text from CSV, JSON types from JSON Lines, and from SQL whatever the driver
makes of a column (``Decimal`` for ``numeric``, ``bytes``/``memoryview`` for ``bytea``, ``dict``/``list`` for
``json``, ``datetime`` with or without a zone, ``timedelta``...). ``json_value`` gives the one JSON form of
each, the same for every API that takes the value as it is (Optimove records, Profile Store ``Info``/
``Payload``, ODP event data); ``text_of`` the text form where an API wants a string. Both raise
``ValueError`` for a value no JSON can carry faithfully. docs/values.md lists what each type becomes.

- ``Decimal`` stays a ``Decimal``: ``core.json_body`` writes it as a JSON number of its exact text.
- A float NaN or infinity, or a ``Decimal`` one, is refused: JSON has no such number, and ``null`` or a
  string would be another value.
- ``datetime``: ISO 8601 in UTC with ``Z``, microseconds kept; a naive one is taken as UTC (Airflow's
  convention), an aware one converted to UTC (the same instant).
- ``date``, ``time``: ISO 8601 (a ``time`` keeps its offset, if any).
- ``timedelta``: an ISO 8601 duration in days and seconds (``P1DT7200S``).
- bytes: base64 (RFC 4648, with padding).
- UUIDs, IP addresses: their text; an enum: its value.
- ``dict``/``list``/``tuple``/``set``: converted inside; keys become text.
- Anything else (a driver's range or geometry object, say) is refused: its ``str()`` is no defined form.
"""

from __future__ import annotations

import base64
import enum
import ipaddress
import json
import math
import uuid
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any

import msgspec

from airflow_provider_optimizely.core.dcp_datatypes import quote
from airflow_provider_optimizely.core.json_body import encode_json

_AS_IS = frozenset({str, int, bool, type(None)})
_ADDRESSES = (
    ipaddress.IPv4Address,
    ipaddress.IPv6Address,
    ipaddress.IPv4Network,
    ipaddress.IPv6Network,
    ipaddress.IPv4Interface,
    ipaddress.IPv6Interface,
)


def not_finite(value: Any) -> bool:
    """A float or ``Decimal`` that is NaN or infinite (what JSON can't carry)."""
    if type(value) is float:
        return not math.isfinite(value)
    return isinstance(value, Decimal) and not value.is_finite()


def refusal_of_number(value: Any) -> str:
    return f"{quote(value)} is not a finite number: JSON has no NaN or infinity"


def json_value(value: Any) -> Any:
    """The JSON-ready form of ``value`` (see the module doc), or ``ValueError`` saying why there is none."""
    kind = type(value)
    if kind in _AS_IS:
        return value
    if kind is float or isinstance(value, Decimal):
        if not_finite(value):
            raise ValueError(refusal_of_number(value))
        return value
    if isinstance(value, datetime):
        return utc_iso(value)
    if isinstance(value, (date, time)):
        return value.isoformat()
    if isinstance(value, timedelta):
        return iso_duration(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, (uuid.UUID, *_ADDRESSES)):
        return str(value)
    if isinstance(value, enum.Enum):
        return json_value(value.value)
    if isinstance(value, Mapping):
        return {str(key): json_value(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [json_value(item) for item in value]
    for base in (str, int, float):  # a subclass (numpy's float64, a driver's text type) as its base
        if isinstance(value, base):
            return json_value(base(value))
    raise ValueError(
        f"a {kind.__name__} value has no defined JSON form: cast the column in SQL (to text or a number)"
    )


def text_of(value: Any) -> str:
    """``value`` as text, for an attribute or field that is a string: numbers by their exact digits
    (``str`` of a ``Decimal``, the shortest ``repr`` of a float), ``true``/``false``, objects and lists as
    their JSON; everything else as ``json_value`` writes it."""
    wire = json_value(value)
    if isinstance(wire, str):
        return wire
    if isinstance(wire, bool):
        return "true" if wire else "false"
    if isinstance(wire, (int, float, Decimal)):
        return repr(wire) if isinstance(wire, float) else str(wire)
    return encode_json(wire).decode()


def loads_exact(text: str | bytes) -> Any:
    """JSON text as Python values with every number kept: a number whose float writes back as the same
    number (``1.10`` as ``1.1``) is a float, any other a ``Decimal`` (``0.1000000000000000000001`` would
    become ``0.1``). ``NaN`` and ``Infinity``, which Python's parser takes but JSON has not, raise
    ``ValueError``.

    msgspec parses it (five to ten times faster than the standard library, the same values); what msgspec
    refuses (bad JSON, but also a lone surrogate escape, which Python's parser takes) goes to the standard
    library, which decides and words the error as before."""
    try:
        return _EXACT_DECODER.decode(text)
    except msgspec.DecodeError:
        return json.loads(text, parse_float=exact_number, parse_constant=_no_constant)


def exact_number(text: str) -> float | Decimal:
    if len(text) <= _ALWAYS_EXACT and "e" not in text and "E" not in text:
        # At most 15 significant digits and no exponent: a float holds it and writes it back exactly.
        return float(text)
    number = float(text)
    exact = Decimal(text)
    return number if math.isfinite(number) and Decimal(repr(number)) == exact else exact


# A JSON number without an exponent in 16 characters (a point and maybe a sign among them) has at most 15
# significant digits, all within a double's normal range: its float's repr is the same number.
_ALWAYS_EXACT = 16
_EXACT_DECODER = msgspec.json.Decoder(float_hook=exact_number)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def utc_iso(moment: datetime) -> str:
    """ISO 8601 in UTC with ``Z``; a naive datetime is taken as UTC (Airflow's convention)."""
    moment = moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)
    return moment.isoformat().replace("+00:00", "Z")


def iso_duration(span: timedelta) -> str:
    """An ISO 8601 duration of days and seconds (``P1DT7200.5S``); a negative one starts with ``-``."""
    sign = "-" if span < timedelta(0) else ""
    span = abs(span)
    seconds = Decimal(span.seconds) + Decimal(span.microseconds) / Decimal(1_000_000)
    text = f"P{span.days}D" if span.days else "P"
    if seconds or not span.days:
        text += f"T{format(seconds.normalize(), 'f')}S"
    return sign + text
