"""Pytest fixtures that run the Optimizely emulator (loaded through the ``pytest11`` entry point).

Every name starts with ``optimizely_emulator``, so that none can clash with a fixture of the suite of
anyone who installs the package (this plugin is loaded in all their pytest sessions):

- ``optimizely_emulator_session`` (session): moto's S3 server and the emulator on free loopback ports;
  yields an ``EmulatorHandle`` and stops both at the end of the session. It runs at ``TEST_TIME_SCALE``:
  every announced wait and window is a hundredth of the vendor's (DCP's 60 s ``Retry-After`` is 0.6 s,
  ODP's 10 profiles a second are 10 per 10 ms), so the rules hold and the tests stay fast.
- ``optimizely_emulator`` (function): the same handle, with the state, the S3 bucket and the faults reset
  first.
- ``optimizely_emulator_connections`` (function): ``AIRFLOW_CONN_*`` for the four default connection ids,
  pointing at the emulator (undone after the test); yields ``{conn_id: connection JSON}``.

This module imports nothing heavy until a fixture is used.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider_optimizely.emulator.handle import CONNECTION_TYPES, EmulatorHandle

__all__ = [
    "EmulatorHandle",
    "optimizely_emulator",
    "optimizely_emulator_connections",
    "optimizely_emulator_session",
    "run_emulator",
]

TEST_TIME_SCALE = 0.01


def run_emulator(*args: Any, **kwargs: Any) -> Any:
    """``server.run_emulator``, imported on first use."""
    from airflow_provider_optimizely.emulator.server import run_emulator as run

    return run(*args, **kwargs)


@pytest.fixture(scope="session")
def optimizely_emulator_session() -> Iterator[EmulatorHandle]:
    from airflow_provider_optimizely.emulator.common import EmulatorSettings

    # Poll S3 often: tests wait on Upload History, and an idle poll costs one listing.
    with run_emulator(EmulatorSettings(upload_poll_interval=0.05, time_scale=TEST_TIME_SCALE)) as handle:
        yield handle


@pytest.fixture
def optimizely_emulator(optimizely_emulator_session: EmulatorHandle) -> EmulatorHandle:
    optimizely_emulator_session.reset()
    return optimizely_emulator_session


@pytest.fixture
def optimizely_emulator_connections(
    optimizely_emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    connections = {conn_id: optimizely_emulator.connection_json(conn_id) for conn_id in CONNECTION_TYPES}
    for conn_id, value in connections.items():
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", value)
    return connections
