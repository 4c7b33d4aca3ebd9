"""One worker of tests/integration/test_shared_budget.py, in a process of its own: upserts ``ROWS`` ODP
profiles (``BATCH`` a request) through the ODP hook of the connection in the environment, once the test
says go on stdin (both workers start together), and prints what it did as JSON on the last line.

    python -m tests.integration.shared_budget_worker NAME ROWS BATCH
"""

from __future__ import annotations

import json
import sys

import tests.conftest  # noqa: F401  (the Airflow home, before Airflow is imported)
from airflow_provider_optimizely.core.sources import pages_from_records
from airflow_provider_optimizely.core.sync import run_sync
from airflow_provider_optimizely.core.writers.odp import OdpProfileWriter
from airflow_provider_optimizely.hooks.odp import OptimizelyOdpHook


def main() -> None:
    name, rows, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    hook = OptimizelyOdpHook()
    writer = OdpProfileWriter(hook, identifier_column="email", batch_size=batch)
    hook.profiles_rate_limiter  # noqa: B018 - built (and the store found) before the start signal
    print("ready", flush=True)
    sys.stdin.readline()  # the test starts both workers at once
    records = ({"email": f"{name}-{i}@example.com", "first_name": f"N{i}"} for i in range(rows))
    report = run_sync(pages_from_records(records), writer, max_concurrency=4)
    limiter = hook.profiles_rate_limiter
    print(
        json.dumps(
            {
                "succeeded": report.rows_succeeded,
                "retries": hook.client.stats.retries,
                "shared": type(limiter).__name__ == "SharedRateLimiter",
                "degraded": bool(getattr(limiter, "degraded", False)),
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
