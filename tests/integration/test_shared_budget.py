"""Two processes, one ODP account, one rate budget in Redis: ODP's 10 profile requests a second (enforced
by the emulator in real seconds) are shared, not taken twice. Without the store (the control), the same two
processes are refused; with it, every window the emulator counts holds at most 10 and nothing is refused.
A store that cannot be reached degrades the budget with one warning and never fails the sync.

Real parts: the emulator over loopback, the Redis at 127.0.0.1:6379 (through an Airflow Redis connection
and the Redis provider's hook), Airflow connections from the environment, two OS processes.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from airflow_provider_optimizely.core.sources import pages_from_records
from airflow_provider_optimizely.core.sync import run_sync
from airflow_provider_optimizely.core.writers.odp import OdpProfileWriter
from airflow_provider_optimizely.hooks.odp import OptimizelyOdpHook
from tests.integration.helpers import unique

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
ROUTE = "odp:POST /profiles"
LIMIT = 10  # ODP's published limit, enforced by the emulator from the start
ROWS, BATCH = 1000, 50  # 20 requests a worker: 40 at 10 a second, about 4 s of budget


def _redis_available() -> bool:
    try:
        return bool(redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=1).ping())
    except redis.ConnectionError:
        return False


@pytest.fixture
def odp_on_real_seconds(emulator, emulator_connections):
    """The emulator on real seconds (ODP's window is 1 s, not the suite's scaled 10 ms)."""
    emulator.set_time_scale(1.0)
    return emulator


def _with_store(monkeypatch, connections: dict[str, str], port: int) -> None:
    """The ODP connection names a Redis connection as its shared store (``port``: Redis, or a closed one)."""
    if not _redis_available():
        pytest.skip("no Redis on 127.0.0.1:6379")
    odp = json.loads(connections["optimizely_odp_default"])
    # A budget key of this test alone: the account (host + key) is the same all session long.
    odp["extra"] = {**odp.get("extra", {}), "rate_limit_store_conn_id": "rate_store"}
    odp["login"] = unique("account")
    monkeypatch.setenv("AIRFLOW_CONN_OPTIMIZELY_ODP_DEFAULT", json.dumps(odp))
    store = {"conn_type": "redis", "host": "127.0.0.1", "port": port, "extra": {"db": 0}}
    monkeypatch.setenv("AIRFLOW_CONN_RATE_STORE", json.dumps(store))


def _two_workers(tmp_path: Path) -> list[dict]:
    """Two worker processes that start sending at the same moment (each says when it is ready)."""
    processes = []
    for i in range(2):
        command = ["-m", "tests.integration.shared_budget_worker", unique(f"w{i}"), str(ROWS), str(BATCH)]
        processes.append(
            subprocess.Popen(
                [sys.executable, *command],
                cwd=REPO_ROOT,
                env=os.environ.copy(),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=open(tmp_path / f"worker{i}.log", "w"),  # noqa: SIM115 - closed with the process
                text=True,
            )
        )
    for process in processes:
        assert process.stdout is not None and process.stdout.readline().strip() == "ready"
    for process in processes:
        assert process.stdin is not None
        process.stdin.write("go\n")
        process.stdin.flush()
    results = []
    for i, process in enumerate(processes):
        out, _ = process.communicate(timeout=120)
        assert process.returncode == 0, (tmp_path / f"worker{i}.log").read_text()[-3000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def test_two_processes_share_odps_budget_and_are_never_refused(
    odp_on_real_seconds, emulator_connections, monkeypatch, tmp_path
):
    emulator = odp_on_real_seconds
    # The control: each process paces itself alone; starting together, each takes the first window whole.
    alone = _two_workers(tmp_path)
    assert [r["succeeded"] for r in alone] == [ROWS, ROWS]  # retried past the refusals
    refused_alone = emulator.received("odp")["faults"].get("POST /profiles -> rate_limited", 0)
    assert refused_alone > 0

    emulator.reset()
    emulator.set_time_scale(1.0)
    _with_store(monkeypatch, emulator_connections, 6379)
    shared = _two_workers(tmp_path)
    assert [r["succeeded"] for r in shared] == [ROWS, ROWS]
    assert all(r["shared"] and not r["degraded"] for r in shared)
    assert [r["retries"] for r in shared] == [0, 0]
    assert emulator.received("odp")["faults"].get("POST /profiles -> rate_limited", 0) == 0
    windows = emulator.rate_windows()[ROUTE]["windows"]
    assert max(windows.values()) <= LIMIT
    assert sum(windows.values()) == 2 * ROWS // BATCH


def test_an_unreachable_store_degrades_with_one_warning_and_the_sync_succeeds(
    emulator, emulator_connections, monkeypatch, caplog
):
    _with_store(monkeypatch, emulator_connections, 1)  # nothing listens on port 1
    hook = OptimizelyOdpHook()
    writer = OdpProfileWriter(hook, identifier_column="email", batch_size=BATCH)
    records = ({"email": f"d{i}@example.com"} for i in range(200))
    with caplog.at_level(logging.WARNING, logger="airflow_provider_optimizely"):
        report = run_sync(pages_from_records(records), writer, max_concurrency=4)
    assert report.rows_succeeded == 200
    assert hook.profiles_rate_limiter.degraded
    warnings = [r.getMessage() for r in caplog.records if "store is unreachable" in r.getMessage()]
    assert len(warnings) == 1, warnings
    assert "1/2 of the budget" in warnings[0]
    assert emulator.received("odp")["faults"].get("POST /profiles -> rate_limited", 0) == 0
