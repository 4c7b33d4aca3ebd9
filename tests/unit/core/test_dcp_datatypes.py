"""The DCP datatype rules, each written once: the client's conservative readings (seed 000,
docs/api-contract.md §3a)."""

from __future__ import annotations

import random
import re
from decimal import Decimal

import pytest

from airflow_provider_optimizely.core.dcp_datatypes import (
    DCP_DATATYPES,
    DCP_DATETIME_FORMATS,
    cell_text,
    check_datatype,
    text_rule,
)

DATE = "yyyy-mm-dd"
DATETIME_Z = "yyyy-mm-ddThh:mm:ssZ"
TYPES = [
    ("bool", None),
    ("long", None),
    ("double", None),
    ("datetime", DATE),
    ("datetime", DATETIME_Z),
    ("datetime", "epoch"),
]

# Each reading, as docs/values.md lists it: (datatype, format, accepted, refused).
READINGS = [
    ("bool", None, ["true", "false"], ["TRUE", "True", "FALSE", "1", "0", "yes", " true", "true ", ""]),
    (
        "long",
        None,
        ["0", "7", "-12", "007", str(2**63 - 1), str(-(2**63))],
        ["+7", "1.0", "1e3", "1_000", " 1", "1 ", "", "-", "\u0661", str(2**63), "0x10"],
    ),
    (
        "double",
        None,
        ["0", "1.5", "-0.25", "3", "123456789012345678901234567.1234567890", "1" * 300],
        [
            "1e5",
            "1E5",
            ".5",
            "5.",
            "+5",
            "NaN",
            "nan",
            "inf",
            "-Infinity",
            "1_000.5",
            " 1.5",
            "1.5 ",
            "1,5",
            "",
            "9" * 400,
        ],
    ),
    (
        "datetime",
        DATE,
        ["2024-01-31", "2024-02-29", "0001-01-01"],
        [
            "2023-02-29",
            "2024-02-30",
            "0000-01-01",
            "2024-1-31",
            "31/01/2024",
            "2024-01-31T00:00:00Z",
            "2024-01-31 ",
            "2024-01-3\uff11",
            "",
        ],
    ),
    (
        "datetime",
        DATETIME_Z,
        ["2024-01-31T23:59:59Z", "2024-02-29T00:00:00Z"],
        [
            "2024-01-31T24:00:00Z",
            "2024-01-31T23:59:60Z",
            "2024-01-31 23:59:59Z",
            "2024-01-31T23:59:59",
            "2024-01-31T23:59:59+00:00",
            "2024-01-31T23:59:59.5Z",
            "2024-01-31T23:59:59z",
            "2024-01-31",
            "",
        ],
    ),
    (
        "datetime",
        "epoch",
        ["0", "1706745599000", str(2**63 - 1)],
        ["-1", "1706745599000.0", "1.7e12", "+1", "2024-01-31", str(2**63), ""],
    ),
]


@pytest.mark.parametrize(("datatype", "fmt", "accepted", "refused"), READINGS)
def test_each_rule_accepts_only_its_conservative_reading(datatype, fmt, accepted, refused):
    rule = text_rule(datatype, fmt)
    assert rule is not None
    for text in accepted:
        rule.check(text)
    for text in refused:
        with pytest.raises(ValueError, match=f"not {re.escape(rule.what)}"):
            rule.check(text)


def test_a_string_takes_any_text_and_has_no_rule():
    assert text_rule("string") is None


@pytest.mark.parametrize(
    ("datatype", "fmt", "text", "reason"),
    [
        ("long", None, "12x", "not a long: '12x'"),
        ("long", None, str(2**63), "does not fit in 64 bits"),
        ("double", None, "1e5", "not a double: '1e5'"),
        ("double", None, "9" * 400, "is not finite as a 64-bit double"),
        ("datetime", DATE, "2024-02-30", "'2024-02-30' is no calendar date"),
        ("datetime", DATETIME_Z, "2024-01-31T24:00:00Z", "is no calendar time"),
        ("datetime", "epoch", "-1", "epoch (milliseconds): '-1'"),
    ],
)
def test_a_refusal_says_why_and_quotes_the_text(datatype, fmt, text, reason):
    with pytest.raises(ValueError) as caught:
        text_rule(datatype, fmt).check(text)  # type: ignore[union-attr]
    assert reason in str(caught.value)
    assert len(str(caught.value)) < 160


def test_datatypes_and_formats_are_checked_once_for_all_callers():
    assert DCP_DATATYPES == ("string", "bool", "long", "double", "datetime")
    assert DCP_DATETIME_FORMATS == (DATE, DATETIME_Z, "epoch")
    with pytest.raises(ValueError, match=r"DCP datatype must be one of .*, got 'int'"):
        check_datatype("int")
    with pytest.raises(ValueError, match="needs a format"):
        check_datatype("datetime")
    with pytest.raises(ValueError, match="only a datetime takes a format"):
        check_datatype("long", "epoch")
    assert text_rule("long", "epoch") is text_rule("long")  # a listed attribute's stray format is ignored


TRICKY = [text for _, _, accepted, refused in READINGS for text in (*accepted, *refused)] + [
    "1" * 19,
    "9" * 18,
    "-" + "9" * 18,
    "2024-04-31",
    "2024-12-31T23:59:59Z",
    "1." + "0" * 50,
    "\n",
    "1\n2",
]


@pytest.mark.parametrize(("datatype", "fmt"), TYPES)
def test_the_fast_pattern_only_vouches_for_text_the_rule_accepts(datatype, fmt):
    rule = text_rule(datatype, fmt)
    assert rule is not None
    fast = re.compile(rule.fast)
    rng = random.Random(7)
    alphabet = "0123456789-:.TZe+ tru"
    texts = [*TRICKY, *("".join(rng.choices(alphabet, k=rng.randint(1, 22))) for _ in range(20_000))]
    for text in texts:
        if fast.fullmatch(text):
            assert rule.accepts(text), text


@pytest.mark.parametrize(("datatype", "fmt"), TYPES)
def test_a_column_fits_only_when_every_cell_is_accepted_and_filled(datatype, fmt):
    rule = text_rule(datatype, fmt)
    assert rule is not None
    good = [text for text in TRICKY if text and rule.accepts(text) and re.fullmatch(rule.fast, text)]
    assert good and rule.column_fits(good)
    for bad in (text for text in TRICKY if not rule.accepts(text)):
        assert not rule.column_fits([*good, bad]), bad
    assert not rule.column_fits([*good, ""])  # an empty cell is never vouched for


@pytest.mark.parametrize(
    ("wire", "text"),
    [
        (None, ""),
        (True, "true"),
        (False, "false"),
        (12, "12"),
        (1.5, "1.5"),
        (1e20, "100000000000000000000"),
        (1e-7, "0.0000001"),
        (Decimal("1E+3"), "1000"),
        (Decimal("123456789012345678901234567.1234567890"), "123456789012345678901234567.1234567890"),
        ("a", "a"),
    ],
)
def test_a_wire_value_is_written_as_the_cell_dcp_reads_back(wire, text):
    assert cell_text(wire) == text
    if isinstance(wire, (float, Decimal)):
        text_rule("double").check(text)  # type: ignore[union-attr]
        assert Decimal(text) == Decimal(repr(wire) if isinstance(wire, float) else wire)
