"""The request counters a run report shows: how many requests, retries, and retries that may have
applied a request twice, and how long pacing held requests back."""

from __future__ import annotations

import threading


class RequestStats:
    """Thread-safe counters an operator puts in its run report.

    ``maybe_applied_twice`` counts the retries whose previous attempt may already have been applied: a
    request that is not read-only and failed after it reached the server (read timeout, dropped
    connection), or a POST/PATCH answered 500/502/503/504. A 429, a refused connection, or a GET never
    counts there.
    """

    _FIELDS = (
        "requests",
        "retries",
        "maybe_applied_twice",
        "throttled_seconds",
        "backoff_seconds",
        "bytes_accepted",
    )

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests = 0
        self.retries = 0
        self.maybe_applied_twice = 0
        self.throttled_seconds = 0.0
        self.backoff_seconds = 0.0
        # Bytes of the request bodies the API answered with success (the lineage's output size).
        self.bytes_accepted = 0

    def add(self, **deltas: float) -> None:
        with self._lock:
            for name, delta in deltas.items():
                setattr(self, name, getattr(self, name) + delta)

    def as_dict(self) -> dict[str, float]:
        with self._lock:
            stats = {name: getattr(self, name) for name in self._FIELDS}
        stats["throttled_seconds"] = round(stats["throttled_seconds"], 3)
        stats["backoff_seconds"] = round(stats["backoff_seconds"], 3)
        return stats

    def __repr__(self) -> str:
        return f"RequestStats({self.as_dict()})"
