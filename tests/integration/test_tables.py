"""Create-table and register-attributes under a real Airflow, against the emulator over loopback."""

from __future__ import annotations

import json
import sqlite3

import psycopg2
import pytest
import requests

from airflow_provider_optimizely.hooks.optimove import OptimoveHook
from airflow_provider_optimizely.operators.optimove import remembered_connection_key
from tests.integration.helpers import PG_CONN, PG_DSN, unique

pytestmark = pytest.mark.integration

PROFILE_COLUMNS = """
    customer_id TEXT PRIMARY KEY,
    visits INTEGER,
    lifetime_value NUMERIC(12, 2),
    score DOUBLE PRECISION,
    vip BOOLEAN,
    birthday DATE,
    last_seen TIMESTAMP,
    city VARCHAR(40),
    raw_profile BYTEA
"""
# What the columns above must become (raw_profile is excluded by the tests).
DCP_INFERRED = {
    "visits": ("long", None),
    "lifetime_value": ("double", None),
    "score": ("double", None),
    "vip": ("bool", None),
    "birthday": ("datetime", "yyyy-mm-dd"),
    "last_seen": ("datetime", "yyyy-mm-ddThh:mm:ssZ"),
    "city": ("string", None),
}


def dcp_tables(emulator, name: str) -> list[dict]:
    return [t for t in emulator.state("dcp")["tables"] if t["name"] == name and not t["archived"]]


def dcp_attributes(emulator, table_id: int) -> dict[str, tuple[str, str | None]]:
    return {
        a["name"]: (a["datatype"], a.get("format") or None)
        for a in emulator.state("dcp")["attributes"]
        if a["dcp_datasource_id"] == table_id and not a["archived"]
    }


def test_dcp_table_and_attributes_are_created_once_across_runs(run_dag, emulator, emulator_connections):
    name = unique("customers")
    attributes = [
        {"name": "plan", "datatype": "string"},
        {"name": "signed_up", "datatype": "datetime", "format": "yyyy-mm-dd"},
    ]
    first = run_dag("table_setup_dcp_attributes", conf={"table_name": name, "attributes": attributes})
    first.assert_success()
    table_id = first.xcoms["create_table"]
    assert [t["id"] for t in dcp_tables(emulator, name)] == [table_id]
    assert len(emulator.state("dcp")["services"]) == 1  # the empty account got its one service
    assert dcp_attributes(emulator, table_id) == {
        "plan": ("string", None),
        "signed_up": ("datetime", "yyyy-mm-dd"),
    }
    assert [a["name"] for a in first.xcoms["register_attributes"]["created"]] == ["plan", "signed_up"]

    attributes.append({"name": "visits", "datatype": "long"})
    second = run_dag("table_setup_dcp_attributes", conf={"table_name": name, "attributes": attributes})
    second.assert_success()
    assert second.xcoms["create_table"] == table_id
    assert [t["id"] for t in dcp_tables(emulator, name)] == [table_id]
    report = second.xcoms["register_attributes"]
    assert report["created"] == [{"name": "visits", "datatype": "long"}]
    assert [a["name"] for a in report["existing"]] == ["plan", "signed_up"]
    assert report["requests"]["total"] >= 2
    assert report["target"] == table_id


def test_dcp_create_table_finds_an_existing_table_past_the_first_page(
    run_dag, emulator, emulator_connections
):
    # Seed 130 tables through the emulator's own REST API (setup, not the code under test).
    dcp = emulator.urls["dcp"]
    headers = {"Token": emulator.keys["dcp_token"]}
    service = requests.post(f"{dcp}/dcp_services", json={"name": "svc"}, headers=headers, timeout=10).json()
    names = [unique("t") for _ in range(130)]
    ids = {}
    for name in names:
        answer = requests.post(
            f"{dcp}/dcp_services/{service['id']}/dcp_datasources",
            json={"name": name, "keyfield_locator_type": "uid"},
            headers=headers,
            timeout=10,
        )
        assert answer.status_code == 201, answer.text
        ids[name] = answer.json()["id"]
    before = len(emulator.state("dcp")["tables"])

    result = run_dag("table_setup_dcp_create", conf={"table_name": names[-1]})
    result.assert_success()
    assert result.xcoms["create_table"] == ids[names[-1]]
    assert len(emulator.state("dcp")["tables"]) == before  # nothing created


def test_dcp_attribute_of_another_datatype_fails_the_task_and_creates_nothing(
    run_dag, emulator, emulator_connections
):
    name = unique("customers")
    run_dag(
        "table_setup_dcp_attributes",
        conf={"table_name": name, "attributes": [{"name": "visits", "datatype": "double"}]},
    ).assert_success()
    result = run_dag(
        "table_setup_dcp_attributes",
        conf={
            "table_name": name,
            "attributes": [{"name": "extra", "datatype": "string"}, {"name": "visits", "datatype": "long"}],
        },
    )
    assert result.state == "failed"
    assert result.task_states["register_attributes"] == "failed"
    assert result.task_tries["register_attributes"] == 1
    table_id = result.xcoms["create_table"]
    assert dcp_attributes(emulator, table_id) == {"visits": ("double", None)}


def test_dcp_create_survives_a_dropped_connection_without_a_duplicate(
    run_dag, emulator, emulator_connections
):
    name = unique("customers")
    emulator.set_faults("dcp", route="POST /dcp_services/{service_id}/dcp_datasources", next=["drop"])
    result = run_dag("table_setup_dcp_create", conf={"table_name": name})
    result.assert_success()
    assert [t["id"] for t in dcp_tables(emulator, name)] == [result.xcoms["create_table"]]
    assert emulator.received("dcp")["faults"]


def test_odp_object_type_and_fields_are_created_once(run_dag, emulator, emulator_connections):
    name = unique("cards")
    attributes = [{"name": "tier", "type": "string"}, {"name": "points", "type": "number"}]
    conf = {"object_type": name, "attributes": attributes}
    first = run_dag("table_setup_odp_attributes", conf=conf)
    first.assert_success()
    assert first.xcoms["create_object_type"] == name
    second = run_dag("table_setup_odp_attributes", conf=conf)
    second.assert_success()
    assert second.xcoms["register_fields"]["created"] == []
    schema = {o["name"]: o for o in emulator.state("odp")["schema"]}
    fields = schema[name]["fields"]
    fields = fields.values() if isinstance(fields, dict) else fields
    assert {f["name"]: f["type"] for f in fields} == {"tier": "string", "points": "number"}


def remembered(name: str) -> dict:
    from airflow.models.variable import Variable

    return json.loads(Variable.get(remembered_connection_key(OptimoveHook(), name)))


def test_optimove_connection_is_remembered_across_runs(run_dag, emulator, emulator_connections):
    name = unique("customers")
    conf = {"name": name, "primary_key": "customer_id"}
    first = run_dag("table_setup_optimove_create", conf=conf)
    first.assert_success()
    second = run_dag("table_setup_optimove_create", conf=conf)
    second.assert_success()
    uuid_ = first.xcoms["create_data_connection"]
    assert second.xcoms["create_data_connection"] == uuid_
    connections = [c for c in emulator.state("optimove")["connections"] if c["name"] == name]
    assert [c["data_connection_uuid"] for c in connections] == [uuid_]
    assert remembered(name) == {"uuid": uuid_, "primary_key": "customer_id", "conn_id": "optimove_default"}


def test_a_remembered_optimove_connection_that_is_gone_names_the_variable(
    run_dag, emulator, emulator_connections, capsys
):
    name = unique("customers")
    conf = {"name": name, "primary_key": "customer_id"}
    run_dag("table_setup_optimove_create", conf=conf).assert_success()
    stale = remembered(name)["uuid"]
    emulator.reset()  # the emulator restarted: Optimove no longer has the connection
    capsys.readouterr()
    result = run_dag("table_setup_optimove_create", conf=conf)
    assert result.task_states["create_data_connection"] == "failed"
    assert result.task_tries["create_data_connection"] == 1
    variable = remembered_connection_key(OptimoveHook(), name)
    assert f"Airflow Variable {variable}. Delete that Variable" in capsys.readouterr().out

    again = run_dag("table_setup_optimove_create", conf={**conf, "recreate_if_missing": True})
    again.assert_success()
    fresh = again.xcoms["create_data_connection"]
    assert fresh != stale
    assert [c["data_connection_uuid"] for c in emulator.state("optimove")["connections"]] == [fresh]
    assert remembered(name)["uuid"] == fresh


def test_the_remembered_optimove_connection_is_keyed_by_account(monkeypatch, emulator, emulator_connections):
    other_brand = json.loads(emulator_connections["optimove_default"])
    other_brand["extra"]["brand_api_key"] = "another-brand"
    monkeypatch.setenv("AIRFLOW_CONN_OTHER_BRAND", json.dumps(other_brand))
    assert remembered_connection_key(OptimoveHook("other_brand"), "n") != remembered_connection_key(
        OptimoveHook(), "n"
    )
    assert "another-brand" not in remembered_connection_key(OptimoveHook("other_brand"), "n")


# -- inference from a warehouse table -----------------------------------------------------------------


@pytest.fixture
def postgres_table(monkeypatch):
    name = unique("profiles")
    conn = psycopg2.connect(PG_DSN)
    conn.autocommit = True
    with conn.cursor() as cursor:
        cursor.execute(f"CREATE TABLE {name} ({PROFILE_COLUMNS})")
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", PG_CONN)
    yield f"public.{name}"
    with conn.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {name}")
    conn.close()


@pytest.fixture
def sqlite_table(monkeypatch, tmp_path):
    path = tmp_path / "warehouse.db"
    name = unique("profiles")
    with sqlite3.connect(path) as conn:
        conn.execute(f"CREATE TABLE {name} ({PROFILE_COLUMNS.replace('BYTEA', 'BLOB')})")
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", json.dumps({"conn_type": "sqlite", "host": str(path)}))
    return name


@pytest.mark.parametrize("warehouse", ["postgres_table", "sqlite_table"])
def test_dcp_attributes_inferred_from_a_warehouse_table(
    warehouse, request, run_dag, emulator, emulator_connections
):
    source = request.getfixturevalue(warehouse)
    name = unique("customers")
    conf = {"table_name": name, "source_table": source, "exclude": ["raw_profile"]}
    result = run_dag("table_setup_dcp_inferred", conf=conf)
    result.assert_success()
    assert dcp_attributes(emulator, result.xcoms["create_table"]) == DCP_INFERRED


def test_an_unmappable_column_fails_with_its_name(run_dag, emulator, emulator_connections, sqlite_table):
    result = run_dag(
        "table_setup_dcp_inferred", conf={"table_name": unique("c"), "source_table": sqlite_table}
    )
    assert result.task_states["register_attributes"] == "failed"
    assert result.task_tries["register_attributes"] == 1


def test_odp_fields_inferred_from_postgres_with_an_override(
    run_dag, emulator, emulator_connections, postgres_table
):
    name = unique("cards")
    conf = {
        "object_type": name,
        "source_table": postgres_table,
        "overrides": {"raw_profile": "string", "visits": "string"},
    }
    result = run_dag("table_setup_odp_inferred", conf=conf)
    result.assert_success()
    created = {a["name"]: a["datatype"] for a in result.xcoms["register_fields"]["created"]}
    assert created == {
        "visits": "string",
        "lifetime_value": "number",
        "score": "number",
        "vip": "boolean",
        "birthday": "timestamp",
        "last_seen": "timestamp",
        "city": "string",
        "raw_profile": "string",
    }
