"""Run the emulator in this process: moto's S3 server and uvicorn, each in a background thread.

    with run_emulator(EmulatorSettings()) as emulator:
        requests.get(emulator.urls["dcp"] + "/dcp_services", headers={"Token": emulator.keys["dcp_token"]})

For scripts, benchmarks and the pytest plugin; the CLI serves in the foreground instead.
"""

from __future__ import annotations

import dataclasses
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from airflow_provider_optimizely.emulator.common import EmulatorSettings
from airflow_provider_optimizely.emulator.handle import EmulatorHandle

if TYPE_CHECKING:
    from airflow_provider_optimizely.emulator.state import EmulatorState

LOOPBACK = "127.0.0.1"
SETTINGS_KEYS = (
    "dcp_token",
    "dcp_personal_token",
    "odp_private_key",
    "odp_public_key",
    "profile_store_key",
    "optimove_api_key",
    "optimove_brand_key",
    "s3_admin_access_key",
    "s3_admin_secret_key",
)


def keys_of(settings: EmulatorSettings) -> dict[str, str]:
    return {name: getattr(settings, name) for name in SETTINGS_KEYS}


def bind_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    # Listen at once: a client that connects before uvicorn is serving waits in the backlog instead of
    # being refused.
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


@contextmanager
def s3_endpoint(settings: EmulatorSettings, state: EmulatorState, host: str, port: int) -> Iterator[str]:
    """The S3 endpoint to use: ``settings.s3_endpoint_url`` as it is, else moto's S3 behind the emulator's
    SigV4 gate (``s3_gateway``) on ``host:port`` (0: a free port). Yields its URL."""
    if settings.s3_endpoint_url:
        yield settings.s3_endpoint_url
        return
    from airflow_provider_optimizely.emulator.s3_gateway import Authorizer, signed_s3_server

    with signed_s3_server(host, port, Authorizer(state.dcp, settings)) as url:
        yield url


def uvicorn_config(app: Any, log_level: str = "warning") -> Any:
    import uvicorn

    return uvicorn.Config(
        app,
        log_level=log_level,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=3,
        # Clients keep pooled connections; closing idle ones sooner than uvicorn's 5 s default would
        # make a client's next request fail on a connection the server just dropped.
        timeout_keep_alive=30,
    )


@contextmanager
def run_emulator(
    settings: EmulatorSettings | None = None,
    *,
    host: str = LOOPBACK,
    port: int = 0,
    s3_port: int = 0,
    startup_timeout: float = 30.0,
) -> Iterator[EmulatorHandle]:
    """Start the emulator (and moto's S3 server, unless ``settings.s3_endpoint_url`` is set), yield its
    handle, stop both on exit."""
    from airflow_provider_optimizely.emulator.app import create_app, initial_state

    settings = dataclasses.replace(settings or EmulatorSettings())
    state = initial_state(settings)
    with s3_endpoint(settings, state, host, s3_port) as s3_endpoint_url:
        settings.s3_endpoint_url = s3_endpoint_url
        with serve_in_thread(create_app(settings, state), host, port, startup_timeout) as base_url:
            handle = EmulatorHandle(base_url, s3_endpoint_url, keys_of(settings), settings.s3_region)
            yield handle
            handle.close()


@contextmanager
def serve_in_thread(
    app: Any, host: str = LOOPBACK, port: int = 0, startup_timeout: float = 30.0
) -> Iterator[str]:
    """Serve ``app`` with uvicorn in a background thread; yield its base URL once it accepts requests."""
    import uvicorn

    sock = bind_socket(host, port)
    server = uvicorn.Server(uvicorn_config(app))
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="emulator-http", daemon=True
    )
    thread.start()
    try:
        _wait_started(server, thread, startup_timeout)
        bound_host, bound_port = sock.getsockname()[:2]
        yield f"http://{bound_host}:{bound_port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


def _wait_started(server: Any, thread: threading.Thread, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the emulator failed to start (see the log above)")
        if time.monotonic() > deadline:
            raise TimeoutError(f"the emulator did not start within {timeout} s")
        time.sleep(0.01)
