"""Faults on demand and rate limits (docs/api-contract.md §3, §8), driven with plain ``requests``."""

from __future__ import annotations

import threading
import time

import pytest
import requests

from airflow_provider_optimizely.emulator.faults import FaultSpec, parse_cli_fault
from tests.emulator.conftest import Dcp, assert_v2_error
from tests.emulator.helpers import PRIVATE, PUBLIC
from tests.waiting import wait_until

LIST = "GET /dcp_services"
# Windows are aligned to the epoch: one this long never turns over during a test.
ENDLESS = 10**9


def statuses(dcp: Dcp, count: int) -> list[int]:
    return [dcp.rest("GET", "dcp_services").status_code for _ in range(count)]


# --- rate limits ------------------------------------------------------------------------------------

PS_AUTH = {"Authorization": "epi-single emulator-ps-key"}


def test_every_answer_of_every_api_carries_the_rate_limit_headers(emulator, dcp: Dcp):
    """docs/api-contract.md §3 (seed 004: "Every response contains three headers"):
    X-RateLimit-Limit/Remaining/Reset on
    every answer of every API, whether or not a limit is enforced, errors included."""
    odp, ps, optimove = emulator.urls["odp"], emulator.urls["profile_store"], emulator.urls["optimove"]
    emulator.set_faults("optimove", next=["500"])
    answers = [
        dcp.rest("GET", "dcp_services"),
        dcp.rest("GET", "dcp_services/999"),
        dcp.rest("DELETE", "dcp_services"),
        requests.get(f"{emulator.urls['dcp']}/dcp_services", timeout=10),
        requests.post(emulator.urls["dcp_oauth_token"], data={}, timeout=10),
        dcp.profiles("GET", "customer_profile/1/2/c"),
        requests.post(f"{odp}/events", json=[], headers=PUBLIC, timeout=10),
        requests.post(f"{odp}/profiles", json={"identifiers": {"vuid": "v"}}, headers=PRIVATE, timeout=10),
        requests.get(f"{odp}/segments", headers=PUBLIC, timeout=10),
        requests.get(f"{ps}/api/v1.0/profiles/default/nobody", headers=PS_AUTH, timeout=10),
        requests.get(f"{optimove}/connections/x/upload_data", timeout=10),
        requests.post(f"{optimove}/connections", json={}, timeout=10),
    ]
    assert [a.status_code for a in answers] == [200, 404, 405, 401, 400, 404, 400, 200, 401, 404, 500, 401]
    now = time.time()
    for answer in answers:
        limit, remaining = (
            int(answer.headers["X-RateLimit-Limit"]),
            int(answer.headers["X-RateLimit-Remaining"]),
        )
        assert 0 <= remaining <= limit, answer.url
        assert now - 1 <= float(answer.headers["X-RateLimit-Reset"]) <= now + 60, answer.url


def test_odp_profiles_are_limited_to_10_a_second_by_default_and_events_are_not(emulator):
    """docs/api-contract.md §3: "ODP profiles 10 requests/s; ODP events and objects no limit" - enforced from
    the start."""
    emulator.set_time_scale(1.0)  # the vendor's own second, so that 25 quick requests share few windows
    body = {"identifiers": {"vuid": "v1"}}
    profiles = [
        requests.post(f"{emulator.urls['odp']}/profiles", json=body, headers=PRIVATE, timeout=10)
        for _ in range(25)
    ]
    statuses = [p.status_code for p in profiles]
    assert set(statuses) == {200, 429} and statuses.count(200) <= 20, statuses
    assert {p.headers["X-RateLimit-Limit"] for p in profiles} == {"10"}
    refused = next(p for p in profiles if p.status_code == 429)
    assert_v2_error(refused, 429)
    assert 1 <= int(refused.headers["Retry-After"]) <= 1  # whole seconds at the vendor's pace
    events = [
        requests.post(
            f"{emulator.urls['odp']}/events",
            json=[{"type": "t", "action": "a", "identifiers": {"vuid": "v1"}}],
            headers=PUBLIC,
            timeout=10,
        ).status_code
        for _ in range(25)
    ]
    assert set(events) == {202}


def test_past_a_dcp_budget_it_asks_for_at_least_60_seconds_and_holds_to_it(dcp: Dcp):
    """docs/api-contract.md §3: DCP "on 429 or 503 asks for at least 60 s before a retry" (0.6 s at the
    tests' time
    scale, although the window itself is 0.3 s). A retry before that is refused again, with another 60 s."""
    dcp.emulator.set_rate_limit("dcp", 2, window_seconds=30)
    refused = next(a for a in (dcp.rest("GET", "dcp_services") for _ in range(20)) if a.status_code == 429)
    assert float(refused.headers["Retry-After"]) >= 0.6 - 0.01
    assert float(refused.headers["X-RateLimit-Reset"]) >= time.time() + 0.4
    early = dcp.rest("GET", "dcp_services")
    assert early.status_code == 429 and float(early.headers["Retry-After"]) >= 0.59
    asked_at, asked = time.monotonic(), float(early.headers["Retry-After"])
    threading.Event().wait(asked)  # a client that honours Retry-After sends nothing meanwhile
    assert time.monotonic() - asked_at >= asked
    assert dcp.rest("GET", "dcp_services").status_code == 200


def test_every_answer_of_a_limited_api_carries_the_headers_then_429(dcp: Dcp):
    dcp.emulator.set_rate_limit("dcp", 3, window_seconds=ENDLESS)
    answers = [dcp.rest("GET", "dcp_services") for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [a.headers["X-RateLimit-Remaining"] for a in answers] == ["2", "1", "0", "0"]
    assert {a.headers["X-RateLimit-Limit"] for a in answers} == {"3"}
    reset = float(answers[0].headers["X-RateLimit-Reset"])
    assert time.time() < reset <= time.time() + ENDLESS
    refused = answers[-1]
    assert_v2_error(refused, 429)
    assert 0.6 <= float(refused.headers["Retry-After"]) <= ENDLESS
    assert dcp.emulator.received("dcp")["faults"] == {f"{LIST} -> rate_limited": 1}
    assert dcp.emulator.received("dcp")["requests"] == {LIST: 3}


def test_the_budget_comes_back_in_the_next_window(emulator):
    """Fixed windows: a budget spent comes back when the window turns (ODP: no 60 s minimum)."""
    emulator.set_rate_limit("odp", 1, window_seconds=20, route="GET /segments")  # 0.2 s scaled

    def answered(status: int):
        return lambda: (
            requests.get(f"{emulator.urls['odp']}/segments", headers=PRIVATE, timeout=10).status_code
            == status
        )

    wait_until(answered(429), timeout=5, interval=0.01, what="the budget to run out")
    wait_until(answered(200), timeout=5, interval=0.01, what="the next window")


def test_a_route_limit_wins_and_the_rest_of_the_api_is_unlimited(dcp: Dcp, emulator):
    emulator.set_rate_limit("dcp", 1, window_seconds=ENDLESS, route="POST /dcp_services")
    assert statuses(dcp, 3) == [200, 200, 200]
    unlimited = dcp.rest("GET", "dcp_services")
    assert unlimited.headers["X-RateLimit-Limit"] == "1000"  # the announced budget, never enforced
    assert dcp.rest("POST", "dcp_services", json={"name": "a"}).status_code == 201
    limited = dcp.rest("POST", "dcp_services", json={"name": "a"})
    assert (limited.status_code, limited.headers["X-RateLimit-Limit"]) == (429, "1")


def test_the_time_scale_shortens_announced_waits_and_windows(dcp: Dcp):
    """One setting scales every announced wait together (docs/emulator-fidelity.md, "time scale")."""
    dcp.emulator.set_time_scale(0.001)
    dcp.emulator.set_faults("dcp", next=["503"])
    assert dcp.rest("GET", "dcp_services").headers["Retry-After"] == "0.06"
    dcp.emulator.set_time_scale(1.0)
    dcp.emulator.set_faults("dcp", next=["429"], retry_after=90)
    answer = dcp.rest("GET", "dcp_services")
    assert answer.headers["Retry-After"] == "90"
    assert answer.headers["X-RateLimit-Reset"].isdigit()
    dcp.emulator.reset()
    assert dcp.emulator.config()["time_scale"] == 0.01


def test_removing_a_limit_and_reset_restore_full_speed(dcp: Dcp):
    dcp.emulator.set_rate_limit("dcp", 1, window_seconds=ENDLESS)
    assert statuses(dcp, 2) == [200, 429]
    dcp.emulator.set_rate_limit("dcp", None)
    assert statuses(dcp, 2) == [200, 200]
    dcp.emulator.set_rate_limit("dcp", 1, window_seconds=ENDLESS)
    dcp.emulator.reset()
    assert statuses(dcp, 3) == [200, 200, 200]


def test_rate_limit_admin_refuses_nonsense(emulator):
    url = f"{emulator.urls['admin']}/rate_limits"
    for body in ({"nope": "1/1"}, {"dcp": "many"}, {"dcp": {"limit": 1}}, ["dcp"]):
        assert requests.put(url, json=body, timeout=10).status_code == 400


# --- faults -----------------------------------------------------------------------------------------


def test_error_rate_answers_with_injected_statuses_and_a_v2_body(dcp: Dcp, emulator):
    """Injected 429/503 carry Retry-After: the spec's, scaled, and never under 60 s on DCP
    (docs/api-contract.md §3)."""
    dcp.emulator.set_faults("dcp", error_rate={"503": 1.0}, retry_after=7)
    response = dcp.rest("GET", "dcp_services")
    assert_v2_error(response, 503)
    assert response.headers["Retry-After"] == "0.6"  # 60 s at the tests' time scale of 1/100
    emulator.set_faults("odp", error_rate={"503": 1.0}, retry_after=7)
    odp = requests.get(f"{emulator.urls['odp']}/segments", headers=PRIVATE, timeout=10)
    assert odp.headers["Retry-After"] == "0.07"
    assert dcp.emulator.received("dcp")["requests"] == {}
    assert dcp.emulator.received("dcp")["faults"] == {f"{LIST} -> 503": 1}


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_each_injected_status(dcp: Dcp, status):
    dcp.emulator.set_faults("dcp", error_rate={str(status): 1.0})
    response = dcp.rest("GET", "dcp_services")
    assert_v2_error(response, status)
    assert ("Retry-After" in response.headers) == (status in (429, 503))


def test_seeded_rates_are_repeatable_and_roughly_right(dcp: Dcp):
    spec = {"error_rate": {"500": 0.3, "429": 0.2}, "seed": 42}
    dcp.emulator.set_faults("dcp", **spec)
    first = statuses(dcp, 60)
    dcp.emulator.set_faults("dcp", **spec)
    assert statuses(dcp, 60) == first
    assert 8 <= first.count(500) <= 30 and 3 <= first.count(429) <= 22 and first.count(200) >= 15


def test_dropped_connection_gives_no_answer_at_all(dcp: Dcp):
    dcp.emulator.set_faults("dcp", drop_rate=1.0)
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{dcp.emulator.urls['dcp']}/dcp_services", headers={"Token": "x"}, timeout=10)
    assert dcp.emulator.received("dcp")["faults"] == {f"{LIST} -> drop": 1}
    dcp.emulator.clear_faults()
    assert dcp.rest("GET", "dcp_services").status_code == 200  # the server itself is fine


def test_slow_answers(dcp: Dcp):
    dcp.emulator.set_faults("dcp", delay_seconds=0.3)
    started = time.monotonic()
    assert dcp.rest("GET", "dcp_services").status_code == 200
    assert time.monotonic() - started >= 0.3
    dcp.emulator.clear_faults()
    assert dcp.rest("GET", "dcp_services").status_code == 200
    assert dcp.emulator.received("dcp")["faults"] == {f"{LIST} -> delay": 1}
    assert dcp.emulator.received("dcp")["requests"] == {LIST: 2}


def test_next_outcomes_come_first_in_order(dcp: Dcp):
    dcp.emulator.set_faults("dcp", next=["503", "500", "ok", "429"])
    assert statuses(dcp, 5) == [503, 500, 200, 429, 200]


def test_a_route_fault_wins_over_the_api_fault(dcp: Dcp):
    dcp.emulator.set_faults("dcp", error_rate={"500": 1.0})
    dcp.emulator.set_faults("dcp", route="GET /dcp_services/{service_id}", error_rate={"502": 1.0})
    assert dcp.rest("GET", "dcp_services/1").status_code == 502
    assert dcp.rest("GET", "dcp_services").status_code == 500
    # A route's spec stands in for the API's even when it has nothing (left) to inject.
    dcp.emulator.set_faults("dcp", route="GET /dcp_services", next=["504"])
    assert statuses(dcp, 2) == [504, 200]


def test_a_concrete_path_names_a_route_too(dcp: Dcp):
    dcp.emulator.set_faults("dcp", route="get /dcp_services/5", next=["504"])
    assert dcp.rest("GET", "dcp_services/5").status_code == 504
    assert dcp.rest("GET", "dcp_services/6").status_code == 404


def test_faults_of_one_api_leave_the_others_alone(dcp: Dcp, emulator):
    emulator.set_faults("odp", error_rate={"500": 1.0})
    assert dcp.rest("GET", "dcp_services").status_code == 200
    assert requests.get(f"{emulator.urls['odp']}/segments", timeout=10).status_code == 500


def test_admin_routes_are_never_faulted(emulator):
    emulator.set_faults("dcp", drop_rate=1.0)
    assert emulator.health()["status"] == "ok"


def test_faults_are_listed_cleared_and_reset(emulator):
    emulator.set_faults("dcp", error_rate={"500": 0.5})
    emulator.set_faults("dcp", error_rate={"502": 0.5})  # same (api, route): replaces
    emulator.set_faults("odp", route="POST /events", drop_rate=0.1)
    listed = requests.get(f"{emulator.urls['admin']}/faults", timeout=10).json()
    assert sorted((f["api"], f["route"]) for f in listed) == [("dcp", None), ("odp", "POST /events")]
    assert next(f for f in listed if f["api"] == "dcp")["error_rate"] == {"502": 0.5}
    emulator.clear_faults()
    assert requests.get(f"{emulator.urls['admin']}/faults", timeout=10).json() == []
    emulator.set_faults("dcp", drop_rate=1.0)
    emulator.reset()
    assert requests.get(f"{emulator.urls['admin']}/faults", timeout=10).json() == []


@pytest.mark.parametrize(
    "spec",
    [
        {"api": "nope"},
        {"api": "dcp", "error_rate": {"404": 0.5}},
        {"api": "dcp", "error_rate": {"500": 0.8}, "drop_rate": 0.5},
        {"api": "dcp", "drop_rate": 2},
        {"api": "dcp", "route": "events"},
        {"api": "dcp", "next": ["teapot"]},
        {"api": "dcp", "surprise": 1},
    ],
)
def test_invalid_fault_specs_are_400(emulator, spec):
    response = requests.put(f"{emulator.urls['admin']}/faults", json=spec, timeout=10)
    assert_v2_error(response, 400, contains="fault")


def test_a_list_replaces_every_fault(emulator):
    emulator.set_faults("dcp", drop_rate=1.0)
    url = f"{emulator.urls['admin']}/faults"
    listed = requests.put(url, json=[{"api": "optimove", "next": ["500"]}], timeout=10).json()
    assert [(f["api"], f["next"]) for f in listed] == [("optimove", ["500"])]


# --- the command-line spelling ----------------------------------------------------------------------


def test_cli_fault_spelling():
    spec = parse_cli_fault("odp:POST /events=500=0.1,503=0.05,drop=0.02,delay=0.5,seed=1")
    assert spec == {
        "api": "odp",
        "route": "POST /events",
        "error_rate": {"500": 0.1, "503": 0.05},
        "drop_rate": 0.02,
        "delay_seconds": 0.5,
        "seed": 1,
    }
    assert FaultSpec.model_validate(spec).error_rate == {500: 0.1, 503: 0.05}
    assert parse_cli_fault('dcp={"next": ["drop"]}') == {"api": "dcp", "next": ["drop"]}
    with pytest.raises(ValueError, match="unknown fault setting"):
        parse_cli_fault("dcp=often=1")
