"""Upsert-profiles under a real Airflow (dag.test()), over loopback HTTP to the emulator, on each API."""

from __future__ import annotations

import uuid

import pytest

from airflow_provider_optimizely.hooks.dcp import OptimizelyDcpHook
from airflow_provider_optimizely.hooks.optimove import OptimoveHook
from tests.integration.helpers import write_csv, write_json_lines

pytestmark = pytest.mark.integration


def test_odp_profiles_from_a_csv_land_with_their_values(run_dag, emulator, emulator_connections, tmp_path):
    rows = [(f"u{i}@example.com", f"City {i}", f"Name{i}") for i in range(1203)]
    path = write_csv(tmp_path / "profiles.csv", ["email", "city", "first_name"], rows)
    result = run_dag("sync_odp_profiles_from_file", conf={"path": path})
    result.assert_success()
    report = result.xcoms["upsert"]
    assert (report["rows_read"], report["rows_sent"], report["rows_succeeded"]) == (1203, 1203, 1203)
    assert report["requests"]["total"] == 4  # the customers schema, then 500 + 500 + 203 profiles
    stored = {p["identifiers"]["email"]: p["attributes"] for p in emulator.state("odp")["profiles"]}
    assert len(stored) == 1203
    assert stored["u7@example.com"] == {"city": "City 7", "first_name": "Name7"}
    received = emulator.received("odp")["items"]["odp_profiles"]
    assert received["total"] == report["rows_succeeded"] and received["duplicates"] == 0


def test_dcp_profiles_are_written_and_a_rerun_overwrites(run_dag, emulator, emulator_connections, tmp_path):
    dcp = OptimizelyDcpHook()
    dcp.create_service("svc")
    table = dcp.create_table(f"customers_{uuid.uuid4().hex[:8]}")
    dcp.create_attribute(table.id, "plan", "string")
    dcp.create_attribute(table.id, "visits", "long")
    dcp.create_attribute(table.id, "since", "datetime", format="yyyy-mm-dd")
    path = write_csv(
        tmp_path / "dcp.csv",
        ["customer_id", "plan_name", "visits", "since"],
        [("c1", "gold", "3", "2026-01-02"), ("c2", "free", "", "2025-12-31")],
    )
    conf = {
        "path": path,
        "identifier_column": "customer_id",
        "table_id": table.id,
        "column_mapping": {"plan_name": "plan", "visits": "visits", "since": "since"},
    }
    run_dag("sync_dcp_profiles_from_file", conf=conf).assert_success()
    assert dcp.get_profile(table.id, "c1").data == {"plan": "gold", "visits": 3, "since": "2026-01-02"}
    assert dcp.get_profile(table.id, "c2").data == {"plan": "free", "since": "2025-12-31"}

    write_csv(tmp_path / "dcp.csv", ["customer_id", "plan_name"], [("c2", "pro")])
    rerun = run_dag("sync_dcp_profiles_from_file", conf={**conf, "column_mapping": {"plan_name": "plan"}})
    rerun.assert_success()
    # DCP writes a subset: the other attributes keep their values.
    assert dcp.get_profile(table.id, "c2").data == {"plan": "pro", "since": "2025-12-31"}
    # The attribute list, the account's service (the connection names none), then one profile.
    assert rerun.xcoms["upsert"]["requests"]["total"] == 3


def test_profile_store_profiles_are_put_then_replaced(run_dag, emulator, emulator_connections, tmp_path):
    lines = [
        {"id": "p1", "name": "Ann", "email": "ann@example.com", "devices": ["d1"], "visits": 2},
        {"id": "p2", "name": "Bob", "email": "bob@example.com", "devices": "d2,d3", "visits": 0},
    ]
    conf = {
        "path": write_json_lines(tmp_path / "people.jsonl", lines),
        "identifier_column": "id",
        "column_mapping": {"name": "Name", "email": "Info.Email", "devices": "DeviceIds", "visits": "Visits"},
    }
    first = run_dag("sync_profile_store_from_file", conf=conf)
    first.assert_success()
    assert first.xcoms["upsert"]["details"] == {"created": 2}
    profiles = {p["ProfileId"]: p for p in emulator.state("profile_store")["profiles"]}
    assert profiles["p2"]["DeviceIds"] == ["d2", "d3"]
    assert profiles["p1"]["Info"] == {"Email": "ann@example.com"}
    unchanged = run_dag("sync_profile_store_from_file", conf=conf)
    unchanged.assert_success()
    assert unchanged.xcoms["upsert"]["rows_sent"] == 0  # nothing changed: nothing sent
    assert unchanged.xcoms["upsert"]["sync_state"]["classified"]["unchanged"] == 2
    second = run_dag("sync_profile_store_from_file", conf={**conf, "full_refresh": True})
    second.assert_success()
    assert second.xcoms["upsert"]["details"] == {"replaced": 2}
    assert len(emulator.state("profile_store")["profiles"]) == 2


def test_optimove_records_go_whole_in_batches_of_5000_under_one_batch_uuid(
    run_dag, emulator, emulator_connections, tmp_path
):
    connection = OptimoveHook().create_connection("people", primary_key="user_id").data_connection_uuid
    rows = [(i, f"v{i}", i % 7) for i in range(12_001)]
    path = write_csv(tmp_path / "optimove.csv", ["user_id", "value", "bucket"], rows)
    result = run_dag(
        "sync_optimove_from_file",
        conf={"path": path, "identifier_column": "user_id", "data_connection_uuid": connection},
    )
    result.assert_success()
    report = result.xcoms["upsert"]
    assert report["rows_succeeded"] == 12_001 and report["requests"]["total"] == 3  # 5000 + 5000 + 2001
    state = emulator.state("optimove")
    records = state["records"][connection]
    assert len(records) == 12_001
    assert records["42"] == {"user_id": "42", "value": "v42", "bucket": "0"}
    assert state["staged"] == {} or state["staged"].get(connection) in ({}, None)  # the batch was completed
    assert emulator.received("optimove")["items"]["optimove_records"]["total"] == 12_001


def test_optimove_refuses_a_mapping_that_would_remove_fields(
    run_dag, emulator, emulator_connections, tmp_path
):
    connection = OptimoveHook().create_connection("people", primary_key="user_id").data_connection_uuid
    path = write_csv(tmp_path / "optimove.csv", ["user_id", "value", "secret"], [(1, "a", "s")])
    conf = {"path": path, "identifier_column": "user_id", "data_connection_uuid": connection}
    result = run_dag(
        "sync_optimove_from_file", conf={**conf, "column_mapping": {"user_id": "user_id", "value": "value"}}
    )
    assert result.state == "failed"
    assert emulator.state("optimove")["records"][connection] == {}
    # The same run mapping every column goes through: only the left-out column made it fail.
    every_column = {"user_id": "user_id", "value": "value", "secret": "secret"}
    control = run_dag("sync_optimove_from_file", conf={**conf, "column_mapping": every_column})
    control.assert_success()
    assert emulator.state("optimove")["records"][connection] == {
        "1": {"user_id": "1", "value": "a", "secret": "s"}
    }
