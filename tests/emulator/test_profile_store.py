"""The emulated Profile Store v1.0 (API.md §6), driven over loopback HTTP with plain ``requests``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import requests

from airflow_provider_optimizely.emulator.handle import EmulatorHandle
from airflow_provider_optimizely.emulator.profile_store import ProfileStoreState
from airflow_provider_optimizely.emulator.state import EmulatorState
from tests.emulator.helpers import SETTINGS, Api, in_process_emulator

AUTH = {"Authorization": f"epi-single {SETTINGS.profile_store_key}"}
BUDGET = SETTINGS.profile_store_delete_event_budget
OTHER_SCOPE = "CommerceSite"


class Store(Api):
    @property
    def profiles(self) -> str:
        return f"{self.url}/api/v1.0/profiles"

    def create(self, **profile: Any) -> dict[str, Any]:
        resp = requests.post(f"{self.profiles}/", json=profile, headers=AUTH, timeout=5)
        assert resp.status_code == 201, resp.text
        return dict(resp.json())

    def count(self) -> int:
        return len(self.stored()["profiles"])


@pytest.fixture
def store(emulator: EmulatorHandle) -> Store:
    return Store(emulator, "profile_store")


@pytest.fixture(scope="module")
def own_emulator() -> Iterator[tuple[EmulatorHandle, ProfileStoreState]]:
    """An emulator whose Profile Store has a second scope and a clock this test process can move."""
    state = EmulatorState(profile_store=ProfileStoreState.from_dict({"scopes": [OTHER_SCOPE]}))
    with in_process_emulator(state) as handle:
        yield handle, state.profile_store


@pytest.fixture
def scoped(
    own_emulator: tuple[EmulatorHandle, ProfileStoreState],
) -> Iterator[tuple[Store, ProfileStoreState]]:
    handle, state = own_emulator
    handle.reset()
    yield Store(handle, "profile_store"), state
    state.clock = ProfileStoreState().clock


# --- auth ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "epi-single wrong"}, {"Authorization": f"Bearer {SETTINGS.profile_store_key}"}],
)
def test_wrong_or_missing_key_is_401_with_v2_body(store: Store, headers: dict[str, str]) -> None:
    resp = requests.get(f"{store.profiles}/default/x", headers=headers, timeout=5)
    assert resp.status_code == 401
    assert set(resp.json()) == {"message", "code", "uuid"}


# --- create and read ----------------------------------------------------------------------------------


def test_post_creates_with_server_fields_location_and_default_scope(store: Store) -> None:
    body = {
        "DeviceIds": ["d1"],
        "Name": "Luke",
        "Visits": 3,
        "Info": {"Email": "luke@example.com"},
        "ProfileId": "client-chosen",
        "UpdateTime": "1999-01-01T00:00:00Z",
    }
    resp = requests.post(f"{store.profiles}/", json=body, headers=AUTH, timeout=5)
    assert resp.status_code == 201
    created = resp.json()
    assert created["ProfileId"] not in ("client-chosen", "") and created["Scope"] == "default"
    assert created["UpdateTime"] != "1999-01-01T00:00:00Z"
    assert resp.headers["Location"].endswith(
        f"/profile-store/api/v1.0/profiles/default/{created['ProfileId']}"
    )
    got = requests.get(resp.headers["Location"], headers=AUTH, timeout=5)
    assert got.status_code == 200 and got.json() == created
    assert store.items("ps_profiles")["total"] == 1


def test_get_unknown_profile_or_scope_is_404(store: Store) -> None:
    created = store.create(Name="A")
    assert requests.get(f"{store.profiles}/default/nope", headers=AUTH, timeout=5).status_code == 404
    other_scope = requests.get(
        f"{store.profiles}/{OTHER_SCOPE}/{created['ProfileId']}", headers=AUTH, timeout=5
    )
    assert other_scope.status_code == 404


def test_body_over_256_kb_is_413_and_at_the_limit_is_accepted(store: Store) -> None:
    def body_of(size: int) -> bytes:
        skeleton = json.dumps({"Payload": {"blob": ""}}).encode()
        return json.dumps({"Payload": {"blob": "x" * (size - len(skeleton))}}).encode()

    headers = {**AUTH, "content-type": "application/json"}
    at_limit = requests.post(f"{store.profiles}/", data=body_of(256 * 1024), headers=headers, timeout=5)
    assert at_limit.status_code == 201
    over = requests.post(f"{store.profiles}/", data=body_of(256 * 1024 + 1), headers=headers, timeout=5)
    assert over.status_code == 413
    assert over.json()["code"] == "PAYLOAD_TOO_LARGE"
    assert store.count() == 1


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"Visits": -1}, "Visits"),
        ({"Visits": "3"}, "Visits"),
        ({"FirstSeen": "2020-02-01T00:00:00", "LastSeen": "2020-01-01T00:00:00"}, "FirstSeen"),
        ({"LastSeen": "yesterday"}, "LastSeen"),
        ({"Scope": "NoSuchScope"}, "scope"),
        ({"Email": "top-level@example.com"}, "unknown property"),
        ({"DeviceIds": "d1"}, "DeviceIds"),
    ],
)
def test_invalid_profiles_are_400(store: Store, body: dict[str, Any], words: str) -> None:
    resp = requests.post(f"{store.profiles}/", json=body, headers=AUTH, timeout=5)
    assert resp.status_code == 400
    assert words in resp.json()["message"]
    assert store.count() == 0


def test_first_seen_equal_to_last_seen_and_zero_visits_are_valid(store: Store) -> None:
    store.create(FirstSeen="2020-01-01T00:00:00Z", LastSeen="2020-01-01T00:00:00Z", Visits=0)


def test_non_default_scope_from_the_state_is_usable(scoped: tuple[Store, ProfileStoreState]) -> None:
    store, _ = scoped
    created = store.create(Scope=OTHER_SCOPE, Name="C")
    got = requests.get(f"{store.profiles}/{OTHER_SCOPE}/{created['ProfileId']}", headers=AUTH, timeout=5)
    assert got.status_code == 200


def test_duplicate_device_id_or_email_is_409(store: Store) -> None:
    store.create(DeviceIds=["d1", "d2"], Info={"Email": "Ann@Example.com"})
    dup_device = requests.post(f"{store.profiles}/", json={"DeviceIds": ["d2"]}, headers=AUTH, timeout=5)
    assert dup_device.status_code == 409 and "DeviceIds" in dup_device.json()["message"]
    dup_email = {"Info": {"Email": "ann@example.com"}}
    assert requests.post(f"{store.profiles}/", json=dup_email, headers=AUTH, timeout=5).status_code == 409
    # Another scope is another set of profiles.
    assert store.count() == 1


def test_the_same_device_id_in_another_scope_is_no_duplicate(scoped: tuple[Store, ProfileStoreState]) -> None:
    store, _ = scoped
    store.create(DeviceIds=["d2"], Info={"Email": "ann@example.com"})
    store.create(DeviceIds=["d2"], Info={"Email": "ann@example.com"}, Scope=OTHER_SCOPE)
    assert store.count() == 2


# --- put ----------------------------------------------------------------------------------------------


def test_put_creates_201_then_replaces_200(store: Store) -> None:
    first = requests.put(f"{store.profiles}/p-1", json={"Name": "One", "Visits": 2}, headers=AUTH, timeout=5)
    assert first.status_code == 201
    assert first.json()["ProfileId"] == "p-1" and first.headers["Location"].endswith("/default/p-1")
    second = requests.put(f"{store.profiles}/p-1", json={"Name": "Uno"}, headers=AUTH, timeout=5)
    assert second.status_code == 200
    assert second.json()["Name"] == "Uno" and second.json()["Visits"] == 0  # replaced, not merged
    assert second.json()["UpdateTime"] >= first.json()["UpdateTime"]


def test_put_keeping_its_own_device_ids_is_fine_but_taking_anothers_is_409(store: Store) -> None:
    store.create(DeviceIds=["taken"])
    requests.put(
        f"{store.profiles}/p-2", json={"DeviceIds": ["mine"]}, headers=AUTH, timeout=5
    ).raise_for_status()
    same = requests.put(
        f"{store.profiles}/p-2", json={"DeviceIds": ["mine"], "Visits": 1}, headers=AUTH, timeout=5
    )
    assert same.status_code == 200
    steal = requests.put(f"{store.profiles}/p-2", json={"DeviceIds": ["taken"]}, headers=AUTH, timeout=5)
    assert steal.status_code == 409


def test_put_validates_like_post(store: Store) -> None:
    assert (
        requests.put(f"{store.profiles}/p-3", json={"Visits": -5}, headers=AUTH, timeout=5).status_code == 400
    )
    big = {"Payload": {"blob": "x" * (256 * 1024)}}
    assert requests.put(f"{store.profiles}/p-3", json=big, headers=AUTH, timeout=5).status_code == 413


# --- delete -------------------------------------------------------------------------------------------


def test_delete_200_then_404_and_recorded(store: Store) -> None:
    created = store.create(Name="Gone", Visits=5)
    url = f"{store.profiles}/default/{created['ProfileId']}"
    resp = requests.delete(url, headers=AUTH, timeout=5)
    assert resp.status_code == 200 and resp.json()["ProfileId"] == created["ProfileId"]
    assert requests.get(url, headers=AUTH, timeout=5).status_code == 404
    assert requests.delete(url, headers=AUTH, timeout=5).status_code == 404
    assert store.items("ps_deletes") == {"total": 1, "distinct": 1, "duplicates": 0, "duplicate_keys": []}


def test_delete_past_the_event_budget_is_429_with_retry_after_until_the_next_cleanup(
    scoped: tuple[Store, ProfileStoreState],
) -> None:
    store, state = scoped
    now = datetime(2024, 5, 1, 23, 0, 0, tzinfo=timezone.utc)
    state.clock = lambda: now
    state.reset()  # the last clean-up was "today" by the new clock
    first, second = store.create(Visits=BUDGET - 400), store.create(Visits=401)
    assert (
        requests.delete(f"{store.profiles}/default/{first['ProfileId']}", headers=AUTH, timeout=5).status_code
        == 200
    )
    refused = requests.delete(f"{store.profiles}/default/{second['ProfileId']}", headers=AUTH, timeout=5)
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "3600"  # one hour to the next UTC midnight
    assert refused.json()["code"] == "TOO_MANY_REQUESTS"
    assert store.count() == 1  # nothing deleted
    # After the daily clean-up the budget is whole again.
    state.clock = lambda: now + timedelta(hours=2)
    again = requests.delete(f"{store.profiles}/default/{second['ProfileId']}", headers=AUTH, timeout=5)
    assert again.status_code == 200


def test_retry_after_counts_down_to_the_next_utc_midnight(store: Store) -> None:
    first, second = store.create(Visits=BUDGET), store.create(Visits=1)
    requests.delete(
        f"{store.profiles}/default/{first['ProfileId']}", headers=AUTH, timeout=5
    ).raise_for_status()
    refused = requests.delete(f"{store.profiles}/default/{second['ProfileId']}", headers=AUTH, timeout=5)
    assert refused.status_code == 429
    now = datetime.now(timezone.utc)
    midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), tzinfo=timezone.utc)
    assert abs(int(refused.headers["Retry-After"]) - (midnight - now).total_seconds()) <= 5


def test_delete_exactly_to_the_budget_is_allowed(store: Store) -> None:
    created = store.create(Visits=BUDGET)
    resp = requests.delete(f"{store.profiles}/default/{created['ProfileId']}", headers=AUTH, timeout=5)
    assert resp.status_code == 200


# --- query --------------------------------------------------------------------------------------------


def seed_people(store: Store) -> None:
    for i, (name, visits, country) in enumerate(
        [("Ann", 5, "NO"), ("Bob", 1, "SE"), ("Cid", 9, "NO"), ("Dan", 3, "DK"), ("Eve", 7, "NO")]
    ):
        store.create(
            Name=name,
            Visits=visits,
            DeviceIds=[f"d{i}"],
            Info={"Email": f"{name.lower()}@ex.com", "Country": country},
        )


def query(store: Store, **params: Any) -> requests.Response:
    return requests.get(
        store.profiles, params={f"${k}": v for k, v in params.items()}, headers=AUTH, timeout=5
    )


def test_query_filters_with_eq_and_nested_fields_and_and(store: Store) -> None:
    seed_people(store)
    resp = query(store, filter="Info.Country eq 'NO' and Visits gt 5", orderBy="Name desc")
    assert resp.status_code == 200
    body = resp.json()
    assert [p["Name"] for p in body["items"]] == ["Eve", "Cid"]
    assert body["total"] == 2 and body["count"] == 2


def test_query_on_a_list_field_matches_an_element_and_or_not_parentheses(store: Store) -> None:
    seed_people(store)
    assert [p["Name"] for p in query(store, filter="DeviceIds eq 'd1'").json()["items"]] == ["Bob"]
    either = query(store, filter="(Name eq 'Ann' OR Name eq 'Dan') and not Visits lt 4", orderBy="Name")
    assert [p["Name"] for p in either.json()["items"]] == ["Ann"]


def test_query_pages_with_top_and_skip_and_defaults_to_100(store: Store) -> None:
    seed_people(store)
    page = query(store, orderBy="Visits", top=2, skip=1).json()
    assert [p["Visits"] for p in page["items"]] == [3, 5] and page["total"] == 5 and page["count"] == 2
    for i in range(100):
        store.create(DeviceIds=[f"bulk-{i}"])
    assert query(store).json()["count"] == 100


@pytest.mark.parametrize(
    "params",
    [
        {"skip": 9900, "top": 100},
        {"top": 10000},
        {"top": 0},
        {"skip": -1},
        {"top": "many"},
        {"filter": "Name eq"},
        {"filter": "Name like 'A'"},
        {"orderBy": "Name sideways"},
    ],
)
def test_query_bad_parameters_are_400(store: Store, params: dict[str, Any]) -> None:
    resp = query(store, **params)
    assert resp.status_code == 400
    assert resp.json()["message"]


def test_query_window_just_under_the_limit_is_allowed(store: Store) -> None:
    assert query(store, skip=9899, top=100).status_code == 200


# --- state --------------------------------------------------------------------------------------------


def test_state_round_trips_and_configured_scopes_survive_a_reset(
    scoped: tuple[Store, ProfileStoreState],
) -> None:
    store, _ = scoped
    seed_people(store)
    saved = store.stored()
    assert ProfileStoreState.from_dict(json.loads(json.dumps(saved))).to_dict() == saved
    store.handle.reset()
    assert store.stored()["scopes"] == [OTHER_SCOPE, "default"]
    assert store.count() == 0
