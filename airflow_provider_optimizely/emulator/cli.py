"""``optimizely-emulator``: serve the four emulated APIs (and moto's S3) in the foreground.

    optimizely-emulator --port 8080 --rate-limit dcp=100/60 --fault "odp:POST /events=503=0.1,seed=1"

It prints the URLs and one ready-to-paste ``AIRFLOW_CONN_*`` line per connection type, then serves until
interrupted. A non-loopback ``--host`` needs ``--allow-remote``: the emulator has fixed, public keys.
"""

from __future__ import annotations

import argparse
import ipaddress
import shlex
import sys
from collections.abc import Sequence
from typing import Any

from airflow_provider_optimizely.emulator.common import EmulatorSettings, RateLimit
from airflow_provider_optimizely.emulator.faults import FaultSpec, parse_cli_fault
from airflow_provider_optimizely.emulator.handle import EmulatorHandle
from airflow_provider_optimizely.emulator.ratelimit import parse_target
from airflow_provider_optimizely.emulator.server import (
    SETTINGS_KEYS,
    bind_socket,
    keys_of,
    moto_s3_server,
    uvicorn_config,
)


def build_parser() -> argparse.ArgumentParser:
    defaults = EmulatorSettings()
    parser = argparse.ArgumentParser(
        prog="optimizely-emulator",
        description="Local emulator of Optimizely DCP, ODP, Profile Store and Optimove Data Connections.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=8080, help="HTTP port of all four APIs (0: any free port)"
    )
    parser.add_argument(
        "--s3-port", type=int, default=0, help="port of moto's S3 server (default: any free port)"
    )
    parser.add_argument("--s3-endpoint-url", help="use this S3 endpoint instead of starting moto's server")
    parser.add_argument("--s3-region", default=defaults.s3_region)
    parser.add_argument(
        "--allow-remote", action="store_true", help="allow a --host that is not a loopback address"
    )
    for name in SETTINGS_KEYS:
        flag = "--" + name.replace("_", "-")
        parser.add_argument(
            flag, dest=name, default=getattr(defaults, name), help=f"(default {getattr(defaults, name)})"
        )
    parser.add_argument(
        "--rate-limit",
        action="append",
        default=[],
        metavar="API[:ROUTE]=N/SECONDS",
        help='a budget, e.g. dcp=100/60 or "odp:POST /profiles=10/1" (repeatable; default: no limit)',
    )
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="API[:ROUTE]=SPEC",
        help='faults, e.g. "odp:POST /events=500=0.1,503=0.05,drop=0.02,delay=0.5,seed=1", or JSON',
    )
    parser.add_argument("--state-file", help="keep the state in this JSON file across restarts")
    parser.add_argument(
        "--state-save-interval", type=float, default=defaults.state_save_interval, metavar="SECONDS"
    )
    parser.add_argument(
        "--processing-delay",
        type=float,
        default=defaults.upload_processing_delay,
        metavar="SECONDS",
        help="how long an uploaded file stays pending in Upload History",
    )
    parser.add_argument(
        "--log-level", default="info", choices=("critical", "error", "warning", "info", "debug")
    )
    return parser


def settings_from(args: argparse.Namespace) -> EmulatorSettings:
    rate_limits: dict[str, RateLimit] = {}
    for text in args.rate_limit:
        target, sep, budget = text.rpartition("=")
        if not sep:
            raise ValueError(f"--rate-limit looks like dcp=100/60, not {text!r}")
        parse_target(target)
        rate_limits[target] = RateLimit.parse(budget)
    faults: list[dict[str, Any]] = []
    for text in args.fault:
        spec = parse_cli_fault(text)
        FaultSpec.model_validate(spec)
        faults.append(spec)
    keys = {name: getattr(args, name) for name in SETTINGS_KEYS}
    return EmulatorSettings(
        **keys,
        s3_endpoint_url=args.s3_endpoint_url,
        s3_region=args.s3_region,
        upload_processing_delay=args.processing_delay,
        state_file=args.state_file,
        state_save_interval=args.state_save_interval,
        rate_limits=rate_limits,
        faults=faults,
    )


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def banner(handle: EmulatorHandle) -> str:
    lines = [
        f"optimizely-emulator serving on {handle.base_url}",
        f"  S3 (bucket optimizely-import): {handle.s3_endpoint_url}",
    ]
    lines += [f"  {api:<14} {url}" for api, url in handle.urls.items()]
    lines.append("Point Airflow at it:")
    lines += [f"export {name}={shlex.quote(value)}" for name, value in handle.airflow_env().items()]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not is_loopback(args.host) and not args.allow_remote:
        parser.error(
            f"--host {args.host} is not loopback and the emulator's keys are public: add --allow-remote"
        )
    try:
        settings = settings_from(args)
    except ValueError as exc:
        parser.error(str(exc))
    serve(settings, args.host, args.port, args.s3_port, args.log_level)
    return 0


def serve(settings: EmulatorSettings, host: str, port: int, s3_port: int, log_level: str) -> None:
    import uvicorn

    from airflow_provider_optimizely.emulator.app import create_app

    sock = bind_socket(host, port)
    bound_host, bound_port = sock.getsockname()[:2]
    shown_host = host if host not in ("0.0.0.0", "::") else "127.0.0.1"  # noqa: S104 - only to print a URL

    def run(s3_endpoint_url: str) -> None:
        settings.s3_endpoint_url = s3_endpoint_url.replace("0.0.0.0", shown_host)  # noqa: S104
        app = create_app(settings)
        handle = EmulatorHandle(
            f"http://{shown_host}:{bound_port}", s3_endpoint_url, keys_of(settings), settings.s3_region
        )
        print(banner(handle), flush=True)
        uvicorn.Server(uvicorn_config(app, log_level)).run(sockets=[sock])

    if settings.s3_endpoint_url:
        run(settings.s3_endpoint_url)
        return
    # moto listens where the APIs do: an uploader that reaches one reaches the other.
    with moto_s3_server(bound_host, s3_port) as url:
        run(url)


if __name__ == "__main__":
    sys.exit(main())
