"""DCP profile syncs: the bulk channel (one file + Upload History) against the profile API, and the
threshold where they cost the same.

    .venv/bin/python benchmarks/bench_dcp_channel.py                    # about 3 minutes
    .venv/bin/python benchmarks/bench_dcp_channel.py --rest-rows 100000 # REST measured whole (~25 min)

The emulator runs in its own process with every DCP answer delayed by ``--latency`` (50 ms by default,
``--fault dcp=delay=0.05``), and moto's S3 server behind it; its import worker processes each uploaded
file at once (``--processing-delay`` adds a queue, in seconds, as DCP's own may have). Each measured run is
the real operator (``OptimizelyDcpUpsertProfilesOperator.execute``) with a sync state in a fresh folder,
on a fresh DCP table, so that every row of the source is a changed profile; its wall time covers reading
the CSV, change detection, the channel and recording the answers in the state. After each run the
profiles stored in the table are counted.

- ``auto``: ``--rows`` changed profiles (100,000 by default) with ``method="auto"`` and the default
  threshold: the bulk channel (spool, CSV, upload, Upload History read every 0.25 s, acknowledgements).
- ``rest``: the profile API at the default concurrency (adaptive, ``max_concurrency="auto"``), a request
  a profile. At 50 ms a request 100,000 profiles take about 5 minutes, so by default ``--rest-rows``
  (5,000) are measured and the time for ``--rows`` is extrapolated from the measured rate: the output says so.
- The sweep: the bulk channel at ``--bulk-sizes`` and the profile API at ``--rest-sizes``; a straight
  line through each (fixed cost + cost a row) gives the break-even size, where the file's fixed cost
  (upload, DCP's processing, polling) equals the API's time for as many rows. That is the default
  ``bulk_threshold`` of ``core.dcp_channel.choice`` (docs/dcp-channel.md).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_upsert import Emulator as ProcessEmulator
from bench_upsert import written_once

HERE = Path(__file__).resolve().parent
DATA_DIR = HERE / ".data"
ATTRIBUTES = [
    ("plan", "string", None),
    ("visits", "long", None),
    ("score", "double", None),
    ("vip", "bool", None),
    ("since", "datetime", "yyyy-mm-dd"),
]
# Upload History is read every POLL seconds (not doubling), so the wait adds at most that to a file's cost.
POLL = 0.25
PLANS = ["free", "gold", '"gold, yearly"', '"pro ""plus"""', "basic"]


def csv_path(rows: int) -> Path:
    path = DATA_DIR / f"dcp_channel_{rows}.csv"
    if path.exists():
        return path
    rnd = random.Random(13)
    with written_once(path) as out:
        out.write("customerId,plan,visits,score,vip,since\n")
        for i in range(rows):
            day = 1 + i % 28
            out.write(
                f"c{i:08d},{PLANS[i % 5]},{rnd.randrange(10**6)},{rnd.randrange(10**5)}.{i % 100:02d},"
                f"{'true' if i % 2 else 'false'},2026-02-{day:02d}\n"
            )
    return path


class Emulator(ProcessEmulator):
    """The emulator in a process of its own (its CPU is not the client's), DCP answers delayed."""

    def __init__(self, latency: float, processing_delay: float) -> None:
        flags = ["--processing-delay", str(processing_delay)]
        if latency:
            flags += ["--fault", f"dcp=delay={latency}"]
        super().__init__(*flags)

    def stored_profiles(self, table_id: int) -> int:
        state = requests.get(f"{self.base_url}/_emulator/state/dcp", timeout=600).json()
        return sum(1 for profile in state["profiles"] if profile["table_id"] == table_id)


def new_table() -> int:
    from airflow_provider_optimizely.hooks.dcp import OptimizelyDcpHook

    dcp = OptimizelyDcpHook()
    if not list(dcp.list_services()):
        dcp.create_service("bench")
    table = dcp.create_table(f"bench_{random.getrandbits(40):010x}")
    for name, datatype, fmt in ATTRIBUTES:
        dcp.create_attribute(table.id, name, datatype, format=fmt)
    return int(table.id)


def run_operator(path: Path, method: str, emulator: Emulator, threshold: int | None = None) -> dict[str, Any]:
    """One sync of every row of ``path`` (all changed: a fresh table and state), timed."""
    from airflow_provider_optimizely.operators.dcp import OptimizelyDcpUpsertProfilesOperator

    table_id = new_table()
    extra = {} if threshold is None else {"bulk_threshold": threshold}
    with tempfile.TemporaryDirectory(prefix="bench-dcp-state-") as state:
        operator = OptimizelyDcpUpsertProfilesOperator(
            task_id="bench",
            table_id=table_id,
            identifier_column="customerId",
            path=str(path),
            method=method,
            poll_interval=POLL,
            max_poll_interval=POLL,
            state_store=state,
            **extra,
        )
        ti = SimpleNamespace(
            dag_id="bench",
            task_id="sync",
            run_id=f"run-{table_id}",
            map_index=-1,
            try_number=1,
            xcom_push=lambda **_: None,
        )
        with contextlib.redirect_stdout(io.StringIO()):  # the task log is not what is measured
            started = time.perf_counter()
            report = operator.execute({"ti": ti})  # type: ignore[arg-type]
            seconds = time.perf_counter() - started
    stored = emulator.stored_profiles(table_id)
    rows = int(report["rows_read"])
    if stored != rows or report["rows_succeeded"] != rows:
        raise RuntimeError(
            f"{method}: {rows} rows read, {report['rows_succeeded']} succeeded, {stored} stored"
        )
    return {
        "rows": rows,
        "seconds": seconds,
        "channel": report["channel"]["channel"],
        "reason": report["channel"]["reason"],
    }


def line_fit(points: list[tuple[int, float]]) -> tuple[float, float]:
    """Least squares ``seconds = fixed + per_row * rows``."""
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    var = sum((x - mean_x) ** 2 for x, _ in points)
    per_row = sum((x - mean_x) * (y - mean_y) for x, y in points) / var if var else mean_y / mean_x
    return mean_y - per_row * mean_x, per_row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="changed profiles of the headline run")
    parser.add_argument("--rest-rows", type=int, default=5_000, help="profiles the REST headline measures")
    parser.add_argument("--latency", type=float, default=0.05, help="seconds added to each DCP answer")
    parser.add_argument("--processing-delay", type=float, default=0.0, help="DCP's queue before a file")
    parser.add_argument("--bulk-sizes", default="1000,10000", help="bulk sweep sizes (with --rows)")
    parser.add_argument("--rest-sizes", default="500,2000", help="REST sweep sizes (with --rest-rows)")
    args = parser.parse_args()

    # Imported before measuring, as a worker that runs such tasks has them (the S3 client's are slow).
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook  # noqa: F401

    from airflow_provider_optimizely.operators import dcp  # noqa: F401

    emulator = Emulator(args.latency, args.processing_delay)
    os.environ.update(emulator.env)
    try:
        from airflow_provider_optimizely.core.dcp_channel import DEFAULT_BULK_THRESHOLD

        auto = run_operator(csv_path(args.rows), "auto", emulator)
        rest = run_operator(csv_path(args.rest_rows), "rest", emulator)
        bulk_points = [(auto["rows"], auto["seconds"])] if auto["channel"] == "bulk" else []
        for size in (int(s) for s in args.bulk_sizes.split(",") if s):
            bulk_points.append((size, run_operator(csv_path(size), "bulk", emulator)["seconds"]))
        rest_points = [(rest["rows"], rest["seconds"])]
        for size in (int(s) for s in args.rest_sizes.split(",") if s):
            rest_points.append((size, run_operator(csv_path(size), "rest", emulator)["seconds"]))
    finally:
        emulator.stop()

    bulk_fixed, bulk_per_row = line_fit(bulk_points)
    rest_fixed, rest_per_row = line_fit(rest_points)
    rest_rate = rest["rows"] / rest["seconds"]
    rest_at_rows = args.rows / rest_rate
    measured = rest["rows"] == args.rows
    # Where the file's fixed cost (upload, DCP's processing, the wait) buys as many API requests.
    break_even = bulk_fixed / rest_per_row
    print(
        f"DCP profile sync, {args.latency * 1000:.0f} ms a DCP answer, DCP processing delay "
        f"{args.processing_delay:g} s, REST at max_concurrency='auto'"
    )
    print(f"\n{'run':<50}{'profiles':>10}{'seconds':>10}{'profiles/s':>12}")
    auto_label = f"auto ({auto['reason']})"
    auto_rate = auto["rows"] / auto["seconds"]
    print(f"{auto_label:<50}{auto['rows']:>10,}{auto['seconds']:>10.1f}{auto_rate:>12,.0f}")
    print(f"{'rest (measured)':<50}{rest['rows']:>10,}{rest['seconds']:>10.1f}{rest_rate:>12,.0f}")
    if not measured:
        label = f"rest (EXTRAPOLATED from {rest['rows']:,} at its rate)"
        print(f"{label:<50}{args.rows:>10,}{rest_at_rows:>10.1f}{rest_rate:>12,.0f}")
    ratio = rest_at_rows / auto["seconds"]
    extrapolated = "" if measured else " (rest extrapolated)"
    print(f"\nrest / auto wall time at {args.rows:,} profiles: {ratio:.0f}x{extrapolated}")
    print("\nsweep (seconds):")
    print("  bulk: " + ", ".join(f"{n:,} -> {s:.2f}" for n, s in sorted(bulk_points)))
    print("  rest: " + ", ".join(f"{n:,} -> {s:.2f}" for n, s in sorted(rest_points)))
    print(f"  bulk = {bulk_fixed:.2f} s fixed + {bulk_per_row * 1e6:.1f} us a profile (least squares)")
    print(f"  rest = {rest_fixed:.2f} s fixed + {rest_per_row * 1e3:.1f} ms a profile (least squares)")
    print(f"  break-even, bulk's fixed cost / REST's time a profile: {break_even:,.0f} profiles")
    for queue in (15, 60, 300):
        shifted = (bulk_fixed + queue) / rest_per_row
        print(f"    with a DCP queue of {queue:>3} s before a file is processed: {shifted:,.0f}")
    print(
        f"  default bulk_threshold {DEFAULT_BULK_THRESHOLD:,}: REST takes "
        f"{DEFAULT_BULK_THRESHOLD * rest_per_row + rest_fixed:.1f} s for as many profiles, the file "
        f"{DEFAULT_BULK_THRESHOLD * bulk_per_row + bulk_fixed:.1f} s"
    )
    print(
        json.dumps(
            {
                "auto": auto,
                "rest": rest,
                "bulk_points": bulk_points,
                "rest_points": rest_points,
                "break_even": break_even,
            }
        )
    )


if __name__ == "__main__":
    main()
