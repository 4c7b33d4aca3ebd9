"""The JSON of a request body: each type JSON lacks written one defined way, numbers with every digit."""

from __future__ import annotations

import enum
import json
import uuid
from datetime import date, datetime, timedelta, timezone
from datetime import time as dtime
from decimal import Decimal

import msgspec
import pytest

from airflow_provider_optimizely.core.json_body import encode_json, encode_json_each


class Colour(enum.Enum):
    RED = "red"


class _Opaque:
    def __str__(self) -> str:
        return "opaque"


@pytest.mark.parametrize(
    ("value", "wire"),
    [
        (datetime(2026, 3, 1, 12, 0, 5, tzinfo=timezone.utc), b'"2026-03-01T12:00:05Z"'),
        (datetime(2026, 3, 1, 12, 0, 5, tzinfo=timezone(timedelta(hours=2))), b'"2026-03-01T12:00:05+02:00"'),
        (datetime(2026, 3, 1, 12, 0, 5), b'"2026-03-01T12:00:05"'),  # naive: no offset invented
        (date(2026, 3, 1), b'"2026-03-01"'),
        (dtime(12, 30), b'"12:30:00"'),
        (Decimal("1.50"), b"1.50"),  # a number, from its exact text: no rounding through a float
        (float("nan"), b"null"),  # JSON has no NaN (the sources refuse it before a body is built)
        (float("inf"), b"null"),
        (b"\x00\xff", b'"AP8="'),  # base64, not the repr "b'\\x00\\xff'"
        (uuid.UUID(int=1), b'"00000000-0000-0000-0000-000000000001"'),
        ({3}, b"[3]"),
        (Colour.RED, b'"red"'),
        (2**70, b"1180591620717411303424"),
        ("é€", '"é€"'.encode()),  # UTF-8, unescaped
        (_Opaque(), b'"opaque"'),  # anything else: its str(), as default=str did
    ],
)
def test_encode_json_writes_each_type_one_defined_way(value: object, wire: bytes) -> None:
    assert encode_json({"v": value}) == b'{"v":' + wire + b"}"


def test_encode_json_escapes_a_lone_surrogate_and_keeps_the_rest() -> None:
    body = encode_json({"text": "a\ud800b", "when": date(2026, 3, 1), "n": float("nan"), 1: [b"x"]})
    assert body == b'{"text":"a\\ud800b","when":"2026-03-01","n":null,"1":["eA=="]}'


def test_a_lone_surrogate_beside_a_decimal_keeps_the_decimal_a_number() -> None:
    body = encode_json([{"text": "\udfff", "amount": Decimal("0.1000000000000000000001")}])
    assert body == b'[{"text":"\\udfff","amount":0.1000000000000000000001}]'


@pytest.mark.parametrize(
    "text",
    [
        "123456789012345678901234567.1234567890",  # PostgreSQL numeric(38,10)
        "0.1000000000000000055511151231257827",
        "-0.00000000000000000001",
        "1E+3",
        "12345678901234567890123456789012345678",
    ],
)
def test_a_decimal_is_a_json_number_with_every_digit(text: str) -> None:
    body = encode_json({"amount": Decimal(text)})
    assert body == b'{"amount":' + str(Decimal(text)).encode() + b"}"  # the Decimal's own text
    assert msgspec.json.decode(body, type=dict[str, Decimal])["amount"] == Decimal(text)
    assert json.loads(body, parse_float=Decimal)["amount"] == Decimal(text)  # valid JSON


@pytest.mark.parametrize("text", ["NaN", "Infinity", "-Infinity", "sNaN"])
def test_a_decimal_json_cannot_carry_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="non-finite"):
        encode_json({"amount": Decimal(text)})


def test_a_field_name_that_is_not_unicode_is_refused() -> None:
    with pytest.raises(ValueError, match="lone surrogate"):
        encode_json({"a\ud800": "\ud800"})


def test_encode_json_each_is_encode_json_of_each_value():
    values = [msgspec.Raw(b'{"a":1}'), {"x": "\ud800"}, {"n": Decimal("1.50")}, [1, "t"], None]
    assert encode_json_each(values) == [encode_json(value) for value in values]
    assert encode_json_each(iter(values[2:])) == [encode_json(value) for value in values[2:]]
    with pytest.raises(ValueError):
        encode_json_each([{"ok": 1}, Decimal("NaN")])
