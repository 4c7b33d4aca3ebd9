"""Run every benchmark in turn, each printing its figures beside a baseline measured in the same run.

    make bench                      # the sizes the issues ask for (1M-row upserts, a 10M-row 1 GB CSV)
    .venv/bin/python benchmarks/run_all.py --quick    # smaller sizes, a few minutes in all

Each benchmark is an ordinary script too (``benchmarks/bench_*.py --help``).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

# script -> (full-size arguments, quick arguments)
BENCHMARKS: dict[str, tuple[list[str], list[str]]] = {
    "bench_rest_pacing.py": ([], ["--windows", "2", "--requests", "2000"]),
    "bench_shared_budget.py": ([], ["--no-long", "--windows", "3"]),
    "bench_concurrency.py": ([], ["--seconds", "4"]),
    "bench_upsert.py": ([], ["--rows", "100000"]),
    "bench_bulk_upload.py": ([], ["--rows", "1000000"]),
    "bench_dcp_channel.py": ([], ["--rows", "20000", "--rest-rows", "1000", "--bulk-sizes", "1000,5000"]),
    "bench_cpu_per_record.py": ([], ["--rows", "20000", "--request-rows", "500", "--repeat", "1"]),
}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smaller inputs, for a first look")
    parser.add_argument("only", nargs="*", help="run only these scripts (e.g. bench_upsert.py)")
    args = parser.parse_args()
    failed = []
    for script, (full, quick) in BENCHMARKS.items():
        if args.only and script not in args.only:
            continue
        command = [sys.executable, str(HERE / script), *(quick if args.quick else full)]
        print(f"\n=== {script} {' '.join(command[2:])}".rstrip(), flush=True)
        started = time.monotonic()
        if subprocess.run(command, check=False).returncode != 0:
            failed.append(script)
        print(f"=== {script}: {time.monotonic() - started:.0f}s", flush=True)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
