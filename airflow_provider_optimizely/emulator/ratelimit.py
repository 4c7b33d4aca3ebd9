"""Rate limits per API (or per route), as API.md §3 describes them: ``X-RateLimit-*`` headers and 429.

Fixed windows aligned to the epoch (a 60 s window resets on the minute), so ``X-RateLimit-Reset`` is the
same instant for every client. Published limits (API.md §3), which the emulator applies only when asked
(``--rate-limit``, or ``PUT /_emulator/rate_limits``) so that tests run at full speed: v2 REST
``100/60`` per account; ODP profiles ``odp:POST /profiles=10/1``; ODP events and objects none; DCP
unpublished.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from airflow_provider_optimizely.emulator.common import API_NAMES, RateLimit


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    headers: dict[str, str]


def parse_target(target: str) -> tuple[str, str | None]:
    """``"dcp"`` or ``"odp:POST /profiles"`` -> (api, route or None)."""
    api, _, route = target.partition(":")
    api = api.strip()
    if api not in API_NAMES:
        raise ValueError(f"a rate limit names one of {', '.join(API_NAMES)}, not {api!r}")
    if not route.strip():
        return api, None
    method, _, path = route.strip().partition(" ")
    return api, f"{method.upper()} {path.strip()}"


class RateLimiter:
    """The budgets in force and what each window has used; thread-safe, changeable at run time."""

    def __init__(
        self, initial: dict[str, RateLimit] | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._initial = {parse_target(target): limit for target, limit in (initial or {}).items()}
        self._limits: dict[tuple[str, str | None], RateLimit] = {}
        self._used: dict[tuple[str, str | None], tuple[float, int]] = {}  # key -> (window start, used)
        self.restore()

    def restore(self) -> None:
        with self._lock:
            self._limits = dict(self._initial)
            self._used = {}

    def set(self, target: str, limit: RateLimit | None) -> None:
        key = parse_target(target)
        with self._lock:
            self._used.pop(key, None)
            if limit is None:
                self._limits.pop(key, None)
            else:
                self._limits[key] = limit

    def limits(self) -> dict[str, dict[str, float]]:
        with self._lock:
            return {
                api + (f":{route}" if route else ""): {
                    "limit": lim.limit,
                    "window_seconds": lim.window_seconds,
                }
                for (api, route), lim in self._limits.items()
            }

    def take(self, api: str, route: str) -> Verdict | None:
        """Spend one request of the budget that applies; None when the API has no limit."""
        with self._lock:
            key = (api, route) if (api, route) in self._limits else (api, None)
            limit = self._limits.get(key)
            if limit is None:
                return None
            now = self._clock()
            window_start = math.floor(now / limit.window_seconds) * limit.window_seconds
            start, used = self._used.get(key, (window_start, 0))
            if start != window_start:
                used = 0
            reset = window_start + limit.window_seconds
            allowed = used < limit.limit
            if allowed:
                used += 1
            self._used[key] = (window_start, used)
        headers = {
            "X-RateLimit-Limit": str(limit.limit),
            "X-RateLimit-Remaining": str(limit.limit - used),
            "X-RateLimit-Reset": str(math.ceil(reset)),
        }
        if not allowed:
            headers["Retry-After"] = str(max(1, math.ceil(reset - now)))
        return Verdict(allowed, headers)
