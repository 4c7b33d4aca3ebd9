"""The optional state file: loaded at start, rewritten every few seconds when the state changed, and on
shutdown, so that a restarted emulator keeps its services, tables, profiles and the rest.

Writes go to a temporary file beside it and are renamed over it, so a crash never leaves half a file.
S3 objects are not kept (moto's server is in memory): Upload History is, with each file's outcome.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def load_state_file(path: str) -> dict[str, Any] | None:
    """The saved state, or None when there is no file yet."""
    try:
        with open(path, encoding="utf-8") as handle:
            loaded: dict[str, Any] = json.load(handle)
            return loaded
    except FileNotFoundError:
        return None


class StateSaver:
    """Writes ``snapshot()`` to ``path`` every ``interval`` seconds when it changed, and once at ``stop``."""

    def __init__(self, path: str, snapshot: Callable[[], dict[str, Any]], interval: float) -> None:
        self.path = Path(path)
        self.snapshot = snapshot
        self.interval = interval
        self._last_written: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="emulator-state-saver", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self.save()

    def save(self) -> bool:
        """Write the state if it changed since the last write; True when it wrote."""
        text = json.dumps(self.snapshot(), sort_keys=True, default=str)
        if text == self._last_written:
            return False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write(text)
            os.replace(temporary, self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        self._last_written = text
        return True

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.save()
            except Exception:
                log.exception("could not write the emulator state file %s", self.path)
