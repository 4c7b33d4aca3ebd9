"""Optimove writer: ``upload_data`` in requests of up to 5000 records under one ``batch_uuid``
(docs/api-contract.md §7).

Optimove replaces each stored record whole: a field not sent is removed. So records go out whole: every
column of the row (renamed by the mapping, ``None`` sent as ``null``). A mapping that leaves columns out
sends partial records, which removes the other fields; that must be asked for (``allow_partial_records``)
and is logged as a warning.

One run is one ``batch_uuid``: every request but the last says ``batch_completed: false``, and the last
(``true``) goes only once all others were acknowledged, so Optimove applies the run at once. Resending a
request of that batch after a failure is safe: its records replace the same records again.
"""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Mapping, Sequence
from datetime import date
from itertools import starmap
from operator import itemgetter
from typing import Any, Protocol

import msgspec

from airflow_provider_optimizely.core.json_records import records_of
from airflow_provider_optimizely.core.mapping import json_value, key_of, normalise_mapping, require_columns
from airflow_provider_optimizely.core.report import Log
from airflow_provider_optimizely.core.sources import Page
from airflow_provider_optimizely.core.sync import (
    Batch,
    BatchResult,
    Item,
    RowRejected,
    RowWriter,
    SyncConfigError,
)
from airflow_provider_optimizely.core.writers._invalids import send_dropping_invalids

MAX_BATCH = 5000
# Values a JSON body carries as they are (exact types: a bool is an int subclass, but also native). A
# float is not: a NaN or an infinity has no JSON token, so each float is checked (``json_value``).
_NATIVE = frozenset({str, int, bool, type(None)})
_NATIVE_OR_FLOAT = _NATIVE | {float}
log = logging.getLogger(__name__)


class OptimoveApi(Protocol):
    def upload_data(
        self,
        connection_uuid: str,
        records: Sequence[Mapping[str, Any]],
        *,
        ttl_seconds: int | None = None,
        batch_uuid: str | None = None,
        batch_completed: bool = True,
    ) -> Any: ...


class OptimoveWriter(RowWriter):
    operation = "upsert-profiles"
    api = "Optimove"
    signature_fields = (
        "target",
        "identifier_column",
        "primary_key",
        "mapping",
        "allow_partial_records",
        "ttl_seconds",
    )
    orders_by_key = True
    holds_last_batch = True

    def __init__(
        self,
        optimove: OptimoveApi,
        *,
        connection_uuid: str,
        identifier_column: str,
        primary_key: str | None = None,
        columns: Mapping[str, str] | Sequence[str] | None = None,
        allow_partial_records: bool = False,
        ttl_seconds: int | None = None,
        batch_size: int | None = None,
        batch_uuid: str | None = None,
        logger: Log | None = None,
    ) -> None:
        self.optimove = optimove
        self.connection_uuid = str(connection_uuid)
        self.target = f"data connection {self.connection_uuid}"
        self.identifier_column = identifier_column
        self.mapping = normalise_mapping(columns, "column_mapping")
        self.primary_key = primary_key or (self.mapping or {}).get(identifier_column) or identifier_column
        sent_as = (self.mapping or {}).get(identifier_column, self.primary_key)
        if sent_as != self.primary_key:
            raise SyncConfigError(
                f"column_mapping sends {identifier_column!r} as {sent_as!r} but the primary key is "
                f"{self.primary_key!r}"
            )
        self.allow_partial_records = bool(allow_partial_records)
        self.ttl_seconds = ttl_seconds
        size = MAX_BATCH if batch_size is None else int(batch_size)
        if not 1 <= size <= MAX_BATCH:
            raise SyncConfigError(f"Optimove takes 1 to {MAX_BATCH} records a request; {batch_size} is not")
        self.batch_size = size
        self.batch_uuid = batch_uuid or str(uuid.uuid4())
        self.log = logger or log
        self._left_out_seen: set[str] = set()
        self._record_types: dict[tuple[str, ...], Any] = {}
        self._sent_columns = {*(self.mapping or {}), identifier_column}
        if self.allow_partial_records:
            self.log.warning(
                "allow_partial_records is set: Optimove replaces each record whole, so the fields of "
                "stored records that this run does not send are removed"
            )

    def check_columns(self, columns: Sequence[str]) -> None:
        require_columns(columns, [self.identifier_column], "the identifier_column: each record's primary key")

    def resume(self, metadata: dict[str, Any]) -> None:
        """An earlier attempt's records wait, held back, under its ``batch_uuid``: complete that batch."""
        self.batch_uuid = metadata.setdefault("batch_uuid", self.batch_uuid)

    def prepare(self, row_number: int, row: dict[str, Any]) -> Item:
        key = key_of(row, self.identifier_column)
        if self.mapping is None:
            record = row  # the source's own dict: no copy per row
            if self.identifier_column != self.primary_key:
                record[self.primary_key] = record.pop(self.identifier_column)
        else:
            mapping = self.mapping
            if not row.keys() <= self._sent_columns:
                self._left_out(row)
            record = {mapping[column]: value for column, value in row.items() if column in mapping}
            record.setdefault(self.primary_key, row[self.identifier_column])
        for name, value in record.items():
            if type(value) not in _NATIVE:
                record[name] = json_value(value, name)
        return Item(row_number, key, record)

    def whole_page(self, first_row: int, page: Page) -> Batch | None:
        ready = self._table_page(first_row, page) if page.table is not None else None
        if ready is None and self.mapping is None:
            ready = self._text_page(first_row, page) if page.text_only and page.values is not None else None
            if ready is None:
                ready = self._dict_page(first_row, page)
        return ready

    def _table_page(self, first_row: int, page: Page) -> Batch | None:
        """A CSV page that Arrow read, written as JSON records a column at a time (``records_of``): no
        Python object per record but its key. The same records as ``prepare`` makes, fields in the same
        order; None when a row needs a closer look (an empty key) or the mapping is odd."""
        header, table = page.header, page.table
        assert header is not None and table is not None
        identifier, primary_key = self.identifier_column, self.primary_key
        if identifier not in header:
            return None
        if self.mapping is None:
            if primary_key != identifier and primary_key in header:
                return None  # the row's own column of that name gives way to the key: prepare does that
            fields = [
                (index, primary_key if name == identifier else name) for index, name in enumerate(header)
            ]
        else:
            if not set(header) <= self._sent_columns:
                self._left_out(dict.fromkeys(header))  # fails, or warns once (allow_partial_records)
            mapping = self.mapping
            fields = [(index, mapping[name]) for index, name in enumerate(header) if name in mapping]
            if identifier not in mapping:
                if any(target == primary_key for _, target in fields):
                    return None  # another column sent as the key's name wins in prepare: leave it to it
                fields.append((header.index(identifier), primary_key))
        keys = table.column(header.index(identifier)).to_pylist()
        if not all(map(str.strip, keys)):
            return None
        columns = table.select([index for index, _ in fields])
        records = records_of(columns, [name for _, name in fields])
        return Batch(list(range(first_row, first_row + len(keys))), keys, records)

    def _text_page(self, first_row: int, page: Page) -> Batch | None:
        """A CSV page sent as read: each row's tuple of fields becomes a record (a msgspec struct that
        encodes as the same JSON object as the row's dict) in one C-level pass, with no dict a row.
        None when a row needs a closer look (a short or long row, an empty key)."""
        header, values = page.header, page.values
        assert header is not None and values is not None
        if self.identifier_column not in header or set(map(len, values)) != {len(header)}:
            return None
        if self.primary_key != self.identifier_column and self.primary_key in header:
            return None  # the row's own column of that name gives way to the key: the dict path does that
        keys = list(map(itemgetter(header.index(self.identifier_column)), values))
        if not all(map(str.strip, keys)):
            return None
        records = list(starmap(self._record_type(tuple(header)), values))
        return Batch(list(range(first_row, first_row + len(values))), keys, records)

    def _record_type(self, header: tuple[str, ...]) -> Any:
        """A struct type whose fields, in order, are the CSV's columns (the identifier renamed to the
        primary key). Its field names are placeholders, renamed to the columns on the wire, so that any
        column name works; ``gc=False``: records of text only hold no cycles to look for."""
        if self._record_types.get(header) is None:
            names = [self.primary_key if name == self.identifier_column else name for name in header]
            fields = [f"f{index}" for index in range(len(names))]
            self._record_types[header] = msgspec.defstruct(
                "OptimoveRecord",
                [(field, str) for field in fields],
                rename=dict(zip(fields, names, strict=True)),
                gc=False,
            )
        return self._record_types[header]

    def _dict_page(self, first_row: int, page: Page) -> Batch | None:
        """A page whose rows go out as they are, checked and converted a column at a time (C-speed
        passes, a Python loop only over the values that need converting). None when a row needs a
        closer look (a broken row, a missing or empty key, rows of differing columns): the row-by-row
        path then reports it."""
        rows: list[Any] = page.rows  # dicts, unless an Unreadable makes the checks below fail
        column = self.identifier_column
        try:
            raw_keys = list(map(itemgetter(column), rows))
            kinds = set(map(type, raw_keys))
            if kinds == {str}:
                if not all(map(str.strip, raw_keys)):
                    return None
                keys = raw_keys
            elif kinds == {int}:
                keys = list(map(str, raw_keys))
            else:
                return None
            if not page.text_only and not self._convert_columns(rows):
                return None
        except (KeyError, TypeError):  # a row without the key column, or an Unreadable
            return None
        if column != self.primary_key:
            for row in rows:
                row[self.primary_key] = row.pop(column)
        return Batch(list(range(first_row, first_row + len(rows))), keys, rows)

    @staticmethod
    def _convert_columns(rows: list[Any]) -> bool:
        """Make every value JSON-ready, a column at a time; False if the rows differ in their columns or
        a value has no faithful JSON form (the row-by-row path then rejects its row by name)."""
        columns = rows[0].keys()
        if not all(map(columns.__eq__, map(dict.keys, rows))):
            return False
        for name in columns:
            cells = list(map(itemgetter(name), rows))
            kinds = set(map(type, cells))
            if kinds <= _NATIVE:
                continue
            if kinds <= _NATIVE_OR_FLOAT and math.isfinite(sum(c for c in cells if type(c) is float)):
                continue  # finite floats go as they are (a NaN or infinity makes the sum not finite)
            if kinds == {date}:  # a date column: its ISO text, as json_value writes it, in one pass
                converted = list(map(date.isoformat, cells))
            else:
                try:
                    converted = [c if type(c) in _NATIVE else json_value(c, name) for c in cells]
                except RowRejected:
                    return False
            for row, value in zip(rows, converted):  # noqa: B905  (as long as each other)
                row[name] = value
        return True

    def send(self, batch: Batch, final: bool) -> BatchResult:
        def post(records: Sequence[Any]) -> Any:
            return self.optimove.upload_data(
                self.connection_uuid,
                records,
                ttl_seconds=self.ttl_seconds,
                batch_uuid=self.batch_uuid,
                batch_completed=final,
            )

        return send_dropping_invalids(batch, post)

    def _left_out(self, row: Mapping[str, Any]) -> None:
        assert self.mapping is not None
        left_out = sorted(c for c in row if c not in self.mapping and c != self.identifier_column)
        if not left_out:
            return
        if not self.allow_partial_records:
            raise SyncConfigError(
                f"column_mapping leaves out column(s) {', '.join(map(repr, left_out))}. Optimove replaces "
                "each record whole, so those fields would be removed from the stored records. Map every "
                "column, select only the columns to keep, or set allow_partial_records=True"
            )
        new = [c for c in left_out if c not in self._left_out_seen]
        if new:
            self._left_out_seen.update(new)
            self.log.warning(
                "Optimove records are sent without column(s) %s: those fields are removed from the stored "
                "records (allow_partial_records)",
                ", ".join(new),
            )
