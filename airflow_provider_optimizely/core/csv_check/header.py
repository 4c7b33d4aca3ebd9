"""The header of a bulk-upload file against the table's attributes (docs/api-contract.md §4.4): what each
column is.

Every column must be a live registered attribute, or ``customerId`` (in any case); none twice. A column
whose name says it holds personal data is refused unless it is hashed, and a hashed column must be a
``string`` attribute. Each problem refuses the whole file: DCP fails a file for one bad header name.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from airflow_provider_optimizely.core.csv_check.report import CheckOptions, ProblemLog
from airflow_provider_optimizely.core.csv_records import bad_column
from airflow_provider_optimizely.core.dcp_datatypes import TextRule, text_rule
from airflow_provider_optimizely.core.pii import pii_kind_of_column
from airflow_provider_optimizely.core.validation import Validator, dcp_validator

CUSTOMER_ID = "customerid"


@dataclass
class Columns:
    """What each column of the file is, by position."""

    names: list[str]
    key_index: int = -1
    #: Per column: the validator of its attribute (None for customerId and unknown columns).
    validators: list[Validator | None] = field(default_factory=list)
    #: (index, rule) of typed columns (not strings, not hashed columns).
    typed: list[tuple[int, TextRule]] = field(default_factory=list)
    hashed: list[tuple[int, Callable[[str], str]]] = field(default_factory=list)
    #: Text columns (customerId, string attributes) whose values are tested for personal data.
    text: list[int] = field(default_factory=list)

    @property
    def key_name(self) -> str:
        return self.names[self.key_index]


def pii_message(column: str, kind: str, because: str) -> str:
    return (
        f"column {column!r} looks like {kind} (by its {because}); the DCP terms forbid personal data: "
        "name it in hash_columns to upload it hashed"
    )


def resolve_header(header: Sequence[str], options: CheckOptions, log: ProblemLog) -> Columns:
    """The columns of ``header``; each problem is a refusal of the file, on row 1."""
    columns = Columns(names=[str(name).strip() for name in header])
    found = bad_column(tuple(columns.names))
    if found is not None:
        log.refuse(1, columns.names[found[0]], None, found[1])
    seen: set[str] = set()
    for index, name in enumerate(columns.names):
        hasher = options.hash_columns.get(name)
        attribute = None
        if name.lower() == CUSTOMER_ID:
            if columns.key_index >= 0:
                log.refuse(1, name, None, "customerId appears twice in the header")
            columns.key_index = index
        elif name in seen:
            log.refuse(1, name, None, f"column {name!r} appears twice in the header")
        elif name not in options.attributes:
            log.refuse(1, name, None, f"{name!r} is not a registered attribute of this table")
        else:
            attribute = options.attributes[name]
            if hasher is not None and attribute.datatype != "string":
                message = f"a hashed column must be a string attribute; {name!r} is {attribute.datatype}"
                log.refuse(1, name, None, message)
        seen.add(name)
        kind = pii_kind_of_column(name)
        if kind is not None and hasher is None:
            log.refuse(1, name, None, pii_message(name, kind, "name"))
        rule = None
        if attribute is not None:
            columns.validators.append(dcp_validator(attribute.datatype, attribute.format))
            rule = text_rule(attribute.datatype, attribute.format)
        else:
            columns.validators.append(None)
        if hasher is not None:
            columns.hashed.append((index, hasher))
        elif rule is not None:
            columns.typed.append((index, rule))
        else:
            columns.text.append(index)
    if columns.key_index < 0:
        log.refuse(1, None, None, "the header has no customerId column")
    for name in options.hash_columns:
        if name not in seen:
            log.refuse(1, name, None, f"column {name!r} is named for hashing but is not in the header")
    return columns
