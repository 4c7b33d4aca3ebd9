"""Helpers shared by the emulator tests of ODP, Optimove and Profile Store: default keys, one API seen
through the handle, and the real app served over a state the test holds."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from airflow_provider_optimizely.emulator.app import create_app
from airflow_provider_optimizely.emulator.common import EmulatorSettings
from airflow_provider_optimizely.emulator.handle import EmulatorHandle
from airflow_provider_optimizely.emulator.server import keys_of, serve_in_thread
from airflow_provider_optimizely.emulator.state import EmulatorState

SETTINGS = EmulatorSettings()
PRIVATE = {"x-api-key": SETTINGS.odp_private_key}
PUBLIC = {"x-api-key": SETTINGS.odp_public_key}
NOTHING = {"total": 0, "distinct": 0, "duplicates": 0, "duplicate_keys": []}


@dataclass
class Api:
    """One emulated API seen through the emulator's handle: its URL, what it received, what it stores."""

    handle: EmulatorHandle
    name: str

    @property
    def url(self) -> str:
        return self.handle.urls[self.name]

    def items(self, kind: str) -> dict[str, Any]:
        return dict(self.handle.received(self.name)["items"].get(kind, NOTHING))

    def stored(self) -> dict[str, Any]:
        return self.handle.state(self.name)


@contextmanager
def in_process_emulator(state: EmulatorState) -> Iterator[EmulatorHandle]:
    """The real app (``create_app``) over a state this test process holds, for the few tests that must
    reach inside it (a clock to move, a configured scope); every other test uses the plugin's emulator."""
    with serve_in_thread(create_app(SETTINGS, state), startup_timeout=10) as base_url:
        handle = EmulatorHandle(base_url, None, keys_of(SETTINGS))
        try:
            yield handle
        finally:
            handle.close()
