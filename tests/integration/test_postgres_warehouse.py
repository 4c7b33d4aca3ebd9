"""200,000 PostgreSQL rows streamed into profiles with flat memory.

The task reads a server-side cursor page by page and keeps at most a few batches in flight, so its peak
memory must not grow with the row count: a 200,000-row run peaks within 1.5x of a 50,000-row run (reading
everything would make it 4x). Memory is ``tracemalloc``'s peak inside the task. The emulator runs in a
process of its own here, so that its stored records do not count as the task's memory, and it answers
slowly, so that both runs fill every slot of the pool: each peak is the worst case, not a lucky one.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator

import psycopg2
import pytest
import requests

from airflow_provider_optimizely.emulator.handle import EmulatorHandle
from tests.integration.helpers import PG_CONN, PG_DSN, unique

pytestmark = pytest.mark.integration

ROWS = 200_000


@pytest.fixture(scope="module")
def emulator_process() -> Iterator[tuple[EmulatorHandle, dict[str, str]]]:
    """``python -m airflow_provider_optimizely.emulator`` on a free port; its banner gives its URL and the
    connections."""
    process = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_optimizely.emulator", "--port", "0", "--log-level", "error"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        base_url, env = None, {}
        assert process.stdout is not None
        for line in process.stdout:  # ends when the process does: never hangs past a failed start
            if match := re.match(r"optimizely-emulator serving on (\S+)", line):
                base_url = match.group(1)
            if line.startswith("export AIRFLOW_CONN_"):
                name, _, value = shlex.split(line)[1].partition("=")
                env[name] = value
            if len(env) == 4:
                break
        assert base_url and len(env) == 4, "the emulator did not start"
        yield EmulatorHandle(base_url, None, keys={}), env
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def source_table() -> Iterator[str]:
    name = unique("warehouse_profiles")
    with psycopg2.connect(PG_DSN) as db, db.cursor() as cursor:
        cursor.execute(
            f"""
            CREATE TABLE {name} AS
            SELECT g AS user_id,
                   'user' || g || '@example.com' AS email,
                   'Name' || g AS first_name,
                   (g % 1000) / 10.0::numeric(10, 1) AS score,
                   g % 3 = 0 AS vip,
                   TIMESTAMP '2026-01-01' + g * INTERVAL '1 minute' AS seen_at
            FROM generate_series(1, {ROWS}) AS g
            """
        )
    yield name
    with psycopg2.connect(PG_DSN) as db, db.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {name}")


def run_rows(run_dag, handle, env, monkeypatch, source_table, rows):
    optimove = json.loads(env["AIRFLOW_CONN_OPTIMOVE_DEFAULT"])
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE_OPTIMOVE", json.dumps(optimove))
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", PG_CONN)
    handle.reset()
    # Slow answers keep every slot of the pool busy in both runs, so each peak is the worst case (all
    # batches in flight at once), not whatever the timing of the run happened to give.
    handle.set_faults("optimove", delay_seconds=0.25)
    headers = {"x-api-key": optimove["password"], "x-brand-key": optimove["extra"]["brand_api_key"]}
    answer = requests.post(
        f"{optimove['host']}/connections",
        json={"name": "warehouse", "primary_key": "user_id", "description": "."},
        headers=headers,
        timeout=30,
    )
    connection = answer.json()["data_connection_uuid"]
    result = run_dag(
        "postgres_warehouse_upsert",
        conf={
            "conn_id": "warehouse_optimove",
            "table": connection,
            "source_table": source_table,
            "rows": rows,
        },
    )
    result.assert_success()
    return result.xcoms["upsert"], connection


def test_200k_rows_stream_with_flat_memory(run_dag, emulator_process, monkeypatch, source_table):
    handle, env = emulator_process
    small, _ = run_rows(run_dag, handle, env, monkeypatch, source_table, ROWS // 4)
    large, connection = run_rows(run_dag, handle, env, monkeypatch, source_table, ROWS)

    assert small["rows_succeeded"] == ROWS // 4
    assert large["rows_read"] == large["rows_succeeded"] == ROWS
    items = handle.received("optimove")["items"]["optimove_records"]
    assert (items["total"], items["distinct"]) == (ROWS, ROWS)
    record = handle.state("optimove")["records"][connection]["150000"]
    assert record == {
        "user_id": 150000,
        "email": "user150000@example.com",
        "first_name": "Name150000",
        "score": 0.0,
        "vip": True,
        "seen_at": "2026-04-15T04:00:00Z",
    }

    growth = large["traced_peak_bytes"] / small["traced_peak_bytes"]
    message = (
        f"peak {small['traced_peak_bytes'] / 2**20:.1f} MiB for {ROWS // 4} rows, "
        f"{large['traced_peak_bytes'] / 2**20:.1f} MiB for {ROWS} rows"
    )
    assert growth < 1.5, message
    # And small in itself: a few batches of 5000 records, not the table.
    assert large["traced_peak_bytes"] < 64 * 2**20, message
