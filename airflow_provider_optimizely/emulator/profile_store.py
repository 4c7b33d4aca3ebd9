"""The emulated Profile Store v1.0 (API.md §6), routes relative to ``/profile-store``.

Readings of the contract, where API.md and seed 001 leave a choice:

- **Auth.** ``Authorization: epi-single <key>``; anything else answers 401 with the v2 body.
- **Scopes.** The scope ``default`` always exists; other scopes come with the state (``from_dict``
  ``{"scopes": [...]}``, e.g. from the emulator's state file; they survive a reset), since the vendor
  configures scopes per site, outside this API. A profile naming another scope is refused
  (400, "the scope must exist").
- **Bodies.** At most 256 KB (262,144 bytes; more answers 413 before the rest is read). Known properties
  only (``DeviceIds, Name, ProfileManager, FirstSeen, LastSeen, Visits, Scope, Info, ContactInformation,
  Payload``; ``ProfileId`` and ``UpdateTime`` are accepted and ignored: the server sets them); anything
  else, ``Visits`` < 0 or not an integer, a ``FirstSeen``/``LastSeen`` that is not an ISO 8601 date-time
  or ``FirstSeen`` > ``LastSeen`` answers 400.
- **Duplicates (409).** Another profile *of the same scope* holding one of the ``DeviceIds``, or the same
  ``Info.Email`` (compared case-insensitively).
- **PUT** ``profiles/{id}`` works in the body's scope: replaces (200) or creates with that id (201).
- **Location** points at the profile's GET address, ``.../api/v1.0/profiles/{scope}/{id}``.
- **DELETE and its event budget.** The emulator stores no track events: a profile's event count is its
  ``Visits`` (each visit left at least one event). Deleted events add up until the daily clean-up at the
  next UTC midnight; a DELETE that would take the sum past ``settings.profile_store_delete_event_budget``
  answers 429 with ``Retry-After`` = whole seconds until that midnight, and deletes nothing. 200 answers
  with the deleted profile.
- **Query** ``GET api/v1.0/profiles``: ``$filter`` (see ``_profile_store_query``), ``$orderBy``, ``$top``
  (default 100, 1 or more), ``$skip`` (default 0), ``$skip + $top`` must be < 10000 (else 400). Answer:
  ``{"total": <matches>, "count": <in this page>, "items": [...]}``.
"""

from __future__ import annotations

import math
import threading
import uuid
from collections.abc import Callable, Iterable
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse

from airflow_provider_optimizely.emulator import _profile_store_query as query
from airflow_provider_optimizely.emulator._request_body import (
    iso_utc,
    parse_iso_datetime,
    read_json,
    same_secret,
    utc_now,
)
from airflow_provider_optimizely.emulator.common import ApiError, EmulatorSettings, Received, item_fingerprint

MAX_BODY_BYTES = 256 * 1024
DEFAULT_SCOPE = "default"
DEFAULT_TOP = 100
RESULT_WINDOW = 10_000
_WRITABLE = ("DeviceIds", "Name", "ProfileManager", "FirstSeen", "LastSeen", "Visits", "Scope", "Info")
_KNOWN = frozenset({*_WRITABLE, "ContactInformation", "Payload", "ProfileId", "UpdateTime"})


class ProfileStoreState:
    """Profiles by (scope, id), the scopes, and the events deleted since the last daily clean-up."""

    def __init__(self, scopes: Iterable[str] = ()) -> None:
        self.lock = threading.RLock()
        # Tests may replace the clock to reach the next clean-up without waiting for midnight.
        self.clock: Callable[[], datetime] = utc_now
        # Scopes configured with the state outlive a reset, as the vendor's site configuration would.
        self.configured_scopes = frozenset(scopes)
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.scopes: set[str] = {DEFAULT_SCOPE, *self.configured_scopes}
            self.profiles: dict[tuple[str, str], dict[str, Any]] = {}
            self.deleted_events = 0
            self.cleanup_day: date = self.clock().date()

    def to_dict(self) -> dict[str, Any]:
        with self.lock:
            return {
                "scopes": sorted(self.scopes),
                "profiles": [dict(p) for p in self.profiles.values()],
                "deleted_events_since_cleanup": self.deleted_events,
                "last_cleanup": self.cleanup_day.isoformat(),
            }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProfileStoreState:
        state = cls(scopes=data.get("scopes", []))
        for profile in data.get("profiles", []):
            state.scopes.add(profile["Scope"])
            state.profiles[(profile["Scope"], profile["ProfileId"])] = dict(profile)
        state.deleted_events = data.get("deleted_events_since_cleanup", 0)
        if "last_cleanup" in data:
            state.cleanup_day = date.fromisoformat(data["last_cleanup"])
        return state

    def seconds_to_next_cleanup(self) -> int:
        now = self.clock()
        midnight = datetime.combine(now.date() + timedelta(days=1), time.min, tzinfo=timezone.utc)
        return max(1, math.ceil((midnight - now).total_seconds()))

    def run_due_cleanup(self) -> None:
        """The daily clean-up: once a UTC day has passed, the deleted events are gone for good."""
        today = self.clock().date()
        if today > self.cleanup_day:
            self.cleanup_day = today
            self.deleted_events = 0

    def conflict(self, profile: dict[str, Any], *, ignore: tuple[str, str] | None) -> str | None:
        """Why ``profile`` duplicates another profile of its scope (409), or None."""
        devices = set(profile["DeviceIds"])
        email = _email(profile)
        for key, other in self.profiles.items():
            if key == ignore or key[0] != profile["Scope"]:
                continue
            if devices & set(other.get("DeviceIds") or []):
                return "a profile with one of these DeviceIds already exists"
            if email is not None and email == _email(other):
                return "a profile with this Info.Email already exists"
        return None


def _email(profile: dict[str, Any]) -> str | None:
    info = profile.get("Info") or {}
    email = info.get("Email") if isinstance(info, dict) else None
    return email.lower() if isinstance(email, str) else None


def _problems(body: dict[str, Any], scopes: set[str]) -> list[str]:
    problems = [f"unknown property '{key}'" for key in sorted(set(body) - _KNOWN)]
    devices = body.get("DeviceIds")
    if devices is not None and not (
        isinstance(devices, list) and all(isinstance(d, str) and d for d in devices)
    ):
        problems.append("DeviceIds must be a list of non-empty strings")
    for key in ("Name", "ProfileManager", "Scope"):
        if body.get(key) is not None and not isinstance(body[key], str):
            problems.append(f"{key} must be a string or null")
    for key in ("Info", "Payload"):
        if body.get(key) is not None and not isinstance(body[key], dict):
            problems.append(f"{key} must be an object or null")
    info = body.get("Info")
    if isinstance(info, dict) and info.get("Email") is not None and not isinstance(info["Email"], str):
        problems.append("Info.Email must be a string")
    contact = body.get("ContactInformation")
    if contact is not None and not (isinstance(contact, list) and all(isinstance(c, str) for c in contact)):
        problems.append("ContactInformation must be a list of strings")
    visits = body.get("Visits")
    if visits is not None and (not isinstance(visits, int) or isinstance(visits, bool) or visits < 0):
        problems.append("Visits must be an integer >= 0")
    seen: dict[str, datetime] = {}
    for key in ("FirstSeen", "LastSeen"):
        if body.get(key) is not None:
            moment = parse_iso_datetime(body[key])
            if moment is None:
                problems.append(f"{key} must be an ISO 8601 date-time")
            else:
                seen[key] = moment
    if "FirstSeen" in seen and "LastSeen" in seen and seen["FirstSeen"] > seen["LastSeen"]:
        problems.append("FirstSeen must not be later than LastSeen")
    scope = body.get("Scope") or DEFAULT_SCOPE
    if isinstance(scope, str) and scope not in scopes:
        problems.append(f"scope '{scope}' does not exist")
    return problems


def _auth(settings: EmulatorSettings) -> Callable[..., None]:
    def check_key(authorization: str | None = Header(default=None)) -> None:
        scheme, _, key = (authorization or "").partition(" ")
        if scheme != "epi-single" or not same_secret(key.strip(), settings.profile_store_key):
            raise ApiError(401, "missing or invalid Authorization: epi-single <key>")

    return check_key


def create_router(state: ProfileStoreState, settings: EmulatorSettings, received: Received) -> APIRouter:
    """The Profile Store routes; mount under ``/profile-store``."""
    router = APIRouter(prefix="/api/v1.0/profiles", dependencies=[Depends(_auth(settings))])

    async def profile_from(request: Request, profile_id: str) -> dict[str, Any]:
        body = await read_json(request, max_bytes=MAX_BODY_BYTES)
        if not isinstance(body, dict):
            raise ApiError(400, "a profile must be a JSON object")
        with state.lock:
            problems = _problems(body, state.scopes)
        if problems:
            raise ApiError(400, "; ".join(problems))
        profile: dict[str, Any] = {
            "ProfileId": profile_id,
            "DeviceIds": [],
            "Name": None,
            "ProfileManager": None,
            "FirstSeen": None,
            "LastSeen": None,
            "Visits": 0,
            "Info": {},
            "ContactInformation": [],
            "Payload": {},
        }
        profile.update(
            {k: v for k, v in body.items() if k not in ("ProfileId", "UpdateTime") and v is not None}
        )
        profile["Scope"] = body.get("Scope") or DEFAULT_SCOPE
        profile["UpdateTime"] = iso_utc(utc_now())
        return profile

    def created(request: Request, profile: dict[str, Any]) -> JSONResponse:
        location = request.url_for("ps_get_profile", scope=profile["Scope"], profileid=profile["ProfileId"])
        return JSONResponse(profile, status_code=201, headers={"Location": str(location)})

    def record_write(profile: dict[str, Any]) -> None:
        received.add_items(
            "ps_profiles",
            [item_fingerprint({k: v for k, v in profile.items() if k not in ("ProfileId", "UpdateTime")})],
        )

    @router.post("/", status_code=201)
    @router.post("", status_code=201, include_in_schema=False)
    async def create_profile(request: Request) -> JSONResponse:
        profile = await profile_from(request, str(uuid.uuid4()))
        with state.lock:
            if reason := state.conflict(profile, ignore=None):
                raise ApiError(409, reason)
            state.profiles[(profile["Scope"], profile["ProfileId"])] = profile
        record_write(profile)
        return created(request, profile)

    @router.put("/{profile_id}")
    async def put_profile(profile_id: str, request: Request) -> JSONResponse:
        profile = await profile_from(request, profile_id)
        key = (profile["Scope"], profile_id)
        with state.lock:
            if reason := state.conflict(profile, ignore=key):
                raise ApiError(409, reason)
            existed = key in state.profiles
            state.profiles[key] = profile
        record_write(profile)
        return JSONResponse(profile) if existed else created(request, profile)

    @router.get("/{scope}/{profileid}", name="ps_get_profile")
    def get_profile(scope: str, profileid: str) -> dict[str, Any]:
        with state.lock:
            profile = state.profiles.get((scope, profileid))
            if profile is None:
                raise ApiError(404, "no profile with this id in this scope")
            return dict(profile)

    @router.delete("/{scope}/{profileid}")
    def delete_profile(scope: str, profileid: str) -> dict[str, Any]:
        with state.lock:
            profile = state.profiles.get((scope, profileid))
            if profile is None:
                raise ApiError(404, "no profile with this id in this scope")
            state.run_due_cleanup()
            events = int(profile.get("Visits") or 0)
            if state.deleted_events + events > settings.profile_store_delete_event_budget:
                wait = state.seconds_to_next_cleanup()
                raise ApiError(
                    429,
                    f"deleting {events} more events would exceed the budget until the next daily clean-up",
                    headers={"Retry-After": str(wait)},
                )
            state.deleted_events += events
            del state.profiles[(scope, profileid)]
        received.add_items("ps_deletes", [f"{scope}/{profileid}"])
        return profile

    @router.get("")
    @router.get("/", include_in_schema=False)
    def query_profiles(request: Request) -> dict[str, Any]:
        params = request.query_params
        try:
            top = int(params.get("$top", DEFAULT_TOP))
            skip = int(params.get("$skip", 0))
        except ValueError as exc:
            raise ApiError(400, "$top and $skip must be integers") from exc
        if top < 1 or skip < 0:
            raise ApiError(400, "$top must be 1 or more and $skip 0 or more")
        if skip + top >= RESULT_WINDOW:
            raise ApiError(400, f"$skip + $top must be less than {RESULT_WINDOW}")
        try:
            keep = query.parse_filter(params["$filter"]) if params.get("$filter") else None
            with state.lock:
                matches = [dict(p) for p in state.profiles.values() if keep is None or keep(p)]
            if params.get("$orderBy"):
                matches = query.sort_items(matches, params["$orderBy"])
        except ValueError as exc:
            raise ApiError(400, str(exc)) from exc
        page = matches[skip : skip + top]
        return {"total": len(matches), "count": len(page), "items": page}

    return router
