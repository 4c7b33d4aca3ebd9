from __future__ import annotations

import hashlib

import pytest

from airflow_provider_optimizely.core.pii import (
    EMAIL,
    PERSON_NAME,
    PHONE,
    SSN,
    SaltedHasher,
    normalise,
    pii_kind_of_column,
    pii_kind_of_value,
    redact,
)


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("email", EMAIL),
        ("Email_Address", EMAIL),
        ("billing-email", EMAIL),
        ("first_name", PERSON_NAME),
        ("LastName", PERSON_NAME),
        ("name", PERSON_NAME),
        ("surname", PERSON_NAME),
        ("phone", PHONE),
        ("mobile_phone", PHONE),
        ("tel", PHONE),
        ("SSN", SSN),
        ("social_security_number", SSN),
    ],
)
def test_personal_columns_are_recognised_by_name(name, kind):
    assert pii_kind_of_column(name) == kind


@pytest.mark.parametrize(
    "name", ["customerId", "ltv", "product_name", "category_name", "telemetry", "mailbox_size"]
)
def test_ordinary_columns_are_not_taken_for_personal_ones(name):
    assert pii_kind_of_column(name) is None


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("ann@example.com", EMAIL),
        (" Ann.Smith+x@mail.example.co.uk ", EMAIL),
        ("078-05-1120", SSN),
        ("+1 415 555 0100", PHONE),
        ("(415) 555-0100", PHONE),
        ("+441234567890", PHONE),
    ],
)
def test_personal_values_are_recognised(value, kind):
    assert pii_kind_of_value(value) == kind


@pytest.mark.parametrize(
    "value",
    [
        "shoes",
        "2024-01-31",
        "12345678901",
        "192.168.100.200",
        "1,234,567",
        "v1.2.3",
        "a@b",
        "@home",
        "cust-000123",
    ],
)
def test_ordinary_values_are_not_taken_for_personal_ones(value):
    assert pii_kind_of_value(value) is None


def test_hashing_is_salted_sha256_of_the_normalised_value():
    hasher = SaltedHasher("s3cret")
    expected = hashlib.sha256(b"s3cretann smith").hexdigest()
    assert hasher("  Ann \t SMITH ") == expected
    assert hasher("ann smith") == expected
    assert SaltedHasher("other")("ann smith") != expected
    assert hasher("") == "" and hasher("   ") == ""


def test_the_salt_is_required_and_never_shown():
    with pytest.raises(ValueError, match="salt"):
        SaltedHasher("")
    assert "s3cret" not in repr(SaltedHasher("s3cret"))


def test_normalise_and_redact():
    assert normalise("  A  b\nC ") == "a b c"
    assert redact("ann@example.com") == "a***"
    assert redact("abc") == "***"
