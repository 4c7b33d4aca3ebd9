"""``python -m scripts.cluster up|down|status|trigger``: the command line of the local cluster.

python -m scripts.cluster up --emulator http://127.0.0.1:8765     # tasks reach a running emulator
python -m scripts.cluster trigger my_dag --conf '{"rows": 10}'     # run a DAG, wait, print each task
python -m scripts.cluster status
python -m scripts.cluster down
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make ``scripts.cluster`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from scripts.cluster import processes
from scripts.cluster.control import ClusterError, LocalCluster
from scripts.cluster.settings import (
    DEFAULT_DAG_FOLDERS,
    DEFAULT_FOLDER,
    DEFAULT_POSTGRES_URL,
    DEFAULT_REDIS_DB,
    DEFAULT_REDIS_URL,
    ClusterSettings,
)
from scripts.cluster.stores import StoreUnavailable


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m scripts.cluster", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    def add(name: str, text: str) -> argparse.ArgumentParser:
        command = commands.add_parser(name, help=text, description=text)
        command.add_argument(
            "--folder",
            type=Path,
            default=DEFAULT_FOLDER,
            help=f"the cluster's folder (default {DEFAULT_FOLDER})",
        )
        return command

    up = add("up", "start the cluster and wait until every process is ready")
    up.add_argument(
        "--dags",
        type=Path,
        action="append",
        help="a DAG folder (repeatable; default: example_dags/), each one DAG bundle",
    )
    up.add_argument("--workers", type=int, default=2, help="Celery workers (default 2)")
    up.add_argument("--concurrency", type=int, default=2, help="task slots per worker (default 2)")
    up.add_argument("--port", type=int, default=0, help="the api-server's port (default: a free one)")
    up.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    up.add_argument("--redis-db", type=int, default=DEFAULT_REDIS_DB, help="Redis database index")
    up.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL, help="server of the metadata DB")
    up.add_argument("--fresh", action="store_true", help="drop the cluster's metadata DB first")
    up.add_argument("--env", action="append", default=[], metavar="NAME=VALUE", help="extra environment")
    up.add_argument("--emulator", metavar="URL", help="a running emulator: AIRFLOW_CONN_* for its four APIs")
    up.add_argument("--timeout", type=float, default=240.0, help="seconds to wait for a ready cluster")

    down = add("down", "stop every process of the cluster")
    down.add_argument("--grace", type=float, default=20.0, help="seconds to exit before SIGKILL")
    down.add_argument("--drop-db", action="store_true", help="drop the cluster's metadata DB too")

    status = add("status", "each process, the api-server's health and the workers that answer")
    status.add_argument("--json", action="store_true")

    watch = add("watch", "stop the cluster once the process --owner has ended (started by up)")
    watch.add_argument("--owner", type=int, required=True)
    watch.add_argument("--drop-db", action="store_true")

    trigger = add("trigger", "trigger a DAG run through the REST API and wait for its end")
    trigger.add_argument("dag_id")
    trigger.add_argument("--conf", default="{}", help="the run's conf, as JSON")
    trigger.add_argument("--timeout", type=float, default=600.0)
    return parser


def emulator_env(url: str) -> dict[str, str]:
    """``AIRFLOW_CONN_*`` for the four default connection ids, pointing at a running emulator with its
    default keys (as ``optimizely-emulator`` prints them)."""
    from airflow_provider_optimizely.emulator.common import EmulatorSettings
    from airflow_provider_optimizely.emulator.handle import EmulatorHandle
    from airflow_provider_optimizely.emulator.server import keys_of

    probe = EmulatorHandle(url, None, keys_of(EmulatorSettings()))
    try:
        s3_endpoint = probe.health().get("s3_endpoint_url")
    finally:
        probe.close()
    return EmulatorHandle(url, s3_endpoint, keys_of(EmulatorSettings())).airflow_env()


def parse_env(pairs: Sequence[str]) -> dict[str, str]:
    env: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise SystemExit(f"--env takes NAME=VALUE, not {pair!r}")
        env[name] = value
    return env


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "up":
            extra_env = emulator_env(args.emulator) if args.emulator else {}
            extra_env.update(parse_env(args.env))
            settings = ClusterSettings(
                folder=args.folder,
                dag_folders=tuple(args.dags or DEFAULT_DAG_FOLDERS),
                workers=args.workers,
                worker_concurrency=args.concurrency,
                api_port=args.port,
                redis_url=args.redis_url,
                redis_db=args.redis_db,
                postgres_url=args.postgres_url,
                extra_env=extra_env,
            )
            LocalCluster(settings).up(fresh_database=args.fresh, timeout=args.timeout)
            return 0
        cluster = LocalCluster.at(args.folder)
        if args.command == "down":
            killed = cluster.down(grace=args.grace, drop_database=args.drop_db)
            print(
                f"stopped the cluster in {cluster.folder}"
                + (f"; SIGKILL to {', '.join(killed)}" if killed else "")
            )
            return 0
        if args.command == "watch":
            # `down` ends this process with a SIGTERM; otherwise it outlives its owner only to stop
            # the cluster.
            while processes.is_running(args.owner):
                time.sleep(1.0)
            print(f"the owner (pid {args.owner}) is gone: stopping the cluster", flush=True)
            cluster.down(drop_database=args.drop_db)
            return 0
        if args.command == "status":
            return print_status(cluster, as_json=args.json)
        api = cluster.api()
        outcome = api.run(args.dag_id, json.loads(args.conf), timeout=args.timeout)
        for label, state in sorted(outcome.states().items()):
            print(f"  {label}: {state}")
        print(f"{args.dag_id} {outcome.run_id}: {outcome.state}")
        return 0 if outcome.state == "success" else 1
    except (ClusterError, StoreUnavailable, TimeoutError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def print_status(cluster: LocalCluster, *, as_json: bool) -> int:
    status = cluster.status()
    if as_json:
        print(json.dumps(status, indent=2))
    else:
        print(f"cluster in {status['folder']}" + (f": {status['api_url']}" if "api_url" in status else ""))
        for entry in status["members"]:
            state = f"running, pid {entry['pid']}" if entry["running"] else "stopped"
            print(f"  {entry['name']:<14} {state:<22} {entry['log']}")
        if "health" in status:
            health = status["health"]
            if health is None:
                print("  api-server health: no answer")
            else:
                parts = [f"{key} {(value or {}).get('status', '?')}" for key, value in health.items()]
                print(f"  health: {', '.join(parts)}")
            print(f"  workers answering a ping: {', '.join(status['workers_answering']) or 'none'}")
    return 0 if all(entry["running"] for entry in status["members"]) else 3


if __name__ == "__main__":
    sys.exit(main())
