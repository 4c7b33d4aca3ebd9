"""Profile upserts to the emulator's Optimove API: this provider against seed 003's script and a plain
streaming loop, on unquoted and on quoted CSV.

    .venv/bin/python benchmarks/bench_upsert.py              # 1,000,000 rows (the CSVs are made once)
    .venv/bin/python benchmarks/bench_upsert.py --rows 100000 --repeat 1

Two CSV files of the same records (``user_id`` plus five text columns): **unquoted**, and **quoted**,
where one row in 1,000 holds a quoted cell (a comma and a doubled quote inside). Each goes into one
Optimove data connection of the emulator, which runs in its own process so that its CPU is not counted,
three ways:

- **seed 003**: seed 003's script: ``csv.DictReader`` read into a list, then ``requests.post`` of
  batches of 5000 records, one after another.
- **streaming**: a plain streaming loop: ``csv.reader``, a dict a row, msgspec for the body, one
  ``requests.Session``, the same requests as the provider (5000 records, one ``batch_uuid``,
  ``batch_completed`` on the last), one after another.
- **provider**: ``OptimoveUploadRecordsOperator`` with the file as its source (streamed), through the
  Optimove hook (pacing, retries, 4 requests in flight), as a DAG task would run it.

Each run is a fresh Python process that reports its own figures: wall time of the upload, client CPU
seconds (user + system, ``resource.getrusage`` of that process only), and memory: the peak resident set
size (``VmHWM``), and how much it grew during the upload (peak minus the size before reading the file,
which leaves out the interpreter and the imports). The emulator's stored record count is checked after
each run. The runs alternate (file, approach), so that a slower spell of a shared machine falls on all
alike. Output: a table per file with ratios to both baselines, and quoted/unquoted CPU per record.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import resource
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

import requests

HERE = Path(__file__).resolve().parent
DATA_DIR = HERE / ".data"
BATCH = 5000
EMULATOR_FLAGS = ("--port", "0", "--log-level", "error")
CITIES = ("Amsterdam", "Berlin", "Lisbon", "Oslo", "Paris", "Rome", "Vienna", "Warsaw")


# -- the data -----------------------------------------------------------------------------------------


FILES = ("unquoted", "quoted")
APPROACHES = ("seed 003", "streaming", "provider")
QUOTED_EVERY = 1000


@contextmanager
def written_once(path: Path) -> Iterator[TextIO]:
    """A text stream that writes ``path`` under a ``.partial`` name and renames it once complete, so that an
    interrupted run never leaves half a file that a later run would take for the whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    with open(partial, "w", newline="", encoding="utf-8") as stream:
        yield stream
    partial.rename(path)


def csv_path(rows: int, kind: str = "unquoted") -> Path:
    """The benchmark CSV of ``rows`` rows, written once under benchmarks/.data/. In the quoted one, one row
    in ``QUOTED_EVERY`` has a first name holding a comma and a doubled quote (so the writer quotes it)."""
    path = DATA_DIR / (f"profiles_{rows}.csv" if kind == "unquoted" else f"profiles_quoted_{rows}.csv")
    if path.exists():
        return path
    with written_once(path) as stream:
        writer = csv.writer(stream)
        writer.writerow(["user_id", "email", "first_name", "city", "score", "signed_up"])
        for i in range(rows):
            quoted = kind == "quoted" and i % QUOTED_EVERY == 0
            writer.writerow(
                [
                    i,
                    f"user{i}@example.com",
                    f'Name{i}, "Jr"' if quoted else f"Name{i}",
                    CITIES[i % len(CITIES)],
                    f"{(i * 7919) % 10000 / 100:.2f}",
                    f"2025-{1 + i % 12:02d}-{1 + i % 28:02d}",
                ]
            )
    return path


# -- the emulator, in a process of its own -------------------------------------------------------------


class Emulator:
    """``python -m airflow_provider_optimizely.emulator`` on a free port; its banner gives URLs and keys."""

    def __init__(self, *flags: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "airflow_provider_optimizely.emulator", *EMULATOR_FLAGS, *flags],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.env: dict[str, str] = {}
        assert self.process.stdout is not None
        deadline = time.monotonic() + 60
        for line in self.process.stdout:
            if match := re.match(r"optimizely-emulator serving on (\S+)", line):
                self.base_url = match.group(1)
            if line.startswith("export AIRFLOW_CONN_"):
                name, _, value = shlex.split(line)[1].partition("=")
                self.env[name] = value
            if len(self.env) == 4 or time.monotonic() > deadline:
                break
        if len(self.env) != 4:
            self.stop()
            raise RuntimeError("the emulator did not start")
        optimove = json.loads(self.env["AIRFLOW_CONN_OPTIMOVE_DEFAULT"])
        self.optimove_url = optimove["host"]
        self.optimove_headers = {
            "x-api-key": optimove["password"],
            "x-brand-key": optimove["extra"]["brand_api_key"],
        }

    def new_connection(self) -> str:
        response = requests.post(
            f"{self.optimove_url}/connections",
            json={"name": "bench", "primary_key": "user_id", "description": "."},
            headers=self.optimove_headers,
            timeout=30,
        )
        response.raise_for_status()
        return str(response.json()["data_connection_uuid"])

    def stored(self, connection: str) -> int:
        state = requests.get(f"{self.base_url}/_emulator/state/optimove", timeout=300).json()
        return len(state["records"].get(connection, {}))

    def reset(self) -> None:
        requests.post(f"{self.base_url}/_emulator/reset", timeout=60).raise_for_status()

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


# -- the two clients (each runs in its own process: see main) -------------------------------------------


def memory_kib(field: str) -> int:
    """``VmRSS`` (now) or ``VmHWM`` (peak) of this process. Not ``ru_maxrss``: Linux carries that over
    from the parent across fork and exec, so a child would report the benchmark driver's own peak."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def run_plain(path: str, url: str, headers: dict[str, str]) -> int:
    """Seed 003's script, unchanged but for the URL: read the whole CSV, post 5000 at a time."""
    endpoint = f"{url}/upload_data"
    with open(path) as csvfile:
        data = list(csv.DictReader(csvfile))
    for i in range(0, len(data), BATCH):
        payload = {"data": data[i : i + BATCH], "ttl_seconds": None}
        response = requests.post(endpoint, json=payload, headers=headers)
        if response.status_code != 200:
            raise RuntimeError(f"batch failed: {response.status_code} {response.text[:200]}")
    return len(data)


def run_streaming(path: str, url: str, headers: dict[str, str]) -> int:
    """A plain streaming loop doing the provider's requests: ``csv.reader``, a dict a row, msgspec, one
    ``requests.Session``, one ``batch_uuid`` with ``batch_completed`` on the last request only."""
    import uuid

    import msgspec

    endpoint = f"{url}/upload_data"
    encode = msgspec.json.Encoder().encode
    session = requests.Session()
    batch_uuid = str(uuid.uuid4())
    sent = 0

    def post(records: list[dict[str, str]], completed: bool) -> None:
        body = {"data": records, "ttl_seconds": None, "batch_uuid": batch_uuid, "batch_completed": completed}
        response = session.post(endpoint, data=encode(body), headers=headers, timeout=300)
        if response.status_code != 200:
            raise RuntimeError(f"batch failed: {response.status_code} {response.text[:200]}")

    headers = {**headers, "Content-Type": "application/json"}
    with open(path, newline="", encoding="utf-8") as stream:
        reader = csv.reader(stream)
        header = next(reader)
        held: list[dict[str, str]] | None = None
        batch: list[dict[str, str]] = []
        for row in reader:
            batch.append(dict(zip(header, row, strict=True)))
            if len(batch) == BATCH:
                if held is not None:
                    post(held, completed=False)
                    sent += len(held)
                held, batch = batch, []
        if batch:
            if held is not None:
                post(held, completed=False)
                sent += len(held)
            held = batch
        if held is not None:
            post(held, completed=True)
            sent += len(held)
    return sent


def run_provider(path: str, connection: str) -> int:
    from airflow_provider_optimizely.operators.optimove import OptimoveUploadRecordsOperator

    operator = OptimoveUploadRecordsOperator(
        task_id="bench",
        data_connection_uuid=connection,
        identifier_column="user_id",
        path=path,
        max_concurrency=4,
    )
    report = operator.execute({})  # type: ignore[arg-type]
    return int(report["rows_succeeded"])


def client_main(args: argparse.Namespace) -> None:
    """One measured run, in this process; prints its figures as JSON on the last line."""
    if args.approach == "provider":
        import logging

        # Imports first, so that the baseline below holds them (Arrow's too, which the CSV reader would
        # otherwise import on its first chunk); the task log is not what is measured.
        import pyarrow.compute
        import pyarrow.csv  # noqa: F401

        from airflow_provider_optimizely.operators import optimove  # noqa: F401

        logging.disable(logging.WARNING)
    elif args.approach == "streaming":
        import msgspec  # noqa: F401  # imported before the baseline, as the provider's libraries are
    baseline_kib = memory_kib("VmRSS")
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    endpoint = f"{os.environ['BENCH_OPTIMOVE_URL']}/connections/{args.connection}"
    headers = json.loads(os.environ["BENCH_OPTIMOVE_HEADERS"])
    if args.approach == "seed 003":
        records = run_plain(args.csv, endpoint, headers)
    elif args.approach == "streaming":
        records = run_streaming(args.csv, endpoint, headers)
    else:
        records = run_provider(args.csv, args.connection)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu_seconds = (after.ru_utime - cpu.ru_utime) + (after.ru_stime - cpu.ru_stime)
    peak_kib = memory_kib("VmHWM")
    print(
        json.dumps(
            {
                "records": records,
                "seconds": seconds,
                "cpu_seconds": cpu_seconds,
                "peak_rss_mib": peak_kib / 1024,
                "growth_mib": max(0, peak_kib - baseline_kib) / 1024,
            }
        )
    )


# -- the comparison ------------------------------------------------------------------------------------


def measure(approach: str, path: Path, emulator: Emulator) -> dict[str, Any]:
    emulator.reset()
    connection = emulator.new_connection()
    env = {
        **os.environ,
        **emulator.env,
        "BENCH_OPTIMOVE_URL": emulator.optimove_url,
        "BENCH_OPTIMOVE_HEADERS": json.dumps(emulator.optimove_headers),
    }
    command = [sys.executable, __file__, "--client", approach, "--csv", str(path), "--connection", connection]
    output = subprocess.run(command, env=env, check=True, capture_output=True, text=True, timeout=3600)
    figures = json.loads(output.stdout.strip().splitlines()[-1])
    figures["stored"] = emulator.stored(connection)
    return figures


def median_run(figures: list[dict[str, Any]]) -> dict[str, float]:
    """Each figure's median over the runs."""
    return {name: statistics.median(f[name] for f in figures) for name in figures[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each approach; the median is shown")
    parser.add_argument("--client", choices=APPROACHES, dest="approach", help=argparse.SUPPRESS)
    parser.add_argument("--csv", help=argparse.SUPPRESS)
    parser.add_argument("--connection", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.approach:
        client_main(args)
        return

    paths = {kind: csv_path(args.rows, kind) for kind in FILES}
    emulator = Emulator()
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {
        (kind, approach): [] for kind in FILES for approach in APPROACHES
    }
    try:
        for _ in range(args.repeat):
            for (kind, approach), figures in runs.items():
                figures.append(measure(approach, paths[kind], emulator))
    finally:
        emulator.stop()
    for (kind, approach), figures_list in runs.items():
        for figures in figures_list:
            if figures["stored"] != args.rows or figures["records"] != args.rows:
                sent, stored = figures["records"], figures["stored"]
                raise SystemExit(f"{approach} ({kind}): {sent} sent, {stored} stored, not {args.rows}")
    medians = {key: median_run(figures) for key, figures in runs.items()}
    rows = [
        ("records/s", lambda f: args.rows / f["seconds"], "{:,.0f}"),
        ("wall seconds", lambda f: f["seconds"], "{:.1f}"),
        ("client CPU seconds", lambda f: f["cpu_seconds"], "{:.2f}"),
        ("CPU µs per record", lambda f: f["cpu_seconds"] / args.rows * 1e6, "{:.2f}"),
        ("peak RSS MiB", lambda f: f["peak_rss_mib"], "{:.0f}"),
        ("RSS growth MiB", lambda f: f["growth_mib"], "{:.0f}"),
    ]
    print(f"Optimove upserts of {args.rows:,} records to the emulator, median of {args.repeat}")
    for kind in FILES:
        seed, streaming, ours = (medians[(kind, approach)] for approach in APPROACHES)
        print(f"\n{kind} CSV ({paths[kind].name})")
        print("| measure | seed 003 | streaming | provider | provider / seed 003 | provider / streaming |")
        print("| --- | ---: | ---: | ---: | ---: | ---: |")
        for label, figure, fmt in rows:
            a, b, c = figure(seed), figure(streaming), figure(ours)
            print(
                f"| {label} | {fmt.format(a)} | {fmt.format(b)} | {fmt.format(c)} "
                f"| {c / a:.2f} | {c / b:.2f} |"
            )
    print("\nquoted / unquoted, CPU per record:")
    for approach in APPROACHES:
        quoted, unquoted = (medians[(kind, approach)]["cpu_seconds"] for kind in ("quoted", "unquoted"))
        print(f"  {approach}: {quoted / unquoted:.2f}")


if __name__ == "__main__":
    main()
