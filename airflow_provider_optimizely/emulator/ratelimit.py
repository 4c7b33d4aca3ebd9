"""Rate limits per API (or per route), as docs/api-contract.md §3 describes them: ``X-RateLimit-*`` headers
and 429.

Every answer of every emulated API carries ``X-RateLimit-Limit``, ``X-RateLimit-Remaining`` and
``X-RateLimit-Reset`` (seed 004: "Every response contains three headers"), whether or not a limit is
enforced. A route with an enforced budget reports that budget and answers 429 + ``Retry-After`` past it;
any other route reports ``ANNOUNCED_BUDGET``, counted per API, and never refuses.

Published limits, enforced from the start (``PUBLISHED_RATE_LIMITS``): ODP ``POST /profiles`` 10
requests a second. Nothing else is published for these APIs (seed 004's 100 a minute is the v2 REST
API's, which none of them is), so nothing else is enforced unless asked (``--rate-limit`` or ``PUT
/_emulator/rate_limits``).

Fixed windows aligned to the epoch (a 60 s window resets on the minute), so ``X-RateLimit-Reset`` is the
same instant for every client. Windows are in vendor seconds, scaled by the settings' ``time_scale``.
DCP asks for at least 60 s before a retry (docs/api-contract.md §3): past a DCP budget the route stays
refused until
that ``Retry-After`` has passed, and ``X-RateLimit-Reset`` says so.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from airflow_provider_optimizely.emulator.common import (
    ANNOUNCED_BUDGET,
    API_NAMES,
    DCP_MIN_RETRY_AFTER,
    RateLimit,
    instant_text,
    seconds_text,
)

Key = tuple[str, str | None]
_SERVED_WINDOWS_KEPT = 10_000


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


@dataclass
class _Window:
    start: float
    used: int = 0
    blocked_until: float = 0.0


class RateLimiter:
    """The budgets in force and what each window has used; thread-safe, changeable at run time."""

    def __init__(
        self,
        initial: dict[str, RateLimit] | None = None,
        clock: Callable[[], float] = time.time,
        time_scale: Callable[[], float] = lambda: 1.0,
    ) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._time_scale = time_scale
        self._initial = {parse_target(target): limit for target, limit in (initial or {}).items()}
        self._limits: dict[Key, RateLimit] = {}
        self._windows: dict[tuple[Key, bool], _Window] = {}
        # Requests served per window of each enforced budget, so that a test can check every window.
        self._served: dict[Key, dict[float, int]] = {}
        self.restore()

    def restore(self) -> None:
        with self._lock:
            self._limits = dict(self._initial)
            self._windows = {}
            self._served = {}

    def forget_windows(self) -> None:
        """Start every window afresh (the time scale changed, so the old ones mean nothing)."""
        with self._lock:
            self._windows = {}

    def set(self, target: str, limit: RateLimit | None) -> None:
        key = parse_target(target)
        with self._lock:
            self._windows.pop((key, True), None)
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

    def served(self) -> dict[str, dict[str, Any]]:
        """Per enforced budget: its limit and the requests served in each window (by its start, real Unix
        seconds), the most recent ``_SERVED_WINDOWS_KEPT`` windows."""
        with self._lock:
            return {
                api + (f":{route}" if route else ""): {
                    "limit": self._limits[(api, route)].limit if (api, route) in self._limits else None,
                    "windows": {_decimal_text(start): count for start, count in sorted(counts.items())},
                }
                for (api, route), counts in self._served.items()
            }

    def take(self, api: str, route: str, *, spend: bool = True) -> Verdict:
        """Spend one request of the budget that applies (``spend=False``: only read it, for an answer
        that never reached the route) and say whether it may be served, with the headers to send."""
        scale = self._time_scale()
        with self._lock:
            key: Key = (api, route) if (api, route) in self._limits else (api, None)
            enforced = key in self._limits
            limit = self._limits[key] if enforced else ANNOUNCED_BUDGET
            if not enforced:
                key = (api, None)
            now = self._clock()
            window_seconds = limit.window_seconds * scale
            window_start = math.floor(now / window_seconds) * window_seconds
            window = self._windows.get((key, enforced))
            if window is None or (window.start != window_start and now >= window.blocked_until):
                window = self._windows[(key, enforced)] = _Window(window_start)
            reset = max(window.start + window_seconds, window.blocked_until)
            allowed = not enforced or (now >= window.blocked_until and window.used < limit.limit)
            if spend and allowed:
                window.used += 1
                if enforced:
                    served = self._served.setdefault(key, {})
                    served[window.start] = served.get(window.start, 0) + 1
                    if len(served) > _SERVED_WINDOWS_KEPT:
                        del served[min(served)]
            retry_after = 0.0
            if not allowed:
                wait = reset - now
                if api == "dcp":
                    wait = max(wait, DCP_MIN_RETRY_AFTER * scale)
                retry_after = wait
                window.blocked_until = max(window.blocked_until, now + wait)
                reset = window.blocked_until
            remaining = max(0, limit.limit - window.used) if allowed or not enforced else 0
        headers = {
            "X-RateLimit-Limit": str(limit.limit),
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": instant_text(reset, scale),
        }
        if not allowed:
            headers["Retry-After"] = seconds_text(retry_after, scale)
        return Verdict(allowed, headers)


def _decimal_text(value: float) -> str:
    return f"{value:.3f}".rstrip("0").rstrip(".")
