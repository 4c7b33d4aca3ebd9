"""DCP writer: one ``POST customer_profile/{svc}/{table}/{customerId}`` a profile (docs/api-contract.md §4.3).

Values are checked against the table's registered (not archived) attributes first: DCP refuses the whole
write for one unknown attribute or ill-typed value, so a bad value is reported by row and column and the
row is not sent. Only the attributes a row carries are written; the others keep their stored values.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from airflow_provider_optimizely.core.errors import BadRequestError, PayloadTooLargeError
from airflow_provider_optimizely.core.mapping import (
    mapped_columns,
    mapped_values,
    normalise_mapping,
    path_key_of,
    path_keys_of_column,
    require_columns,
    unmapped_targets,
)
from airflow_provider_optimizely.core.page import Page, page_columns
from airflow_provider_optimizely.core.sync import (
    Batch,
    BatchResult,
    Item,
    RowRejected,
    RowWriter,
    SyncConfigError,
)
from airflow_provider_optimizely.core.validation import Validator, dcp_validator, validated_records


class DcpApi(Protocol):
    def list_attributes(self, table_id: int) -> Iterable[Any]: ...

    def upsert_profile(self, table_id: int, customer_id: str, data: Mapping[str, Any]) -> Any: ...


def attribute_validators(attributes: Iterable[Any]) -> dict[str, Validator]:
    """Name -> validator of each live attribute (``name``, ``datatype``, ``format``, ``archived``)."""
    validators: dict[str, Validator] = {}
    for attribute in attributes:
        if getattr(attribute, "archived", False):
            continue  # an archived attribute can be neither read nor written
        validators[attribute.name] = dcp_validator(attribute.datatype, attribute.format)
    return validators


class DcpProfileWriter(RowWriter):
    operation = "upsert-profiles"
    api = "DCP"
    signature_fields = ("target", "identifier_column", "mapping", "attributes")
    batch_size = 1
    orders_by_key = True
    holds_last_batch = False

    def __init__(
        self,
        dcp: DcpApi,
        *,
        table_id: int,
        identifier_column: str,
        columns: Mapping[str, str] | Sequence[str] | None = None,
    ) -> None:
        self.dcp = dcp
        self.table_id = int(table_id)
        self.target = f"table {self.table_id}"
        self.identifier_column = identifier_column
        self.mapping = normalise_mapping(columns, "column_mapping")
        live = [a for a in dcp.list_attributes(self.table_id) if not getattr(a, "archived", False)]
        self.attributes = {
            a.name: [str(a.datatype), a.format or None] for a in sorted(live, key=lambda a: a.name)
        }
        self.validators = attribute_validators(live)
        self.source_columns: list[str] = []
        if self.mapping is not None:
            unknown = sorted(t for t in self.mapping.values() if t not in self.validators)
            if unknown:
                raise SyncConfigError(
                    f"column_mapping names {', '.join(map(repr, unknown))}, not registered attribute(s) of "
                    f"DCP table {self.table_id} (registered: {', '.join(sorted(self.validators)) or 'none'})"
                )

    def check_columns(self, columns: Sequence[str]) -> None:
        self.source_columns = list(columns)
        require_columns(columns, [self.identifier_column], "the identifier_column: each profile's customerId")
        unknown = unmapped_targets(
            columns, self.mapping, self.identifier_column, self.validators.__contains__
        )
        if unknown:
            raise SyncConfigError(
                f"column(s) {', '.join(map(repr, unknown))} of the source are not registered attributes of "
                f"DCP table {self.table_id} (registered: {', '.join(sorted(self.validators)) or 'none'}). "
                "Register them (OptimizelyDcpRegisterAttributesOperator), map the columns to registered "
                "attributes with column_mapping, or leave them out of the source"
            )

    def attributes_written(self) -> list[str]:
        """The attributes the source's columns write (once ``check_columns`` saw them), in their order."""
        columns = dict.fromkeys(self.source_columns)
        return [target for _, target, _ in mapped_values(columns, self.mapping, self.identifier_column)]

    def prepare(self, row_number: int, row: dict[str, Any]) -> Item:
        key = path_key_of(row, self.identifier_column, "DCP customer id")
        data: dict[str, Any] = {}
        for column, target, value in mapped_values(row, self.mapping, self.identifier_column):
            validator = self.validators.get(target)
            if validator is None:
                raise RowRejected(
                    f"{target!r} is not a registered attribute of DCP table {self.table_id}",
                    column=column,
                    key=key,
                )
            try:
                wire = validator(value)
            except ValueError as exc:
                raise RowRejected(str(exc), column=column, key=key) from None
            if wire is not None:
                data[target] = wire
        if not data:
            raise RowRejected("no attribute value to write", key=key)
        return Item(row_number, key, data)

    def whole_page(self, first_row: int, page: Page) -> Batch | None:
        """The page's profiles made a column at a time, each column checked by its attribute's validator
        at once (``validated_records``): the same bodies as ``prepare``, attributes in the same order.
        None when a row needs a closer look (a bad value or key, a row with nothing to write, rows of
        differing columns): ``prepare`` then rejects it by row and reason."""
        found = page_columns(page)
        if found is None or self.identifier_column not in found:
            return None
        keys = path_keys_of_column(found[self.identifier_column])
        if keys is None:
            return None
        pairs = mapped_columns(list(found), self.mapping, self.identifier_column)
        bodies = validated_records(pairs, found, self.validators, len(keys))
        if bodies is None or not all(bodies):
            return None
        return Batch(list(range(first_row, first_row + len(keys))), keys, bodies)

    def send(self, batch: Batch, final: bool) -> BatchResult:
        result = BatchResult()
        for item in batch.items():
            try:
                self.dcp.upsert_profile(self.table_id, item.key, item.body)
            except (BadRequestError, PayloadTooLargeError) as exc:
                result.refuse(item, f"refused by DCP: {exc.message}")
                continue
            result.succeeded += 1
        return result
