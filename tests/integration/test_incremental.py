"""Incremental syncs under a real Airflow, the emulator and PostgreSQL: a second run sends exactly what
changed, mirror mode deletes exactly what was removed, a dry run sends nothing, a run killed halfway
resumes, and the state can live in an ``s3://`` store shared by workers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone

import psycopg2
import pytest

from airflow_provider_optimizely.hooks.optimove import OptimoveHook
from tests.conftest import REPO_ROOT
from tests.integration.helpers import PG_CONN, PG_DSN, unique, write_csv
from tests.waiting import wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def warehouse(monkeypatch):
    """Run SQL on the PostgreSQL warehouse behind the ``warehouse`` connection; tables dropped after."""
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", PG_CONN)
    db = psycopg2.connect(PG_DSN)
    db.autocommit = True
    created: list[str] = []

    def run(sql: str, rows=None, table: str | None = None) -> None:
        if table:
            created.append(table)
        with db.cursor() as cursor:
            if rows is None:
                cursor.execute(sql)
            else:
                cursor.executemany(sql, rows)

    yield run
    for table in created:
        run(f"DROP TABLE IF EXISTS {table}")
    db.close()


def received_total(emulator, api: str, kind: str) -> int:
    return emulator.received(api)["items"].get(kind, {}).get("total", 0)


ROWS = 20_000


def test_a_second_run_sends_exactly_the_changed_and_new_rows(
    run_dag, emulator, emulator_connections, warehouse
):
    table = unique("people")
    warehouse(f"CREATE TABLE {table} (user_id INTEGER PRIMARY KEY, value TEXT, bucket INTEGER)", table=table)
    warehouse(f"INSERT INTO {table} VALUES (%s, %s, %s)", [(i, f"v{i}", i % 7) for i in range(ROWS)])
    connection = OptimoveHook().create_connection("people", primary_key="user_id").data_connection_uuid
    conf = {"table": table, "data_connection_uuid": connection}

    first = run_dag("incremental_pg_optimove", conf=conf)
    first.assert_success()
    assert first.xcoms["upsert"]["rows_sent"] == ROWS
    assert first.xcoms["upsert"]["sync_state"]["full_reason"] == "first run"
    sent_before = received_total(emulator, "optimove", "optimove_records")

    # 1% changed, 0.1% new, 0.1% removed.
    warehouse(f"UPDATE {table} SET value = value || '-v2' WHERE user_id % 100 = 3")
    warehouse(f"INSERT INTO {table} VALUES (%s, 'new', 0)", [(ROWS + i,) for i in range(20)])
    warehouse(f"DELETE FROM {table} WHERE user_id < {ROWS} AND user_id % 1000 = 7")
    second = run_dag("incremental_pg_optimove", conf=conf)
    second.assert_success()
    report = second.xcoms["upsert"]
    assert received_total(emulator, "optimove", "optimove_records") - sent_before == 200 + 20
    assert report["rows_read"] == ROWS + 20 - 20 and report["rows_sent"] == 220
    classified = report["sync_state"]["classified"]
    assert (classified["changed"], classified["new"], classified["unchanged"]) == (200, 20, ROWS - 220)
    records = emulator.state("optimove")["records"][connection]
    assert records["103"]["value"] == "v103-v2" and records[str(ROWS + 5)]["value"] == "new"

    # A dry run: what a real run would send is counted and named; nothing is sent, nothing kept.
    warehouse(f"UPDATE {table} SET bucket = 99 WHERE user_id IN (1, 2)")
    before_preview = received_total(emulator, "optimove", "optimove_records")
    preview = run_dag("incremental_pg_optimove", conf={**conf, "dry_run": True})
    preview.assert_success()
    assert received_total(emulator, "optimove", "optimove_records") == before_preview
    assert preview.xcoms["upsert"]["sync_state"]["classified"]["changed"] == 2
    assert sorted(preview.xcoms["upsert"]["sync_state"]["samples"]["changed"]) == ["1", "2"]
    applied = run_dag("incremental_pg_optimove", conf=conf)
    assert applied.xcoms["upsert"]["rows_sent"] == 2  # the dry run kept nothing


PROFILES = 2_000


def test_mirror_mode_deletes_exactly_the_removed_profiles_and_its_guards_hold(
    run_dag, emulator, emulator_connections, warehouse
):
    table = unique("profiles")
    warehouse(f"CREATE TABLE {table} (id TEXT PRIMARY KEY, name TEXT, visits INTEGER)", table=table)
    warehouse(
        f"INSERT INTO {table} VALUES (%s, %s, %s)", [(f"p{i}", f"Name {i}", i) for i in range(PROFILES)]
    )
    conf = {"table": table}
    run_dag("incremental_pg_profile_store_mirror", conf=conf).assert_success()
    puts_and_deletes = emulator.received("profile_store")["requests"]

    warehouse(f"UPDATE {table} SET name = name || ' II' WHERE visits % 100 = 1")  # 20 changed
    warehouse(f"INSERT INTO {table} VALUES ('n1', 'New', 1), ('n2', 'New', 2)")
    warehouse(f"DELETE FROM {table} WHERE id IN ('p10', 'p20')")
    second = run_dag("incremental_pg_profile_store_mirror", conf=conf)
    second.assert_success()
    after = emulator.received("profile_store")["requests"]
    put, delete = "PUT /api/v1.0/profiles/{profile_id}", "DELETE /api/v1.0/profiles/{scope}/{profileid}"
    assert after[put] - puts_and_deletes[put] == 22
    assert after.get(delete, 0) - puts_and_deletes.get(delete, 0) == 2
    assert second.xcoms["mirror"]["details"]["deleted"] == 2
    stored = {p["ProfileId"] for p in emulator.state("profile_store")["profiles"]}
    assert stored == {f"p{i}" for i in range(PROFILES)} - {"p10", "p20"} | {"n1", "n2"}

    # A broken query that lost half the rows, then one that lost all: refused before any delete.
    warehouse(f"DELETE FROM {table} WHERE visits % 2 = 0")
    halved = run_dag("incremental_pg_profile_store_mirror", conf=conf)
    assert halved.task_states["mirror"] == "failed" and halved.task_tries["mirror"] == 1
    warehouse(f"DELETE FROM {table}")
    emptied = run_dag("incremental_pg_profile_store_mirror", conf=conf)
    assert emptied.task_states["mirror"] == "failed"
    assert len(emulator.state("profile_store")["profiles"]) == len(stored)


def run_in_a_process(dag_id: str, conf: dict, logical_date: datetime, log) -> subprocess.Popen:
    command = [
        sys.executable,
        "-m",
        "tests.integration.dag_process",
        dag_id,
        json.dumps(conf),
        logical_date.isoformat(),
    ]
    return subprocess.Popen(
        command, cwd=REPO_ROOT, env=os.environ.copy(), stdout=log, stderr=subprocess.STDOUT
    )


HOLD_SECONDS = 12.0  # how long the server holds each request once the run is a third done
# A slot that has sent nothing this long after another's request was held is parked in the rate limiter
# (ODP's pacing keeps a batch back while another is unanswered): its batch is not marked in flight.
PARKED_SECONDS = 3.0


def requests_held(emulator, api: str, route: str) -> int:
    """Requests of ``route`` the emulator has held for a slow answer, so far (counted as their fault is
    decided, so a count read after ``set_faults`` returns is of requests given the new delay)."""
    return emulator.received(api)["faults"].get(f"{route} -> delay", 0)


@pytest.mark.parametrize(
    ("dag_id", "api", "route", "kind", "batch", "in_flight"),
    [
        (
            "incremental_file_optimove",
            "optimove",
            "POST /connections/{connection}/upload_data",
            "optimove_records",
            1000,
            2,
        ),
        ("incremental_file_odp", "odp", "POST /profiles", "odp_profiles", 250, 2),
    ],
    ids=["optimove", "odp"],
)
def test_a_run_killed_halfway_resumes_and_resends_at_most_what_was_in_flight(
    run_dag, emulator, emulator_connections, tmp_path, dag_id, api, route, kind, batch, in_flight
):
    # The scale is 1,000,000 rows (OPTIMIZELY_RESUME_ROWS=1000000); CI runs 40,000, which
    # bounds the same things: what is resent depends on the batches in flight, not on the size.
    rows = int(os.environ.get("OPTIMIZELY_RESUME_ROWS", "40000"))
    path = write_csv(
        tmp_path / "people.csv",
        ["user_id" if api == "optimove" else "first_name", "email", "city"],
        [(i, f"u{i}@x.io", f"C{i % 9}") for i in range(rows)],
    )
    conf = {"path": path}
    if api == "optimove":
        conf["data_connection_uuid"] = (
            OptimoveHook().create_connection("people", primary_key="user_id").data_connection_uuid
        )
    emulator.set_faults(api, route=route, delay_seconds=0.05)  # long enough a run to stop it halfway
    logical_date = datetime(2026, 4, 1, tzinfo=timezone.utc)

    log = (tmp_path / "lost-attempt.log").open("w")
    process = run_in_a_process(dag_id, conf, logical_date, log)
    try:

        def a_third_sent() -> bool:
            assert process.poll() is None, f"the first attempt ended by itself: {log.name}"
            return received_total(emulator, api, kind) >= rows * 0.3

        wait_until(a_third_sent, timeout=120 + rows / 2_000, what="a third of the rows sent")
        # The worker dies while the server holds every batch in flight (a slot the rate limiter parks has
        # none; a request is counted once its head has arrived, its body right behind it, milliseconds
        # before the kill can follow). A kill in the instant between a batch's checkpoint ("in flight")
        # and its bytes reaching the server is the one moment where the report counts as resent a batch
        # the server never had: no client can write the checkpoint and send at once (docs/sync-state.md,
        # Checkpoints).
        emulator.set_faults(api, route=route, delay_seconds=HOLD_SECONDS)
        held_before = requests_held(emulator, api, route)
        parked_after = time.monotonic() + PARKED_SECONDS

        def every_slot_held_or_parked() -> bool:
            assert process.poll() is None, f"the first attempt ended by itself: {log.name}"
            held = requests_held(emulator, api, route) - held_before
            return held >= in_flight or (held >= 1 and time.monotonic() >= parked_after)

        # A request held since the switch is answered HOLD_SECONDS later: waiting less, every slot's
        # request is one of them or waits for the rate budget, and no batch is between its checkpoint
        # and the wire.
        wait_until(every_slot_held_or_parked, timeout=HOLD_SECONDS / 2, what="every slot held or parked")
        applied_at_the_kill = received_total(emulator, api, kind)
        held_at_the_kill = requests_held(emulator, api, route) - held_before
        process.send_signal(signal.SIGKILL)  # the worker is lost: no clean-up of any kind runs
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    # What a server received whole, it applies, client or not (an Airflow retry comes later still).
    wait_until(
        lambda: received_total(emulator, api, kind) >= applied_at_the_kill + held_at_the_kill * batch,
        timeout=HOLD_SECONDS + 30,
        what="the batches held at the kill applied",
    )
    emulator.clear_faults()
    sent_by_the_lost_attempt = received_total(emulator, api, kind)
    assert sent_by_the_lost_attempt < rows

    retried = run_dag(dag_id, conf=conf, logical_date=logical_date)  # the same run: an Airflow retry
    retried.assert_success()
    report = retried.xcoms["upsert"]
    state = report["sync_state"]
    received = emulator.received(api)
    items = received["items"][kind]
    print(
        f"{api}: {rows} rows, {sent_by_the_lost_attempt} applied from the lost attempt, resent"
        f" {state['classified']['resent']}, emulator duplicates {items['duplicates']}, faults"
        f" {received['faults']}"
    )
    assert items["distinct"] == rows  # nothing lost
    assert state["resumed"] is True and state["acknowledged_before"] > 0
    # Sent again: only what was in flight when the process died, and the report says exactly how much:
    # a batch counts as resent once its request went on the wire, and the server (the emulator too)
    # applies a request that fully arrived whether or not its client is still there.
    assert items["duplicates"] == state["classified"]["resent"] <= in_flight * batch
    assert report["rows_sent"] == rows - state["acknowledged_before"]


@pytest.fixture
def s3_state_store(monkeypatch):
    """An ``s3://`` bucket on moto's server, and an Amazon connection ``state_s3`` to it."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s"
    ).create_bucket(Bucket="sync-state")
    connection = {
        "conn_type": "aws",
        "login": "k",
        "password": "s",
        "extra": {"endpoint_url": endpoint, "region_name": "us-east-1"},
    }
    monkeypatch.setenv("AIRFLOW_CONN_STATE_S3", json.dumps(connection))
    try:
        yield "s3://sync-state/optimizely", endpoint
    finally:
        server.stop()


def test_state_in_an_s3_store_is_shared_by_workers_on_other_hosts(
    run_dag, emulator, emulator_connections, warehouse, s3_state_store, tmp_path
):
    """A worker with a fresh Airflow home (another host, a new pod) continues from the state another left."""
    import boto3

    uri, endpoint = s3_state_store
    table = unique("people")
    warehouse(f"CREATE TABLE {table} (user_id INTEGER PRIMARY KEY, value TEXT, bucket INTEGER)", table=table)
    warehouse(f"INSERT INTO {table} VALUES (%s, %s, %s)", [(i, f"v{i}", 0) for i in range(500)])
    connection = OptimoveHook().create_connection("people", primary_key="user_id").data_connection_uuid
    conf = {
        "table": table,
        "data_connection_uuid": connection,
        "state_store": uri,
        "state_store_conn_id": "state_s3",
    }
    run_dag("incremental_pg_optimove", conf=conf).assert_success()
    s3 = boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s"
    )
    assert s3.list_objects_v2(Bucket="sync-state", Prefix="optimizely/").get("KeyCount", 0) > 0

    warehouse(f"UPDATE {table} SET value = 'changed' WHERE user_id < 5")
    home = tmp_path / "another-host"
    env = {**os.environ, "AIRFLOW_HOME": str(home)}
    env.pop("AIRFLOW__OPTIMIZELY__SYNC_STATE_URI", None)  # nothing local: only the s3:// store
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    sent_before = received_total(emulator, "optimove", "optimove_records")
    command = [
        sys.executable,
        "-m",
        "tests.integration.dag_process",
        "incremental_pg_optimove",
        json.dumps(conf),
        "2026-05-01T00:00:00+00:00",
    ]
    done = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:]
    assert received_total(emulator, "optimove", "optimove_records") - sent_before == 5
    assert not (home / "optimizely_sync_state").exists()
