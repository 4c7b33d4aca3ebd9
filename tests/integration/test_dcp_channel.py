"""The DCP channel under a real Airflow (dag.test()), the emulator with its S3 side (moto's server) and
PostgreSQL: a change set of at least ``bulk_threshold`` rows goes as one file of only those rows, a
smaller one through the profile API; rows Upload History refused are carried over and sent next run; the
profiles stored are exactly the table's rows."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import date, timedelta

import psycopg2
import pytest

from airflow_provider_optimizely.hooks.dcp import OptimizelyDcpHook
from tests.integration.helpers import PG_CONN, PG_DSN, unique

pytestmark = pytest.mark.integration

ROWS = 3_000
THRESHOLD = 500
PLANS = ["free", "gold, yearly", 'pro "plus"', "two\nlines"]


@pytest.fixture
def warehouse(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", PG_CONN)
    name = unique("dcp_people")
    db = psycopg2.connect(PG_DSN)
    db.autocommit = True

    def run(sql: str, rows=None) -> None:
        with db.cursor() as cursor:
            cursor.execute(sql) if rows is None else cursor.executemany(sql, rows)

    run(
        f"CREATE TABLE {name} (customer_id TEXT PRIMARY KEY, plan TEXT, visits BIGINT, score NUMERIC, "
        "vip BOOLEAN, since DATE)"
    )
    run(
        f"INSERT INTO {name} VALUES (%s, %s, %s, %s, %s, %s)",
        [
            (
                f"c{i:05d}",
                PLANS[i % 4],
                i * 1_000_003,
                None if i % 1000 == 999 else f"{i}.{i % 97:02d}",  # 3 rows leave score empty
                i % 2 == 0,
                date(2026, 1, 1) + timedelta(days=i % 300),
            )
            for i in range(ROWS)
        ],
    )
    yield name, run
    run(f"DROP TABLE IF EXISTS {name}")
    db.close()


@pytest.fixture
def dcp_table(emulator, emulator_connections):
    dcp = OptimizelyDcpHook()
    dcp.create_service("channel")
    table = dcp.create_table(f"people_{uuid.uuid4().hex[:8]}")
    dcp.create_attribute(table.id, "plan", "string")
    dcp.create_attribute(table.id, "visits", "long")
    dcp.create_attribute(table.id, "score", "double")
    dcp.create_attribute(table.id, "vip", "bool")
    dcp.create_attribute(table.id, "since", "datetime", format="yyyy-mm-dd")
    return table.id


def stored_profiles(emulator, table_id: int) -> dict[str, dict]:
    state = emulator.state("dcp")
    names = {str(a["id"]): a["name"] for a in state["attributes"]}
    return {
        p["customer_id"]: {names[k]: v for k, v in p["values"].items()}
        for p in state["profiles"]
        if p["table_id"] == table_id
    }


def expected_profiles(run, table: str) -> dict[str, dict]:
    db = psycopg2.connect(PG_DSN)
    with db, db.cursor() as cursor:
        cursor.execute(f"SELECT customer_id, plan, visits, score, vip, since FROM {table}")
        rows = cursor.fetchall()
    db.close()
    profiles = {}
    for customer, plan, visits, score, vip, since in rows:
        profile = {"plan": plan, "visits": visits, "vip": vip, "since": since.isoformat()}
        if score is not None:
            profile["score"] = float(score)
        profiles[customer] = profile
    return profiles


def profile_writes(emulator) -> int:
    return emulator.received("dcp")["items"].get("dcp_profiles", {}).get("total", 0)


def uploaded_rows(emulator, key: str) -> list[list[str]]:
    s3 = emulator.s3_admin_client()
    body = s3.get_object(Bucket="optimizely-import", Key=key)["Body"].read().decode()
    return list(csv.reader(io.StringIO(body)))


def test_auto_picks_the_file_above_the_threshold_and_the_api_below_and_carries_refused_rows_over(
    run_dag, emulator, dcp_table, warehouse
):
    table, sql = warehouse
    conf = {"table": table, "table_id": dcp_table, "bulk_threshold": THRESHOLD, "max_rejected": "5%"}
    emulator.set_faults("dcp", "IMPORT /upload", row_refusal_rate=0.01, seed=11)

    first = run_dag("dcp_channel_pg", conf=conf)
    first.assert_success()
    report = first.xcoms["upsert"]
    channel = report["channel"]
    assert channel["channel"] == "bulk" and channel["reason"] == f"bulk: {ROWS - 3:,} changed ≥ threshold 500"
    assert (channel["rows_in_file"], channel["rows_by_profile_api"]) == (ROWS - 3, 3)
    assert profile_writes(emulator) == 3  # only the rows that leave score empty went through the API
    [entry] = [e for e in OptimizelyDcpHook().list_upload_history(dcp_table)]
    assert entry.s3_key == channel["file"] and entry.status == "processed" and entry.rows_total == ROWS - 3
    refused = entry.rows_failed
    assert 10 <= refused <= 60 and channel["carried_over"] == refused == report["details"]["carried_over"]
    assert report["rows_rejected"] == refused and report["sync_state"]["acknowledged"]["failed"] == refused
    file_rows = uploaded_rows(emulator, channel["file"])
    assert file_rows[0] == ["customerId", "plan", "visits", "score", "vip", "since"]
    assert len(file_rows) - 1 == ROWS - 3
    expected = expected_profiles(sql, table)
    stored = stored_profiles(emulator, dcp_table)
    not_written = set(expected) - set(stored)
    assert len(not_written) == refused and set(report["channel"]["carried_over_keys"]) <= not_written
    assert all(stored[key] == expected[key] for key in stored)  # every value as the table holds it

    # Upload History's refusals are over; 1% of the rows change: 30 changed + the carried over, < 500.
    emulator.clear_faults()
    sql(f"UPDATE {table} SET visits = visits + 1 WHERE customer_id LIKE '%00' OR customer_id LIKE '%50'")
    before = profile_writes(emulator)
    second = run_dag("dcp_channel_pg", conf=conf)
    second.assert_success()
    report = second.xcoms["upsert"]
    classified = report["sync_state"]["classified"]
    updated = {key for key in expected if key.endswith(("00", "50"))}
    to_send = len(updated | not_written)  # a refused row that also changed is carried over
    assert (classified["changed"], classified["carried_over"]) == (len(updated - not_written), refused)
    assert report["channel"]["reason"] == f"rest: {to_send} changed < threshold 500"
    assert profile_writes(emulator) - before == to_send == report["rows_succeeded"]
    assert stored_profiles(emulator, dcp_table) == expected_profiles(sql, table)

    # 20% change: a file again, of exactly the changed rows.
    sql(f"UPDATE {table} SET plan = plan || ' v3' WHERE visits % 5 = 0")
    third = run_dag("dcp_channel_pg", conf=conf)
    third.assert_success()
    channel = third.xcoms["upsert"]["channel"]
    changed = third.xcoms["upsert"]["sync_state"]["classified"]["changed"]
    assert channel["channel"] == "bulk" and changed >= THRESHOLD
    assert channel["rows_in_file"] + channel["rows_by_profile_api"] == changed
    assert len(uploaded_rows(emulator, channel["file"])) == 1 + channel["rows_in_file"]
    assert stored_profiles(emulator, dcp_table) == expected_profiles(sql, table)


def test_a_retry_waits_for_the_file_the_failed_try_uploaded_and_commits_once(
    run_dag, emulator, dcp_table, tmp_path
):
    path = tmp_path / "people.csv"
    rows = [(f"r{i}", "gold", str(i), f"{i}.5", "true", "2026-03-01") for i in range(400)]
    with path.open("w", newline="") as out:
        csv.writer(out).writerows([("customer_id", "plan", "visits", "score", "vip", "since"), *rows])
    emulator.set_processing_delay(300)  # 3 s at the tests' time scale: longer than the try waits
    result = run_dag("dcp_channel_retry", conf={"path": str(path), "table_id": dcp_table})
    result.assert_success()
    assert result.task_tries["upsert"] == 2
    report = result.xcoms["upsert"]
    assert report["channel"]["reused_upload"] is True and report["rows_succeeded"] == 400
    state = report["sync_state"]
    assert state["resumed"] and state["unanswered_before"] == 400 and state["classified"]["resent"] == 400
    history = list(OptimizelyDcpHook().list_upload_history(dcp_table))
    assert [entry.s3_key for entry in history] == [report["channel"]["file"]]  # uploaded once
    assert len(stored_profiles(emulator, dcp_table)) == 400
    emulator.set_processing_delay(0)
    again = run_dag("dcp_channel_retry", conf={"path": str(path), "table_id": dcp_table})
    again.assert_success()
    assert again.xcoms["upsert"]["sync_state"]["classified"]["unchanged"] == 400  # committed once, whole
    assert again.xcoms["upsert"]["channel"]["changed"] == 0
