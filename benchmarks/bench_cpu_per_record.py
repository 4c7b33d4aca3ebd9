"""Client CPU per record of the provider's whole row-sync path, change detection on, for each API and
each source, against a plain streaming loop doing the same requests, measured in one run.

    .venv/bin/python benchmarks/bench_cpu_per_record.py   # 50,000 rows (DCP, Profile Store 2,000), 3 repeats
    .venv/bin/python benchmarks/bench_cpu_per_record.py --rows 200000 --request-rows 50000 --repeat 5
    .venv/bin/python benchmarks/bench_cpu_per_record.py --apis ODP Optimove --sources SQL

For each API (DCP, ODP, Profile Store, Optimove) and each source (quoted CSV, SQL, JSON Lines; see
``cpu_plain_loop.py`` for the data), two clients, each in a fresh Python process of its own:

- **provider**: the API's row-sync operator (``OptimizelyDcpUpsertProfilesOperator``...) run as a task
  runs it, with its sync state in a local folder: ``incremental=True`` (the default), 4 requests in
  flight, the hook's pacing and retries, every value checked;
- **plain**: ``cpu_plain_loop.plain_sync``, the plainest good code doing the same requests and the same
  change detection (a dict of key -> XXH3 fingerprint of each body, pickled between runs).

Each client process does a **first run** (no state yet: every row is sent and its fingerprint kept),
then ``--repeat`` **change runs**, each over the other version of the source than the run before, so
that in each 1% of the rows changed (only those are sent; every row is still read and fingerprinted).
DCP and Profile Store write one profile a request, so their first run is long, and a change run's
fixed costs (loading and committing the state, the target's attributes) weigh more on few rows. The
emulator runs in its own process (``--no-published-limits``, so that the plain loop needs no pacing; the
provider still paces ODP profiles at its documented 10 requests a second, which costs no CPU), so its
CPU is not counted. Measured: ``time.process_time()`` of the client process (all its threads, user and
system) over each run, imports and set-up of the emulator's targets excluded. Printed: CPU µs per source
record (of change runs, the least over the repeats: on a shared machine, other work only ever adds to a
run's CPU), and provider / plain (goal <= 1.0 on every path).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_upsert import Emulator
from cpu_plain_loop import SOURCES, plain_sync, source_file, source_table

APIS = ("DCP", "ODP", "Profile Store", "Optimove")
APPROACHES = ("provider", "plain")
WAREHOUSE = {
    "conn_type": "postgres",
    "host": "127.0.0.1",
    "port": 5432,
    "login": "postgres",
    "schema": "test",
}


# -- the targets in the emulator (made by the driver, used by both clients) -----------------------------


def make_targets(emulator: Emulator) -> dict[str, dict[str, Any]]:
    """Per API: what the provider's operator takes (``operator``) and the URL and headers of the plain
    loop's requests."""
    os.environ.update(emulator.env)
    from airflow_provider_optimizely.hooks.dcp import OptimizelyDcpHook
    from airflow_provider_optimizely.hooks.odp import OptimizelyOdpHook
    from airflow_provider_optimizely.hooks.profile_store import PROFILES_PATH, OptimizelyProfileStoreHook

    dcp = OptimizelyDcpHook()
    dcp.create_service("bench")
    table = dcp.create_table("cpu_bench")
    for name, datatype, fmt in (
        ("email", "string", None),
        ("first_name", "string", None),
        ("city", "string", None),
        ("score", "double", None),
        ("signed_up", "datetime", "yyyy-mm-dd"),
    ):
        dcp.create_attribute(table.id, name, datatype, format=fmt)  # type: ignore[arg-type]
    odp = OptimizelyOdpHook()
    odp.create_schema_field("customers", "score", "Score", "number")
    odp.create_schema_field("customers", "signed_up", "Signed up", "string")
    store = OptimizelyProfileStoreHook()
    connection = emulator.new_connection()
    return {
        "DCP": {
            # The profile API, as the plain loop: one request a profile (not the bulk-upload channel).
            "operator": {"table_id": table.id, "identifier_column": "user_id", "method": "rest"},
            "url": f"{dcp.profile_api_base}/customer_profile/{dcp.service_id}/{table.id}",
            "headers": {"Token": dcp.connection.password},
        },
        "ODP": {
            "operator": {"identifier_column": "user_id", "identifier_name": "customer_id"},
            "url": f"{odp.base_url}/profiles",
            "headers": {"x-api-key": odp.connection.password},
        },
        "Profile Store": {
            "operator": {
                "identifier_column": "user_id",
                "column_mapping": {
                    "email": "Info.Email",
                    "first_name": "Name",
                    "city": "Payload.city",
                    "score": "Payload.score",
                    "signed_up": "Payload.signed_up",
                },
            },
            "url": f"{store.base_url}/{PROFILES_PATH}",
            "headers": {"Authorization": f"epi-single {store.connection.password}"},
        },
        "Optimove": {
            "operator": {"data_connection_uuid": connection, "identifier_column": "user_id"},
            "url": f"{emulator.optimove_url}/connections/{connection}/upload_data",
            "headers": emulator.optimove_headers,
        },
    }


# -- one client process -----------------------------------------------------------------------------------

_OPERATORS = {
    "DCP": ("airflow_provider_optimizely.operators.dcp", "OptimizelyDcpUpsertProfilesOperator"),
    "ODP": ("airflow_provider_optimizely.operators.odp", "OptimizelyOdpUpsertProfilesOperator"),
    "Profile Store": (
        "airflow_provider_optimizely.operators.profile_store",
        "OptimizelyProfileStorePutProfilesOperator",
    ),
    "Optimove": ("airflow_provider_optimizely.operators.optimove", "OptimoveUploadRecordsOperator"),
}


def provider_sync(api: str, kind: str, source: str, state: str, sync_id: str, target: dict[str, Any]) -> int:
    """One run of the API's operator as a task runs it; returns the rows it sent."""
    import importlib

    module, name = _OPERATORS[api]
    operator_class = getattr(importlib.import_module(module), name)
    source_argument = (
        {"sql": f"SELECT * FROM {source} ORDER BY user_id", "sql_conn_id": "warehouse"}
        if kind == "SQL"
        else {"path": source}
    )
    operator = operator_class(
        task_id="bench",
        state_store=state,
        sync_id=sync_id,
        max_concurrency=4,
        **target["operator"],
        **source_argument,
    )
    ti = type(
        "Ti",
        (),
        {"dag_id": "bench", "task_id": "cpu", "map_index": -1, "run_id": f"r{time.time()}", "try_number": 1},
    )()
    ti.xcom_push = lambda key, value: None  # type: ignore[attr-defined]
    report = operator.execute({"ti": ti})
    if report["rows_rejected"]:
        raise RuntimeError(f"{api} from {kind}: {report['rows_rejected']} rows rejected: {report}")
    return int(report["rows_sent"])


def client_main(args: argparse.Namespace) -> None:
    """A first run and ``--repeat`` change runs of one approach; prints its figures as JSON."""
    import cProfile
    import logging

    # Imports first: what is measured is the runs, not loading the libraries.
    import msgspec  # noqa: F401
    import psycopg2  # noqa: F401
    import requests  # noqa: F401
    import xxhash  # noqa: F401

    if args.approach == "provider":
        import importlib

        import pyarrow.compute
        import pyarrow.csv  # noqa: F401

        importlib.import_module(_OPERATORS[args.api][0])
        import airflow.providers.postgres.hooks.postgres  # noqa: F401
        import numpy.ma  # noqa: F401  (imported by the first sync state read)

        from airflow_provider_optimizely.core import incremental, sync_state  # noqa: F401

        logging.disable(logging.WARNING)  # the task log is not what is measured
    target = json.loads(os.environ["BENCH_TARGET"])
    sources = json.loads(args.sources_json)
    figures: dict[str, list[float]] = {"first": [], "change": [], "first_sent": [], "change_sent": []}
    runs = [("first", sources[0])] + [("change", sources[(n + 1) % 2]) for n in range(args.repeat)]
    with tempfile.TemporaryDirectory(prefix="bench-cpu-") as work:
        for number, (run, source) in enumerate(runs):
            profiler = cProfile.Profile() if args.profile else None
            started = time.process_time()
            if profiler is not None:
                profiler.enable()
            if args.approach == "provider":
                sent = provider_sync(args.api, args.kind, source, work, "cpu", target)
            else:
                sent = plain_sync(args.api, args.kind, source, f"{work}/state.pickle", target)
            figures[run].append(time.process_time() - started)
            if profiler is not None:
                profiler.disable()
                name = f"{args.approach}-{args.api}-{args.kind}-{run}-{number}".replace(" ", "_")
                profiler.dump_stats(Path(args.profile) / f"{name}.prof")
            figures[f"{run}_sent"].append(sent)
    print(json.dumps(figures))


# -- the driver -------------------------------------------------------------------------------------------


def measure(
    approach: str, api: str, kind: str, sources: list[str], env: dict[str, str], args: argparse.Namespace
) -> Any:
    command = [sys.executable, __file__, "--client", approach, "--api", api, "--kind", kind]
    command += ["--sources-json", json.dumps(sources), "--repeat", str(args.repeat)]
    if args.profile:
        command += ["--profile", args.profile]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=7200, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{approach} {api} {kind} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000, help="source rows for ODP and Optimove")
    parser.add_argument(
        "--request-rows",
        type=int,
        default=2_000,
        help="source rows for DCP and Profile Store (a request each)",
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="change runs after the first; the least CPU is shown"
    )
    parser.add_argument("--apis", nargs="+", choices=APIS, default=list(APIS))
    parser.add_argument("--sources", nargs="+", choices=SOURCES, default=list(SOURCES))
    parser.add_argument(
        "--profile",
        metavar="DIR",
        help="write each run's cProfile statistics to DIR (its figures then include the profiler's cost)",
    )
    parser.add_argument("--raw", metavar="FILE", help="also write every run's CPU seconds to FILE (JSON)")
    parser.add_argument("--client", choices=APPROACHES, dest="approach", help=argparse.SUPPRESS)
    parser.add_argument("--api", help=argparse.SUPPRESS)
    parser.add_argument("--kind", help=argparse.SUPPRESS)
    parser.add_argument("--sources-json", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.approach:
        client_main(args)
        return

    versions = {
        (rows, kind): [
            source_table(rows, v) if kind == "SQL" else str(source_file(kind, rows, v)) for v in (0, 1)
        ]
        for rows in {rows_for(api, args) for api in args.apis}
        for kind in args.sources
    }
    emulator = Emulator("--no-published-limits")
    results: dict[tuple[str, str, str], Any] = {}
    try:
        targets = make_targets(emulator)
        for api in args.apis:
            env = {
                **os.environ,
                **emulator.env,
                "AIRFLOW_CONN_WAREHOUSE": json.dumps(WAREHOUSE),
                "BENCH_TARGET": json.dumps(targets[api]),
            }
            for kind in args.sources:
                for approach in APPROACHES:
                    results[(api, kind, approach)] = measure(
                        approach, api, kind, versions[(rows_for(api, args), kind)], env, args
                    )
                    print(f"  measured {api} / {kind} / {approach}", file=sys.stderr, flush=True)
    finally:
        emulator.stop()
    report(results, args)
    if args.raw:
        raw = {" / ".join(key): figures for key, figures in results.items()}
        Path(args.raw).write_text(json.dumps(raw, indent=1))


def rows_for(api: str, args: argparse.Namespace) -> int:
    return int(args.request_rows if api in ("DCP", "Profile Store") else args.rows)


def report(results: dict[tuple[str, str, str], Any], args: argparse.Namespace) -> None:
    print(
        f"\nClient CPU µs per source record: a first run (every row sent), then the best of {args.repeat} "
        "change runs (1% of the rows changed and sent)"
    )
    print(
        "| API | source | rows | first: provider | first: plain | first ratio | change: provider "
        "| change: plain | change ratio |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for api in args.apis:
        rows = rows_for(api, args)
        changed = len(range(0, rows, 100))
        for kind in args.sources:
            ours, plain = results[(api, kind, "provider")], results[(api, kind, "plain")]
            for figures in (ours, plain):
                if set(figures["first_sent"]) != {rows} or set(figures["change_sent"]) != {changed}:
                    sent = f"{figures['first_sent']}, {figures['change_sent']}"
                    raise SystemExit(f"{api} / {kind}: sent {sent}, not {rows:,} and {changed:,}")
            cells = []
            for run in ("first", "change"):
                a = min(ours[run]) / rows * 1e6
                b = min(plain[run]) / rows * 1e6
                cells += [f"{a:.1f}", f"{b:.1f}", f"{a / b:.2f}"]
            print(f"| {api} | {kind} | {rows:,} | {' | '.join(cells)} |")
    print("\nrows sent: every row in a first run, 1% in each change run, by both (checked)")
    print("spread (max/min CPU over the change runs, worst cell):", spread(results))


def spread(results: dict[tuple[str, str, str], Any]) -> str:
    worst = max(
        (max(f["change"]) / min(f["change"]), f"{key[0]} / {key[1]} / {key[2]}") for key, f in results.items()
    )
    return f"{worst[0]:.2f} ({worst[1]})"


if __name__ == "__main__":
    main()
