"""Hooks against the scripted loopback server, with connections given as AIRFLOW_CONN_* JSON."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest

from tests.http_test_server import ScriptedServer


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as running:
        yield running


@pytest.fixture
def set_connection(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    def set_it(
        conn_id: str, conn_type: str, host: str | None, password: str | None = None, **extra: object
    ) -> None:
        body: dict = {"conn_type": conn_type, "host": host, "password": password, "extra": extra}
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(body))

    return set_it
