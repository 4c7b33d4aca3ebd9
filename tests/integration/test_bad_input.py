"""Bad input under a real Airflow and the emulator: each bad row is reported with its row number, column
and reason, every good row still lands, and a bad setting stops the task before anything is sent."""

from __future__ import annotations

import json

import pytest

from airflow_provider_optimizely.hooks.dcp import OptimizelyDcpHook
from airflow_provider_optimizely.hooks.odp import OptimizelyOdpHook
from tests.integration.helpers import write_csv

pytestmark = pytest.mark.integration


def pushed_report(result) -> dict:
    """The report a failed task leaves under the XCom key ``run_report``."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.scalars(
            XComModel.get_many(run_id=result.run_id, dag_ids=result.dag_id, key="run_report")
        ).all()
        assert rows, "the failed task left no run_report"
        return XComModel.deserialize_value(rows[0])


def write_lines(path, lines):
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    return str(path)


def odp_emails(emulator):
    return {p["identifiers"]["email"]: p["attributes"] for p in emulator.state("odp")["profiles"]}


def test_bad_profile_rows_are_reported_and_the_good_ones_land(
    run_dag, emulator, emulator_connections, tmp_path
):
    OptimizelyOdpHook().create_schema_field("customers", "age", "Age", "number")
    path = write_lines(
        tmp_path / "profiles.jsonl",
        [
            {"email": "good1@x.io", "age": 31, "city": "Oslo"},
            {"email": "typed@x.io", "age": "forty"},  # a wrong datatype
            {"email": "", "age": 5},  # a missing identifier
            "{not json",  # a broken line
            {"email": "good2@x.io", "age": "52"},  # text that is a number is fine
        ],
    )
    result = run_dag("sync_odp_profiles_from_file", conf={"path": path})
    assert result.state == "failed"  # max_rejected=0: the rejects fail the task...
    assert odp_emails(emulator) == {  # ...after every good row was written
        "good1@x.io": {"age": 31, "city": "Oslo"},
        "good2@x.io": {"age": 52},
    }
    report = pushed_report(result)
    assert (report["rows_read"], report["rows_succeeded"], report["rows_rejected"]) == (5, 2, 3)
    assert sorted(report["rejected_rows"], key=lambda r: r["row"]) == [
        {"row": 2, "key": "typed@x.io", "column": "age", "reason": "not a number: 'forty'"},
        {"row": 3, "key": None, "column": "email", "reason": "no identifier: the value is empty"},
        {
            "row": 4,
            "key": None,
            "column": None,
            "reason": "not valid JSON: Expecting property name enclosed in double quotes at column 2",
        },
    ]

    # With max_rejected allowing them, the same file succeeds and says the same.
    allowed = run_dag("sync_odp_profiles_from_file", conf={"path": path, "max_rejected": 3})
    allowed.assert_success()
    assert allowed.xcoms["upsert"]["rows_rejected"] == 3


def test_a_mapping_to_an_unknown_attribute_stops_before_sending(
    run_dag, emulator, emulator_connections, tmp_path
):
    path = write_lines(tmp_path / "profiles.jsonl", [{"email": "a@x.io", "size": 44}])
    result = run_dag(
        "sync_odp_profiles_from_file", conf={"path": path, "column_mapping": {"size": "shoe_size"}}
    )
    assert result.state == "failed"
    assert result.task_tries["upsert"] == 1  # a setting error is not retried
    assert "POST /profiles" not in emulator.received("odp")["requests"]


def test_a_profile_over_256_kb_is_rejected_before_sending(run_dag, emulator, emulator_connections, tmp_path):
    path = write_lines(
        tmp_path / "people.jsonl",
        [
            {"id": "small", "Name": "s"},
            {"id": "huge", "Name": "h", "Payload": {"blob": "x" * 300_000}},
            {"id": "also-small", "Name": "a"},
        ],
    )
    result = run_dag(
        "sync_profile_store_from_file",
        conf={
            "path": path,
            "identifier_column": "id",
            "max_rejected": 1,
        },
    )
    result.assert_success()
    report = result.xcoms["upsert"]
    assert report["rows_succeeded"] == 2
    [rejected] = report["rejected_rows"]
    assert (rejected["row"], rejected["key"]) == (2, "huge")
    assert "over Profile Store's 256 KB limit" in rejected["reason"]
    assert {p["ProfileId"] for p in emulator.state("profile_store")["profiles"]} == {"small", "also-small"}
    received = emulator.received("profile_store")
    assert sum(received["requests"].values()) == 2  # the big one never went out (no 413)


def test_an_event_without_type_or_action_is_rejected_and_the_others_arrive(
    run_dag, emulator, emulator_connections, tmp_path
):
    path = tmp_path / "events.csv"
    path.write_text("type,action,email,amount\norder,buy,a@x.io,3\n,buy,b@x.io,4\norder,,c@x.io,5\n")
    result = run_dag(
        "sync_events_from_file",
        conf={"path": str(path), "identifier_columns": ["email"], "max_rejected": 2},
    )
    result.assert_success()
    report = result.xcoms["send_events"]
    assert report["rejected_rows"] == [
        {"row": 2, "key": "b@x.io", "column": "type", "reason": "the event has no type"},
        {
            "row": 3,
            "key": "c@x.io",
            "column": "action",
            "reason": "the event has no action (ODP requires one)",
        },
    ]
    events = emulator.state("odp")["events"]
    assert [(e["identifiers"]["email"], e["action"]) for e in events] == [("a@x.io", "buy")]
    assert events[0]["data"] == {"amount": "3"}


def test_events_without_an_action_column_fail_before_sending(
    run_dag, emulator, emulator_connections, tmp_path
):
    path = tmp_path / "events.csv"
    path.write_text("type,email\norder,a@x.io\n")
    result = run_dag("sync_events_from_file", conf={"path": str(path), "identifier_columns": ["email"]})
    assert result.task_states["send_events"] == "failed"
    assert result.task_tries["send_events"] == 1
    assert "no column 'action'" in pushed_report(result)["stopped"]["reason"]
    assert "POST /events" not in emulator.received("odp")["requests"]


def test_a_column_that_is_no_attribute_fails_the_task_once_before_reading(
    run_dag, emulator, emulator_connections, tmp_path
):
    """One unregistered column is a setting error: one message naming it, not a reject per row."""
    dcp = OptimizelyDcpHook()
    dcp.create_service("svc")
    table = dcp.create_table("people")
    dcp.create_attribute(table.id, "plan", "string")
    rows = [(f"c{i}", "gold", "" if i % 2 else "x") for i in range(18)]
    path = write_csv(tmp_path / "people.csv", ["customer_id", "plan", "nickname"], rows)
    result = run_dag(
        "sync_dcp_profiles_from_file",
        conf={"path": path, "table_id": table.id, "identifier_column": "customer_id", "max_rejected": 100},
    )
    assert result.task_states["upsert"] == "failed"
    assert result.task_tries["upsert"] == 1
    report = pushed_report(result)
    assert (report["rows_read"], report["rows_sent"], report["rows_rejected"]) == (0, 0, 0)
    reason = report["stopped"]["reason"]
    assert "'nickname'" in reason and "not registered attributes of DCP table" in reason
    assert "column_mapping" in reason and "OptimizelyDcpRegisterAttributesOperator" in reason
    assert not any("customer_profile" in route for route in emulator.received("dcp")["requests"])

    mapped = run_dag(
        "sync_dcp_profiles_from_file",
        conf={
            "path": path,
            "table_id": table.id,
            "identifier_column": "customer_id",
            "column_mapping": {"plan": "plan"},
        },
    )
    mapped.assert_success()
    assert mapped.xcoms["upsert"]["rows_succeeded"] == 18


@pytest.mark.parametrize("content", ["", "email,city\n"], ids=["empty-file", "header-only"])
def test_an_empty_source_succeeds_and_sends_nothing(
    run_dag, emulator, emulator_connections, tmp_path, content
):
    path = tmp_path / "profiles.csv"
    path.write_text(content)
    result = run_dag("sync_odp_profiles_from_file", conf={"path": str(path)})
    result.assert_success()
    report = result.xcoms["upsert"]
    assert (report["rows_read"], report["rows_sent"]) == (0, 0)
    assert report["requests"]["total"] == 1  # the customers schema, read before the source was
    assert emulator.received("odp")["requests"] == {"GET /schema/objects/{object_type}": 1}
