"""The JSON of a request body: compact UTF-8, each type JSON lacks written one defined way.

``encode_json`` is what ``core.rest.RestClient.request`` sends and what a writer measures against an API's
body limit, so both see the same bytes. Numbers keep every digit: a ``Decimal`` (a warehouse ``numeric``,
or a number read from CSV text) is written as a JSON number from its exact text (``1.2345678901234567890``
stays that, never a float's ``1.2345678901234568``). Where an API wants text instead, the value was made a
``str`` before it got here (``core.validation``, ``core.mapping``); docs/values.md lists which.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import msgspec


def _encodable(value: Any) -> Any:
    """What msgspec writes for a value of a type it doesn't know: JSON written beforehand as it is
    (``as_msgspec_raw``, e.g. ``core.json_records.EncodedRecords``), anything else as its ``str()``."""
    as_raw = getattr(value, "as_msgspec_raw", None)
    return as_raw() if as_raw is not None else str(value)


# msgspec writes JSON several times faster than the standard library, which matters for 5000-record bodies.
_ENCODER = msgspec.json.Encoder(enc_hook=_encodable, decimal_format="number")


def encode_json(value: Any) -> bytes:
    """The compact UTF-8 JSON of a request body, as ``RestClient.request`` sends it.

    Values JSON has no type for are written in one defined way: ``Decimal`` as a JSON number of its exact
    text (``1.50`` stays ``1.50``; a NaN or infinite ``Decimal`` raises ``ValueError``: JSON has no token
    for it), datetimes, dates and times in ISO 8601 (``2026-03-01T12:00:00Z``; a naive datetime stays
    without offset), UUIDs as text, bytes in base64, sets as arrays, enums by value, a float NaN or
    infinity as ``null`` (the sources refuse such values before a body is built: see ``core.values``),
    anything else as its ``str()``. Text goes out as UTF-8 unescaped; a lone surrogate (not Unicode, but
    JSON Lines can hold one as an escape) is written back as its ``\\uXXXX`` escape.
    """
    try:
        return _ENCODER.encode(value)
    except UnicodeEncodeError:
        return _ENCODER.encode(_surrogates_escaped(value))
    except msgspec.EncodeError as exc:
        raise ValueError(str(exc)) from None


def encode_json_each(values: Iterable[Any]) -> list[bytes]:
    """``encode_json`` of each value (a ``msgspec.Raw`` gives its own bytes), in one C-level pass when no
    value needs ``encode_json``'s care (a lone surrogate, a value msgspec refuses)."""
    values = values if isinstance(values, list) else list(values)
    try:
        return list(map(_ENCODER.encode, values))
    except (UnicodeEncodeError, msgspec.EncodeError):
        return list(map(encode_json, values))


def _surrogates_escaped(value: Any) -> Any:
    """``value`` with each text holding a lone surrogate replaced by its JSON, written by the standard
    library (which escapes it); dicts, lists and tuples are walked, other values left to msgspec."""
    if isinstance(value, str):
        try:
            value.encode()
        except UnicodeEncodeError:
            return msgspec.Raw(json.dumps(value).encode())
        return value
    if isinstance(value, dict):
        for key in value:
            if isinstance(key, str):
                _check_key(key)
        return {key: _surrogates_escaped(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_surrogates_escaped(item) for item in value]
    return value


def _check_key(key: str) -> None:
    try:
        key.encode()
    except UnicodeEncodeError:
        raise ValueError(f"a field name holds a lone surrogate, which is not Unicode: {key!r}") from None
