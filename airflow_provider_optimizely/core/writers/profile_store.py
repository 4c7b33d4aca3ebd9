"""Profile Store writers: ``PUT api/v1.0/profiles/{id}`` a profile, ``DELETE .../{scope}/{id}``
(docs/api-contract.md §6).

A row's columns map to the profile's properties (``Name``, ``DeviceIds``, ``Visits``, ``FirstSeen``,
``LastSeen``, ``ProfileManager``, ``ContactInformation``, ``Info``, ``Payload``) or into ``Info``/``Payload``
with a dotted name (``Info.Email``, ``Payload.tier``). The rules the store enforces (``Visits`` >= 0,
``FirstSeen`` <= ``LastSeen``, a body of at most 256 KB) are checked before sending, so a bad row is
reported by row and column and never sent.

Deletes: ``404`` means already deleted (a rerun succeeds); ``429`` (too many events deleted before the daily
clean-up) waits for ``Retry-After`` and goes on, up to ``rate_limit_patience`` seconds in all.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any, Protocol

import msgspec

from airflow_provider_optimizely.core.errors import (
    BadRequestError,
    ConflictError,
    PayloadTooLargeError,
    RateLimitedError,
)
from airflow_provider_optimizely.core.json_body import encode_json
from airflow_provider_optimizely.core.mapping import (
    json_object_cell,
    json_value,
    mapped_values,
    normalise_mapping,
    path_key_of,
    require_columns,
    text_list_cell,
    unmapped_targets,
    utc_iso,
)
from airflow_provider_optimizely.core.page import Page
from airflow_provider_optimizely.core.report import Log, Rejection
from airflow_provider_optimizely.core.sync import (
    Batch,
    BatchResult,
    Item,
    RowRejected,
    RowWriter,
    SyncConfigError,
)
from airflow_provider_optimizely.core.values import text_of

MAX_BODY_BYTES = 256 * 1024
DEFAULT_RATE_LIMIT_PATIENCE = 3600.0
_TEXT = ("Name", "ProfileManager")
_LISTS = ("DeviceIds", "ContactInformation")
_OBJECTS = ("Info", "Payload")
_TIMES = ("FirstSeen", "LastSeen")
PROPERTIES = frozenset({*_TEXT, *_LISTS, *_OBJECTS, *_TIMES, "Visits"})
log = logging.getLogger(__name__)


class ProfileStoreApi(Protocol):
    def put_profile(self, profile_id: str, profile: Mapping[str, Any]) -> Any: ...

    def delete_profile(self, profile_id: str, scope: str | None = None) -> bool: ...


def _target_ok(target: str) -> bool:
    head, dot, rest = target.partition(".")
    return (head in _OBJECTS and bool(rest)) if dot else target in PROPERTIES


def _timestamp(value: Any, column: str) -> str:
    if isinstance(value, datetime):
        return utc_iso(value)
    if isinstance(value, date):
        return f"{value.isoformat()}T00:00:00Z"
    if isinstance(value, str):
        try:
            datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise RowRejected(f"not an ISO 8601 date-time: {value[:60]!r}", column=column) from None
        return value
    raise RowRejected(f"not a date-time: {type(value).__name__}", column=column)


def _moment(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment


def _visits(value: Any, column: str) -> int:
    try:
        if isinstance(value, bool):
            raise ValueError
        if isinstance(value, (float, Decimal)):
            if not value.is_finite() if isinstance(value, Decimal) else not math.isfinite(value):
                raise ValueError
            if value != int(value):  # 3.5 visits is no whole number: never cut it to 3
                raise ValueError
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        raise RowRejected(f"Visits is a whole number, not {value!r}", column=column) from None
    if number < 0:
        raise RowRejected(f"Visits must be 0 or more, not {number}", column=column)
    return number


class ProfileStorePutWriter(RowWriter):
    operation = "upsert-profiles"
    api = "ProfileStore"
    signature_fields = ("target", "identifier_column", "mapping", "scope")
    batch_size = 1
    orders_by_key = True
    holds_last_batch = False

    def __init__(
        self,
        store: ProfileStoreApi,
        *,
        identifier_column: str,
        columns: Mapping[str, str] | Sequence[str] | None = None,
        scope: str | None = None,
    ) -> None:
        self.store = store
        self.identifier_column = identifier_column
        self.mapping = normalise_mapping(columns, "column_mapping")
        self.scope = scope or None
        self.target = f"scope {self.scope or 'default'}"
        if self.mapping is not None:
            unknown = sorted(t for t in self.mapping.values() if not _target_ok(t))
            if unknown:
                raise SyncConfigError(
                    f"column_mapping names {', '.join(map(repr, unknown))}: a Profile Store profile has "
                    f"{', '.join(sorted(PROPERTIES))}, and Info.<name> / Payload.<name>"
                )

    def check_columns(self, columns: Sequence[str]) -> None:
        require_columns(columns, [self.identifier_column], "the identifier_column: each profile's id")
        unknown = unmapped_targets(columns, self.mapping, self.identifier_column, _target_ok)
        if unknown:
            raise SyncConfigError(
                f"column(s) {', '.join(map(repr, unknown))} of the source are not Profile Store profile "
                f"properties ({', '.join(sorted(PROPERTIES))}, Info.<name>, Payload.<name>). Map them with "
                "column_mapping (e.g. to Payload.<name>), or leave them out of the source"
            )

    def prepare(self, row_number: int, row: dict[str, Any]) -> Item:
        key, body, _ = self._checked(row)
        return Item(row_number, key, body)

    def prepare_page(self, first_row: int, page: Page) -> tuple[Batch, list[Rejection]]:
        """``prepare`` a row, each body kept as the JSON measured against the size limit
        (``msgspec.Raw``): those bytes are what the request sends and what a sync state fingerprints,
        so the body is written once."""
        return self.prepare_rows(first_row, page, self._prepare_encoded)

    def _prepare_encoded(self, row_number: int, row: dict[str, Any]) -> Item:
        key, _, payload = self._checked(row)
        return Item(row_number, key, msgspec.Raw(payload))

    def _checked(self, row: dict[str, Any]) -> tuple[str, dict[str, Any], bytes]:
        """The row's key, body and the body's JSON, or ``RowRejected``."""
        key = path_key_of(row, self.identifier_column, "Profile Store profile id")
        try:
            body = self._body(row)
            payload = encode_json(body)  # the bytes the client will send
        except RowRejected as rejected:
            rejected.key = key
            raise
        if len(payload) > MAX_BODY_BYTES:
            limit = MAX_BODY_BYTES // 1024
            raise RowRejected(
                f"the profile is {len(payload)} bytes, over Profile Store's {limit} KB limit", key=key
            )
        return key, body, payload

    def _body(self, row: Mapping[str, Any]) -> dict[str, Any]:
        body: dict[str, Any] = {}
        for column, target, value in mapped_values(row, self.mapping, self.identifier_column):
            if not _target_ok(target):
                raise RowRejected(f"{target!r} is not a Profile Store profile property", column=column)
            if value is None or value == "":
                continue
            head, dot, rest = target.partition(".")
            if dot:
                body.setdefault(head, {})[rest] = json_value(value, column)
            elif head in _LISTS:
                body[head] = text_list_cell(value, column)
            elif head in _OBJECTS:
                body[head] = {**body.get(head, {}), **(json_object_cell(value, column) or {})}
            elif head in _TIMES:
                body[head] = _timestamp(value, column)
            elif head == "Visits":
                body[head] = _visits(value, column)
            else:
                body[head] = text_of(value)
        first, last = body.get("FirstSeen"), body.get("LastSeen")
        if first and last and _moment(first) > _moment(last):
            raise RowRejected("FirstSeen is after LastSeen", column="FirstSeen")
        if self.scope:
            body["Scope"] = self.scope
        return body

    def send(self, batch: Batch, final: bool) -> BatchResult:
        result = BatchResult()
        for item in batch.items():
            try:
                outcome = self.store.put_profile(item.key, item.body)
            except ConflictError as exc:
                result.refuse(item, f"another profile has the same DeviceIds or Info.Email: {exc.message}")
                continue
            except (BadRequestError, PayloadTooLargeError) as exc:
                result.refuse(item, f"refused by Profile Store: {exc.message}")
                continue
            result.succeeded += 1
            result.details["created" if getattr(outcome, "created", False) else "replaced"] += 1
        return result


class ProfileStoreDeleteWriter(RowWriter):
    operation = "delete-profile"
    api = "ProfileStore"
    batch_size = 1
    orders_by_key = True
    holds_last_batch = False

    def __init__(
        self,
        store: ProfileStoreApi,
        *,
        id_column: str = "id",
        scope: str | None = None,
        rate_limit_patience: float = DEFAULT_RATE_LIMIT_PATIENCE,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        logger: Log | None = None,
    ) -> None:
        self.store = store
        self.id_column = id_column
        self.scope = scope or None
        self.target = f"scope {self.scope or 'default'}"
        self.rate_limit_patience = float(rate_limit_patience)
        self._sleep = sleep
        self._clock = clock
        self.log = logger or log

    def check_columns(self, columns: Sequence[str]) -> None:
        if len(columns) != 1:  # a one-column source is a list of ids, whatever its column's name
            require_columns(columns, [self.id_column], "the id_column: the ids of the profiles to delete")

    def prepare(self, row_number: int, row: dict[str, Any]) -> Item:
        if self.id_column not in row and len(row) == 1:
            row = {self.id_column: next(iter(row.values()))}  # a one-column query of ids, whatever its name
        return Item(row_number, path_key_of(row, self.id_column, "Profile Store profile id"), None)

    def send(self, batch: Batch, final: bool) -> BatchResult:
        result = BatchResult()
        for item in batch.items():
            try:
                deleted = self._delete_waiting_out_limits(item.key, result)
            except BadRequestError as exc:
                result.refuse(item, f"refused by Profile Store: {exc.message}")
                continue
            result.succeeded += 1
            result.details["deleted" if deleted else "already_deleted"] += 1
        return result

    def _delete_waiting_out_limits(self, profile_id: str, result: BatchResult) -> bool:
        started = self._clock()
        while True:
            try:
                return self.store.delete_profile(profile_id, self.scope)
            except RateLimitedError as exc:
                # The client's own retries are spent; this limit resets on the store's schedule, so wait.
                wait = exc.retry_after if exc.retry_after is not None else 60.0
                if self._clock() - started + wait > self.rate_limit_patience:
                    raise
                self.log.warning(
                    "Profile Store refuses more deletes for now (429); waiting %.0fs (Retry-After)", wait
                )
                result.details["rate_limit_waits"] += 1
                self._sleep(wait)
