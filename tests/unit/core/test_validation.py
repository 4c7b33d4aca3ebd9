"""Profile-write values against DCP datatypes and ODP field types: the wire value, or a refusal that says why.
Nothing is rounded or cut: a value the attribute can't hold exactly is refused."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from airflow_provider_optimizely.core.json_body import encode_json
from airflow_provider_optimizely.core.validation import (
    dcp_validator,
    dcp_value,
    odp_validator,
    odp_value,
    validate_column,
)

DATE = "yyyy-mm-dd"
DATETIME_Z = "yyyy-mm-ddThh:mm:ssZ"
NUMERIC_38_10 = Decimal("1234567890123456789012345678.1234567890")


@pytest.mark.parametrize(
    ("datatype", "fmt", "value", "wire"),
    [
        ("string", None, 'John "J" Doe', 'John "J" Doe'),
        ("string", None, 12, "12"),
        ("string", None, True, "true"),
        ("string", None, date(2024, 1, 31), "2024-01-31"),
        ("string", None, NUMERIC_38_10, str(NUMERIC_38_10)),
        ("string", None, b"\x00\xff", "AP8="),
        ("string", None, memoryview(b"hi"), "aGk="),
        ("string", None, {"a": Decimal("1.10")}, '{"a":1.10}'),
        ("string", None, [1, 2], "[1,2]"),
        ("bool", None, "false", False),
        ("bool", None, True, True),
        ("bool", None, 0, False),
        ("long", None, "-12", -12),
        ("long", None, "007", 7),
        ("long", None, 12, 12),
        ("long", None, Decimal("12.000"), 12),
        ("long", None, 12.0, 12),
        ("double", None, "1.5", Decimal("1.5")),
        ("double", None, "3", 3),
        ("double", None, Decimal("2.25"), Decimal("2.25")),
        ("double", None, NUMERIC_38_10, NUMERIC_38_10),
        ("double", None, 0.1, 0.1),
        ("double", None, 7, 7),
        ("datetime", DATE, "2024-02-29", "2024-02-29"),
        ("datetime", DATE, date(2024, 1, 31), "2024-01-31"),
        ("datetime", DATE, datetime(2024, 1, 31), "2024-01-31"),
        ("datetime", DATETIME_Z, "2024-01-31T23:59:59Z", "2024-01-31T23:59:59Z"),
        ("datetime", DATETIME_Z, datetime(2024, 1, 31, 23, 59, 59), "2024-01-31T23:59:59Z"),
        (
            "datetime",
            DATETIME_Z,
            datetime(2024, 2, 1, 1, 0, 0, tzinfo=timezone(timedelta(hours=2))),
            "2024-01-31T23:00:00Z",
        ),
        ("datetime", DATETIME_Z, date(2024, 1, 31), "2024-01-31T00:00:00Z"),
        ("datetime", "epoch", "1706745599000", 1706745599000),
        ("datetime", "epoch", datetime(2024, 1, 31, 23, 59, 59, 123000, tzinfo=timezone.utc), 1706745599123),
        ("datetime", "epoch", date(1970, 1, 2), 86_400_000),
    ],
)
def test_dcp_accepts_and_returns_the_wire_value(datatype, fmt, value, wire):
    result = dcp_value(value, datatype, fmt)
    assert result == wire
    assert type(result) is type(wire)


def test_a_numeric_38_10_reaches_the_body_with_every_digit():
    """Issue 10 #3: numeric(38,10) became 1.2345678901234569e+27 through a float."""
    body = encode_json({"ltv": dcp_value(NUMERIC_38_10, "double"), "n": odp_value(NUMERIC_38_10, "number")})
    assert (
        body == b'{"ltv":1234567890123456789012345678.1234567890,"n":1234567890123456789012345678.1234567890}'
    )
    assert encode_json(dcp_value("0.1000000000000000000001", "double")) == b"0.1000000000000000000001"


@pytest.mark.parametrize(
    ("datatype", "fmt", "value", "reason"),
    [
        ("bool", None, "yes", "not a bool (true or false): 'yes'"),
        ("bool", None, "TRUE", "not a bool (true or false): 'TRUE'"),
        ("bool", None, 2, "not a bool (true or false): 2"),
        ("long", None, "12x", "not a long: '12x'"),
        ("long", None, " 12", "not a long: ' 12'"),
        ("long", None, "+7", "not a long: '+7'"),
        ("long", None, "1.5", "not a long: '1.5'"),
        ("long", None, 1.5, "not a long: 1.5"),
        ("long", None, Decimal("1.5"), "not a long: 1.5"),
        ("long", None, True, "not a long: True"),
        ("long", None, str(2**63), "does not fit in 64 bits"),
        ("long", None, 2**63, "does not fit in 64 bits"),
        ("double", None, "nan", "not a double: 'nan'"),
        ("double", None, "1_000", "not a double: '1_000'"),
        ("double", None, "-.5e3", "not a double: '-.5e3'"),
        ("double", None, float("inf"), "is not a finite number"),
        ("double", None, float("nan"), "is not a finite number"),
        ("double", None, Decimal("NaN"), "is not a finite number"),
        ("double", None, Decimal("1e400"), "is not finite as a 64-bit double"),
        ("double", None, False, "not a double: False"),
        ("datetime", DATE, "2024-02-30", "is no calendar date"),
        ("datetime", DATE, "31/01/2024", "not a datetime in the format yyyy-mm-dd: '31/01/2024'"),
        ("datetime", DATE, datetime(2024, 1, 31, 12), "has a time of day"),
        ("datetime", DATETIME_Z, "2024-01-31T23:59:59", "yyyy-mm-ddThh:mm:ssZ: '2024-01-31T23:59:59'"),
        ("datetime", DATETIME_Z, "2024-01-31T24:00:00Z", "is no calendar time"),
        ("datetime", DATETIME_Z, datetime(2024, 1, 31, 1, 2, 3, 500), "has a fraction of a second"),
        ("datetime", "epoch", "2024-01-31", "epoch (milliseconds): '2024-01-31'"),
        ("datetime", "epoch", datetime(2024, 1, 31, 0, 0, 0, 1), "has a fraction of a millisecond"),
        ("datetime", "epoch", date(1969, 12, 31), "is before 1970"),
        ("datetime", "epoch", -5, "is before 1970"),
        ("string", None, object(), "not a string: a object value has no defined JSON form"),
        ("string", None, float("nan"), "not a string: nan is not a finite number"),
    ],
)
def test_dcp_refuses_with_a_short_reason_quoting_the_value(datatype, fmt, value, reason):
    with pytest.raises(ValueError) as caught:
        dcp_value(value, datatype, fmt)
    assert reason in str(caught.value)


@pytest.mark.parametrize("datatype", ["bool", "long", "double"])
def test_empty_and_none_mean_no_value(datatype):
    assert dcp_value(None, datatype) is None
    assert dcp_value("", datatype) is None


def test_an_empty_string_attribute_stays_an_empty_string():
    assert dcp_value("", "string") == ""


def test_long_reasons_are_shortened():
    with pytest.raises(ValueError) as caught:
        dcp_value("x" * 500, "long")
    assert len(str(caught.value)) < 100


def test_unknown_types_and_missing_formats_are_refused_when_the_validator_is_built():
    with pytest.raises(ValueError, match=r"DCP datatype must be one of .*, got 'int'"):
        dcp_validator("int")
    with pytest.raises(ValueError, match="needs a format"):
        dcp_validator("datetime")
    with pytest.raises(ValueError, match="unknown ODP field type"):
        odp_validator("date")


def test_a_validator_built_once_is_reused():
    check = dcp_validator("long")
    assert [check(v) for v in ("1", "2", None)] == [1, 2, None]


@pytest.mark.parametrize(
    ("field_type", "value", "wire"),
    [
        ("string", 5, "5"),
        ("string", Decimal("5.50"), "5.50"),
        ("number", "5", 5),
        ("number", "5.50", Decimal("5.50")),
        ("number", Decimal("5"), Decimal("5")),
        ("number", NUMERIC_38_10, NUMERIC_38_10),
        ("number", 2.5, 2.5),
        ("boolean", "true", True),
        ("boolean", 1, True),
        ("timestamp", datetime(2024, 1, 31, 12, tzinfo=timezone.utc), "2024-01-31T12:00:00Z"),
        ("timestamp", datetime(2024, 1, 31, 12, 0, 0, 5), "2024-01-31T12:00:00.000005Z"),
        ("timestamp", "2024-01-31T12:00:00+02:00", "2024-01-31T12:00:00+02:00"),
        ("timestamp", "2024-01-31T12:00:00.250Z", "2024-01-31T12:00:00.250Z"),
        ("timestamp", date(2024, 1, 31), "2024-01-31T00:00:00Z"),
    ],
)
def test_odp_accepts_and_returns_the_wire_value(field_type, value, wire):
    result = odp_value(value, field_type)
    assert result == wire
    assert type(result) is type(wire)


@pytest.mark.parametrize(
    ("field_type", "value", "reason"),
    [
        ("number", "five", "not a number: 'five'"),
        ("number", "1e5", "not a number: '1e5'"),
        ("number", True, "not a number: True"),
        ("number", float("nan"), "is not a finite number"),
        ("boolean", "y", "not a boolean (true or false): 'y'"),
        ("boolean", "True", "not a boolean (true or false): 'True'"),
        ("timestamp", "yesterday", "not an RFC 3339 timestamp (like 2026-01-31T10:00:00Z): 'yesterday'"),
        # Issue 10 #14: not validated before; ODP's timestamps are RFC 3339 date-times (seconds, offset).
        ("timestamp", "2026-01-01 10:00", "not an RFC 3339 timestamp"),
        ("timestamp", "2026-01-01T10:00", "not an RFC 3339 timestamp"),
        ("timestamp", "2026-01-01T10:00:00", "not an RFC 3339 timestamp"),
        ("timestamp", "2026-01-01", "not an RFC 3339 timestamp"),
        ("timestamp", "2026-02-30T10:00:00Z", "is no calendar time"),
        ("timestamp", "1706702400", "not an RFC 3339 timestamp"),
        ("timestamp", 1706702400, "not an RFC 3339 timestamp"),
    ],
)
def test_odp_refuses_with_a_short_reason(field_type, value, reason):
    with pytest.raises(ValueError) as caught:
        odp_value(value, field_type)
    assert reason in str(caught.value)


_COLUMNS = [
    ["a", "b", ""],
    [1, 2, 3],
    [1.5, -2.25, 0.0],
    [1e308, 1e308],  # each finite, their sum not
    [1.5, float("nan")],
    [10**400, 1],
    [True, False],
    [date(2026, 1, 2), date(1999, 12, 31)],
    [datetime(2026, 1, 2), datetime(2026, 1, 2, 10, 30, tzinfo=timezone.utc)],
    [Decimal("1.50"), Decimal("NaN")],
    ["42", "1.5", "x"],
    ["2026-01-02", "2026-01-02T10:00:00Z"],
    [None, "a", 1],
    [],
]
_VALIDATORS = [
    *(odp_validator(kind) for kind in ("string", "number", "boolean", "timestamp")),
    *(dcp_validator(kind) for kind in ("string", "bool", "long", "double")),
    *(dcp_validator("datetime", fmt) for fmt in ("yyyy-mm-dd", "yyyy-mm-ddThh:mm:ssZ", "epoch")),
]


@pytest.mark.parametrize("validator", _VALIDATORS)
@pytest.mark.parametrize("values", _COLUMNS)
def test_a_column_validated_at_once_is_each_value_validated(validator, values):
    try:
        expected = [validator(value) for value in values]
    except ValueError:
        expected = None  # the row-by-row path names the value
    got = validate_column(validator, list(values))
    assert got == expected
    if got is not None:
        assert list(map(type, got)) == list(map(type, expected))
