"""An incremental sync's change-detection run against just reading the source once.

    .venv/bin/python benchmarks/bench_incremental.py                      # 1,000,000 rows, CSV
    .venv/bin/python benchmarks/bench_incremental.py --rows 10000000      # 10,000,000 rows (~1 GB of CSV)
    .venv/bin/python benchmarks/bench_incremental.py --source postgres    # a PostgreSQL table instead

A source of ``--rows`` rows (``user_id`` and five columns; a CSV file written once under benchmarks/.data/,
or a PostgreSQL table at 127.0.0.1:5432) is synced into an Optimove data connection of the emulator
(its own process). Each step runs in a fresh Python process that reports its wall time, CPU seconds and
peak resident memory (``VmHWM``):

1. **read once** (the baseline): the plainest good code that reads the source once: ``csv.reader`` over
   the file, or a server-side cursor's ``fetchmany`` over the table, counting rows;
2. **first run**: the operator's first (full) run, which keeps every key's fingerprint in the sync state
   (its requests go to an API in the same process that acknowledges them, so that 10,000,000 records
   need not be held by the emulator: this run is not what is measured);
3. then 1% of the rows change;
4. **change detection**: the operator's second run, to the emulator: it reads the whole source, sends
   the changed rows only, and keeps the new state.

Printed: each step's figures, the change-detection run's wall time over reading once (goal <= 1.5), its
peak RSS (goal <= 1 GB, flat from 1M to 10M rows), and the rows it sent (exactly the changed ones).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_upsert import DATA_DIR, Emulator, memory_kib, written_once

PG_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=test"
CHANGED_EVERY = 100  # 1%


def source_csv(rows: int, version: int) -> Path:
    """The source at ``version`` 0 (as first synced) or 1 (1% of its rows changed)."""
    path = DATA_DIR / f"incremental_{rows}_v{version}.csv"
    if path.exists():
        return path
    with written_once(path) as stream:
        writer = csv.writer(stream)
        writer.writerow(["user_id", "email", "first_name", "city", "score", "tier"])
        for i in range(rows):
            tier = "gold" if version and i % CHANGED_EVERY == 0 else "basic"
            writer.writerow([i, f"user{i}@example.com", f"Name{i}", f"City{i % 97}", i % 1000, tier])
    return path


def source_table(rows: int) -> str:
    import psycopg2

    table = f"bench_incremental_{rows}"
    with psycopg2.connect(PG_DSN) as db, db.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {table}")
        cursor.execute(
            f"CREATE TABLE {table} AS SELECT i AS user_id, 'user' || i || '@example.com' AS email, "
            f"'Name' || i AS first_name, 'City' || (i % 97) AS city, i % 1000 AS score, 'basic' AS tier "
            f"FROM generate_series(0, {rows - 1}) AS i"
        )
    return table


def change_table(table: str) -> None:
    import psycopg2

    with psycopg2.connect(PG_DSN) as db, db.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET tier = 'gold' WHERE user_id % {CHANGED_EVERY} = 0")


# -- one measured step, in a process of its own ----------------------------------------------------------


def read_once(source: str) -> int:
    if source.startswith("table:"):
        import psycopg2

        with psycopg2.connect(PG_DSN) as db, db.cursor(name="bench") as cursor:
            cursor.itersize = 5000
            cursor.execute(f"SELECT * FROM {source[6:]} ORDER BY user_id")
            count = 0
            while page := cursor.fetchmany(5000):
                count += len(page)
            return count
    with open(source, newline="", encoding="utf-8") as stream:
        reader = csv.reader(stream)
        next(reader)
        return sum(1 for _ in reader)


class Acknowledging:
    """An Optimove that takes every request (the first run's API: nothing to store)."""

    def __init__(self) -> None:
        from airflow_provider_optimizely.core.request_stats import RequestStats
        from airflow_provider_optimizely.hooks.optimove import OptimoveHook

        self.client = type("Client", (), {"stats": RequestStats()})()
        self.base_url = OptimoveHook().base_url  # the same target as the measured run: the same sync
        self.pool_size = 4

    def upload_data(self, connection_uuid: str, records: Any, **kwargs: Any) -> dict[str, Any]:
        return {}


def sync(source: str, connection: str, state: str, to_emulator: bool) -> int:
    from airflow_provider_optimizely.operators.optimove import OptimoveUploadRecordsOperator

    source_argument = (
        {"sql": f"SELECT * FROM {source[6:]} ORDER BY user_id", "sql_conn_id": "warehouse"}
        if source.startswith("table:")
        else {"path": source}
    )
    operator = OptimoveUploadRecordsOperator(
        task_id="bench",
        data_connection_uuid=connection,
        identifier_column="user_id",
        state_store=state,
        max_concurrency=4,
        **source_argument,
    )
    if not to_emulator:
        operator.__dict__["hook"] = Acknowledging()
    ti = type(
        "Ti", (), {"dag_id": "bench", "task_id": "sync", "map_index": -1, "run_id": f"run-{time.time()}"}
    )()
    ti.xcom_push = lambda key, value: None  # type: ignore[attr-defined]
    report = operator.execute({"ti": ti})  # type: ignore[arg-type]
    return int(report["rows_sent"])


def step_main(args: argparse.Namespace) -> None:
    import logging

    logging.disable(logging.WARNING)
    if args.step != "read":
        from airflow_provider_optimizely.operators import optimove  # noqa: F401  (imports before the baseline)
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    if args.step == "read":
        rows = read_once(args.input)
    else:
        rows = sync(args.input, args.connection, args.state, to_emulator=args.step == "detect")
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    figures = {
        "rows": rows,
        "seconds": seconds,
        "cpu_seconds": (after.ru_utime - cpu.ru_utime) + (after.ru_stime - cpu.ru_stime),
        "peak_rss_mib": memory_kib("VmHWM") / 1024,
    }
    print(json.dumps(figures))


def run_step(step: str, source: str, connection: str, state: str, env: dict[str, str]) -> dict[str, Any]:
    command = [sys.executable, __file__, "--step", step, "--input", source]
    command += ["--connection", connection, "--state", state]
    done = subprocess.run(command, env=env, check=True, capture_output=True, text=True, timeout=7200)
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--source", choices=("csv", "postgres"), default="csv")
    parser.add_argument("--step", choices=("read", "first", "detect"), help=argparse.SUPPRESS)
    parser.add_argument("--input", help=argparse.SUPPRESS)
    parser.add_argument("--connection", help=argparse.SUPPRESS)
    parser.add_argument("--state", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step:
        step_main(args)
        return
    emulator = Emulator()
    try:
        env = {
            **os.environ,
            **emulator.env,
            "AIRFLOW_CONN_WAREHOUSE": json.dumps(
                {
                    "conn_type": "postgres",
                    "host": "127.0.0.1",
                    "port": 5432,
                    "login": "postgres",
                    "schema": "test",
                }
            ),
        }
        connection = emulator.new_connection()
        state = tempfile.mkdtemp(prefix="bench-sync-state-")
        if args.source == "csv":
            first_source, second_source = str(source_csv(args.rows, 0)), str(source_csv(args.rows, 1))
        else:
            table = source_table(args.rows)
            first_source = second_source = f"table:{table}"
        first = run_step("first", first_source, connection, state, env)
        if args.source == "postgres":
            change_table(table)
        read = run_step("read", second_source, connection, state, env)
        detect = run_step("detect", second_source, connection, state, env)
    finally:
        emulator.stop()
    print(f"{args.rows:,} rows from {args.source}; 1% changed ({args.rows // CHANGED_EVERY:,} rows)")
    print("| step | rows | wall s | CPU s | peak RSS MiB |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, figures in (
        ("read once (baseline)", read),
        ("first run (not measured)", first),
        ("change detection", detect),
    ):
        print(
            f"| {name} | {figures['rows']:,} | {figures['seconds']:.1f} | {figures['cpu_seconds']:.1f} | "
            f"{figures['peak_rss_mib']:.0f} |"
        )
    print(f"change detection / read once, wall: {detect['seconds'] / read['seconds']:.2f} (goal <= 1.5)")
    print(f"rows sent: {detect['rows']:,} (changed: {args.rows // CHANGED_EVERY:,})")


if __name__ == "__main__":
    main()
