"""Delete-profile under a real Airflow against the emulated Profile Store: 404 is success, a 429 is waited
out."""

from __future__ import annotations

import json

import pytest

from airflow_provider_optimizely.hooks.profile_store import OptimizelyProfileStoreHook

pytestmark = pytest.mark.integration


def seed(ids):
    store = OptimizelyProfileStoreHook()
    for profile_id in ids:
        store.put_profile(profile_id, {"Name": profile_id, "Visits": 1})


def stored_ids(emulator):
    return {p["ProfileId"] for p in emulator.state("profile_store")["profiles"]}


def test_delete_then_rerun(run_dag, emulator, emulator_connections):
    seed(["a", "b", "keep"])
    first = run_dag("sync_delete_profiles", conf={"profile_ids": ["a", "b", "never-existed"]})
    first.assert_success()
    assert first.xcoms["delete_profiles"]["details"] == {"deleted": 2, "already_deleted": 1}
    assert stored_ids(emulator) == {"keep"}
    again = run_dag("sync_delete_profiles", conf={"profile_ids": ["a", "b", "never-existed"]})
    again.assert_success()
    assert again.xcoms["delete_profiles"]["details"] == {"already_deleted": 3}


def test_429_waits_for_retry_after_and_goes_on(run_dag, emulator, emulator_connections, monkeypatch):
    # A 1.5 s retry budget in the hook: it waits out the first 429 (1 s), not the second, which reaches
    # the operator; the operator waits and goes on, and the hook waits out the third.
    connection = json.loads(emulator_connections["optimizely_profile_store_default"])
    connection["extra"] = {**connection.get("extra", {}), "max_retry_seconds": 1.5}
    monkeypatch.setenv("AIRFLOW_CONN_PS_FEW_RETRIES", json.dumps(connection))
    seed(["x", "y"])
    emulator.set_faults(
        "profile_store",
        route="DELETE /api/v1.0/profiles/{scope}/{profileid}",
        next=["429", "429", "429"],
        retry_after=100,  # 1 s at the tests' time scale
    )
    # One delete at a time, so that which 429 reaches whom does not depend on two threads' timing.
    conf = {"profile_ids": ["x", "y"], "conn_id": "ps_few_retries", "max_concurrency": 1}
    result = run_dag("sync_delete_profiles", conf=conf)
    result.assert_success()
    report = result.xcoms["delete_profiles"]
    assert report["details"]["deleted"] == 2
    assert report["details"]["rate_limit_waits"] == 1
    # Three Retry-After pauses of 1 s, two of them inside the client (measured, so a hair short of 2).
    assert report["requests"]["throttled_seconds"] >= 1.9
    assert stored_ids(emulator) == set()
    faults = emulator.received("profile_store")["faults"]
    assert sum(n for route, n in faults.items() if route.endswith("-> 429")) == 3
