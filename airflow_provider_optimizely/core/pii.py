"""Personal data in DCP files: recognise it, and hash the columns a user names (docs/api-contract.md §4.4).

The DCP terms forbid personally identifiable data (names, email addresses, phone numbers, social security
numbers). A bulk upload refuses a column that looks like one, by its name or by its values, unless the user
names it for hashing; a hashed column carries ``sha256(salt + normalised value)`` as 64 hex digits, so the
same person gets the same hash in every file hashed with the same salt, and nobody without the salt can
test a guess.

Normalising (before hashing) trims the value, folds runs of whitespace to one space and lower-cases it, so
``" Ann@Example.com"`` and ``"ann@example.com"`` hash alike.
"""

from __future__ import annotations

import hashlib
import re

EMAIL = "an email address"
PHONE = "a phone number"
SSN = "a social security number"
PERSON_NAME = "a person's name"

# Column names, compared after lower-casing and dropping everything but letters and digits.
_NAME_WORDS: dict[str, str] = {
    **dict.fromkeys(
        [
            "name",
            "fullname",
            "firstname",
            "lastname",
            "middlename",
            "surname",
            "givenname",
            "familyname",
            "forename",
            "maidenname",
            "customername",
            "personname",
            "contactname",
            "displayname",
        ],
        PERSON_NAME,
    ),
    **dict.fromkeys(["email", "emailaddress", "mail", "emailaddr", "useremail", "customeremail"], EMAIL),
    **dict.fromkeys(
        [
            "phone",
            "phonenumber",
            "telephone",
            "tel",
            "mobile",
            "mobilenumber",
            "cellphone",
            "cell",
            "msisdn",
            "fax",
        ],
        PHONE,
    ),
    **dict.fromkeys(["ssn", "socialsecuritynumber", "socialsecurity", "socialsecurityno"], SSN),
}
# Parts that mark a column wherever they sit in its name (``billing_email``, ``home_phone``).
_NAME_PARTS: tuple[tuple[str, str], ...] = (
    ("email", EMAIL),
    ("phone", PHONE),
    ("socialsecurity", SSN),
    ("firstname", PERSON_NAME),
    ("lastname", PERSON_NAME),
    ("fullname", PERSON_NAME),
)
_NOT_ALNUM = re.compile(r"[^a-z0-9]")

_EMAIL_VALUE = re.compile(r"[^@\s\"<>]+@[^@\s\"<>]+\.[A-Za-z]{2,}")
_SSN_VALUE = re.compile(r"[0-9]{3}-[0-9]{2}-[0-9]{4}")
# A dialled phone number: groups split by spaces or dashes, or + and digits (E.164), 9 to 15 digits in all.
# A plain run of digits (an id, an amount), a date (8 digits) or a dotted address is not taken for one.
_PHONE_VALUE = re.compile(r"\+?\(?[0-9]{1,4}\)?(?:[ \-][0-9()]{1,5}){2,6}|\+[0-9]{9,15}")


def pii_kind_of_column(name: str) -> str | None:
    """What personal data a column's name says it holds, or None."""
    folded = _NOT_ALNUM.sub("", name.lower())
    if folded in _NAME_WORDS:
        return _NAME_WORDS[folded]
    for part, kind in _NAME_PARTS:
        if part in folded:
            return kind
    return None


def pii_kind_of_value(value: str) -> str | None:
    """What personal data one text value looks like, or None (cheap tests first: this runs per cell)."""
    if len(value) < 7 or len(value) > 320:
        return None
    if "@" in value:
        return EMAIL if _EMAIL_VALUE.fullmatch(value.strip()) else None
    stripped = value.strip()
    if _SSN_VALUE.fullmatch(stripped):
        return SSN
    if _PHONE_VALUE.fullmatch(stripped) and 9 <= sum(ch.isdigit() for ch in stripped) <= 15:
        return PHONE
    return None


def normalise(value: str) -> str:
    """Trimmed, whitespace folded to single spaces, lower-cased: the form that is hashed."""
    return " ".join(value.split()).lower()


class SaltedHasher:
    """SHA-256 of salt + normalised value, as lower-case hex. The salt never appears in ``repr``."""

    def __init__(self, salt: str) -> None:
        if not salt:
            raise ValueError("hashing personal data needs a non-empty salt")
        self._seeded = hashlib.sha256(salt.encode("utf-8"))

    def __repr__(self) -> str:
        return "SaltedHasher(salt=***)"

    def __call__(self, value: str) -> str:
        """The hash of ``value``; an empty value stays empty (it means "no value" in a DCP file)."""
        if value == "" or value.isspace():
            return ""
        digest = self._seeded.copy()
        digest.update(normalise(value).encode("utf-8"))
        return digest.hexdigest()


def redact(value: str) -> str:
    """A hint of a personal value for an error message, without the value itself."""
    return f"{value[:1]}***" if len(value) > 4 else "***"
