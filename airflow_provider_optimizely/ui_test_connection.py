"""Makes the UI's Test button work for this provider's connection types on Airflow 3.3.2 and older 3.3s.

The cause, in Airflow: the connection list's Test button posts ``port: Number(connection.port)``, and
``Number(null)`` is ``0``. ``POST /api/v2/connections/test`` then compares that 0 with the stored port
(NULL: our connection types hide the port) and, as the masked password ``***`` does not count as
credentials of the caller's own, answers ``400 The host or port to test differs from the stored
connection``. Airflow fixed the comparison after 3.3.2 (apache/airflow#73298: port 0 means no port).

Until then this root middleware, registered by the provider's Airflow plugin, drops ``port: 0`` from a
test request for one of our four connection types (whose hooks never read a port), so the stored
connection is tested as it is. It changes no other request, and does nothing on an Airflow whose API
already treats port 0 as no port.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from airflow.plugins_manager import AirflowPlugin

CONNECTION_TYPES = frozenset({"optimizely", "optimizely_odp", "optimizely_profile_store", "optimove"})
_TEST_PATH = "/api/v2/connections/test"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


class PortlessConnectionTestMiddleware:
    """ASGI middleware: ``port: 0`` dropped from a connection test of one of our connection types."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.needed = not _airflow_treats_port_0_as_no_port()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not (
            self.needed
            and scope.get("type") == "http"
            and scope.get("method") == "POST"
            and str(scope.get("path", "")).endswith(_TEST_PATH)
        ):
            await self.app(scope, receive, send)
            return
        body, last = await _read_body(receive)
        rewritten = without_port_0(body)
        if rewritten is body:
            await self.app(scope, _replay(body, last, receive), send)
            return
        headers = [(k, v) for k, v in scope.get("headers", []) if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(rewritten)).encode()))
        await self.app({**scope, "headers": headers}, _replay(rewritten, last, receive), send)


def without_port_0(body: bytes) -> bytes:
    """``body`` without ``"port": 0`` when it tests one of our connection types; else ``body`` itself."""
    try:
        test = json.loads(body)
    except ValueError:
        return body
    if not (isinstance(test, dict) and test.get("conn_type") in CONNECTION_TYPES and test.get("port") == 0):
        return body
    del test["port"]
    return json.dumps(test).encode()


async def _read_body(receive: Receive) -> tuple[bytes, Message]:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if message.get("type") != "http.request" or not message.get("more_body", False):
            return b"".join(chunks), message


def _replay(body: bytes, last: Message, receive: Receive) -> Receive:
    """A ``receive`` that hands the (rewritten) body over once, then passes through."""
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if replayed:
            return await receive()
        replayed = True
        if last.get("type") != "http.request":
            return last  # the client went away while we read: let the app see that
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


def _airflow_treats_port_0_as_no_port() -> bool:
    try:
        from airflow.api_fastapi.core_api.routes.public.connections import _same_endpoint
    except ImportError:
        return True  # not the code this works around: leave every request alone
    return bool(_same_endpoint(0, None))


class OptimizelyProviderPlugin(AirflowPlugin):
    """The provider's Airflow plugin: only the middleware above (see this module's docstring)."""

    name = "optimizely_provider"
    fastapi_root_middlewares = [
        {
            "middleware": PortlessConnectionTestMiddleware,
            "args": [],
            "kwargs": {},
            "name": "Optimizely connection test: drop the UI's port 0 (until apache/airflow#73298)",
        }
    ]
