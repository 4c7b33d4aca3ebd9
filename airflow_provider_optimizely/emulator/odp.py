"""The emulated ODP REST v3 (docs/api-contract.md §5), routes relative to ``/odp/v3``; they conform to
odp-openapi.yaml.

Readings of the contract, where docs/api-contract.md and the OpenAPI leave a choice:

- **Keys.** ``x-api-key`` carries the public or the private key. Per the OpenAPI document's ``security``:
  ``POST /events``, ``POST /objects/{type}`` and ``GET /objects/{type}/{id}`` take the public key (the
  private one too); ``POST /profiles``, ``GET /profiles/...``, every ``/schema`` route and ``/segments``
  need the private key, and the public key gets **401** there (the only auth status the OpenAPI
  documents), message "this route needs the private API key".
- **All or nothing.** A batch of events, profiles or objects with one invalid item is refused whole
  (400 with every problem in ``invalids``) and nothing of it is stored or recorded, so a client that
  resends its batch never creates duplicates. More than 500 items: 400 with the v2 body.
- **Events.** An array (the OpenAPI's request body; a bare object is 400); each event needs a
  non-empty ``type`` and ``action`` (``EventInput.required``) and ``identifiers`` with at least one
  non-empty string value. Unknown top-level keys are refused.
  Invalid: ``{"detail": {"invalids": [{"event": i, "message"}]}}``.
- **Schema.** The ``customers`` object exists from the start with the Profile fields of the OpenAPI
  (``email``, ``customer_id``, ``vuid``, ``first_name``, ``last_name``, ``city``, ``state``, ``country``,
  ``zip_code``, all strings). Object and field names match ``^[a-z][a-z0-9_]{0,63}$``. A duplicate object
  type or field name answers 400 with ``invalids`` reason "already exists" (400, not 409, because the
  OpenAPI documents no 409 for these routes). Invalid: ``{"detail": {"invalids": [{"field", "reason"}]}}``.
- **Profiles.** One ``ProfileInput`` object (the OpenAPI), or an array of them (docs/api-contract.md).
  Identifier names
  and attribute names must be fields of ``customers`` (unknown: 400, ``invalids`` naming the field, plus
  ``profile``: the item's index); values must match the field's type (timestamp: ISO 8601 text or Unix
  seconds); ``null`` clears an attribute; an ``email`` identifier must look like an address. A profile is
  found by any of its identifiers; when identifiers point at several stored profiles, they are merged into
  the first (ODP's identity resolution).
- **Objects.** An array (a bare object is 400). The object type must exist in the schema and not be
  ``customers`` (profiles go through ``/profiles``); an unknown type answers 400 (the OpenAPI documents
  no 404 on that POST). Fields must exist on the type; an upsert merges fields.
- **Segments.** ``all_customers`` always exists and counts the stored profiles; others can be loaded with
  the state (``from_dict``).
- The state keeps the last 10,000 accepted events (and a total); ``Received`` counts every one.
"""

from __future__ import annotations

import threading
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse

from airflow_provider_optimizely.emulator import _odp_validation as check
from airflow_provider_optimizely.emulator._request_body import iso_utc, read_json, same_secret, utc_now
from airflow_provider_optimizely.emulator.common import (
    ApiError,
    EmulatorSettings,
    Received,
    item_fingerprint,
    paginate,
)

MAX_ITEMS_PER_REQUEST = 500
KEPT_EVENTS = 10_000
CUSTOMERS = "customers"
_CUSTOMER_FIELDS = (
    "email",
    "customer_id",
    "vuid",
    "first_name",
    "last_name",
    "city",
    "state",
    "country",
    "zip_code",
)


def _default_schema() -> dict[str, dict[str, Any]]:
    fields = {
        name: {
            "name": name,
            "display_name": name.replace("_", " ").title(),
            "type": "string",
            "description": "",
        }
        for name in _CUSTOMER_FIELDS
    }
    return {
        CUSTOMERS: {
            "name": CUSTOMERS,
            "display_name": "Customers",
            "description": "Customer profiles",
            "fields": fields,
        }
    }


class OdpState:
    """Schema, profiles, objects, segments and recent events, guarded by one re-entrant lock."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.schema: dict[str, dict[str, Any]] = _default_schema()
            self.profiles: dict[str, dict[str, Any]] = {}  # profile id -> {identifiers, attributes}
            self.identity: dict[tuple[str, str], str] = {}  # (identifier name, value) -> profile id
            self.objects: dict[str, dict[str, dict[str, Any]]] = {}  # type -> object_id -> OdpObject
            self.segments: list[dict[str, Any]] = []
            self.events: deque[dict[str, Any]] = deque(maxlen=KEPT_EVENTS)
            self.events_total = 0

    def to_dict(self) -> dict[str, Any]:
        with self.lock:
            return {
                "schema": [self.schema_object(name) for name in self.schema],
                "profiles": [
                    {"id": pid, "identifiers": dict(p["identifiers"]), "attributes": dict(p["attributes"])}
                    for pid, p in self.profiles.items()
                ],
                "objects": {t: [dict(o) for o in objs.values()] for t, objs in self.objects.items()},
                "segments": [dict(s) for s in self.segments],
                "events": list(self.events),
                "events_total": self.events_total,
            }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OdpState:
        state = cls()
        for obj in data.get("schema", []):
            state.schema[obj["name"]] = {**obj, "fields": {f["name"]: dict(f) for f in obj.get("fields", [])}}
        for profile in data.get("profiles", []):
            pid = profile.get("id") or str(uuid.uuid4())
            state.profiles[pid] = {
                "identifiers": dict(profile["identifiers"]),
                "attributes": dict(profile["attributes"]),
            }
            state.identity.update({(k, v): pid for k, v in profile["identifiers"].items()})
        for object_type, objs in data.get("objects", {}).items():
            state.objects[object_type] = {o["object_id"]: dict(o) for o in objs}
        state.segments = [dict(s) for s in data.get("segments", [])]
        state.events.extend(data.get("events", []))
        state.events_total = data.get("events_total", len(state.events))
        return state

    def schema_object(self, name: str) -> dict[str, Any]:
        obj = self.schema[name]
        return {**obj, "fields": [dict(f) for f in obj["fields"].values()]}

    def upsert_profile(self, profile: dict[str, Any]) -> None:
        identifiers: dict[str, str] = profile["identifiers"]
        found: list[str] = []
        for pair in identifiers.items():
            pid = self.identity.get(pair)
            if pid is not None and pid not in found:
                found.append(pid)
        if not found:
            target: dict[str, Any] = {"identifiers": {}, "attributes": {}}
            self.profiles[pid := str(uuid.uuid4())] = target
        else:
            pid, target = found[0], self.profiles[found[0]]
            for other in found[1:]:  # identifiers shared with other profiles: merge them into this one
                merged = self.profiles.pop(other)
                target["identifiers"] = {**merged["identifiers"], **target["identifiers"]}
                target["attributes"] = {**merged["attributes"], **target["attributes"]}
        target["identifiers"].update(identifiers)
        for name, value in profile.get("attributes", {}).items():
            if value is None:
                target["attributes"].pop(name, None)
            else:
                target["attributes"][name] = value
        self.identity.update({pair: pid for pair in target["identifiers"].items()})


def _as_batch(body: Any, what: str, *, bare_object: bool = False) -> list[Any]:
    """The items of a batch body: an array (or, where ``bare_object``, one object alone)."""
    if not isinstance(body, list):
        if not (bare_object and isinstance(body, dict)):
            raise ApiError(400, f"the body must be a JSON array of {what}")
        body = [body]
    items = body
    if not items:
        raise ApiError(400, f"no {what} in the request")
    if len(items) > MAX_ITEMS_PER_REQUEST:
        raise ApiError(400, f"at most {MAX_ITEMS_PER_REQUEST} {what} per request, got {len(items)}")
    return items


def _invalid(invalids: list[dict[str, Any]]) -> ApiError:
    return ApiError(400, "invalid request", body={"detail": {"invalids": invalids}})


def _auth(settings: EmulatorSettings, *, private: bool) -> Callable[..., None]:
    def check_key(x_api_key: str | None = Header(default=None)) -> None:
        if same_secret(x_api_key, settings.odp_private_key):
            return
        if same_secret(x_api_key, settings.odp_public_key):
            if private:
                raise ApiError(401, "this route needs the private API key")
            return
        raise ApiError(401, "missing or invalid x-api-key")

    return check_key


def create_router(state: OdpState, settings: EmulatorSettings, received: Received) -> APIRouter:
    """The ODP v3 routes; mount under ``/odp/v3``."""
    # One router whose routes each name their key, as the OpenAPI document's ``security`` does. (Not two
    # nested routers: the traffic layer reads the routes of one router.)
    router = APIRouter()
    public = [Depends(_auth(settings, private=False))]
    private = [Depends(_auth(settings, private=True))]

    def accepted(status: int = 202, title: str = "Accepted") -> JSONResponse:
        return JSONResponse(
            {"title": title, "status": status, "timestamp": iso_utc(utc_now())}, status_code=status
        )

    @router.post("/events", status_code=202, dependencies=public)
    async def send_events(request: Request) -> JSONResponse:
        events = _as_batch(await read_json(request), "events")
        invalids = [problem for i, event in enumerate(events) for problem in check.event_invalids(i, event)]
        if invalids:
            raise _invalid(invalids)
        with state.lock:
            state.events.extend(events)
            state.events_total += len(events)
        received.add_items("odp_events", [item_fingerprint(e) for e in events])
        return accepted()

    @router.post("/profiles", dependencies=private)
    async def upsert_profiles(request: Request) -> JSONResponse:
        profiles = _as_batch(await read_json(request), "profiles", bare_object=True)
        with state.lock:
            fields = state.schema[CUSTOMERS]["fields"]
            invalids = [p for i, prof in enumerate(profiles) for p in check.profile_invalids(i, prof, fields)]
            if invalids:
                raise _invalid(invalids)
            for profile in profiles:
                state.upsert_profile(profile)
        received.add_items("odp_profiles", [item_fingerprint(p) for p in profiles])
        return accepted(200, "OK")

    @router.post("/objects/{object_type}", status_code=202, dependencies=public)
    async def upsert_objects(object_type: str, request: Request) -> JSONResponse:
        items = _as_batch(await read_json(request), "objects")
        now = iso_utc(utc_now())
        with state.lock:
            if object_type == CUSTOMERS or object_type not in state.schema:
                reason = "use /profiles for customers" if object_type == CUSTOMERS else "unknown object type"
                raise _invalid([{"field": "object_type", "reason": f"{reason}: '{object_type}'"}])
            fields = state.schema[object_type]["fields"]
            invalids = [p for i, item in enumerate(items) for p in check.object_invalids(i, item, fields)]
            if invalids:
                raise _invalid(invalids)
            stored = state.objects.setdefault(object_type, {})
            for item in items:
                current = stored.setdefault(
                    item["object_id"],
                    {"object_id": item["object_id"], "type": object_type, "fields": {}, "created": now},
                )
                current["fields"].update(item.get("fields", {}))
                current["fields"] = {k: v for k, v in current["fields"].items() if v is not None}
                current["updated"] = now
        received.add_items("odp_objects", [item_fingerprint({"type": object_type, **i}) for i in items])
        return accepted()

    @router.get("/profiles/{identifier_field}/{identifier_value}", dependencies=private)
    def get_profile(
        identifier_field: str, identifier_value: str, fields: str | None = None
    ) -> dict[str, Any]:
        with state.lock:
            pid = state.identity.get((identifier_field, identifier_value))
            if pid is None:
                raise ApiError(404, f"no profile with {identifier_field} = the given value")
            profile = {**state.profiles[pid]["attributes"], **state.profiles[pid]["identifiers"]}
        if fields:
            wanted = {f.strip() for f in fields.split(",") if f.strip()}
            profile = {k: v for k, v in profile.items() if k in wanted}
        return profile

    @router.get("/objects/{object_type}/{object_id}", dependencies=public)
    def get_object(object_type: str, object_id: str) -> dict[str, Any]:
        with state.lock:
            obj = state.objects.get(object_type, {}).get(object_id)
            if obj is None:
                raise ApiError(404, f"no {object_type} object with that object_id")
            return {**obj, "fields": dict(obj["fields"])}

    @router.get("/schema/objects", dependencies=private)
    def list_schema_objects(request: Request) -> JSONResponse:
        with state.lock:
            objects = [state.schema_object(name) for name in state.schema]
        return paginate(request, objects)

    @router.get("/schema/objects/{object_type}", dependencies=private)
    def get_schema_object(object_type: str) -> dict[str, Any]:
        with state.lock:
            if object_type not in state.schema:
                raise ApiError(404, f"no schema object '{object_type}'")
            return state.schema_object(object_type)

    @router.post("/schema/objects/{object_type}", status_code=201, dependencies=private)
    async def create_schema_object(object_type: str, request: Request) -> dict[str, Any]:
        body = await read_json(request)
        invalids = check.schema_object_invalids(object_type, body)
        if invalids:
            raise _invalid(invalids)
        with state.lock:
            if object_type in state.schema:
                raise _invalid([{"field": "object_type", "reason": f"'{object_type}' already exists"}])
            state.schema[object_type] = {
                "name": object_type,
                "display_name": body["display_name"],
                "description": body.get("description", ""),
                "fields": {},
            }
            return state.schema_object(object_type)

    @router.post("/schema/objects/{object_type}/fields", status_code=201, dependencies=private)
    async def create_schema_field(object_type: str, request: Request) -> dict[str, Any]:
        body = await read_json(request)
        with state.lock:
            if object_type not in state.schema:
                raise ApiError(404, f"no schema object '{object_type}'")
        invalids = check.schema_field_invalids(body)
        if invalids:
            raise _invalid(invalids)
        field = {"description": "", **body}
        with state.lock:
            fields = state.schema[object_type]["fields"]
            if field["name"] in fields:
                raise _invalid(
                    [{"field": "name", "reason": f"'{field['name']}' already exists on {object_type}"}]
                )
            fields[field["name"]] = field
            return dict(field)

    @router.get("/segments", dependencies=private)
    def list_segments(request: Request) -> JSONResponse:
        with state.lock:
            everyone = {
                "name": "all_customers",
                "description": "Every customer profile",
                "customer_count": len(state.profiles),
            }
            segments = [everyone, *(dict(s) for s in state.segments)]
        return paginate(request, segments)

    return router
