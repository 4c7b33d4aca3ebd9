"""The emulator's ASGI app: the four APIs under their prefixes, the admin routes, and what runs beside them.

``create_app(settings)`` is all a server needs (``uvicorn.run(create_app(EmulatorSettings()))``); the CLI
and the pytest plugin add moto's S3 server and a uvicorn thread around it (``server.py``).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from airflow_provider_optimizely.emulator import (
    admin,
    dcp,
    dcp_auth,
    dcp_profiles,
    odp,
    optimove,
    profile_store,
)
from airflow_provider_optimizely.emulator.common import (
    API_NAMES,
    API_PREFIXES,
    ApiError,
    EmulatorSettings,
    Received,
    api_error_response,
    error_response,
)
from airflow_provider_optimizely.emulator.faults import FaultBoard
from airflow_provider_optimizely.emulator.persistence import StateSaver, load_state_file
from airflow_provider_optimizely.emulator.ratelimit import RateLimiter
from airflow_provider_optimizely.emulator.s3_import import S3Importer
from airflow_provider_optimizely.emulator.state import EmulatorState
from airflow_provider_optimizely.emulator.traffic import TrafficMiddleware

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    """Everything the admin routes act on, kept on ``app.state.emulator``."""

    settings: EmulatorSettings
    state: EmulatorState
    faults: FaultBoard
    limiter: RateLimiter
    received: dict[str, Received] = field(default_factory=lambda: {api: Received() for api in API_NAMES})
    importer: S3Importer | None = None
    saver: StateSaver | None = None
    # The run-time settings (``admin.CONFIG_KEYS``) as they were at start, for a reset to restore.
    initial_config: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.initial_config = {key: getattr(self.settings, key) for key in admin.CONFIG_KEYS}

    def reset(self) -> None:
        """Empty every API, forget what was received, restore the faults, limits and settings of start."""
        if self.importer is not None:
            self.importer.clear()
        self.state.reset()
        for received in self.received.values():
            received.reset()
        self.faults.restore()
        self.configure(self.initial_config)
        self.limiter.restore()

    def configure(self, changes: dict[str, Any]) -> None:
        """Change run-time settings; a new time scale starts every rate-limit window afresh."""
        for key, value in changes.items():
            setattr(self.settings, key, value)
        if "time_scale" in changes:
            self.limiter.forget_windows()

    def reorder_same_name_uploads(self) -> bool:
        mode = self.settings.reorder_same_name_uploads
        return mode == "always" or (mode == "fault_mode" and self.faults.active_for("dcp"))


class EmulatorApp(FastAPI):
    """A FastAPI app whose traffic layer sits outside Starlette's own middleware (see ``traffic.py``)."""

    emulator: Runtime
    #: Each emulated API's router by its URL prefix, for the traffic layer's route templates.
    api_routers: dict[str, APIRouter]

    def build_middleware_stack(self) -> Any:
        inner = super().build_middleware_stack()
        runtime = self.emulator
        return TrafficMiddleware(
            inner,
            routes=lambda prefix: self.api_routers[prefix].routes,
            faults=runtime.faults,
            limiter=runtime.limiter,
            received=runtime.received,
            time_scale=lambda: runtime.settings.time_scale,
        )


def initial_state(settings: EmulatorSettings) -> EmulatorState:
    """The state to start from: the state file's, when there is one."""
    saved = load_state_file(settings.state_file) if settings.state_file else None
    return EmulatorState.from_dict(saved) if saved else EmulatorState()


def create_app(settings: EmulatorSettings, state: EmulatorState | None = None) -> FastAPI:
    if state is None:
        state = initial_state(settings)
    runtime = Runtime(
        settings=settings,
        state=state,
        faults=FaultBoard(settings.faults),
        limiter=RateLimiter(settings.rate_limits, time_scale=lambda: settings.time_scale),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.s3_endpoint_url:
            runtime.importer = S3Importer(
                runtime.state.dcp,
                settings,
                runtime.received["dcp"],
                runtime.reorder_same_name_uploads,
                lambda: runtime.faults.row_refusal("dcp"),
            )
            runtime.importer.start()
        if settings.state_file:
            runtime.saver = StateSaver(
                settings.state_file, runtime.state.to_dict, settings.state_save_interval
            )
            runtime.saver.start()
        try:
            yield
        finally:
            if runtime.importer is not None:
                runtime.importer.stop()
            if runtime.saver is not None:
                runtime.saver.stop()

    app = EmulatorApp(
        title="optimizely-emulator",
        description="Local emulator of Optimizely DCP, ODP, Profile Store and Optimove Data Connections",
        lifespan=lifespan,
        docs_url="/_emulator/docs",
        redoc_url=None,
        openapi_url="/_emulator/openapi.json",
    )
    app.emulator = runtime
    app.state.emulator = runtime

    received = runtime.received
    app.api_routers = {
        "/dcp/experiment/v1": dcp.create_router(state.dcp, settings, received["dcp"]),
        "/dcp/profile-api": dcp_profiles.create_router(state.dcp, settings, received["dcp"]),
        "/dcp/oauth2": dcp_auth.create_router(state.dcp, settings),
        "/odp/v3": odp.create_router(state.odp, settings, received["odp"]),
        "/profile-store": profile_store.create_router(
            state.profile_store, settings, received["profile_store"]
        ),
        "/optimove/api/data-connections/v1": optimove.create_router(
            state.optimove, settings, received["optimove"]
        ),
    }
    # The traffic layer finds an API's router by the prefixes API_PREFIXES names: they must be the same.
    assert set(app.api_routers) == {p for prefixes in API_PREFIXES.values() for p in prefixes}
    for prefix, router in app.api_routers.items():
        app.include_router(router, prefix=prefix)
    admin_router = admin.create_router(runtime)
    app.include_router(admin_router, prefix="/_emulator")
    install_error_handlers(app, {**app.api_routers, "/_emulator": admin_router})
    return app


def allowed_methods(routers: dict[str, APIRouter], path: str) -> list[str]:
    """Every method some route of ``path`` answers, for the ``Allow`` header of a 405 (RFC 9110 §15.5.6)."""
    methods: set[str] = set()
    for prefix, router in routers.items():
        if path != prefix and not path.startswith(prefix + "/"):
            continue
        relative = path[len(prefix) :] or "/"
        for route in router.routes:
            regex = getattr(route, "path_regex", None)
            if regex is not None and regex.match(relative):
                methods |= set(getattr(route, "methods", None) or ())
    return sorted(methods)


def install_error_handlers(app: FastAPI, routers: dict[str, APIRouter]) -> None:
    """Every error answers in the v2 body of docs/api-contract.md §3, FastAPI's own ones included; a 405
    names in
    ``Allow`` every method the path takes (Starlette's names only those of the first route it matched)."""

    @app.exception_handler(ApiError)
    async def on_api_error(request: Request, exc: ApiError) -> JSONResponse:
        return api_error_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        messages = {
            404: f"no route {request.url.path}",
            405: f"{request.method} is not allowed on {request.url.path}",
        }
        message = messages.get(exc.status_code, str(exc.detail))
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(allowed_methods(routers, request.url.path))
        return error_response(exc.status_code, message, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def on_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error.get('loc', ()))}: {error.get('msg', '')}"
            for error in exc.errors()
        )
        return error_response(400, f"invalid request: {problems}")

    @app.exception_handler(Exception)
    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("emulator bug on %s %s", request.method, request.url.path)
        return error_response(500, f"emulator error: {type(exc).__name__}")
