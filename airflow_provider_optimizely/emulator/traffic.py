"""The ASGI middleware in front of every emulated API: faults, then the rate limit, then counting.

Every answer under an API's prefix leaves with the ``X-RateLimit-*`` headers (docs/api-contract.md §3), the
route's own
errors, injected faults and 404/405 included.

It is plain ASGI (not Starlette's ``BaseHTTPMiddleware``) and must be the outermost layer, because a
dropped connection needs the server's own ``send``: under uvicorn that is a method of the request cycle,
whose transport we abort so the client sees the connection close with no answer at all, as it would when a
load balancer drops it. Under another server the fallback is an answer cut off after its headers.

A slow answer (``delay_seconds``) reads the whole request before it waits: a request that fully arrived is
processed even if its client is gone by the time it is answered, as on a real server.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.routing import Match

from airflow_provider_optimizely.emulator.common import (
    API_PREFIXES,
    DCP_MIN_RETRY_AFTER,
    Received,
    seconds_text,
)
from airflow_provider_optimizely.emulator.faults import FaultBoard, Outcome
from airflow_provider_optimizely.emulator.ratelimit import RateLimiter

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_CONVERTER = re.compile(r"\{(\w+):\w+\}")

# Longest prefix first, so that a prefix never shadows a longer one.
_PREFIXES = sorted(((p, api) for api, ps in API_PREFIXES.items() for p in ps), key=lambda pa: -len(pa[0]))


def api_of(path: str) -> tuple[str, str] | None:
    """(api, prefix) for a request path under one of the emulated APIs."""
    for prefix, api in _PREFIXES:
        if path == prefix or path.startswith(prefix + "/"):
            return api, prefix
    return None


class TrafficMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        routes: Callable[[str], list[Any]],
        faults: FaultBoard,
        limiter: RateLimiter,
        received: dict[str, Received],
        time_scale: Callable[[], float],
    ) -> None:
        self.app = app
        self.time_scale = time_scale
        self.routes = routes
        self.faults = faults
        self.limiter = limiter
        self.received = received

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = api_of(scope["path"]) if scope["type"] == "http" else None
        if found is None:
            await self.app(scope, receive, send)
            return
        api, prefix = found
        method = scope["method"]
        concrete = f"{method} {scope['path'][len(prefix) :] or '/'}"
        route = self.route_template(scope, prefix) or concrete
        received = self.received[api]

        outcome = self.faults.decide(api, route, concrete)
        if outcome.delay:
            received.count_fault(route, "delay")
            whole = await read_whole_request(receive)
            if whole is None:
                return  # the client left before its request was all sent: nothing arrived to process
            receive = whole
            await asyncio.sleep(outcome.delay)
        if outcome.drop:
            received.count_fault(route, "drop")
            await drop_connection(send)
            return
        if outcome.status is not None:
            received.count_fault(route, str(outcome.status))
            headers = self.limiter.take(api, route, spend=False).headers
            headers.update(self._retry_headers(api, outcome))
            await send_error(send, outcome.status, "injected fault", headers)
            return

        verdict = self.limiter.take(api, route)
        if not verdict.allowed:
            received.count_fault(route, "rate_limited")
            await send_error(send, 429, "rate limit exceeded: see Retry-After", verdict.headers)
            return
        received.count_request(route)
        extra = [(k.lower().encode(), v.encode()) for k, v in verdict.headers.items()]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = dict(message)
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _retry_headers(self, api: str, outcome: Outcome) -> dict[str, str]:
        """``Retry-After`` of an injected 429/503, scaled; DCP's is never under 60 s (docs/api-contract.md
        §3)."""
        if outcome.status not in (429, 503):
            return {}
        wait = float(outcome.retry_after)
        if api == "dcp":
            wait = max(wait, DCP_MIN_RETRY_AFTER)
        scale = self.time_scale()
        return {"Retry-After": seconds_text(wait * scale, scale)}

    def route_template(self, scope: Scope, prefix: str) -> str | None:
        """``"METHOD /template"`` of the route that serves this request, relative to the API prefix.

        Matched against the API's own router (paths relative to its prefix), not the app's route list:
        newer FastAPI keeps included routers as opaque wrappers there, without a ``path``.
        """
        partial = None
        relative = {**scope, "path": scope["path"][len(prefix) :] or "/", "root_path": ""}
        for route in self.routes(prefix):
            match, _ = route.matches(relative)
            if match == Match.NONE:
                continue
            # "{customer_id:path}" is counted as "{customer_id}": the converter is ours, not the API's.
            path = _CONVERTER.sub(r"{\1}", route.path)
            template = f"{scope['method']} {path}"
            if match == Match.FULL:
                return template
            partial = partial or template
        return partial


async def read_whole_request(receive: Receive) -> Receive | None:
    """Read the request's whole body now, and return a ``receive`` that hands it to the app; None when
    the client disconnects first. A server that has received a whole request processes it even if the
    client is gone by the time it answers (uvicorn's own ``receive`` reports a disconnect instead, body
    or not), so a slow answer reads the body before it waits."""
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        body += message.get("body", b"")
        if not message.get("more_body", False):
            break
    whole: Message | None = {"type": "http.request", "body": bytes(body), "more_body": False}

    async def replay() -> Message:
        nonlocal whole
        if whole is None:
            return await receive()  # past the body: the client's disconnect, as the server reports it
        message, whole = whole, None
        return message

    return replay


async def send_error(send: Send, status: int, message: str, headers: dict[str, str]) -> None:
    """The v2 error body (docs/api-contract.md §3), written straight to ASGI because this runs before any
    route."""
    codes = {429: "TOO_MANY_REQUESTS", 500: "INTERNAL_SERVER_ERROR", 502: "BAD_GATEWAY"}
    codes |= {503: "SERVICE_UNAVAILABLE", 504: "GATEWAY_TIMEOUT"}
    body = json.dumps(
        {"message": message, "code": codes.get(status, "ERROR"), "uuid": str(uuid.uuid4())}
    ).encode()
    raw_headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *((k.lower().encode(), v.encode()) for k, v in headers.items()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})


async def drop_connection(send: Send) -> None:
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is not None and hasattr(transport, "abort"):
        # Mark the cycle disconnected first, or uvicorn would answer 500 for an app that sent nothing.
        cycle.disconnected = True  # type: ignore[union-attr]
        transport.abort()
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"1000")]})
    raise ConnectionAbortedError("injected dropped connection")
