"""The main job, offline: run ``example_dcp_profile_sync`` against the local emulator and print its report.

``make demo`` runs this. It

1. uses a private Airflow home under ``.demo/`` (its metadata DB is migrated once, then reused);
2. seeds a small SQLite warehouse, ``.demo/warehouse.db``: a ``customers`` table of typed columns;
3. starts the emulator (all four APIs and the S3 endpoint) in this process, on free loopback ports;
4. points ``optimizely_default`` at it and ``warehouse`` at the SQLite file (``AIRFLOW_CONN_*`` variables);
5. runs the DAG with ``dag.test()``: create the DCP table, register attributes inferred from the column
   types, upsert every customer as a profile;
6. prints the run report, and checks in the emulator's state that every profile is stored with the
   warehouse's values. The exit code is 0 only when the DAG succeeded and the check passed.

Options: ``--customers N`` (default 1000), ``--verbose`` (Airflow's own log at INFO: every task's log),
``--workdir DIR`` (instead of ``.demo/``: holds ``airflow-home/`` and ``warehouse.db``).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import subprocess
import sys
import time
import warnings
from datetime import date, datetime, timedelta, timezone
from importlib.metadata import version
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / ".demo"
EXAMPLE_DAGS = REPO / "example_dags"
DAG_ID = "example_dcp_profile_sync"
TABLE = "customers"
KEY = "customer_id"


def configure_airflow(home: Path, verbose: bool) -> None:
    """Set before Airflow is imported: it reads its configuration once."""
    home.mkdir(parents=True, exist_ok=True)
    os.environ["AIRFLOW_HOME"] = str(home)
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(EXAMPLE_DAGS)
    os.environ["AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST"] = json.dumps(
        [
            {
                "name": "optimizely_example_dags",
                "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
                "kwargs": {"path": str(EXAMPLE_DAGS)},
            }
        ]
    )
    # The report below says what happened; Airflow's own INFO log (every task's) is there on request.
    os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "INFO" if verbose else "WARNING"


def migration_stamp(home: Path) -> Path:
    return home / f".migrated-{version('apache-airflow')}"


def migrate_once(home: Path) -> None:
    """``airflow db migrate`` the first time, and again only when the installed Airflow changes."""
    stamp = migration_stamp(home)
    if stamp.exists():
        return
    print(f"Preparing Airflow's metadata DB in {home} (once) ...", flush=True)
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        check=True,
        env=os.environ.copy(),
        stdout=subprocess.DEVNULL,
        timeout=600,
    )
    stamp.touch()


def seed_warehouse(path: Path, customers: int) -> list[dict[str, Any]]:
    """A fresh ``customers`` table; returns its rows (small: the demo checks every profile against them)."""
    path.unlink(missing_ok=True)
    rng = random.Random(20260101)
    plans = ["free", "basic", "pro", "enterprise"]
    cities = ["Amsterdam", "Berlin", "Lisbon", "Oslo", "Stockholm", "Vienna", "Warsaw"]
    start = datetime(2024, 1, 1, tzinfo=timezone.utc)
    rows = []
    for n in range(1, customers + 1):
        signed_up = date(2020, 1, 1) + timedelta(days=rng.randrange(1500))
        last_seen = start + timedelta(seconds=rng.randrange(700 * 86400))
        rows.append(
            {
                KEY: f"cust-{n:05d}",
                "plan": rng.choice(plans),
                "visits": rng.randrange(0, 500),
                "lifetime_value": round(rng.uniform(0, 5000), 2),
                "vip": rng.random() < 0.1,
                # SQLite keeps dates and times as text; these are the formats DCP takes.
                "signed_up": signed_up.isoformat(),
                "last_seen": last_seen.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "city": rng.choice(cities),
            }
        )
    with sqlite3.connect(path) as conn:
        conn.execute(
            """CREATE TABLE customers (
                customer_id TEXT PRIMARY KEY,
                plan TEXT,
                visits INTEGER,
                lifetime_value REAL,
                vip BOOLEAN,
                signed_up DATE,
                last_seen TIMESTAMP,
                city VARCHAR(40)
            )"""
        )
        conn.executemany(
            """INSERT INTO customers
               (customer_id, plan, visits, lifetime_value, vip, signed_up, last_seen, city)
               VALUES (:customer_id, :plan, :visits, :lifetime_value, :vip, :signed_up, :last_seen, :city)""",
            rows,
        )
    return rows


def connections(emulator: Any, warehouse: Path) -> dict[str, str]:
    env = emulator.airflow_env()
    env["AIRFLOW_CONN_WAREHOUSE"] = json.dumps({"conn_type": "sqlite", "host": str(warehouse)})
    return env


def run_dag() -> tuple[str, dict[str, str], dict[str, Any]]:
    """Run the example DAG in this process; its state, task states and XCom return values."""
    from airflow.dag_processing.dagbag import DagBag
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    bag = DagBag(dag_folder=str(EXAMPLE_DAGS))
    if DAG_ID not in bag.dags:
        raise SystemExit(f"{DAG_ID} did not load: {bag.import_errors or 'not found'}")
    run = bag.dags[DAG_ID].test()
    states = {ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in run.get_task_instances()}
    with create_session() as session:
        rows = session.scalars(
            XComModel.get_many(run_id=run.run_id, dag_ids=DAG_ID, key="return_value")
        ).all()
        xcoms = {row.task_id: XComModel.deserialize_value(row) for row in rows}
    return str(getattr(run.state, "value", run.state)), states, xcoms


def stored_profiles(emulator: Any, table_id: int) -> dict[str, dict[str, Any]]:
    """The emulator's profiles of the table, by customer id, with attribute names instead of ids."""
    state = emulator.state("dcp")
    names = {str(a["id"]): a["name"] for a in state["attributes"] if a["dcp_datasource_id"] == table_id}
    return {
        p["customer_id"]: {names.get(k, k): v for k, v in p["values"].items()}
        for p in state["profiles"]
        if p["table_id"] == table_id
    }


def differences(rows: list[dict[str, Any]], stored: dict[str, dict[str, Any]]) -> list[str]:
    problems = []
    for row in rows:
        profile = stored.get(row[KEY])
        if profile is None:
            problems.append(f"{row[KEY]}: not stored")
            continue
        for column, value in row.items():
            if column != KEY and not same_value(value, profile.get(column)):
                problems.append(f"{row[KEY]}.{column}: warehouse {value!r}, emulator {profile.get(column)!r}")
    return problems


def same_value(sent: Any, stored: Any) -> bool:
    if isinstance(sent, bool) or isinstance(stored, bool):
        return bool(sent) == (stored in (True, "true", 1))
    if isinstance(sent, float):
        return stored is not None and abs(float(stored) - sent) < 1e-9
    return str(sent) == str(stored)


def print_table(title: str, pairs: list[tuple[str, Any]]) -> None:
    width = max(len(name) for name, _ in pairs)
    print(f"\n{title}\n" + "-" * len(title))
    for name, value in pairs:
        print(f"  {name.ljust(width)}  {value}")


def print_report(states: dict[str, str], xcoms: dict[str, Any]) -> None:
    print_table("Tasks", [(task, state) for task, state in sorted(states.items())])
    if "create_table" in xcoms:
        print_table("DCP table", [("table id", xcoms["create_table"]), ("name", TABLE)])
    attributes = xcoms.get("register_attributes")
    if attributes:
        described = [
            (a["name"], a["datatype"] + (f" ({a['format']})" if a.get("format") else ""))
            for a in attributes["created"] + attributes["existing"]
        ]
        print_table("Attributes (inferred from the warehouse column types)", described)
    report = xcoms.get("sync_profiles")
    if report:
        keys = ("rows_read", "rows_sent", "rows_succeeded", "rows_rejected")
        rows = [(k, report.get(k)) for k in keys]
        rows += [(f"requests {k.replace('_', ' ')}", v) for k, v in report["requests"].items()]
        rows += [(k, report.get(k)) for k in ("duration_seconds", "rows_per_second")]
        print_table("Run report (sync_profiles)", rows)
        for rejected in report.get("rejected_rows", [])[:5]:
            print(f"  rejected: {rejected}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--workdir", type=Path, default=DEMO, help="where the Airflow home and warehouse go")
    parser.add_argument("--verbose", action="store_true", help="show Airflow's own log (every task's)")
    args = parser.parse_args()
    home, warehouse = args.workdir.resolve() / "airflow-home", args.workdir.resolve() / "warehouse.db"
    if not args.verbose:
        # Libraries' deprecation notices (Starlette's test client) are noise in a demo's output.
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=r".*starlette\.testclient")
    configure_airflow(home, args.verbose)
    migrate_once(home)
    rows = seed_warehouse(warehouse, args.customers)
    print(f"Seeded {warehouse} with {len(rows)} customers.", flush=True)

    from airflow_provider_optimizely.emulator.server import run_emulator

    with run_emulator() as emulator:
        print(f"Emulator on {emulator.base_url} (S3 on {emulator.s3_endpoint_url}).", flush=True)
        os.environ.update(connections(emulator, warehouse))
        print(f"Running {DAG_ID} with dag.test() ...", flush=True)
        started = time.monotonic()
        state, states, xcoms = run_dag()
        elapsed = time.monotonic() - started
        print_report(states, xcoms)
        table_id = xcoms.get("create_table")
        stored = stored_profiles(emulator, table_id) if isinstance(table_id, int) else {}

    problems = differences(rows, stored)
    print_table(
        "Check against the emulator's state",
        [
            ("DAG run", f"{state} in {elapsed:.1f}s"),
            ("profiles stored", f"{len(stored)} of {len(rows)}"),
            ("values that differ", len(problems)),
        ],
    )
    for problem in problems[:10]:
        print(f"  {problem}")
    if rows and stored.get(rows[0][KEY]):
        print(f"\n  e.g. {rows[0][KEY]}: {json.dumps(stored[rows[0][KEY]], sort_keys=True)}")
    ok = state == "success" and not problems
    print("\nOK: every customer is a DCP profile with the warehouse's values." if ok else "\nFAILED.")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
