"""How well the REST core paces itself, and what it costs.

1. Pacing: a loopback server (its own process) allows ``--limit`` requests per ``--window`` seconds and
   announces it in ``X-RateLimit-*``; 8 threads share one RestClient and try to go faster. Reported: the
   requests the server accepted per full window as a ratio of the limit (goal >= 0.95) and the 429s it
   had to send (goal 0). Run on 20 requests a 1-s window, then on ``--limit``/``--window``.
2. Cost: 10,000 requests to an unlimited server, client CPU seconds (the server runs in another process),
   beside the same requests sent with a bare ``requests.Session`` as the baseline measured in the same run.

Run: ``.venv/bin/python benchmarks/bench_rest_pacing.py`` (about 40 s).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from airflow_provider_optimizely.core.ratelimit import RateLimiter  # noqa: E402
from airflow_provider_optimizely.core.rest import RestClient  # noqa: E402

THREADS = 8


@contextmanager
def loopback_server(limit: int = 0, window: int = 1) -> Any:
    process = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "tests" / "http_test_server.py"),
            "--limit",
            str(limit),
            "--window",
            str(window),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": ""},
    )
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline())
        yield f"http://127.0.0.1:{port}"
    finally:
        assert process.stdin is not None
        process.stdin.close()
        process.wait(timeout=10)


def run_threads(work: Callable[[], None], count: int) -> None:
    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        for future in [pool.submit(work) for _ in range(count)]:
            future.result()


def bench_pacing(limit: int, window: int, windows: int) -> dict[str, float]:
    with loopback_server(limit, window) as url:
        client = RestClient(url, rate_limiter=RateLimiter(), pool_size=THREADS)
        # Start at a window boundary, run `windows` full windows plus the one we start in.
        first_full = (int(time.time()) // window + 1) * window
        stop_at = first_full + windows * window
        stop = threading.Event()

        def worker() -> None:
            while not stop.is_set():
                client.request("GET", "things")

        threads = [threading.Thread(target=worker) for _ in range(THREADS)]
        for thread in threads:
            thread.start()
        time.sleep(max(0.0, stop_at - time.time()))  # the run lasts exactly the measured windows
        stop.set()
        for thread in threads:
            thread.join()
        stats = requests.get(f"{url}/_stats", timeout=10).json()
    per_window = stats["per_window"]
    full = [per_window.get(str(first_full + i * window), 0) for i in range(windows)]
    return {
        "limit_per_window": limit,
        "window_seconds": window,
        "accepted_per_full_window": sum(full) / len(full),
        "ratio_of_limit": round(sum(full) / len(full) / limit, 4),
        "server_429s": stats["refused"],
        "client_retries": client.stats.retries,
    }


def cpu_seconds(work: Callable[[], None], count: int) -> tuple[float, float]:
    cpu, wall = time.process_time(), time.perf_counter()
    run_threads(work, count)
    return time.process_time() - cpu, time.perf_counter() - wall


def bench_cost(count: int) -> dict[str, float]:
    with loopback_server() as url:
        client = RestClient(url, pool_size=THREADS)
        body = [{"type": "order", "identifiers": {"email": "a@b.c"}, "data": {"n": 1}}]
        sessions = threading.local()

        def ours() -> None:
            client.request("POST", "events", json=body)

        def bare() -> None:
            session = getattr(sessions, "session", None)
            if session is None:
                session = sessions.session = requests.Session()
            session.post(f"{url}/events", json=body, timeout=(10, 60)).raise_for_status()

        run_threads(ours, 200)  # warm the pools
        run_threads(bare, 200)
        ours_cpu, ours_wall = cpu_seconds(ours, count)
        bare_cpu, bare_wall = cpu_seconds(bare, count)
    scale = 10_000 / count
    return {
        "requests": count,
        "client_cpu_s_per_10k": round(ours_cpu * scale, 2),
        "baseline_requests_session_cpu_s_per_10k": round(bare_cpu * scale, 2),
        "overhead_ratio": round(ours_cpu / bare_cpu, 2),
        "client_requests_per_s": round(count / ours_wall),
        "baseline_requests_per_s": round(count / bare_wall),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--limit", type=int, default=300, help="server limit per window")
    parser.add_argument("--window", type=int, default=2, help="server window, whole seconds")
    parser.add_argument("--windows", type=int, default=5, help="full windows measured")
    parser.add_argument("--requests", type=int, default=10_000, help="requests for the CPU measurement")
    args = parser.parse_args()
    # The short window first: a fixed cost per window shows most there (the 20 a second).
    print("pacing:", bench_pacing(20, 1, max(args.windows, 5)), flush=True)
    print("pacing:", bench_pacing(args.limit, args.window, args.windows), flush=True)
    print("cost:  ", bench_cost(args.requests), flush=True)


if __name__ == "__main__":
    main()
