"""The emulated Optimove Data Connections (docs/api-contract.md §7), driven over loopback HTTP with plain
``requests``."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from airflow_provider_optimizely.emulator.handle import EmulatorHandle
from airflow_provider_optimizely.emulator.optimove import OptimoveState
from airflow_provider_optimizely.emulator.state import EmulatorState
from tests.emulator.helpers import SETTINGS, Api, in_process_emulator

KEYS = {"x-api-key": SETTINGS.optimove_api_key, "x-brand-key": SETTINGS.optimove_brand_key}


class Optimove(Api):
    def records(self, connection: str) -> dict[str, dict[str, Any]]:
        return dict(self.stored()["records"][connection])

    def connection(self, primary_key: str = "user_id") -> str:
        body = {"name": "DC", "primary_key": primary_key, "description": "."}
        resp = requests.post(f"{self.url}/connections", json=body, headers=KEYS, timeout=5)
        assert resp.status_code == 200, resp.text
        return str(resp.json()["data_connection_uuid"])

    def upload(self, connection: str, **body: Any) -> requests.Response:
        return requests.post(
            f"{self.url}/connections/{connection}/upload_data", json=body, headers=KEYS, timeout=5
        )


@pytest.fixture
def opt(emulator: EmulatorHandle) -> Optimove:
    return Optimove(emulator, "optimove")


@pytest.fixture
def clocked() -> Iterator[tuple[Optimove, list[float]]]:
    """An emulator whose Optimove clock this test moves by hand: ``now[0]`` is the time it reads."""
    state, now = EmulatorState(), [1_000_000.0]
    state.optimove.clock = lambda: now[0]
    with in_process_emulator(state) as handle:
        yield Optimove(handle, "optimove"), now


# --- auth ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"x-api-key": SETTINGS.optimove_api_key},
        {"x-api-key": SETTINGS.optimove_api_key, "x-brand-key": "wrong"},
        {"x-api-key": "wrong", "x-brand-key": SETTINGS.optimove_brand_key},
    ],
)
def test_wrong_or_missing_keys_are_401_with_v2_body(opt: Optimove, headers: dict[str, str]) -> None:
    body = {"name": "DC", "primary_key": "id", "description": "."}
    resp = requests.post(f"{opt.url}/connections", json=body, headers=headers, timeout=5)
    assert resp.status_code == 401
    assert set(resp.json()) == {"message", "code", "uuid"} and resp.json()["uuid"]
    assert opt.stored()["connections"] == []


# --- connections --------------------------------------------------------------------------------------


def test_create_connection_returns_its_uuid(opt: Optimove) -> None:
    connection = opt.connection()
    assert uuid.UUID(connection)
    assert opt.stored()["connections"] == [
        {"data_connection_uuid": connection, "name": "DC", "primary_key": "user_id", "description": "."}
    ]


@pytest.mark.parametrize(
    "body",
    [
        {"primary_key": "id", "description": "."},
        {"name": "DC", "description": "."},
        {"name": "DC", "primary_key": ""},
        {"name": "DC", "primary_key": "id", "description": ".", "colour": "red"},
        ["not", "an", "object"],
    ],
)
def test_create_connection_invalid_is_400(opt: Optimove, body: Any) -> None:
    assert requests.post(f"{opt.url}/connections", json=body, headers=KEYS, timeout=5).status_code == 400


def test_unknown_connection_is_404(opt: Optimove) -> None:
    missing = str(uuid.uuid4())
    assert opt.upload(missing, data=[{"user_id": 1}]).status_code == 404
    resp = requests.put(f"{opt.url}/connections/{missing}/update_data", json=[], headers=KEYS, timeout=5)
    assert resp.status_code == 404 and resp.json()["code"] == "NOT_FOUND"


# --- upload_data --------------------------------------------------------------------------------------


def test_upload_stores_records_and_replaces_them_whole(opt: Optimove) -> None:
    dc = opt.connection()
    first = opt.upload(
        dc,
        data=[{"user_id": 1, "value": "xyz", "tier": "gold"}, {"user_id": 2, "value": "a"}],
        ttl_seconds=None,
    )
    assert first.status_code == 200
    assert opt.upload(dc, data=[{"user_id": "1", "value": "new"}]).status_code == 200
    records = opt.records(dc)
    assert records["1"] == {"user_id": "1", "value": "new"}  # "tier" is gone: complete replacement
    assert records["2"] == {"user_id": 2, "value": "a"}


def test_upload_5000_records_is_fine_and_5001_is_400(opt: Optimove) -> None:
    dc = opt.connection()
    assert opt.upload(dc, data=[{"user_id": i} for i in range(5000)]).status_code == 200
    assert len(opt.records(dc)) == 5000
    too_many = opt.upload(dc, data=[{"user_id": i} for i in range(5001)])
    assert too_many.status_code == 400 and "5000" in too_many.json()["message"]
    assert opt.items("optimove_records")["total"] == 5000


@pytest.mark.parametrize("bad", [{"value": "no key"}, {"user_id": None}, {"user_id": ""}, "not an object"])
def test_a_record_without_the_primary_key_is_400_naming_its_index_and_nothing_stored(
    opt: Optimove, bad: Any
) -> None:
    dc = opt.connection()
    resp = opt.upload(dc, data=[{"user_id": 1}, {"user_id": 2}, bad])
    assert resp.status_code == 400
    assert "record 2" in resp.json()["message"] and "user_id" in resp.json()["message"]
    assert opt.records(dc) == {}
    assert opt.items("optimove_records")["total"] == 0


@pytest.mark.parametrize(
    "body",
    [
        {"records": [{"user_id": 1}]},
        {"data": {"user_id": 1}},
        {"data": [], "ttl_seconds": 0},
        {"data": [], "ttl_seconds": "60"},
        {"data": [], "batch_completed": "no"},
        {"data": [{"user_id": 1}], "batch_completed": False},  # no batch_uuid to group it
    ],
)
def test_upload_invalid_bodies_are_400(opt: Optimove, body: dict[str, Any]) -> None:
    dc = opt.connection()
    assert opt.upload(dc, **body).status_code == 400
    assert opt.records(dc) == {}


def test_a_batch_is_staged_until_completed(opt: Optimove) -> None:
    dc = opt.connection()
    batch = str(uuid.uuid4())
    first = opt.upload(dc, data=[{"user_id": 1, "v": "a"}], batch_uuid=batch, batch_completed=False)
    assert first.status_code == 200
    opt.upload(
        dc, data=[{"user_id": 2, "v": "b"}], batch_uuid=batch, batch_completed=False
    ).raise_for_status()
    assert opt.records(dc) == {}  # staged, invisible
    assert len(opt.stored()["staged"][dc][batch]) == 2
    opt.upload(dc, data=[{"user_id": 1, "v": "c"}], batch_uuid=batch, batch_completed=True).raise_for_status()
    assert opt.records(dc) == {"1": {"user_id": 1, "v": "c"}, "2": {"user_id": 2, "v": "b"}}  # arrival order
    assert opt.stored()["staged"][dc] == {}


def test_batches_are_kept_apart_by_uuid(opt: Optimove) -> None:
    dc = opt.connection()
    opt.upload(dc, data=[{"user_id": 1}], batch_uuid="a", batch_completed=False).raise_for_status()
    opt.upload(dc, data=[{"user_id": 2}], batch_uuid="b", batch_completed=True).raise_for_status()
    assert set(opt.records(dc)) == {"2"}


def test_ttl_expires_records_on_read(clocked: tuple[Optimove, list[float]]) -> None:
    opt, now = clocked
    dc = opt.connection()
    opt.upload(dc, data=[{"user_id": 1}], ttl_seconds=60).raise_for_status()
    opt.upload(dc, data=[{"user_id": 2}], ttl_seconds=None).raise_for_status()
    assert set(opt.records(dc)) == {"1", "2"}
    assert opt.stored()["expires_at"][dc] == {"1": 1_000_060.0}
    now[0] += 61
    assert set(opt.records(dc)) == {"2"}


def test_the_same_record_twice_shows_as_a_duplicate(opt: Optimove) -> None:
    dc = opt.connection()
    for _ in range(2):
        opt.upload(dc, data=[{"user_id": 1, "v": "x"}]).raise_for_status()
    assert opt.items("optimove_records")["duplicates"] == 1


# --- update_data --------------------------------------------------------------------------------------


def test_update_data_replaces_whole_records(opt: Optimove) -> None:
    dc = opt.connection()
    opt.upload(dc, data=[{"user_id": 1, "a": 1, "b": 2}]).raise_for_status()
    body = [{"primary_key": 1, "data": {"b": 3}, "ttl": None}, {"primary_key": "7", "data": {"a": 0}}]
    resp = requests.put(f"{opt.url}/connections/{dc}/update_data", json=body, headers=KEYS, timeout=5)
    assert resp.status_code == 200
    assert opt.records(dc) == {"1": {"user_id": 1, "b": 3}, "7": {"user_id": "7", "a": 0}}


@pytest.mark.parametrize(
    "body",
    [
        {"primary_key": 1},
        [{"data": {"a": 1}}],
        [{"primary_key": 1, "data": "x"}],
        [{"primary_key": 1, "data": {"user_id": 2}}],
        [{"primary_key": 1, "data": {}, "ttl": -3}],
        [{"primary_key": 1, "data": {}, "expires": 3}],
        [{"primary_key": i, "data": {}} for i in range(5001)],
    ],
)
def test_update_data_invalid_is_400(opt: Optimove, body: Any) -> None:
    dc = opt.connection()
    resp = requests.put(f"{opt.url}/connections/{dc}/update_data", json=body, headers=KEYS, timeout=5)
    assert resp.status_code == 400
    assert opt.records(dc) == {}


# --- state --------------------------------------------------------------------------------------------


def test_state_round_trips(opt: Optimove) -> None:
    dc = opt.connection()
    opt.upload(dc, data=[{"user_id": 1}], ttl_seconds=3600).raise_for_status()
    opt.upload(dc, data=[{"user_id": 2}], batch_uuid="b", batch_completed=False).raise_for_status()
    saved = opt.stored()
    assert OptimoveState.from_dict(saved).to_dict() == saved
    assert saved["staged"] and saved["expires_at"]
