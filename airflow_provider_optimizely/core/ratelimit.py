"""Thread-safe pacing for one connection: every thread sharing a hook waits on the same limiter.

Three rules, each of which can hold a request back, all under one lock:

1. **Client budget** (``max_requests`` per ``period`` seconds, from the connection's
   ``requests_per_second``/``requests_per_minute``): a sliding window, so no span of ``period`` seconds
   ever holds more than ``max_requests`` sends. This is what keeps us polite to APIs that send no headers.
2. **Server headers** (``X-RateLimit-Remaining``/``X-RateLimit-Reset``): what is left of the server's
   window is spread evenly over the time left in it, and nothing is sent once it is spent until the
   window resets, so the server never has to refuse. Requests in flight are counted as spent while
   they are (an answer's figure may not count them yet); once none is, the server's lowest figure is
   exact and what was counted twice is given back, so a short window is used to the last request.
3. **Retry-After**: a ``429``/``503`` asking for a pause pauses every thread, not only the one that got it.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

# Reset is whole Unix seconds: the real end of the server's window may lie up to a second before it.
# We spread the remaining budget as if the window ended a second early, and wait a little past the
# announced reset before assuming the window is fresh.
RESET_ROUNDING = 1.0
RESET_MARGIN = 0.05


@dataclass(frozen=True)
class Budget:
    """At most ``max_requests`` requests in any ``period`` seconds."""

    max_requests: int
    period: float

    @classmethod
    def per_second(cls, rate: float) -> Budget:
        # A fractional rate (0.5/s) becomes one request per 2 s, still a whole number of requests.
        if rate >= 1:
            return cls(max_requests=int(rate), period=1.0)
        return cls(max_requests=1, period=1.0 / rate)

    @classmethod
    def per_minute(cls, rate: float) -> Budget:
        return cls(max_requests=max(1, int(rate)), period=60.0)


class RateLimiter:
    """Shared by all the threads that use one RestClient."""

    def __init__(
        self,
        budget: Budget | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.budget = budget
        self._clock = clock
        self._wall_clock = wall_clock
        self._cond = threading.Condition()
        self._sent: deque[float] = deque()
        self._paused_until = 0.0
        self._in_flight = 0
        # What the server last told us, translated to our monotonic clock.
        self._server_limit: int | None = None
        self._server_remaining: int | None = None
        self._server_reset_wall: float | None = None
        self._server_reset_at: float | None = None
        # The lowest Remaining the server reported in this window, as it said it: once no request is in
        # flight, every send was counted, so it is exact (see release()).
        self._server_reported: int | None = None
        self._window_rolled = False
        self._last_header_send = float("-inf")
        self.throttled_seconds = 0.0

    # -- the three rules --------------------------------------------------------------------------------

    def acquire(self) -> float:
        """Block until a request may be sent; reserve it and return the seconds waited."""
        start = self._clock()
        with self._cond:
            while True:
                now = self._clock()
                wait = self._wait(now)
                if wait <= 0:
                    self._reserve(now)
                    waited = now - start
                    self.throttled_seconds += waited
                    return waited
                # Woken early by observe()/pause(): the server may have given us more room.
                self._cond.wait(wait)

    def release(self) -> None:
        """The reserved request finished (with any outcome)."""
        with self._cond:
            self._in_flight = max(0, self._in_flight - 1)
            drained = self._in_flight == 0 and self._server_remaining is not None
            if drained and self._server_reported is not None:
                # Counting every request in flight as spent (observe()) is safe but spends twice those the
                # server had already counted: up to a fifth of a 20-per-second window went unused. With
                # none in flight, the server's lowest figure is the whole truth: take back the rest.
                self._server_remaining = max(self._server_remaining or 0, self._server_reported)
            self._cond.notify_all()

    def pause(self, seconds: float) -> None:
        """Hold every thread back for ``seconds`` (a server's ``Retry-After``)."""
        if seconds <= 0:
            return
        with self._cond:
            self._paused_until = max(self._paused_until, self._clock() + seconds)
            self._cond.notify_all()

    def observe(self, headers: Mapping[str, str]) -> None:
        """Learn the server's budget from an answer's ``X-RateLimit-*`` headers (absent: nothing changes)."""
        remaining = _int_header(headers, "X-RateLimit-Remaining")
        reset_wall = _float_header(headers, "X-RateLimit-Reset")
        if remaining is None or reset_wall is None:
            return
        limit = _int_header(headers, "X-RateLimit-Limit")
        with self._cond:
            known = self._server_reset_wall
            if known is not None and (reset_wall < known or (reset_wall == known and self._window_rolled)):
                return  # a late answer from a window that is already over
            # Requests still in flight may not be counted in this figure yet: count them as spent.
            estimate = max(0, remaining - max(0, self._in_flight - 1))
            same_window = (
                known == reset_wall and not self._window_rolled and self._server_remaining is not None
            )
            if same_window and self._server_remaining is not None:
                # Answers can arrive out of order: within one window the budget only ever shrinks.
                estimate = min(estimate, self._server_remaining)
            self._window_rolled = False
            self._server_remaining = estimate
            reported = self._server_reported
            if reported is not None and same_window:
                remaining = min(remaining, reported)
            self._server_reported = remaining
            self._server_reset_wall = reset_wall
            self._server_reset_at = self._clock() + max(0.0, reset_wall - self._wall_clock())
            if limit is not None:
                self._server_limit = limit
            self._cond.notify_all()

    # -- internals (called with the lock held) ------------------------------------------------------------

    def _wait(self, now: float) -> float:
        """Seconds until the three rules let a request go (0 or less: now)."""
        return max(self._pause_wait(now), self._budget_wait(now), self._header_wait(now))

    def _pause_wait(self, now: float) -> float:
        return self._paused_until - now

    def _budget_wait(self, now: float) -> float:
        if self.budget is None:
            return 0.0
        horizon = now - self.budget.period
        while self._sent and self._sent[0] <= horizon:
            self._sent.popleft()
        if len(self._sent) < self.budget.max_requests:
            return 0.0
        return self._sent[0] + self.budget.period - now

    def _header_wait(self, now: float) -> float:
        if self._server_remaining is None:
            return 0.0
        if self._server_reset_at is None:
            # Fresh window assumed (limit), its reset not yet announced: go while any is left.
            # Spent before any answer told us more: wait for one (none in flight: nothing to wait for).
            return 0.0 if self._server_remaining > 0 or self._in_flight == 0 else RESET_MARGIN
        if now >= self._server_reset_at + RESET_MARGIN:
            # The window the server told us about is over: start afresh until its next answer says more.
            if self._server_limit is None:
                self._forget_server_window()
                return 0.0
            # Keep the old reset time: a late answer from that window must not be mistaken for news.
            # A request still in flight may land in the new window (sent late, or slow on the way): it is
            # counted there, or a burst at the roll overshoots by it (seen on a loaded cluster).
            self._server_remaining = max(0, self._server_limit - self._in_flight)
            self._server_reset_at = None
            self._server_reported = None
            self._window_rolled = True
            return 0.0
        if self._server_remaining <= 0:
            return self._server_reset_at + RESET_MARGIN - now
        time_left = max(0.0, self._server_reset_at - RESET_ROUNDING - now)
        spacing = time_left / self._server_remaining
        return self._last_header_send + spacing - now

    def _forget_server_window(self) -> None:
        self._server_remaining = None
        self._server_reset_at = None
        self._server_reported = None
        self._window_rolled = True

    def _reserve(self, now: float) -> None:
        if self.budget is not None:
            self._sent.append(now)
        if self._server_remaining is not None:
            self._server_remaining -= 1
            self._last_header_send = now
        if self._server_reported is not None:
            self._server_reported -= 1  # sent after that answer: not in its figure
        self._in_flight += 1


def _int_header(headers: Mapping[str, str], name: str) -> int | None:
    value = _float_header(headers, name)
    return None if value is None else int(value)


def _float_header(headers: Mapping[str, str], name: str) -> float | None:
    raw = headers.get(name)
    if raw is None:
        return None
    try:
        return float(raw)
    except ValueError:
        return None


def parse_retry_after(value: str | None, *, wall_clock: Callable[[], float] = time.time) -> float | None:
    """``Retry-After`` in seconds, from either form RFC 9110 allows (delta seconds or an HTTP date)."""
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - wall_clock())
