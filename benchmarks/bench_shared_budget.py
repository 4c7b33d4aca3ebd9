"""One rate budget shared by several worker processes through Redis: how much of it they use, and 429s.

    .venv/bin/python benchmarks/bench_shared_budget.py            # 1-s windows (~1 min), then 60-s (~2.5 min)
    .venv/bin/python benchmarks/bench_shared_budget.py --no-long  # 1-s windows only

An independent loopback server (tests/http_test_server.py, its own process) allows ``--limit`` requests
per fixed window and announces it in ``X-RateLimit-*``; past it, 429 + ``Retry-After``. 1, 2 and 4 worker
processes (each a RestClient with 4 threads that try to go faster) share one ``SharedRateLimiter`` key on
the Redis at 127.0.0.1:6379. Reported per run: requests the server accepted per full window as a ratio of
the limit (goal >= 0.95) and the 429s it sent (goal 0). Baseline, same run: the same workers each with an
in-process limiter only (what two DAG runs did before the shared store).

1-s windows: 20 requests a window (the issue's case), ``--windows`` full windows. 60-s windows: 1,200 a
window, one full window; the three worker counts run at once against three servers (three keys), so that
the 60-s figure costs one window of wall time, not three.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from bench_rest_pacing import loopback_server  # noqa: E402

THREADS = 4
WORKER_COUNTS = (1, 2, 4)
WARM_UP_SECONDS = 1


def worker_main(url: str, key: str) -> None:
    """One worker process: says it is ready, reads when to stop (wall clock) from stdin, and until then
    THREADS threads send; prints its figures."""
    import redis

    from airflow_provider_optimizely.core.ratelimit import RateLimiter
    from airflow_provider_optimizely.core.rest import RestClient
    from airflow_provider_optimizely.core.shared_budget import SharedRateLimiter

    limiter: RateLimiter = RateLimiter()
    if key:
        limiter = SharedRateLimiter(None, redis=redis.Redis(host="127.0.0.1", port=6379), key=key)
    client = RestClient(url, rate_limiter=limiter, pool_size=THREADS)
    client.log.disabled = True  # 429 retries of the baseline would flood the output
    print("ready", flush=True)
    stop_at = float(sys.stdin.readline())

    def work() -> None:
        while time.time() < stop_at:
            client.request("GET", "things")

    threads = [threading.Thread(target=work) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(json.dumps({"requests": client.stats.requests, "retries": client.stats.retries}), flush=True)


def run(workers: int, limit: int, window: int, windows: int, shared: bool) -> dict[str, Any]:
    with loopback_server(limit, window) as url:
        return measure(url, workers, limit, window, windows, shared)


def measure(url: str, workers: int, limit: int, window: int, windows: int, shared: bool) -> dict[str, Any]:
    key = f"optimizely:bench:{uuid.uuid4().hex}" if shared else ""
    processes = [
        subprocess.Popen(
            [sys.executable, __file__, "--worker", url, key],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(workers)
    ]
    for process in processes:  # started (imports take seconds on a busy machine): all go at once
        assert process.stdout is not None
        if process.stdout.readline().strip() != "ready":
            raise RuntimeError("a worker did not start")
    # The first window measured starts after a warm-up of at least a second.
    first_full = (int(time.time() + WARM_UP_SECONDS) // window + 1) * window
    stop_at = first_full + windows * window
    for process in processes:
        assert process.stdin is not None
        process.stdin.write(f"{stop_at}\n")
        process.stdin.flush()
    for process in processes:
        process.wait(timeout=windows * window + 120)
    stats = requests.get(f"{url}/_stats", timeout=10).json()
    per_window = stats["per_window"]
    full = [per_window.get(str(first_full + i * window), 0) for i in range(windows)]
    return {
        "workers": workers,
        "store": "redis" if shared else "none",
        "window_s": window,
        "limit": limit,
        "ratio_of_limit": round(sum(full) / len(full) / limit, 3),
        "worst_window": min(full) / limit,
        "server_429s": stats["refused"],
    }


def long_windows(limit: int) -> list[dict[str, Any]]:
    """60-s windows: one full window for each worker count, all at once (one server and key each)."""
    with ThreadPoolExecutor(len(WORKER_COUNTS)) as pool:
        futures = [pool.submit(run, workers, limit, 60, 1, True) for workers in WORKER_COUNTS]
        return [future.result() for future in futures]


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--worker":
        worker_main(sys.argv[2], sys.argv[3])
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--limit", type=int, default=20, help="requests per 1-s window")
    parser.add_argument("--windows", type=int, default=5, help="full 1-s windows measured")
    parser.add_argument("--long-limit", type=int, default=1200, help="requests per 60-s window")
    parser.add_argument("--no-long", action="store_true", help="skip the 60-s windows")
    args = parser.parse_args()
    for shared in (True, False):
        for workers in WORKER_COUNTS:
            if not shared and workers == 1:
                continue  # one worker alone is the first line already
            print(run(workers, args.limit, 1, args.windows, shared), flush=True)
    if not args.no_long:
        for figures in long_windows(args.long_limit):
            print(figures, flush=True)


if __name__ == "__main__":
    main()
