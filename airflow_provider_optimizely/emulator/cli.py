"""``optimizely-emulator``: serve the four emulated APIs (and moto's S3) in the foreground.

    optimizely-emulator --port 7788 --rate-limit dcp=100/60 --fault "odp:POST /events=503=0.1,seed=1"

It prints the URLs and one ready-to-paste ``AIRFLOW_CONN_*`` line per connection type, then serves until
interrupted. A non-loopback ``--host`` needs ``--allow-remote``: the emulator has fixed, public keys.
The default port is 7788, not 8080, which Airflow's own api-server takes; a port in use ends it with one
line that says so.
"""

from __future__ import annotations

import argparse
import ipaddress
import shlex
import sys
from collections.abc import Sequence
from typing import Any

from airflow_provider_optimizely.emulator.common import PUBLISHED_RATE_LIMITS, EmulatorSettings, RateLimit
from airflow_provider_optimizely.emulator.faults import FaultSpec, parse_cli_fault
from airflow_provider_optimizely.emulator.handle import EmulatorHandle
from airflow_provider_optimizely.emulator.ratelimit import parse_target
from airflow_provider_optimizely.emulator.server import (
    SETTINGS_KEYS,
    bind_socket,
    keys_of,
    s3_endpoint,
    uvicorn_config,
)

DEFAULT_PORT = 7788


class PortInUse(Exception):
    """The port asked for is taken."""


def build_parser() -> argparse.ArgumentParser:
    defaults = EmulatorSettings()
    parser = argparse.ArgumentParser(
        prog="optimizely-emulator",
        description="Local emulator of Optimizely DCP, ODP, Profile Store and Optimove Data Connections.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"HTTP port of all four APIs (default {DEFAULT_PORT}; 0: any free port)",
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
        "--time-scale",
        type=float,
        default=defaults.time_scale,
        metavar="FACTOR",
        help="real seconds per vendor second: shortens every announced wait and window together "
        "(Retry-After, rate-limit windows, token lifetimes, processing delays); default 1",
    )
    parser.add_argument(
        "--no-published-limits",
        action="store_true",
        help="do not enforce the published limits (ODP POST /profiles 10/s)",
    )
    readings = parser.add_argument_group(
        "readings", "the other reading of a rule the vendor documents leave ambiguous (strict by default)"
    )
    readings.add_argument(
        "--binary-units", action="store_true", help='"256KB" is 262,144 bytes and "10GB" 10*2**30'
    )
    readings.add_argument(
        "--empty-cells-as-no-value",
        action="store_true",
        help="an empty CSV cell leaves the stored value alone instead of failing a non-string column",
    )
    readings.add_argument(
        "--permissive-values",
        action="store_true",
        help="accept TRUE, +5, 5., .5, and numbers and booleans sent as JSON strings",
    )
    readings.add_argument(
        "--duplicates-per-scope",
        action="store_true",
        help="Profile Store finds duplicate DeviceIds/Info.Email only within the profile's scope",
    )
    readings.add_argument(
        "--reorder-same-name-uploads",
        choices=("fault_mode", "always", "never"),
        default=defaults.reorder_same_name_uploads,
        help="when pending uploads of one name are processed newest first (default: while DCP has faults)",
    )
    readings.add_argument(
        "--ignore-server-set-fields",
        action="store_true",
        help="Profile Store ignores ProfileId/UpdateTime in a body instead of refusing it",
    )
    readings.add_argument(
        "--keep-refresh-tokens",
        action="store_true",
        help="the OAuth token endpoint neither rotates nor revokes refresh tokens",
    )
    parser.add_argument(
        "--log-level", default="info", choices=("critical", "error", "warning", "info", "debug")
    )
    return parser


def settings_from(args: argparse.Namespace) -> EmulatorSettings:
    rate_limits: dict[str, RateLimit] = {} if args.no_published_limits else dict(PUBLISHED_RATE_LIMITS)
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
        time_scale=_positive(args.time_scale, "--time-scale"),
        binary_units=args.binary_units,
        empty_cells="no_value" if args.empty_cells_as_no_value else "invalid",
        value_syntax="permissive" if args.permissive_values else "strict",
        profile_store_duplicates="scope" if args.duplicates_per_scope else "store",
        reorder_same_name_uploads=args.reorder_same_name_uploads,
        oauth_rotate_refresh_tokens=not args.keep_refresh_tokens,
        profile_store_server_fields="ignore" if args.ignore_server_set_fields else "refuse",
    )


def _positive(value: float, flag: str) -> float:
    if not value > 0:
        raise ValueError(f"{flag} must be a positive number, not {value}")
    return value


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
    try:
        serve(settings, args.host, args.port, args.s3_port, args.log_level)
    except PortInUse as exc:
        print(f"optimizely-emulator: {exc}", file=sys.stderr)
        return 2
    return 0


def _bind(host: str, port: int, what: str, flag: str) -> Any:
    try:
        return bind_socket(host, port)
    except OSError as exc:
        raise PortInUse(
            f"{what} port {port} on {host} is not free ({exc.strerror or exc}): "
            f"pass {flag} N, or {flag} 0 for any free port"
        ) from None


def serve(settings: EmulatorSettings, host: str, port: int, s3_port: int, log_level: str) -> None:
    import uvicorn

    from airflow_provider_optimizely.emulator.app import create_app, initial_state

    sock = _bind(host, port, "the HTTP", "--port")
    bound_host, bound_port = sock.getsockname()[:2]
    shown_host = host if host not in ("0.0.0.0", "::") else "127.0.0.1"  # noqa: S104 - only to print a URL
    state = initial_state(settings)
    if not settings.s3_endpoint_url and s3_port:
        _bind(bound_host, s3_port, "the S3", "--s3-port").close()
    # The S3 endpoint listens where the APIs do: an uploader that reaches one reaches the other.
    with s3_endpoint(settings, state, bound_host, s3_port) as url:
        settings.s3_endpoint_url = url.replace("0.0.0.0", shown_host)  # noqa: S104
        app = create_app(settings, state)
        handle = EmulatorHandle(
            f"http://{shown_host}:{bound_port}",
            settings.s3_endpoint_url,
            keys_of(settings),
            settings.s3_region,
        )
        print(banner(handle), flush=True)
        uvicorn.Server(uvicorn_config(app, log_level)).run(sockets=[sock])


if __name__ == "__main__":
    sys.exit(main())
