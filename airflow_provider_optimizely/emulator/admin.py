"""Admin routes under ``/_emulator``: so that one emulator process serves many tests.

- ``GET health``: ``{"status": "ok", ...}`` once the app is serving.
- ``POST reset``: empties all four APIs (and the S3 bucket), forgets what was received, and restores the
  faults and rate limits given at start.
- ``GET faults`` / ``PUT faults`` / ``DELETE faults``: the fault specs (``faults.py``). PUT one spec sets
  it for its (api, route); PUT a list replaces them all.
- ``GET rate_limits`` / ``PUT rate_limits``: ``{"dcp": "100/60", "odp:POST /profiles": {"limit": 10,
  "window_seconds": 1}, "optimove": null}`` (null removes a limit).
- ``GET rate_windows``: requests served in each window of every enforced limit (a test checks each).
- ``GET received?api=dcp``: per-route request counts, items with duplicates, faults served (every API
  without ``api``).
- ``GET state/{api}``: what the API stores, as the state file keeps it.
- ``GET config`` / ``PUT config``: the run-time settings (``CONFIG_KEYS``): ``time_scale``,
  ``upload_processing_delay``, ``oauth_access_token_seconds`` and the readings of ambiguous rules
  (``binary_units``, ``empty_cells``, ``value_syntax``, ``profile_store_duplicates``,
  ``reorder_same_name_uploads``, ``oauth_rotate_refresh_tokens``, ``profile_store_server_fields``); a
  reset restores those of start.
- ``POST oauth/clients``: registers an OAuth client (body ``{"client_id": ...}`` optional) and answers its
  ``client_id``, ``client_secret``, a ``refresh_token`` and a first ``access_token`` with ``expires_in``.
- ``POST oauth/expire``: every access token issued so far expires now.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from airflow_provider_optimizely.emulator._request_body import read_json
from airflow_provider_optimizely.emulator.common import (
    API_NAMES,
    ApiError,
    DuplicateScope,
    EmptyCells,
    RateLimit,
    SameNameOrder,
    ServerSetFields,
    ValueSyntax,
)
from airflow_provider_optimizely.emulator.dcp_auth import register_client
from airflow_provider_optimizely.emulator.faults import FaultSpec

if TYPE_CHECKING:
    from airflow_provider_optimizely.emulator.app import Runtime


class ConfigChange(BaseModel):
    """The settings ``PUT config`` may change while the emulator runs."""

    model_config = ConfigDict(extra="forbid")

    time_scale: float | None = Field(default=None, gt=0, le=1000)
    upload_processing_delay: float | None = Field(default=None, ge=0)
    oauth_access_token_seconds: float | None = Field(default=None, gt=0)
    binary_units: bool | None = None
    empty_cells: EmptyCells | None = None
    value_syntax: ValueSyntax | None = None
    profile_store_duplicates: DuplicateScope | None = None
    reorder_same_name_uploads: SameNameOrder | None = None
    oauth_rotate_refresh_tokens: bool | None = None
    profile_store_server_fields: ServerSetFields | None = None


CONFIG_KEYS: tuple[str, ...] = tuple(ConfigChange.model_fields)


def _known_api(api: str) -> str:
    if api not in API_NAMES:
        raise ApiError(404, f"no API {api!r}: one of {', '.join(API_NAMES)}")
    return api


def _fault_spec(raw: Any) -> FaultSpec:
    try:
        return FaultSpec.model_validate(raw)
    except ValidationError as exc:
        raise ApiError(400, f"invalid fault spec: {exc.errors(include_url=False)}") from exc


def _rate_limit(target: str, raw: Any) -> RateLimit | None:
    try:
        if raw is None:
            return None
        if isinstance(raw, str):
            return RateLimit.parse(raw)
        if isinstance(raw, dict):
            return RateLimit(int(raw["limit"]), float(raw["window_seconds"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise ApiError(400, f"invalid rate limit for {target}: {exc}") from exc
    raise ApiError(400, f"a rate limit is '100/60', {{limit, window_seconds}} or null, not {raw!r}")


def create_router(runtime: Runtime) -> APIRouter:
    router = APIRouter()

    @router.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "apis": list(API_NAMES), "s3_endpoint_url": runtime.settings.s3_endpoint_url}

    @router.post("/reset")
    def reset() -> dict[str, str]:
        runtime.reset()
        return {"status": "reset"}

    @router.get("/faults")
    def get_faults() -> list[dict[str, Any]]:
        return runtime.faults.specs()

    @router.put("/faults")
    async def put_faults(request: Request) -> list[dict[str, Any]]:
        body = await read_json(request)
        if isinstance(body, list):
            runtime.faults.replace_all([_fault_spec(item) for item in body])
        else:
            runtime.faults.put(_fault_spec(body))
        return runtime.faults.specs()

    @router.delete("/faults")
    def clear_faults() -> list[dict[str, Any]]:
        runtime.faults.clear()
        return []

    @router.get("/rate_limits")
    def get_rate_limits() -> dict[str, Any]:
        return runtime.limiter.limits()

    @router.put("/rate_limits")
    async def put_rate_limits(request: Request) -> dict[str, Any]:
        body = await read_json(request)
        if not isinstance(body, dict):
            raise ApiError(400, 'the body maps "api" or "api:METHOD /route" to a limit')
        changes = {target: _rate_limit(target, raw) for target, raw in body.items()}
        for target, limit in changes.items():
            try:
                runtime.limiter.set(target, limit)
            except ValueError as exc:
                raise ApiError(400, str(exc)) from exc
        return runtime.limiter.limits()

    @router.get("/rate_windows")
    def rate_windows() -> dict[str, Any]:
        return runtime.limiter.served()

    @router.get("/received")
    def received(api: str | None = None) -> dict[str, Any]:
        if api is not None:
            return runtime.received[_known_api(api)].summary()
        return {name: r.summary() for name, r in runtime.received.items()}

    @router.get("/state/{api}")
    def state(api: str) -> dict[str, Any]:
        result: dict[str, Any] = runtime.state.of(_known_api(api)).to_dict()
        return result

    @router.get("/config")
    def get_config() -> dict[str, Any]:
        return {key: getattr(runtime.settings, key) for key in CONFIG_KEYS}

    @router.put("/config")
    async def put_config(request: Request) -> dict[str, Any]:
        try:
            change = ConfigChange.model_validate(await read_json(request), strict=False)
        except ValidationError as exc:
            raise ApiError(400, f"invalid config: {exc.errors(include_url=False)}") from exc
        runtime.configure(change.model_dump(exclude_none=True))
        return get_config()

    @router.post("/oauth/clients", status_code=201)
    async def oauth_client(request: Request) -> dict[str, Any]:
        body = await read_json(request) if await request.body() else {}
        if not isinstance(body, dict) or set(body) - {"client_id"}:
            raise ApiError(400, 'the body is empty or {"client_id": "..."}')
        return register_client(runtime.state.dcp, runtime.settings, body.get("client_id"))

    @router.post("/oauth/expire")
    def expire_access_tokens() -> dict[str, int]:
        return {"expired": runtime.state.dcp.expire_access_tokens(time.time())}

    return router
