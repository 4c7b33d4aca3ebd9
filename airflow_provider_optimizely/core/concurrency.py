"""Adaptive concurrency for APIs that publish no rate limit (DCP, Optimove): AIMD on requests in flight.

The number of requests allowed in flight (``limit``) starts low and is judged once a *round*, that is once
as many requests as the limit have come back:

- **Increase** while it pays: no refusal, the limit was really used (a source slower than the API is no
  reason to grow), and either the round's answers a second grew or its latency stays within
  ``latency_tolerance`` times the best seen. Until doubling stops paying (or the first back-off) the limit
  doubles each round (a slow start, as TCP does: 4 to 64 in four rounds); after that it grows by an
  eighth (at least one) a round.
- **Decrease** by half at once on a ``429``/``503`` (or a request that got no answer), and by a fifth when a
  round's latency is past the tolerance while its answers a second no longer grow: the server (or this
  machine) queues, and more in flight would only wait longer. At most one decrease a round: a burst of
  refusals from one overload is one signal.

Never above ``cap`` (the user's bound) nor below 1. The best latency seen drifts up a little every round,
so that a server that became slower for good is not read as one overloaded forever.

``RestClient`` reports each request's outcome (``record``); ``core.batching.BoundedPool`` reads ``limit``
to decide how many batches to send at once. Thread-safe.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

DEFAULT_START = 4
_BASELINE_DRIFT = 1.02
_LATENCY_DECREASE = 0.8
_REFUSAL_DECREASE = 0.5
_REFUSALS = frozenset({429, 503})
# A round's answers a second must beat the last round's by this factor to count as growth.
_GROWTH = 1.02
# After the slow start, the limit grows by an eighth a round (at least one): +1 a round would take 5 s
# from 16 to 64 at 100 ms a request.
_STEP_DIVISOR = 8


class AdaptiveConcurrency:
    def __init__(
        self,
        cap: int,
        *,
        start: int = DEFAULT_START,
        latency_tolerance: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if cap < 1:
            raise ValueError(f"the concurrency cap must be at least 1, got {cap}")
        self.cap = cap
        self.latency_tolerance = latency_tolerance
        self._clock = clock
        self._lock = threading.Lock()
        self._limit = max(1, min(start, cap))
        self._slow_start = True
        self._baseline: float | None = None
        self._in_flight = 0
        self._round_count = 0
        self._round_answered = 0
        self._round_latency = 0.0
        self._round_peak = 0
        self._round_start = clock()
        self._last_rate: float | None = None
        self._decreased_this_round = False
        #: Every limit taken, in order (for a report or a test).
        self.history: list[int] = [self._limit]

    @property
    def limit(self) -> int:
        return self._limit

    def started(self) -> None:
        """A request is going out now."""
        with self._lock:
            self._in_flight += 1
            self._round_peak = max(self._round_peak, self._in_flight)

    def record(self, status: int | None, seconds: float) -> None:
        """A request came back with ``status`` after ``seconds`` (``None``: no answer at all)."""
        with self._lock:
            self._in_flight = max(0, self._in_flight - 1)
            if status is None or status in _REFUSALS:
                if not self._decreased_this_round:
                    self._set(self._limit * _REFUSAL_DECREASE)
                    self._decreased_this_round = True
            else:
                self._round_answered += 1
                self._round_latency += seconds
            self._round_count += 1
            if self._round_count >= self._limit:
                self._end_round()

    # -- internals (lock held) ---------------------------------------------------------------------------

    def _end_round(self) -> None:
        if not self._round_answered:
            self._new_round()
            return
        mean = self._round_latency / self._round_answered
        rate = self._round_answered / max(1e-6, self._clock() - self._round_start)
        growing = self._last_rate is None or rate > self._last_rate * _GROWTH
        baseline = mean if self._baseline is None else min(mean, self._baseline * _BASELINE_DRIFT)
        self._baseline = baseline
        if not self._decreased_this_round:
            if mean > baseline * self.latency_tolerance and not growing:
                # Queued, and more in flight no longer brings more answers: back off.
                self._set(self._limit * _LATENCY_DECREASE)
            elif self._round_peak >= self._limit and (growing or mean <= baseline * self.latency_tolerance):
                if self._slow_start and not growing:
                    self._slow_start = False  # doubling no longer pays: go on one at a time
                step = self._limit if self._slow_start else max(1, self._limit // _STEP_DIVISOR)
                self._set(self._limit + step, grow=True)
        self._last_rate = rate
        self._new_round()

    def _set(self, value: float, *, grow: bool = False) -> None:
        if not grow:
            self._slow_start = False
        new = max(1, min(self.cap, int(value)))
        if new != self._limit:
            self._limit = new
            self.history.append(new)

    def _new_round(self) -> None:
        self._round_count = 0
        self._round_answered = 0
        self._round_latency = 0.0
        self._round_peak = self._in_flight
        self._round_start = self._clock()
        self._decreased_this_round = False
