"""A slow answer (``delay_seconds``) reads the whole request before it waits: a request that fully arrived
is processed even if its client is gone by then, one cut short is not (docs/emulator-fidelity.md §3)."""

from __future__ import annotations

import json
import socket
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from airflow_provider_optimizely.emulator.handle import EmulatorHandle
from tests.emulator.helpers import PUBLIC, Api
from tests.waiting import wait_until

ROUTE = "POST /events"


@pytest.fixture
def odp(emulator: EmulatorHandle) -> Api:
    return Api(emulator, "odp")


def events(first: int, count: int) -> bytes:
    return json.dumps(
        [
            {"type": "order", "action": "buy", "identifiers": {"email": f"u{i}@example.com"}}
            for i in range(first, first + count)
        ]
    ).encode()


def post_and_leave(url: str, body: bytes, *, bytes_sent: int | None = None) -> None:
    """POST ``body`` (or its first ``bytes_sent`` bytes) to ``url``/events, then close the connection
    without waiting for an answer, as a client killed at that point does."""
    parts = urlsplit(url)
    head = (
        f"POST {parts.path}/events HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nx-api-key: {PUBLIC['x-api-key']}\r\n\r\n"
    )
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as connection:
        connection.sendall(head.encode() + body[:bytes_sent])


def received_events(odp: Api) -> dict[str, Any]:
    return odp.items("odp_events")


def test_a_request_that_fully_arrived_is_processed_though_its_client_left_during_the_wait(odp: Api):
    odp.handle.set_faults("odp", route=ROUTE, delay_seconds=0.3)
    post_and_leave(odp.url, events(0, 3))
    wait_until(lambda: received_events(odp)["total"] == 3, timeout=10, what="the three events applied")
    assert odp.handle.received("odp")["faults"] == {f"{ROUTE} -> delay": 1}


def test_a_request_cut_short_is_not_processed(odp: Api):
    odp.handle.set_faults("odp", route=ROUTE, delay_seconds=0.3)
    cut = events(0, 3)
    post_and_leave(odp.url, cut, bytes_sent=len(cut) // 2)
    # A whole request after it: once that one is applied, the one cut short has long been given up.
    post_and_leave(odp.url, events(100, 2))
    wait_until(lambda: received_events(odp)["total"] >= 2, timeout=10, what="the whole request applied")
    assert received_events(odp)["total"] == 2


def test_a_dropped_slow_answer_still_drops_and_applies_nothing(odp: Api):
    odp.handle.set_faults("odp", route=ROUTE, delay_seconds=0.1, drop_rate=1.0)
    with pytest.raises(requests.ConnectionError):
        requests.post(f"{odp.url}/events", data=events(0, 2), headers=PUBLIC, timeout=10)
    assert received_events(odp)["total"] == 0
    assert odp.handle.received("odp")["faults"] == {f"{ROUTE} -> delay": 1, f"{ROUTE} -> drop": 1}
