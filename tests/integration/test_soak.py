"""The fault soak: 20,000 profiles and 20,000 events through the operators while the emulator answers
10% 5xx and 5% 429 and drops 2% of connections. Every task succeeds, every profile holds its final value,
every event arrived, and each report's counts equal what the emulator saw.

Exactly once, precisely: the emulator injects its faults before a request reaches its route, so a failed
attempt never stored anything and a resend is no duplicate. The client can't know that (a dropped
connection or a 5xx to a POST may have been applied), so it counts those resends as
``requests.maybe_applied_twice``; the test checks that count against the faults served, and that the
emulator saw no item twice.
"""

from __future__ import annotations

import json
import time
from collections import Counter

import pytest

from airflow_provider_optimizely.hooks.optimove import OptimoveHook
from tests.integration.helpers import write_csv, write_json_lines

pytestmark = pytest.mark.integration

PROFILES = 20_000
UPDATED = 1_000  # keys that appear twice: an old value early in the file, the final one later
EVENTS = 20_000
FAULTS = {
    "error_rate": {"500": 0.04, "502": 0.02, "503": 0.02, "504": 0.02, "429": 0.05},
    "drop_rate": 0.02,
    "retry_after": 1,
    # Before the rates: one of each kind, so that every run meets all of them whatever the draw.
    "next": ["drop", "429", "500", "502", "503", "504"],
}
# Enough attempts that no request runs out of them (0.19 ** 12 is about 2e-9 a request).
RETRIES = {"max_attempts": 12, "max_retry_seconds": 120}


def soak_connection(emulator_connections, conn_id, monkeypatch, name):
    connection = json.loads(emulator_connections[conn_id])
    connection["extra"] = {**connection.get("extra", {}), **RETRIES}
    monkeypatch.setenv(f"AIRFLOW_CONN_{name.upper()}", json.dumps(connection))
    return name


def write_files(tmp_path):
    """Profiles (a CSV whose first UPDATED keys come back later with their final city) and events."""
    first_pass = [
        (f"u{i}@soak.io", f"old-{i}" if i < UPDATED else f"city-{i}", f"n{i}")
        for i in range(PROFILES - UPDATED)
    ]
    updates = [(f"u{i}@soak.io", f"final-{i}", f"n{i}") for i in range(UPDATED)]
    rows = first_pass + updates
    # Later rows win: the dict keeps each email's last city.
    final_city = {email: city for email, city, _ in rows}
    profiles = write_csv(tmp_path / "profiles.csv", ["email", "city", "first_name"], rows)
    events = write_json_lines(
        tmp_path / "events.jsonl",
        (
            {
                "type": "soak",
                "action": "tick",
                "identifiers": {"email": f"u{i % 500}@soak.io"},
                "data": {"n": i},
            }
            for i in range(EVENTS)
        ),
    )
    return profiles, events, final_city


def route_counts(received, route):
    served = received["requests"].get(route, 0)
    faults = Counter(
        {
            kind.split(" -> ")[1]: n
            for kind, n in received["faults"].items()
            if kind.startswith(route + " -> ")
        }
    )
    faults.pop("delay", None)
    return served, faults


def check_report(report, received, routes, rows, kind):
    """``routes``: every route the task called (its data route, and the schema read of ODP profiles)."""
    served, faults, maybe_twice = 0, Counter(), 0
    for route in routes:
        route_served, route_faults = route_counts(received, route)
        served += route_served
        faults += route_faults
        if route.startswith("POST "):
            # A resend that might have duplicated: after a 5xx or a dropped connection; not after a 429.
            maybe_twice += sum(n for fault, n in route_faults.items() if fault != "429")
    assert report["rows_read"] == report["rows_sent"] == report["rows_succeeded"] == rows
    assert report["rows_rejected"] == 0
    # Every attempt the client made reached the emulator: served, or answered with a fault.
    assert report["requests"]["total"] == served + sum(faults.values())
    # Each fault was retried once (none ran out of attempts: the task succeeded).
    assert report["requests"]["retried"] == sum(faults.values())
    assert report["requests"]["maybe_applied_twice"] == maybe_twice
    items = received["items"][kind]
    assert items["total"] == rows and items["duplicates"] == 0 <= report["requests"]["maybe_applied_twice"]
    return faults


def test_soak(run_dag, emulator, emulator_connections, monkeypatch, tmp_path):
    profiles, events, final_city = write_files(tmp_path)
    odp = soak_connection(emulator_connections, "optimizely_odp_default", monkeypatch, "soak_odp")
    optimove = soak_connection(emulator_connections, "optimove_default", monkeypatch, "soak_optimove")
    connection = OptimoveHook().create_connection("soak", primary_key="email").data_connection_uuid
    emulator.set_faults("odp", seed=11, **FAULTS)
    emulator.set_faults("optimove", seed=12, **FAULTS)

    started = time.monotonic()
    result = run_dag(
        "soak_sync",
        conf={
            "odp_conn_id": odp,
            "optimove_conn_id": optimove,
            "profiles_path": profiles,
            "events_path": events,
            "optimove_connection": connection,
        },
    )
    elapsed = time.monotonic() - started
    result.assert_success()
    assert elapsed < 120, f"the soak took {elapsed:.0f}s"
    emulator.clear_faults()

    odp_received = emulator.received("odp")
    faults = check_report(
        result.xcoms["odp_profiles"],
        odp_received,
        ["POST /profiles", "GET /schema/objects/{object_type}"],
        PROFILES,
        "odp_profiles",
    )
    faults += check_report(result.xcoms["odp_events"], odp_received, ["POST /events"], EVENTS, "odp_events")
    assert set(faults) >= {"drop", "429", "500", "502", "503", "504"}, faults  # met every kind of fault
    optimove_received = emulator.received("optimove")
    check_report(
        result.xcoms["optimove_profiles"],
        optimove_received,
        ["POST /connections/{connection}/upload_data"],
        PROFILES,
        "optimove_records",
    )

    odp_state = emulator.state("odp")
    stored = {p["identifiers"]["email"]: p["attributes"]["city"] for p in odp_state["profiles"]}
    assert stored == final_city
    records = emulator.state("optimove")["records"][connection]
    assert {email: record["city"] for email, record in records.items()} == final_city
    assert odp_state["events_total"] == EVENTS
