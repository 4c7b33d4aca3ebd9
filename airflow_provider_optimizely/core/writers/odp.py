"""ODP writers: profiles to ``POST /profiles`` and events to ``POST /events``, 500 a request
(docs/api-contract.md §5).

Profile attributes are checked against the fields of the ``customers`` schema object before sending, so a
bad value is reported with its row and column and the batch goes without it. What ODP itself refuses
(``invalids``) is reported by index and the rest of the batch is resent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from airflow_provider_optimizely.core.mapping import (
    json_object_cell,
    json_value,
    key_of,
    keys_of_column,
    mapped_columns,
    mapped_values,
    normalise_mapping,
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
from airflow_provider_optimizely.core.validation import Validator, odp_validator, validated_records
from airflow_provider_optimizely.core.writers._invalids import send_dropping_invalids

MAX_BATCH = 500
CUSTOMERS = "customers"


class OdpApi(Protocol):
    def upsert_profiles(self, profiles: Sequence[Mapping[str, Any]]) -> Any: ...

    def send_events(self, events: Sequence[Mapping[str, Any]]) -> Any: ...

    def get_schema_object(self, object_type: str) -> Any: ...


def _batch_size(requested: int | None) -> int:
    if requested is None:
        return MAX_BATCH
    if not 1 <= int(requested) <= MAX_BATCH:
        raise SyncConfigError(f"ODP takes 1 to {MAX_BATCH} items a request; batch_size {requested} is not")
    return int(requested)


def customer_field_types(odp: OdpApi) -> dict[str, str]:
    """Field name -> type of the ``customers`` object: what a profile may carry."""
    schema = odp.get_schema_object(CUSTOMERS)
    if schema is None:
        raise SyncConfigError("ODP has no 'customers' schema object to write profiles to")
    return {field.name: str(field.type or "string") for field in schema.fields}


class OdpProfileWriter(RowWriter):
    operation = "upsert-profiles"
    api = "ODP"
    signature_fields = ("target", "identifier_column", "identifier_name", "mapping", "field_types")
    orders_by_key = True
    holds_last_batch = False

    def __init__(
        self,
        odp: OdpApi,
        *,
        identifier_column: str,
        identifier_name: str | None = None,
        columns: Mapping[str, str] | Sequence[str] | None = None,
        field_types: Mapping[str, str] | None = None,
        batch_size: int | None = None,
    ) -> None:
        self.odp = odp
        self.identifier_column = identifier_column
        self.identifier_name = identifier_name or identifier_column
        self.mapping = normalise_mapping(columns, "column_mapping")
        self.batch_size = _batch_size(batch_size)
        types = dict(field_types) if field_types is not None else customer_field_types(odp)
        self.field_types = dict(sorted(types.items()))
        self.target = CUSTOMERS
        if self.identifier_name not in types:
            raise SyncConfigError(
                f"identifier {self.identifier_name!r} is not a field of ODP customers "
                f"(fields: {', '.join(sorted(types))})"
            )
        self.validators: dict[str, Validator] = {name: odp_validator(kind) for name, kind in types.items()}
        if self.mapping is not None:
            unknown = sorted(t for t in self.mapping.values() if t not in self.validators)
            if unknown:
                raise SyncConfigError(
                    f"column_mapping names {', '.join(map(repr, unknown))}, not field(s) of ODP customers; "
                    "create them first (register-attributes)"
                )
        self._column_of = {target: source for source, target in (self.mapping or {}).items()}

    def check_columns(self, columns: Sequence[str]) -> None:
        require_columns(columns, [self.identifier_column], "the identifier_column: each profile's key")
        unknown = unmapped_targets(
            columns, self.mapping, self.identifier_column, self.validators.__contains__
        )
        if unknown:
            raise SyncConfigError(
                f"column(s) {', '.join(map(repr, unknown))} of the source are not fields of ODP customers "
                f"(fields: {', '.join(sorted(self.validators))}). Register them "
                "(OptimizelyOdpRegisterFieldsOperator), map the columns to fields with column_mapping, or "
                "leave them out of the source"
            )

    def prepare(self, row_number: int, row: dict[str, Any]) -> Item:
        key = key_of(row, self.identifier_column)
        attributes: dict[str, Any] = {}
        for column, target, value in mapped_values(row, self.mapping, self.identifier_column):
            validator = self.validators.get(target)
            if validator is None:
                raise RowRejected(f"{target!r} is not a field of ODP customers", column=column, key=key)
            try:
                wire = validator(value)
            except ValueError as exc:
                raise RowRejected(str(exc), column=column, key=key) from None
            if wire is not None:
                attributes[target] = wire
        body = {"identifiers": {self.identifier_name: key}, "attributes": attributes}
        return Item(row_number, key, body)

    def whole_page(self, first_row: int, page: Page) -> Batch | None:
        """The page's profiles made a column at a time: each column checked by its field's validator at
        once (``validate_column``), then one dict a row. The same bodies as ``prepare``, fields in the
        same order; None when a row needs a closer look (a bad value, a missing or empty key, rows of
        differing columns): ``prepare`` then rejects it by row and reason."""
        found = page_columns(page)
        if found is None or self.identifier_column not in found:
            return None
        keys = keys_of_column(found[self.identifier_column])
        if keys is None:
            return None
        attributes = validated_records(
            mapped_columns(list(found), self.mapping, self.identifier_column),
            found,
            self.validators,
            len(keys),
        )
        if attributes is None:
            return None
        name = self.identifier_name
        bodies = [
            {"identifiers": {name: key}, "attributes": attrs}
            for key, attrs in zip(keys, attributes)  # noqa: B905  (as long as each other)
        ]
        return Batch(list(range(first_row, first_row + len(keys))), keys, bodies)

    def send(self, batch: Batch, final: bool) -> BatchResult:
        return send_dropping_invalids(batch, self.odp.upsert_profiles, column_of=self._column_of)


class OdpEventWriter(RowWriter):
    """Rows to events ``{type, action, identifiers, data}``.

    ``type``/``action`` come from a constant or a column. Identifiers come from ``identifier_columns``
    (``{identifier name: column}``, or a list of columns named like the identifiers), else from an
    ``identifiers`` column holding an object. ``data`` comes from ``data_columns``, else from a ``data``
    column holding an object, else from every other column of the row.
    """

    operation = "send-events"
    api = "ODP"
    target = "events"
    orders_by_key = False
    holds_last_batch = False

    def __init__(
        self,
        odp: OdpApi,
        *,
        event_type: str | None = None,
        type_column: str = "type",
        action: str | None = None,
        action_column: str = "action",
        identifier_columns: Mapping[str, str] | Sequence[str] | None = None,
        data_columns: Mapping[str, str] | Sequence[str] | None = None,
        batch_size: int | None = None,
    ) -> None:
        self.odp = odp
        self.event_type = event_type or None
        self.type_column = type_column
        self.action = action or None
        self.action_column = action_column
        # Stored as {column: identifier name} like every other mapping.
        identifiers = normalise_mapping(
            {v: k for k, v in identifier_columns.items()}
            if isinstance(identifier_columns, Mapping)
            else identifier_columns,
            "identifier_columns",
        )
        self.identifier_columns = identifiers
        self.data_columns = normalise_mapping(data_columns, "data_columns")
        self.batch_size = _batch_size(batch_size)
        self._not_data = {type_column, action_column, "identifiers", *(identifiers or {})}

    def check_columns(self, columns: Sequence[str]) -> None:
        needed = {}
        if self.event_type is None:
            needed[self.type_column] = "each event's type, or set event_type"
        if self.action is None:
            needed[self.action_column] = "each event's action (ODP requires one), or set action"
        if self.identifier_columns is not None:
            needed.update(dict.fromkeys(self.identifier_columns, "an identifier column"))
        elif "identifiers" not in columns:
            needed["identifiers"] = "an object of identifiers, or set identifier_columns"
        for column, what in needed.items():
            require_columns(columns, [column], what)

    def prepare(self, row_number: int, row: dict[str, Any]) -> Item:
        identifiers = self._identifiers(row)
        key = next(iter(identifiers.values()), None)
        event_type = self.event_type or row.get(self.type_column)
        if event_type is None or (isinstance(event_type, str) and not event_type.strip()):
            raise RowRejected("the event has no type", column=self.type_column, key=key)
        if not identifiers:
            column = "identifiers" if self.identifier_columns is None else ", ".join(self.identifier_columns)
            raise RowRejected("the event has no identifier", column=column)
        action = self.action or row.get(self.action_column)
        if action is None or (isinstance(action, str) and not action.strip()):
            raise RowRejected(
                "the event has no action (ODP requires one)", column=self.action_column, key=key
            )
        event: dict[str, Any] = {"type": str(event_type), "action": str(action), "identifiers": identifiers}
        data = self._data(row)
        if data:
            event["data"] = data
        return Item(row_number, str(key), event)

    def send(self, batch: Batch, final: bool) -> BatchResult:
        return send_dropping_invalids(batch, self.odp.send_events)

    def _identifiers(self, row: Mapping[str, Any]) -> dict[str, str]:
        pairs: Iterable[tuple[str, Any]]
        if self.identifier_columns is None:
            pairs = (json_object_cell(row.get("identifiers"), "identifiers") or {}).items()
        else:
            pairs = ((name, row.get(column)) for column, name in self.identifier_columns.items())
        return {
            str(name): str(value)
            for name, value in pairs
            if value is not None and not isinstance(value, (dict, list)) and str(value).strip()
        }

    def _data(self, row: Mapping[str, Any]) -> dict[str, Any]:
        if self.data_columns is not None:
            pairs = self.data_columns.items()
            return {target: json_value(row[column], column) for column, target in pairs if column in row}
        if "data" in row:
            return json_object_cell(row["data"], "data") or {}
        return {
            column: json_value(value, column)
            for column, value in row.items()
            if column not in self._not_data and value is not None
        }
