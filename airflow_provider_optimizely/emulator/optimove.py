"""The emulated Optimove Data Connections API (docs/api-contract.md §7), routes relative to
``/optimove/api/data-connections/v1``.

Readings of the contract, where docs/api-contract.md and seed 003 leave a choice:

- **Auth.** Both ``x-api-key`` and ``x-brand-key`` must match; either wrong or missing answers 401 with
  the v2 body. Unknown connection uuid: 404. Success answers are 200 (the seed's script checks 200).
- **Create.** ``{name, primary_key, description}``: ``name`` and ``primary_key`` non-empty strings,
  ``description`` a string (the seed always sends one, even "."). Answer ``{"data_connection_uuid"}``.
- **Bodies.** Unknown keys are refused (400), so a misspelt ``ttl_seconds`` fails loudly.
- **upload_data** ``{data, ttl_seconds?, batch_uuid?, batch_completed? = true}``: at most 5000 records;
  every record is an object whose primary-key field holds a non-null string or number (else 400 naming
  the record's index). Records are matched on the key's text, so ``1`` and ``"1"`` are the same record.
  ``ttl_seconds`` is null (never expires) or an integer >= 1; expiry is applied on read (``to_dict``).
- **Batches** (seed 003 says only that large datasets are split "using the batch_uuid parameter";
  docs/api-contract.md
  adds ``batch_completed=false`` on every request but the last). Reading: the records of a request with
  ``batch_completed=false`` are *staged* under (connection, ``batch_uuid``) and invisible; the request
  with ``batch_completed=true`` and the same ``batch_uuid`` applies the staged records and its own, in
  arrival order. ``batch_completed=false`` without ``batch_uuid`` is a 400. Once completed, the
  ``batch_uuid`` is forgotten: resending the last request applies its records again, which replacement
  makes harmless.
- **Replacement.** Each record replaces the stored record of its key whole: fields not sent are gone.
- **update_data** ``[{primary_key, data, ttl?}]``: at most 5000 items, the same replacement; the stored
  record is ``data`` with the primary-key field set to ``primary_key`` (a different value for that field
  inside ``data`` is a 400).
- ``Received`` kind ``optimove_records`` counts every accepted record (staged ones when they arrive),
  keyed by the fingerprint of (connection, record), so the same record sent twice shows as a duplicate.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, Header, Request

from airflow_provider_optimizely.emulator._request_body import read_json, read_json_object, same_secret
from airflow_provider_optimizely.emulator.common import ApiError, EmulatorSettings, Received, item_fingerprint

MAX_RECORDS_PER_REQUEST = 5000
_CREATE_KEYS = frozenset({"name", "primary_key", "description"})
_UPLOAD_KEYS = frozenset({"data", "ttl_seconds", "batch_uuid", "batch_completed"})
_UPDATE_KEYS = frozenset({"primary_key", "data", "ttl"})
# A staged record: the record and its ttl in seconds (None: never expires).
Staged = tuple[dict[str, Any], int | None]


class OptimoveState:
    """Connections, their live records (with expiry) and staged batches, guarded by one lock."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        # Wall-clock seconds, so that an expiry survives a save to the state file; tests may replace it.
        self.clock: Callable[[], float] = time.time
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.connections: dict[str, dict[str, Any]] = {}
            # connection uuid -> record key (text) -> {"record": {...}, "expires_at": float | None}
            self.records: dict[str, dict[str, dict[str, Any]]] = {}
            # connection uuid -> batch_uuid -> staged records in arrival order
            self.staged: dict[str, dict[str, list[Staged]]] = {}

    def live_records(self, connection: str) -> dict[str, dict[str, Any]]:
        """The records a reader sees now: expired ones are dropped on the way."""
        with self.lock:
            stored = self.records.get(connection, {})
            now = self.clock()
            for key in [
                k for k, v in stored.items() if v["expires_at"] is not None and v["expires_at"] <= now
            ]:
                del stored[key]
            return {key: dict(value["record"]) for key, value in stored.items()}

    def to_dict(self) -> dict[str, Any]:
        with self.lock:
            records = {c: self.live_records(c) for c in self.connections}
            return {
                "connections": [dict(c) for c in self.connections.values()],
                "records": records,
                "expires_at": {
                    c: {k: v["expires_at"] for k, v in self.records[c].items() if v["expires_at"] is not None}
                    for c in self.connections
                },
                "staged": {
                    c: {
                        batch: [{"record": r, "ttl": t} for r, t in items] for batch, items in batches.items()
                    }
                    for c, batches in self.staged.items()
                },
            }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OptimoveState:
        state = cls()
        for connection in data.get("connections", []):
            state.connections[connection["data_connection_uuid"]] = dict(connection)
            state.records[connection["data_connection_uuid"]] = {}
        expiries = data.get("expires_at", {})
        for conn, records in data.get("records", {}).items():
            for key, record in records.items():
                state.records.setdefault(conn, {})[key] = {
                    "record": dict(record),
                    "expires_at": expiries.get(conn, {}).get(key),
                }
        for conn, batches in data.get("staged", {}).items():
            state.staged[conn] = {b: [(i["record"], i["ttl"]) for i in items] for b, items in batches.items()}
        return state

    def apply(self, connection: str, items: list[Staged]) -> None:
        primary_key = self.connections[connection]["primary_key"]
        stored = self.records.setdefault(connection, {})
        now = self.clock()
        for record, ttl in items:
            stored[str(record[primary_key])] = {
                "record": dict(record),
                "expires_at": now + ttl if ttl is not None else None,
            }


def _key_problem(value: Any) -> bool:
    return value is None or isinstance(value, bool) or not isinstance(value, (str, int, float)) or value == ""


def _ttl_ok(value: Any) -> bool:
    return value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 1)


def _check_keys(body: dict[str, Any], allowed: frozenset[str], where: str) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise ApiError(400, f"{where}: unknown key(s) {', '.join(unknown)}")


async def _json_object(request: Request, allowed: frozenset[str], where: str) -> dict[str, Any]:
    """The body as a JSON object with no key outside ``allowed``."""
    body = await read_json_object(request)
    _check_keys(body, allowed, where)
    return body


def _check_count(items: list[Any]) -> None:
    if len(items) > MAX_RECORDS_PER_REQUEST:
        raise ApiError(400, f"at most {MAX_RECORDS_PER_REQUEST} records per request, got {len(items)}")


def _auth(settings: EmulatorSettings) -> Callable[..., None]:
    def check_keys(
        x_api_key: str | None = Header(default=None), x_brand_key: str | None = Header(default=None)
    ) -> None:
        if not (
            same_secret(x_api_key, settings.optimove_api_key)
            and same_secret(x_brand_key, settings.optimove_brand_key)
        ):
            raise ApiError(401, "missing, wrong or expired x-api-key / x-brand-key")

    return check_keys


def create_router(state: OptimoveState, settings: EmulatorSettings, received: Received) -> APIRouter:
    """The Data Connections routes; mount under ``/optimove/api/data-connections/v1``."""
    router = APIRouter(prefix="/connections", dependencies=[Depends(_auth(settings))])

    def primary_key_of(connection: str) -> str:
        with state.lock:
            if connection not in state.connections:
                raise ApiError(404, "no data connection with this uuid")
            return str(state.connections[connection]["primary_key"])

    def record_received(connection: str, records: list[dict[str, Any]]) -> None:
        received.add_items("optimove_records", [item_fingerprint([connection, r]) for r in records])

    @router.post("")
    async def create_connection(request: Request) -> dict[str, str]:
        body = await _json_object(request, _CREATE_KEYS, "connection")
        for key in ("name", "primary_key"):
            if not isinstance(body.get(key), str) or not body[key].strip():
                raise ApiError(400, f"'{key}' is required and must be a non-empty string")
        if not isinstance(body.get("description"), str):
            raise ApiError(400, "'description' is required and must be a string")
        connection = str(uuid.uuid4())
        with state.lock:
            state.connections[connection] = {"data_connection_uuid": connection, **body}
            state.records[connection] = {}
        return {"data_connection_uuid": connection}

    @router.post("/{connection}/upload_data")
    async def upload_data(connection: str, request: Request) -> dict[str, Any]:
        primary_key = primary_key_of(connection)
        body = await _json_object(request, _UPLOAD_KEYS, "upload_data")
        records, ttl = body.get("data"), body.get("ttl_seconds")
        batch, completed = body.get("batch_uuid"), body.get("batch_completed", True)
        if not isinstance(records, list):
            raise ApiError(400, "'data' is required and must be a list of records")
        _check_count(records)
        if not _ttl_ok(ttl):
            raise ApiError(400, "'ttl_seconds' must be null or an integer >= 1")
        if not isinstance(completed, bool) or (
            batch is not None and (not isinstance(batch, str) or not batch)
        ):
            raise ApiError(400, "'batch_completed' must be a boolean and 'batch_uuid' a non-empty string")
        if not completed and batch is None:
            raise ApiError(400, "'batch_completed': false needs a 'batch_uuid' to group the requests")
        for index, record in enumerate(records):
            if not isinstance(record, dict) or _key_problem(record.get(primary_key)):
                raise ApiError(400, f"record {index}: the primary key '{primary_key}' is missing or empty")
        items: list[Staged] = [(record, ttl) for record in records]
        with state.lock:
            if batch is not None and not completed:
                state.staged.setdefault(connection, {}).setdefault(batch, []).extend(items)
            else:
                staged = state.staged.get(connection, {}).pop(batch, []) if batch else []
                state.apply(connection, staged + items)
        record_received(connection, records)
        return {"records": len(records), "batch_uuid": batch, "batch_completed": completed}

    @router.put("/{connection}/update_data")
    async def update_data(connection: str, request: Request) -> dict[str, Any]:
        primary_key = primary_key_of(connection)
        body = await read_json(request)
        if not isinstance(body, list):
            raise ApiError(400, "the body must be a list of {primary_key, data, ttl}")
        _check_count(body)
        items: list[Staged] = []
        for index, item in enumerate(body):
            if not isinstance(item, dict):
                raise ApiError(400, f"item {index}: must be an object")
            _check_keys(item, _UPDATE_KEYS, f"item {index}")
            key, data, ttl = item.get("primary_key"), item.get("data"), item.get("ttl")
            if _key_problem(key):
                raise ApiError(400, f"item {index}: 'primary_key' is missing or empty")
            if not isinstance(data, dict):
                raise ApiError(400, f"item {index}: 'data' must be an object")
            if primary_key in data and str(data[primary_key]) != str(key):
                raise ApiError(400, f"item {index}: data.{primary_key} differs from primary_key")
            if not _ttl_ok(ttl):
                raise ApiError(400, f"item {index}: 'ttl' must be null or an integer >= 1")
            items.append(({**data, primary_key: key}, ttl))
        with state.lock:
            state.apply(connection, items)
        record_received(connection, [record for record, _ in items])
        return {"records": len(items)}

    return router
