"""The api-server middleware that drops the UI's ``port: 0`` from a connection test of our types only."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from airflow_provider_optimizely import ui_test_connection
from airflow_provider_optimizely.ui_test_connection import PortlessConnectionTestMiddleware, without_port_0


@pytest.mark.parametrize(
    ("body", "changed"),
    [
        ({"conn_type": "optimizely", "port": 0, "host": "h"}, True),
        ({"conn_type": "optimove", "port": 0}, True),
        ({"conn_type": "optimizely", "port": 443}, False),  # a port someone typed is left alone
        ({"conn_type": "optimizely"}, False),
        ({"conn_type": "generic", "port": 0}, False),  # not ours
    ],
)
def test_only_our_types_lose_port_0(body: dict, changed: bool) -> None:
    raw = json.dumps(body).encode()
    result = without_port_0(raw)
    assert (result is not raw) == changed
    expected = {k: v for k, v in body.items() if not (changed and k == "port")}
    assert json.loads(result) == expected


def test_a_body_that_is_not_json_passes_untouched() -> None:
    raw = b"not json"
    assert without_port_0(raw) is raw


@pytest.fixture(autouse=True)
def _as_on_airflow_3_3_2(monkeypatch: pytest.MonkeyPatch) -> None:
    # Whatever this Airflow does (the api-server's route module is slow to import in a unit test).
    monkeypatch.setattr(ui_test_connection, "_airflow_treats_port_0_as_no_port", lambda: False)


def _run(path: str, chunks: list[bytes]) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        message = await receive()
        seen["body"] = message["body"]
        seen["headers"] = dict(scope["headers"])

    middleware = PortlessConnectionTestMiddleware(app)
    assert middleware.needed
    messages = [
        {"type": "http.request", "body": chunk, "more_body": index < len(chunks) - 1}
        for index, chunk in enumerate(chunks)
    ]

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    async def send(message: Any) -> None:
        pass

    total = str(sum(len(chunk) for chunk in chunks)).encode()
    scope = {"type": "http", "method": "POST", "path": path, "headers": [(b"content-length", total)]}
    asyncio.run(middleware(scope, receive, send))
    return seen


def test_the_middleware_rewrites_a_chunked_test_request() -> None:
    body = json.dumps({"conn_type": "optimizely_odp", "connection_id": "c", "port": 0}).encode()
    seen = _run("/api/v2/connections/test", [body[:10], body[10:]])
    assert json.loads(seen["body"]) == {"conn_type": "optimizely_odp", "connection_id": "c"}
    assert seen["headers"][b"content-length"] == str(len(seen["body"])).encode()


def test_other_routes_pass_untouched() -> None:
    body = json.dumps({"conn_type": "optimizely", "port": 0}).encode()
    assert _run("/api/v2/connections", [body])["body"] == body
