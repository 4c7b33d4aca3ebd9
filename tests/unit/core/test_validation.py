from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from airflow_provider_optimizely.core.validation import (
    csv_text,
    dcp_batch_check,
    dcp_text_check,
    dcp_text_pattern,
    dcp_validator,
    dcp_value,
    odp_validator,
    odp_value,
)

DATE = "yyyy-mm-dd"
DATETIME_Z = "yyyy-mm-ddThh:mm:ssZ"


@pytest.mark.parametrize(
    ("datatype", "fmt", "value", "wire"),
    [
        ("string", None, 'John "J" Doe', 'John "J" Doe'),
        ("string", None, 12, "12"),
        ("string", None, True, "true"),
        ("string", None, date(2024, 1, 31), "2024-01-31"),
        ("bool", None, "TRUE", True),
        ("bool", None, "false", False),
        ("bool", None, True, True),
        ("bool", None, 0, False),
        ("long", None, "-12", -12),
        ("long", None, "+7", 7),
        ("long", None, 12, 12),
        ("long", None, Decimal("12"), 12),
        ("long", None, 12.0, 12),
        ("double", None, "1.5", 1.5),
        ("double", None, "-.5e3", -500.0),
        ("double", None, "3", 3.0),
        ("double", None, Decimal("2.25"), 2.25),
        ("double", None, 7, 7.0),
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
        ("datetime", "epoch", datetime(2024, 1, 31, 23, 59, 59, tzinfo=timezone.utc), 1706745599000),
        ("datetime", "epoch", date(1970, 1, 2), 86_400_000),
    ],
)
def test_dcp_accepts_and_returns_the_wire_value(datatype, fmt, value, wire):
    result = dcp_value(value, datatype, fmt)
    assert result == wire
    assert type(result) is type(wire)


@pytest.mark.parametrize(
    ("datatype", "fmt", "value", "reason"),
    [
        ("bool", None, "yes", "not a bool (true or false): 'yes'"),
        ("bool", None, 2, "not a bool (true or false): 2"),
        ("long", None, "12x", "not a long: '12x'"),
        ("long", None, " 12", "not a long: ' 12'"),
        ("long", None, "1.5", "not a long: '1.5'"),
        ("long", None, 1.5, "not a long: 1.5"),
        ("long", None, True, "not a long: True"),
        ("long", None, str(2**63), "does not fit in 64 bits"),
        ("double", None, "nan", "not a double: 'nan'"),
        ("double", None, "1_000", "not a double: '1_000'"),
        ("double", None, float("inf"), "is not finite"),
        ("double", None, "1e999", "is not finite"),
        ("double", None, False, "not a double: False"),
        ("datetime", DATE, "2024-02-30", "is no calendar date"),
        ("datetime", DATE, "31/01/2024", "not a datetime in the format yyyy-mm-dd: '31/01/2024'"),
        ("datetime", DATE, datetime(2024, 1, 31, 12), "has a time of day"),
        ("datetime", DATETIME_Z, "2024-01-31T23:59:59", "yyyy-mm-ddThh:mm:ssZ: '2024-01-31T23:59:59'"),
        ("datetime", DATETIME_Z, "2024-01-31T24:00:00Z", "is no calendar time"),
        ("datetime", "epoch", "2024-01-31", "epoch (milliseconds): '2024-01-31'"),
        ("string", None, object(), "not a string"),
    ],
)
def test_dcp_refuses_with_a_short_reason_quoting_the_value(datatype, fmt, value, reason):
    with pytest.raises(ValueError, match=None) as caught:
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
    with pytest.raises(ValueError, match="unknown DCP datatype 'int'"):
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
        ("number", "5", 5),
        ("number", "5.5", 5.5),
        ("number", Decimal("5"), 5),
        ("number", Decimal("5.5"), 5.5),
        ("boolean", "True", True),
        ("boolean", 1, True),
        ("timestamp", datetime(2024, 1, 31, 12, tzinfo=timezone.utc), "2024-01-31T12:00:00Z"),
        ("timestamp", "2024-01-31T12:00:00+02:00", "2024-01-31T12:00:00+02:00"),
        ("timestamp", 1706702400, 1706702400),
        ("timestamp", "1706702400", 1706702400),
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
        ("number", True, "not a number: True"),
        ("boolean", "y", "not a boolean (true or false): 'y'"),
        ("timestamp", "yesterday", "not a timestamp (ISO 8601 or Unix seconds): 'yesterday'"),
    ],
)
def test_odp_refuses_with_a_short_reason(field_type, value, reason):
    with pytest.raises(ValueError) as caught:
        odp_value(value, field_type)
    assert reason in str(caught.value)


@pytest.mark.parametrize(
    ("wire", "text"), [(None, ""), (True, "true"), (False, "false"), (12, "12"), (1.5, "1.5"), ("a", "a")]
)
def test_csv_text_writes_what_dcp_reads_back(wire, text):
    assert csv_text(wire) == text


TRICKY_CELLS = [
    "",
    "0",
    "12",
    "-12",
    "+7",
    "007",
    "1.5",
    ".5",
    "5.",
    "-.5e3",
    "1e999",
    "1E5",
    "1_000",
    " 1",
    "1 ",
    "nan",
    "inf",
    "-inf",
    "Infinity",
    "٣",
    "12x",
    "+",
    "-",
    ".",
    "e5",
    "1e",
    "9" * 18,
    "9" * 19,
    "true",
    "FALSE",
    "True",
    "yes",
    "1",
    "2024-01-31",
    "2024-02-30",
    "2024-1-31",
    "20240131--",
    "2021-W01-1",
    "2024-01-3\uff11",  # a fullwidth digit
    "2024-01-31T23:59:59Z",
    "2024-01-31T24:00:00Z",
    "2024-01-31 23:59:59Z",
    "2024-01-31T23:59:59+00:00",
    "20240131T23:59:59ZZZ",
    "2024-01-31T23:59Z:59",
    "2024-0131-T23:59:59Z",
    "1706745599000",
]
TYPES = [
    ("bool", None),
    ("long", None),
    ("double", None),
    ("datetime", DATE),
    ("datetime", DATETIME_Z),
    ("datetime", "epoch"),
]


@pytest.mark.parametrize(("datatype", "fmt"), TYPES)
def test_batch_checks_never_pass_a_cell_the_text_check_refuses(datatype, fmt):
    check = dcp_text_check(datatype, fmt)
    batch = dcp_batch_check(datatype, fmt)

    def passes(cell):
        try:
            check(cell)
        except ValueError:
            return False
        return True

    for cell in TRICKY_CELLS:
        if cell and batch([cell]):
            assert passes(cell), f"{datatype} {fmt}: batch passed {cell!r}"
    good = [cell for cell in TRICKY_CELLS if not cell or passes(cell)]
    for bad in (cell for cell in TRICKY_CELLS if cell and not passes(cell)):
        assert not batch([*good, bad]), f"{datatype} {fmt}: batch passed {bad!r} among good cells"


@pytest.mark.parametrize(
    ("datatype", "fmt", "cells"),
    [
        ("bool", None, ["true", "false", ""]),
        ("long", None, ["1", "22", "", "333"]),
        ("double", None, ["1.5", "2", "", "3e5"]),
        ("datetime", DATE, ["2024-01-31", "", "2023-12-01"]),
        ("datetime", DATETIME_Z, ["2024-01-31T23:59:59Z", ""]),
        ("datetime", "epoch", ["1706745599000", ""]),
    ],
)
def test_batch_checks_pass_ordinary_columns_at_once(datatype, fmt, cells):
    assert dcp_batch_check(datatype, fmt)(cells) is True
    assert dcp_text_check("string") is None and dcp_batch_check("string") is None


@pytest.mark.parametrize(
    ("datatype", "fmt", "matched", "left_to_the_check"),
    [
        ("long", None, ["0", "123456789012345678"], ["1234567890123456789", "+1", "-1", "1.0", "\u0661"]),
        ("double", None, ["1", "1.", "-.5", "+2.5e-07", "3E99"], ["1e999", "nan", "inf", "1_0", " 1", "."]),
        ("bool", None, ["true", "false"], ["TRUE", "False", "yes", "1"]),
        (
            "datetime",
            DATE,
            ["2024-01-31", "2023-04-30", "0001-01-01"],
            ["2024-02-29", "0000-01-01", "2024-04-31"],
        ),
        (
            "datetime",
            DATETIME_Z,
            ["2024-12-31T23:59:59Z"],
            ["2024-12-31T24:00:00Z", "2024-12-31T23:59:60Z", "2024-12-31 23:59:59Z", "2024-02-30T00:00:00Z"],
        ),
        ("datetime", "epoch", ["1706745599000"], ["-1", "17067455990001234567"]),
    ],
)
def test_a_text_pattern_matches_only_what_the_text_check_passes(datatype, fmt, matched, left_to_the_check):
    import re

    pattern = re.compile(dcp_text_pattern(datatype, fmt))
    check = dcp_text_check(datatype, fmt)
    for value in matched:
        assert pattern.fullmatch(value), value
        check(value)
    for value in left_to_the_check:
        assert pattern.fullmatch(value) is None, value


def test_a_string_attribute_has_no_text_pattern():
    assert dcp_text_pattern("string") is None
