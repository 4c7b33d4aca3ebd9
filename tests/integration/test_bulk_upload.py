"""Bulk upload and Upload History under a real Airflow (dag.test()), the emulator and moto's S3 server.

Nothing of ours is mocked: the operator reads the table from the emulated DCP API, uploads through the
Amazon provider to moto's S3 server with the table's keys, the emulator's import worker processes the file,
and the sensor reads Upload History (deferring to the trigger, run inline by dag.test()).
"""

from __future__ import annotations

import hashlib
import uuid

import psycopg2
import pytest

from airflow_provider_optimizely.hooks.dcp import OptimizelyDcpHook
from tests.integration.helpers import PG_CONN, PG_DSN, unique, write_csv

pytestmark = pytest.mark.integration

SALT = "integration-salt"
TRIGGER = "airflow_provider_optimizely.triggers.dcp.OptimizelyDcpUploadHistoryTrigger"


@pytest.fixture
def dcp_table(emulator, emulator_connections):
    dcp = OptimizelyDcpHook()
    dcp.create_service("bulk")
    table = dcp.create_table(f"bulk_{uuid.uuid4().hex[:8]}")
    dcp.create_attribute(table.id, "plan", "string")
    dcp.create_attribute(table.id, "visits", "long")
    dcp.create_attribute(table.id, "last_order", "datetime", format="yyyy-mm-dd")
    dcp.create_attribute(table.id, "email", "string")
    return dcp.get_table(table.id)


@pytest.fixture
def warehouse(monkeypatch):
    """A uniquely named PostgreSQL table behind the ``warehouse`` connection; dropped afterwards."""
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", PG_CONN)
    monkeypatch.setenv("AIRFLOW_VAR_DCP_HASH_SALT", SALT)
    name = unique("customers")
    db = psycopg2.connect(PG_DSN)
    db.autocommit = True
    with db.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE {name} (customer_id text, plan text, visits bigint, last_order date, email text)"
        )
        cursor.executemany(
            f"INSERT INTO {name} VALUES (%s, %s, %s, %s, %s)",
            [
                (
                    f"c{i}",
                    ["free", "gold", 'pro "plus"'][i % 3],
                    i,
                    f"2026-01-{1 + i % 28:02d}",
                    f"U{i}@Example.com",
                )
                for i in range(250)
            ],
        )
    yield name
    with db.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {name}")
    db.close()


def profiles_by_name(emulator, table_id):
    state = emulator.state("dcp")
    names = {
        str(a["id"]): a["name"]
        for a in state["attributes"]
        if a.get("dcp_datasource_id", table_id) == table_id
    }
    return {
        p["customer_id"]: {names.get(k, k): v for k, v in p["values"].items()}
        for p in state["profiles"]
        if p["table_id"] == table_id
    }


def object_versions(emulator, prefix):
    s3 = emulator.s3_admin_client()
    versions = s3.list_object_versions(Bucket="optimizely-import", Prefix=prefix).get("Versions", [])
    return [(v["Key"], v["VersionId"]) for v in versions]


def recorded_triggers(s3_key):
    """Triggers Airflow recorded when a task deferred on ``s3_key`` (dag.test() runs no trigger clean-up)."""
    from airflow.models.trigger import Trigger
    from airflow.utils.session import create_session

    with create_session() as session:
        triggers = session.query(Trigger).filter(Trigger.classpath == TRIGGER).all()
        return [t for t in triggers if s3_key in str(t.kwargs.get("files"))]


def example_conf(dcp_table, warehouse, **overrides):
    conf = {
        "table_id": dcp_table.id,
        "sql": f'SELECT customer_id AS "customerId", plan, visits, last_order FROM {warehouse} ORDER BY 1',
        "deferrable": True,
        "poll_interval": 0.2,
        "hash_columns": [],
    }
    return {**conf, **overrides}


@pytest.mark.parametrize("deferrable", [True, False], ids=["deferrable", "poke"])
def test_the_example_dag_loads_the_warehouse_into_dcp(
    run_dag, emulator, dcp_table, warehouse, deferrable, capfd
):
    # Files stay pending a moment (100 s at the tests' time scale of 1/100), so that the sensor's first
    # check on the worker does not settle it.
    emulator.set_processing_delay(100)
    result = run_dag(
        "example_dcp_bulk_upload", conf=example_conf(dcp_table, warehouse, deferrable=deferrable)
    )
    result.assert_success()

    upload = result.xcoms["bulk_upload"]
    assert upload["s3_key"].startswith(f"{dcp_table.s3_path}/example_dcp_bulk_upload.bulk_upload__")
    assert (upload["rows"], upload["rows_uploaded"], upload["rows_rejected"]) == (250, 250, 0)
    # Two DCP API calls before the upload: the table (its S3 path and keys), then its attributes.
    assert upload["requests"]["total"] == 2 and upload["requests"]["retried"] == 0
    report = result.xcoms["report"]
    assert report["rows_applied"] == 250 and report["rows_refused_by_dcp"] == 0
    profiles = profiles_by_name(emulator, dcp_table.id)
    assert len(profiles) == 250
    assert profiles["c5"] == {"plan": 'pro "plus"', "visits": 5, "last_order": "2026-01-06"}

    logs = capfd.readouterr().out
    triggers = recorded_triggers(upload["s3_key"])
    if deferrable:
        # The sensor's task really deferred: Airflow recorded its trigger, ran it, and resumed the task.
        assert len(triggers) == 1
        assert triggers[0].kwargs["table_id"] == dcp_table.id
        assert "Resumed from the triggerer" in logs
    else:
        assert triggers == []
        assert "Resumed from the triggerer" not in logs
        assert "waiting for" in logs  # it poked more than once


def test_a_pii_column_is_refused_then_uploaded_hashed(run_dag, emulator, dcp_table, warehouse):
    sql = f'SELECT customer_id AS "customerId", email FROM {warehouse}'
    refused = run_dag("example_dcp_bulk_upload", conf=example_conf(dcp_table, warehouse, sql=sql))
    assert refused.task_states["bulk_upload"] == "failed"
    assert refused.task_tries["bulk_upload"] == 1  # refused for good: no retry
    assert object_versions(emulator, dcp_table.s3_path) == []

    hashed = run_dag(
        "example_dcp_bulk_upload", conf=example_conf(dcp_table, warehouse, sql=sql, hash_columns=["email"])
    )
    hashed.assert_success()
    stored = profiles_by_name(emulator, dcp_table.id)
    assert stored["c7"]["email"] == hashlib.sha256(f"{SALT}u7@example.com".encode()).hexdigest()
    assert not any("@" in profile["email"] for profile in stored.values())


def test_two_runs_of_the_same_data_never_share_a_file_name(run_dag, emulator, dcp_table, warehouse):
    conf = example_conf(dcp_table, warehouse)
    first = run_dag("example_dcp_bulk_upload", conf=conf)
    second = run_dag("example_dcp_bulk_upload", conf=conf)
    first.assert_success()
    second.assert_success()
    keys = {first.xcoms["bulk_upload"]["s3_key"], second.xcoms["bulk_upload"]["s3_key"]}
    assert len(keys) == 2
    assert first.xcoms["bulk_upload"]["content_hash"] == second.xcoms["bulk_upload"]["content_hash"]
    assert sorted(key for key, _ in object_versions(emulator, dcp_table.s3_path)) == sorted(keys)


def upload_csv(path, rows):
    return write_csv(path, ("customerId", "plan", "visits", "last_order"), rows)


@pytest.mark.parametrize("dag_id", ["bulk_upload_lost_after_saving", "bulk_upload_lost_before_saving"])
def test_a_retried_upload_does_not_create_a_second_object(run_dag, emulator, dcp_table, tmp_path, dag_id):
    path = upload_csv(tmp_path / "in.csv", [(f"c{i}", "gold", i, "2026-02-01") for i in range(40)])
    result = run_dag(dag_id, conf={"table_id": dcp_table.id, "path": path})
    result.assert_success()
    assert result.task_tries["upload"] == 2
    upload = result.xcoms["upload"]
    assert upload["reused"] is True
    versions = object_versions(emulator, dcp_table.s3_path)
    assert versions == [(upload["s3_key"], versions[0][1])]
    assert "__try1__" in upload["s3_key"]
    assert len(profiles_by_name(emulator, dcp_table.id)) == 40


def test_a_bad_file_uploads_nothing_and_names_the_row_and_column(
    run_dag, emulator, dcp_table, tmp_path, capfd
):
    rows = [
        ("c1", "gold", 1, "2026-02-01"),
        ("c2", "gold", "two", "2026-02-01"),
        ("c3", "free", 3, "2026-02-30"),
    ]
    result = run_dag(
        "bulk_upload_file",
        conf={"table_id": dcp_table.id, "path": upload_csv(tmp_path / "bad.csv", rows)},
    )
    assert result.task_states["upload"] == "failed"
    assert object_versions(emulator, dcp_table.s3_path) == []
    logs = capfd.readouterr().out
    assert "row 3, column 'visits': not a long: 'two'" in logs
    assert "row 4, column 'last_order'" in logs


def test_bad_rows_within_max_rejected_are_dropped_and_the_rest_processed(
    run_dag, emulator, dcp_table, tmp_path
):
    rows = [(f"c{i}", "gold", "x" if i == 5 else i, "2026-02-01") for i in range(20)]
    conf = {
        "table_id": dcp_table.id,
        "path": upload_csv(tmp_path / "some_bad.csv", rows),
        "max_rejected": 1,
    }
    result = run_dag("bulk_upload_file", conf=conf)
    result.assert_success()
    upload = result.xcoms["upload"]
    assert (upload["rows"], upload["rows_uploaded"], upload["rows_rejected"]) == (20, 19, 1)
    assert upload["problems"][0]["row"] == 7 and upload["problems"][0]["column"] == "visits"
    assert sorted(profiles_by_name(emulator, dcp_table.id)) == sorted(f"c{i}" for i in range(20) if i != 5)


def test_a_try_killed_mid_upload_leaves_nothing_behind_once_retried(run_dag, emulator, dcp_table, tmp_path):
    """What a killed try started (an unfinished multipart upload, a work folder) is cleaned by the retry."""
    import tempfile
    from pathlib import Path

    path = upload_csv(tmp_path / "in.csv", [(f"c{i}", "gold", i, "2026-02-01") for i in range(30)])
    work_dirs_before = set(Path(tempfile.gettempdir()).glob("optimizely-dcp-upload-*"))
    result = run_dag("bulk_upload_killed_mid_upload", conf={"table_id": dcp_table.id, "path": path})
    result.assert_success()
    assert result.task_tries["upload"] == 2
    unfinished = emulator.s3_admin_client().list_multipart_uploads(
        Bucket="optimizely-import", Prefix=dcp_table.s3_path
    )
    assert unfinished.get("Uploads", []) == []
    assert set(Path(tempfile.gettempdir()).glob("optimizely-dcp-upload-*")) <= work_dirs_before
    assert len(profiles_by_name(emulator, dcp_table.id)) == 30
