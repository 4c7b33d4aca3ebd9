"""A source value as JSON carries it (``core.values``), and its row rejection when none is faithful
(``core.mapping.json_value``)."""

from __future__ import annotations

import enum
import ipaddress
import json
import math
import random
import uuid
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal

import pytest

from airflow_provider_optimizely.core import mapping
from airflow_provider_optimizely.core.json_body import encode_json
from airflow_provider_optimizely.core.sync import RowRejected
from airflow_provider_optimizely.core.values import iso_duration, json_value, loads_exact, not_finite, text_of


class Plan(enum.Enum):
    GOLD = "gold"


class Cents(int):
    pass


@pytest.mark.parametrize(
    ("value", "wire"),
    [
        ("x", b'"x"'),
        (5, b"5"),
        (True, b"true"),
        (None, b"null"),
        (0.1, b"0.1"),
        (Decimal("123456789012345678901234567.1234567890"), b"123456789012345678901234567.1234567890"),
        (datetime(2026, 1, 31, 10, 30, 0, 250000), b'"2026-01-31T10:30:00.250000Z"'),  # naive: UTC
        (datetime(2026, 1, 31, 12, 30, tzinfo=timezone(timedelta(hours=2))), b'"2026-01-31T10:30:00Z"'),
        (date(2026, 1, 31), b'"2026-01-31"'),
        (time(10, 30, tzinfo=timezone(timedelta(hours=2))), b'"10:30:00+02:00"'),
        (timedelta(days=1, hours=2), b'"P1DT7200S"'),
        (timedelta(seconds=1.5), b'"PT1.5S"'),
        (-timedelta(days=2), b'"-P2D"'),
        (timedelta(0), b'"PT0S"'),
        (b"\x00\xff", b'"AP8="'),
        (memoryview(b"\x00\xff"), b'"AP8="'),
        (bytearray(b"hi"), b'"aGk="'),
        (uuid.UUID(int=1), b'"00000000-0000-0000-0000-000000000001"'),
        (ipaddress.ip_address("10.0.0.1"), b'"10.0.0.1"'),
        (ipaddress.ip_network("10.0.0.0/8"), b'"10.0.0.0/8"'),
        (Plan.GOLD, b'"gold"'),
        (Cents(7), b"7"),
        ({"a": [Decimal("1.10"), None], 3: "x"}, b'{"a":[1.10,null],"3":"x"}'),
        ((1, "a"), b'[1,"a"]'),
    ],
)
def test_each_value_has_one_json_form(value, wire):
    assert encode_json(json_value(value)) == wire


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (float("nan"), "nan is not a finite number: JSON has no NaN or infinity"),
        (float("-inf"), "-inf is not a finite number"),
        (Decimal("NaN"), "NaN is not a finite number"),
        ([1, float("inf")], "inf is not a finite number"),
        (object(), "a object value has no defined JSON form: cast the column in SQL"),
        (complex(1, 2), "a complex value has no defined JSON form"),
    ],
)
def test_a_value_no_json_carries_faithfully_is_refused(value, reason):
    with pytest.raises(ValueError) as caught:
        json_value(value)
    assert reason in str(caught.value)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Decimal("0.10"), "0.10"),
        (1e20, "1e+20"),
        (True, "true"),
        (42, "42"),
        ({"a": 1}, '{"a":1}'),
        (b"\x00\xff", "AP8="),
        (date(2026, 1, 31), "2026-01-31"),
    ],
)
def test_text_of_is_the_exact_text(value, text):
    assert text_of(value) == text


def test_an_iso_duration_of_days_and_seconds():
    assert iso_duration(timedelta(days=3, seconds=5, microseconds=1)) == "P3DT5.000001S"


def test_json_read_exactly_keeps_every_digit_and_refuses_what_json_has_not():
    assert loads_exact('{"a": 0.1000000000000000000001, "b": 1.10, "c": 7}') == {
        "a": Decimal("0.1000000000000000000001"),
        "b": 1.1,
        "c": 7,
    }
    assert type(loads_exact("[2.5]")[0]) is float
    with pytest.raises(ValueError, match="NaN is not a JSON number"):
        loads_exact('{"a": NaN}')
    with pytest.raises(ValueError, match="Infinity is not a JSON number"):
        loads_exact("[-Infinity]")


def _standard_library_reading(text: str) -> object:
    """``loads_exact`` as it was before msgspec parsed for it: the standard library's parser, each float
    kept when its repr is the same number."""

    def exact(number_text: str) -> float | Decimal:
        number = float(number_text)
        if math.isfinite(number) and Decimal(repr(number)) == Decimal(number_text):
            return number
        return Decimal(number_text)

    def refuse(name: str) -> object:
        raise ValueError(f"{name} is not a JSON number")

    return json.loads(text, parse_float=exact, parse_constant=refuse)


@pytest.mark.parametrize(
    "text",
    [
        '{"a": 1, "a": 2}',
        '{"a": 123456789012345678901234567890, "b": -9223372036854775809, "c": 18446744073709551616}',
        '{"a": "\\ud800", "b": "\\uD83D\\uDE00", "c": "\\u0000"}',  # a lone surrogate: msgspec refuses it
        '{"a": 1E5, "b": -0.0, "c": 1e400, "d": 1.5e-400, "e": 0.000000000000001, "f": 123456789012.345}',
        '{"a": 1.7976931348623157e308, "b": 5e-324, "c": 0.30000000000000004, "d": 9007199254740993.0}',
        ' {"nested": [[{"x": [1.25, "t", true, null]}]]} ',
        "[1.10, 2.5]",
    ],
)
def test_json_read_exactly_reads_as_the_standard_library(text):
    got, expected = loads_exact(text), _standard_library_reading(text)
    assert got == expected
    assert repr(got) == repr(expected)  # the same types: float or Decimal, number by number


@pytest.mark.parametrize(
    "text",
    [
        '{"a": NaN}',
        '{"a": "x\ty"}',
        '{"a": 01}',
        '{"a": 1}x',
        "\ufeff{}",
        '{"a": ' + "9" * 5000 + "}",
        '{"a": .5}',
    ],
)
def test_json_read_exactly_refuses_what_the_standard_library_refuses_with_its_words(text):
    with pytest.raises(ValueError) as ours:
        loads_exact(text)
    with pytest.raises(ValueError) as theirs:
        _standard_library_reading(text)
    assert type(ours.value) is type(theirs.value) and str(ours.value) == str(theirs.value)


def test_json_read_exactly_keeps_short_numbers_as_floats_and_long_ones_exact():
    rng = random.Random(7)
    for _ in range(20_000):
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 20)))
        point = rng.randint(0, len(digits))
        whole = digits[:point].lstrip("0") or "0"  # JSON has no leading zero
        text = f"{rng.choice(['', '-'])}{whole}.{digits[point:] or '0'}"
        assert repr(loads_exact(f"[{text}]")) == repr(_standard_library_reading(f"[{text}]")), text


def test_not_finite_is_for_floats_and_decimals_only():
    assert not_finite(float("nan")) and not_finite(Decimal("-Infinity"))
    assert not (not_finite(1.5) or not_finite(Decimal("1")) or not_finite("nan") or not_finite(None))


def test_a_writer_gets_a_row_rejection_naming_the_column():
    assert mapping.json_value(Decimal("1.50"), "ltv") == Decimal("1.50")
    with pytest.raises(RowRejected) as caught:
        mapping.json_value(float("nan"), "ltv")
    assert caught.value.column == "ltv" and "not a finite number" in caught.value.reason
    with pytest.raises(RowRejected) as nested:
        mapping.json_object_cell('{"a": 1, "b": NaN}', "data")
    assert nested.value.column == "data"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (float("nan"), "an identifier is text or a number, not nan"),
        (b"id", "an identifier is text or a number, not bytes"),
        (True, "an identifier is text or a number, not bool"),
        (datetime(2026, 1, 1), "an identifier is text or a number, not datetime"),
    ],
)
def test_an_identifier_that_is_no_text_or_number_is_refused(value, reason):
    with pytest.raises(RowRejected, match=reason):
        mapping.key_of({"id": value}, "id")


def test_an_identifier_keeps_its_digits():
    assert mapping.key_of({"id": Decimal("12345678901234567890.5")}, "id") == "12345678901234567890.5"
    assert mapping.key_of({"id": 42.0}, "id") == "42"
    assert mapping.key_of({"id": uuid.UUID(int=2)}, "id") == "00000000-0000-0000-0000-000000000002"


def test_a_list_cell_of_values_is_their_exact_text():
    assert mapping.text_list_cell([Decimal("1.10"), b"x", None, ""], "DeviceIds") == ["1.10", "eA=="]
    assert mapping.text_list_cell('["a", 0.1000000000000000000001]', "DeviceIds") == [
        "a",
        "0.1000000000000000000001",
    ]
