"""Bulk upload: validation speed against Python's own csv.reader, upload time against S3Hook.load_file.

    .venv/bin/python benchmarks/bench_bulk_upload.py                  # 10,000,000 rows, about 1 GB
    .venv/bin/python benchmarks/bench_bulk_upload.py --rows 1000000   # a quick run

The CSV (``customerId`` plus eight attributes of every DCP datatype and format; a fifth of the rows hold a
quoted value, half of those a doubled quote) is written once under ``benchmarks/.data/``. Each phase runs
in a fresh Python process that reports its wall time, CPU time and peak resident memory (``VmHWM``):

- ``csv.reader``: the floor. Python's own reader over the same file, no checks at all (text mode, UTF-8).
- ``validate``: ``core.csv_check.check_csv`` as the operator runs it on an unchanged file: header,
  every value of its datatype/format, quoting, UTF-8, personal data, SHA-256 and byte count, one pass.
- ``validate + hash column``: the same with one column named for hashing, so the file is rewritten
  (salted SHA-256 per cell) to a temp file as it is read.
- ``S3Hook.load_file``: the baseline upload, the Amazon provider's own hook with an Amazon connection, to
  moto's S3 server (its own process) on loopback.
- ``DcpTableS3Hook.load_file``: the operator's upload: the same hook, signed with a DCP table's keys.

Output: a table, and the ratios asked for: validation throughput / csv.reader throughput, upload wall
time / S3Hook.load_file wall time, and peak memory of each phase.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DATA_DIR = HERE / ".data"
BUCKET = "optimizely-import"
PREFIX = "dcp/1/2"
HEADER = [
    "customerId",
    "ltv",
    "visits",
    "vip",
    "last_seen",
    "signup",
    "seen_ms",
    "category",
    "note",
]
ATTRIBUTES = {
    "ltv": ("double", None),
    "visits": ("long", None),
    "vip": ("bool", None),
    "last_seen": ("datetime", "yyyy-mm-ddThh:mm:ssZ"),
    "signup": ("datetime", "yyyy-mm-dd"),
    "seen_ms": ("datetime", "epoch"),
    "category": ("string", None),
    "note": ("string", None),
}
CATEGORIES = ["shoes", "hats", "coats", "bags", "socks", "gloves", "scarves", '"winter, 2025"', '"6\'1"""']


# -- the data -------------------------------------------------------------------------------------------


def csv_path(rows: int) -> Path:
    path = DATA_DIR / f"bulk_v2_{rows}.csv"
    if path.exists():
        return path
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    rnd = random.Random(6)
    with open(partial, "w", encoding="utf-8", newline="") as out:
        out.write(",".join(HEADER) + "\n")
        lines = []
        for i in range(rows):
            category = CATEGORIES[i % 10] if i % 10 < len(CATEGORIES) else "tops"
            lines.append(
                f"cust-{i:010d},{rnd.random() * 1000:.2f},{rnd.randrange(1_000_000)},"
                f"{'true' if i % 3 else 'false'},"
                f"2025-{1 + i % 12:02d}-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:00Z,"
                f"20{10 + i % 15}-{1 + i % 12:02d}-{1 + i % 28:02d},{1_700_000_000_000 + i * 997},"
                f"{category},visited {i % 97} pages\n"
            )
            if len(lines) == 10_000:
                out.writelines(lines)
                lines = []
        out.writelines(lines)
    partial.rename(path)
    return path


# -- the phases (each in its own process: see main) ------------------------------------------------------


def phase_reader(path: str) -> dict[str, Any]:
    import csv

    rows = 0
    with open(path, encoding="utf-8", newline="") as stream:
        for _ in csv.reader(stream):
            rows += 1
    return {"rows": rows - 1}


def _options(hash_column: bool) -> Any:
    from airflow_provider_optimizely.core.csv_check import Attribute, CheckOptions
    from airflow_provider_optimizely.core.pii import SaltedHasher

    attributes = {name: Attribute(name, datatype, fmt) for name, (datatype, fmt) in ATTRIBUTES.items()}
    hashers = {"note": SaltedHasher("bench-salt")} if hash_column else {}
    return CheckOptions(attributes, hash_columns=hashers)


def phase_validate(path: str, hash_column: bool = False) -> dict[str, Any]:
    from airflow_provider_optimizely.core.csv_check import check_csv

    options = _options(hash_column)
    with open(path, "rb") as source, tempfile.TemporaryFile() as output:
        result = check_csv(source, options, output=output if options.rewrites else None)
    assert result.problem_count == 0, result.describe_problems()
    return {"rows": result.rows, "content_hash": result.content_hash[:16], "bytes_out": result.bytes}


def phase_upload(path: str, which: str) -> dict[str, Any]:
    import logging

    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    from airflow_provider_optimizely.hooks.dcp import DcpS3Credentials
    from airflow_provider_optimizely.operators._table_s3 import DcpTableS3Hook

    logging.disable(logging.WARNING)
    endpoint = os.environ["BENCH_S3_ENDPOINT"]
    key = f"{PREFIX}/{which}-{time.time_ns()}.csv"
    if which == "plain":
        hook: S3Hook = S3Hook(aws_conn_id="bench_s3")
    else:
        credentials = DcpS3Credentials(BUCKET, PREFIX, "table-key", "table-secret", endpoint, "us-east-1")
        hook = DcpTableS3Hook(credentials)
    hook.get_conn()  # the client is built before the clock starts, in both cases
    started = time.perf_counter()
    hook.load_file(path, key=key, bucket_name=BUCKET, replace=False)
    seconds = time.perf_counter() - started
    size = hook.head_object(key, BUCKET)["ContentLength"]
    hook.get_conn().delete_object(Bucket=BUCKET, Key=key)
    return {"upload_seconds": seconds, "bytes_in_s3": size}


PHASES = {
    "csv.reader": lambda path: phase_reader(path),
    "validate": lambda path: phase_validate(path),
    "validate + hash column": lambda path: phase_validate(path, hash_column=True),
    "S3Hook.load_file": lambda path: phase_upload(path, "plain"),
    "DcpTableS3Hook.load_file": lambda path: phase_upload(path, "table"),
}


def memory_kib(field: str) -> int:
    """``VmRSS`` (now) or ``VmHWM`` (peak) of this process. Unlike ``ru_maxrss``, which Linux carries over
    from the parent across exec, these count this process's own memory only."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def child_main(phase: str, path: str) -> None:
    if phase.endswith("load_file"):
        import airflow.providers.amazon.aws.hooks.s3  # noqa: F401  imports before the baseline
    elif phase.startswith("validate"):
        # Arrow's libraries too (the reader loads them for the first block Arrow parses): growth is data.
        import pyarrow.csv  # noqa: F401

        import airflow_provider_optimizely.core.csv_check  # noqa: F401
    baseline_kib = memory_kib("VmRSS")
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    figures = PHASES[phase](path)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    peak_kib = memory_kib("VmHWM")
    figures |= {
        "seconds": figures.pop("upload_seconds", seconds),
        "cpu_seconds": (after.ru_utime - cpu.ru_utime) + (after.ru_stime - cpu.ru_stime),
        "peak_rss_mib": peak_kib / 1024,
        "growth_mib": max(0, peak_kib - baseline_kib) / 1024,
    }
    print(json.dumps(figures))


# -- moto's S3 server -------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Moto:
    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        import boto3
        import botocore.exceptions

        self.s3 = boto3.client(
            "s3",
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id="x",
            aws_secret_access_key="x",
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                self.s3.create_bucket(Bucket=BUCKET)
                break
            except botocore.exceptions.EndpointConnectionError:
                if time.monotonic() > deadline:
                    raise RuntimeError("moto's server did not start") from None
                time.sleep(0.2)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


# -- the comparison ---------------------------------------------------------------------------------------


def measure(phase: str, path: Path, env: dict[str, str]) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", phase, "--csv", str(path)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{phase} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=1, help="runs per phase; the best wall time is kept")
    parser.add_argument(
        "--upload-rounds",
        type=int,
        default=3,
        help="rounds of the two uploads, interleaved (moto's timing drifts); the best of each is kept",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--csv", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_main(args.child, args.csv)
        return

    print(f"preparing {args.rows:,} rows under {DATA_DIR} ...", flush=True)
    path = csv_path(args.rows)
    size_mb = path.stat().st_size / 1e6
    moto = Moto()
    home = tempfile.mkdtemp(prefix="bench-airflow-home-")
    env = {
        **os.environ,
        "AIRFLOW_HOME": home,
        "BENCH_S3_ENDPOINT": moto.url,
        "AIRFLOW_CONN_BENCH_S3": json.dumps(
            {
                "conn_type": "aws",
                "login": "bench-key",
                "password": "bench-secret",
                "extra": {"endpoint_url": moto.url, "region_name": "us-east-1"},
            }
        ),
    }
    runs: dict[str, list[dict[str, Any]]] = {phase: [] for phase in PHASES}
    uploads = [phase for phase in PHASES if phase.endswith("load_file")]
    try:
        for phase in PHASES:
            if phase not in uploads:
                runs[phase] += [measure(phase, path, env) for _ in range(args.repeat)]
        for _ in range(args.upload_rounds):
            for phase in uploads:
                runs[phase].append(measure(phase, path, env))
    finally:
        moto.stop()
    results = {phase: min(measured, key=lambda run: run["seconds"]) for phase, measured in runs.items()}
    for phase, measured in runs.items():
        print(f"  {phase}: " + ", ".join(f"{run['seconds']:.1f} s" for run in measured), flush=True)

    print(
        f"\n{args.rows:,} rows, {size_mb:,.0f} MB, {os.cpu_count()} CPU(s), Python {sys.version.split()[0]}\n"
    )
    print("| phase | wall s | MB/s | CPU s | peak RSS MiB | growth MiB |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for phase, run in results.items():
        print(
            f"| {phase} | {run['seconds']:.1f} | {size_mb / run['seconds']:.0f} | {run['cpu_seconds']:.1f} "
            f"| {run['peak_rss_mib']:.0f} | {run['growth_mib']:.0f} |"
        )
    floor = size_mb / results["csv.reader"]["seconds"]
    validate = size_mb / results["validate"]["seconds"]
    hashing = size_mb / results["validate + hash column"]["seconds"]
    upload = results["DcpTableS3Hook.load_file"]["seconds"] / results["S3Hook.load_file"]["seconds"]
    print(
        f"\nvalidation: {validate:.0f} MB/s = {validate / floor:.2f} x csv.reader ({floor:.0f} MB/s);"
        f" with a hashed column (rewritten): {hashing:.0f} MB/s = {hashing / floor:.2f} x"
    )
    print(f"upload: {upload:.2f} x the wall time of S3Hook.load_file")
    peaks = {phase: f"{run['peak_rss_mib']:.0f} MiB" for phase, run in results.items()}
    print("peak memory (whole process): " + ", ".join(f"{phase} {peak}" for phase, peak in peaks.items()))


if __name__ == "__main__":
    main()
