"""``optimizely-emulator`` as a user runs it: a subprocess that prints its URLs and serves until stopped."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading

import pytest
import requests

from airflow_provider_optimizely.emulator.cli import DEFAULT_PORT, build_parser, is_loopback, settings_from
from airflow_provider_optimizely.emulator.common import RateLimit
from tests.waiting import wait_until


def healthy(base: str) -> bool:
    try:
        return requests.get(f"{base}/_emulator/health", timeout=5).ok
    except requests.RequestException:  # not listening yet, or still starting up on a busy machine
        return False


def test_cli_starts_prints_urls_and_connections_then_stops(tmp_path):
    state_file = tmp_path / "state.json"
    flags = [
        "--port",
        "0",
        "--rate-limit",
        "dcp=5/60",
        "--state-file",
        str(state_file),
        "--state-save-interval",
        "600",
    ]
    process = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_optimizely.emulator", *flags],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True)  # type: ignore[arg-type]
    reader.start()
    try:
        banner = wait_until(
            lambda: any("AIRFLOW_CONN_OPTIMOVE_DEFAULT" in line for line in lines),
            timeout=60,
            what="the banner",
        )
        assert banner
        base = re.search(r"serving on (http://127\.0\.0\.1:\d+)", "".join(lines)).group(1)
        wait_until(lambda: healthy(base), timeout=30, what="health")
        exports = {
            line.split("=", 1)[0].removeprefix("export "): line.split("=", 1)[1].strip().strip("'")
            for line in lines
            if line.startswith("export ")
        }
        assert set(exports) == {
            "AIRFLOW_CONN_OPTIMIZELY_DEFAULT",
            "AIRFLOW_CONN_OPTIMIZELY_ODP_DEFAULT",
            "AIRFLOW_CONN_OPTIMIZELY_PROFILE_STORE_DEFAULT",
            "AIRFLOW_CONN_OPTIMOVE_DEFAULT",
        }
        dcp = json.loads(exports["AIRFLOW_CONN_OPTIMIZELY_DEFAULT"])
        assert dcp["host"] == f"{base}/dcp/experiment/v1"
        response = requests.post(
            f"{dcp['host']}/dcp_services", json={"name": "cli"}, headers={"Token": dcp["password"]}, timeout=5
        )
        assert response.status_code == 201
        assert response.headers["X-RateLimit-Limit"] == "5"
        s3 = requests.get(dcp["extra"]["s3_endpoint_url"] + "/optimizely-import", timeout=5)
        assert s3.status_code == 403 and "AccessDenied" in s3.text  # S3 behind the SigV4 gate
    finally:
        process.terminate()
        # uvicorn shuts down gracefully, then re-raises SIGTERM so the exit status tells how it ended.
        assert process.wait(timeout=30) in (0, -15)
    # The graceful shutdown wrote the state although the save interval never came round.
    assert json.loads(state_file.read_text())["dcp"]["services"][0]["name"] == "cli"


def test_cli_refuses_a_remote_host_unless_allowed():
    result = subprocess.run(
        [sys.executable, "-m", "airflow_provider_optimizely.emulator", "--host", "0.0.0.0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "--allow-remote" in result.stderr


def test_the_default_port_is_not_airflows_8080():
    """Airflow's api-server listens on 8080: the emulator's default must leave it alone."""
    assert build_parser().parse_args([]).port == DEFAULT_PORT != 8080


def test_a_port_in_use_is_one_line_and_no_traceback():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "airflow_provider_optimizely.emulator", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert f"port {port}" in result.stderr and "--port" in result.stderr
    assert "Traceback" not in result.stderr


def test_time_scale_and_reading_flags_become_settings():
    defaults = settings_from(build_parser().parse_args([]))
    assert defaults.time_scale == 1.0
    assert defaults.rate_limits == {"odp:POST /profiles": RateLimit(10, 1.0)}
    assert (defaults.binary_units, defaults.empty_cells, defaults.value_syntax) == (
        False,
        "invalid",
        "strict",
    )
    args = build_parser().parse_args(
        [
            "--time-scale",
            "0.01",
            "--no-published-limits",
            "--binary-units",
            "--empty-cells-as-no-value",
            "--permissive-values",
            "--duplicates-per-scope",
            "--reorder-same-name-uploads",
            "always",
            "--keep-refresh-tokens",
            "--ignore-server-set-fields",
        ]
    )
    settings = settings_from(args)
    assert settings.time_scale == 0.01 and settings.rate_limits == {}
    assert (settings.binary_units, settings.empty_cells, settings.value_syntax) == (
        True,
        "no_value",
        "permissive",
    )
    assert (settings.profile_store_duplicates, settings.reorder_same_name_uploads) == ("scope", "always")
    assert settings.oauth_rotate_refresh_tokens is False
    assert settings.profile_store_server_fields == "ignore"
    with pytest.raises(ValueError, match="time-scale"):
        settings_from(build_parser().parse_args(["--time-scale", "0"]))


def test_cli_flags_become_settings():
    args = build_parser().parse_args(
        [
            "--rate-limit",
            "dcp=100/60",
            "--rate-limit",
            "odp:POST /profiles=10/1",
            "--fault",
            "odp:POST /events=503=0.1,seed=3",
            "--dcp-token",
            "t0k",
            "--processing-delay",
            "1.5",
            "--state-file",
            "/tmp/x.json",
        ]
    )
    settings = settings_from(args)
    assert settings.rate_limits == {"dcp": RateLimit(100, 60.0), "odp:POST /profiles": RateLimit(10, 1.0)}
    assert settings.faults == [{"api": "odp", "route": "POST /events", "error_rate": {"503": 0.1}, "seed": 3}]
    assert (settings.dcp_token, settings.upload_processing_delay, settings.state_file) == (
        "t0k",
        1.5,
        "/tmp/x.json",
    )


@pytest.mark.parametrize(
    "flags", [["--rate-limit", "ftp=1/1"], ["--rate-limit", "dcp=lots"], ["--fault", "dcp=drop=7"]]
)
def test_cli_refuses_bad_flags(flags):
    with pytest.raises(ValueError):
        settings_from(build_parser().parse_args(flags))


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("localhost", True),
        ("::1", True),
        ("0.0.0.0", False),
        ("10.0.0.1", False),
        ("example.com", False),
    ],
)
def test_loopback_hosts(host, loopback):
    assert is_loopback(host) is loopback
