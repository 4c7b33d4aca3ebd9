"""Two DAG runs at once against one vendor budget (ODP's 10 requests a second, enforced by the emulator),
each in a process and an Airflow metadata database of its own, as two workers would be, with no shared
rate store: what one run spends shows in the other's ``X-RateLimit-*`` headers, and a ``429`` is the server
asking to wait, retried for as long as ``max_retry_seconds`` allows whatever the attempt count. Both runs
succeed, nothing is lost, and the emulator's duplicates equal what the reports say may have been applied
twice. (With a shared Redis store, test_shared_budget.py shows the same runs never refused at all.)
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import datetime, timezone

import pytest

from tests.conftest import REPO_ROOT
from tests.integration.helpers import write_csv

pytestmark = pytest.mark.integration

ROWS = 30_000  # a run: 60 requests of 500 profiles, so two runs need about 12 s of the budget


def start_run(name: str, path: str, airflow_db: str, tmp_path, log) -> subprocess.Popen:
    home = tmp_path / f"home-{name}"
    home.mkdir()
    shutil.copy(os.path.join(airflow_db, "airflow.db"), home / "airflow.db")  # migrated once a session
    conf = {"path": path, "identifier_column": "email"}
    logical_date = datetime(2026, 5, 1, tzinfo=timezone.utc).isoformat()
    command = [sys.executable, "-m", "tests.integration.dag_process", "sync_odp_profiles_from_file"]
    return subprocess.Popen(
        [*command, json.dumps(conf), logical_date],
        cwd=REPO_ROOT,
        # Two syncs (as two DAGs would be), each with its own state: one sync's runs never overlap.
        env={
            **os.environ,
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__OPTIMIZELY__SYNC_STATE_URI": str(tmp_path / f"state-{name}"),
        },
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def report_of(log_path) -> dict:
    lines = [line for line in log_path.read_text().splitlines() if line.startswith("XCOMS ")]
    assert lines, f"the run left no return values: {log_path}"
    return json.loads(lines[-1].removeprefix("XCOMS "))["upsert"]


def test_two_runs_sharing_the_odp_budget_both_succeed_and_lose_nothing(
    emulator, emulator_connections, airflow_db, tmp_path
):
    paths = {
        name: write_csv(
            tmp_path / f"{name}.csv",
            ["email", "city"],
            ((f"{name}{i}@runs.io", f"C{i % 7}") for i in range(ROWS)),
        )
        for name in ("first", "second")
    }
    logs = {name: tmp_path / f"{name}.log" for name in paths}
    processes = {}
    for name, path in paths.items():
        processes[name] = start_run(name, path, airflow_db, tmp_path, logs[name].open("w"))
    for name, process in processes.items():
        assert process.wait(timeout=600) == 0, f"the {name} run failed: {logs[name]}"

    reports = {name: report_of(logs[name]) for name in logs}
    received = emulator.received("odp")
    items = received["items"]["odp_profiles"]
    assert items["distinct"] == 2 * ROWS  # nothing lost
    assert all(report["rows_succeeded"] == ROWS for report in reports.values())
    said_twice = sum(report["requests"]["maybe_applied_twice"] for report in reports.values())
    # A 429 is answered before the route runs, so a refused request stored nothing and its resend is
    # no duplicate: the emulator saw each profile once, and no report claims otherwise.
    assert items["duplicates"] == 0 == said_twice
