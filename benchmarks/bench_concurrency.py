"""DCP profile upserts with adaptive concurrency against every fixed concurrency, at two server latencies.

    .venv/bin/python benchmarks/bench_concurrency.py                 # 20 ms and 100 ms, 6 s a setting
    .venv/bin/python benchmarks/bench_concurrency.py --seconds 15 --latencies 0.02

The emulator runs in its own process; every DCP answer is held back ``latency`` seconds (its ``delay``
fault), as a distant server would. For each latency, the same sync (``core.sync.run_sync`` with the DCP
writer and hook: one ``POST`` a profile) runs for ``--seconds`` with fixed concurrency 1, 2, 4 (the
provider's old default), 8, 16, 32 and 64, then with ``max_concurrency="auto"`` (start 4, cap 64), which
must find its own level. Reported: profiles a second for each, and adaptive / best fixed (goal >= 0.90)
and adaptive / fixed 4. The adaptive figure includes its ramp-up from 4.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from bench_upsert import Emulator  # noqa: E402

from airflow_provider_optimizely.core.concurrency import AdaptiveConcurrency  # noqa: E402
from airflow_provider_optimizely.core.sources import Page  # noqa: E402
from airflow_provider_optimizely.core.sync import run_sync  # noqa: E402
from airflow_provider_optimizely.core.writers.dcp import DcpProfileWriter  # noqa: E402

FIXED = (1, 2, 4, 8, 16, 32, 64)
CAP = 64


def rows_for(seconds: float) -> Iterator[Page]:
    """Pages of profiles until ``seconds`` have passed (the sync then sends what it holds and ends)."""
    deadline = time.monotonic() + seconds
    counter = itertools.count()
    while time.monotonic() < deadline:
        yield Page([{"id": f"c{next(counter)}", "plan": "gold"} for _ in range(50)])


def one_run(table_id: int, seconds: float, concurrency: int | None) -> tuple[float, int]:
    from airflow_provider_optimizely.hooks.dcp import OptimizelyDcpHook

    hook = OptimizelyDcpHook("optimizely_default", pool_size=CAP)
    writer = DcpProfileWriter(hook, table_id=table_id, identifier_column="id")
    adaptive = None if concurrency is not None else AdaptiveConcurrency(CAP)
    hook.client.concurrency = adaptive
    started = time.monotonic()
    report = run_sync(rows_for(seconds), writer, max_concurrency=concurrency or CAP, concurrency=adaptive)
    elapsed = time.monotonic() - started
    hook.client.close()
    peak = max(adaptive.history) if adaptive is not None else concurrency or 0
    return report.rows_succeeded / elapsed, peak


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=6.0, help="length of each run")
    parser.add_argument("--latencies", type=float, nargs="+", default=[0.02, 0.1], help="server latency, s")
    args = parser.parse_args()
    emulator = Emulator()
    try:
        os.environ.update(emulator.env)
        from airflow_provider_optimizely.hooks.dcp import OptimizelyDcpHook

        setup = OptimizelyDcpHook("optimizely_default")
        setup.create_service("bench")
        table = setup.create_table(f"bench_{uuid.uuid4().hex[:8]}")
        setup.create_attribute(table.id, "plan", "string")
        for latency in args.latencies:
            requests.put(
                f"{emulator.base_url}/_emulator/faults",
                json={"api": "dcp", "delay_seconds": latency},
                timeout=30,
            ).raise_for_status()
            rates: dict[str, float] = {}
            for concurrency in FIXED:
                rates[f"fixed {concurrency}"], _ = one_run(table.id, args.seconds, concurrency)
                print(
                    f"latency {latency * 1000:.0f} ms  fixed {concurrency:>2}: "
                    f"{rates[f'fixed {concurrency}']:8.1f} profiles/s",
                    flush=True,
                )
            adaptive, peak = one_run(table.id, args.seconds, None)
            best_name = max(rates, key=lambda name: rates[name])
            print(
                f"latency {latency * 1000:.0f} ms  adaptive: {adaptive:8.1f} profiles/s (reached {peak} in "
                f"flight)  best fixed: {best_name} {rates[best_name]:.1f}  adaptive/best: "
                f"{adaptive / rates[best_name]:.2f} (goal >= 0.90)  adaptive/fixed 4: "
                f"{adaptive / rates['fixed 4']:.2f}",
                flush=True,
            )
            requests.delete(f"{emulator.base_url}/_emulator/faults", timeout=30).raise_for_status()
    finally:
        emulator.stop()


if __name__ == "__main__":
    main()
