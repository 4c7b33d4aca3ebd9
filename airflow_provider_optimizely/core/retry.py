"""Which failures are retried, how long to wait, and when to give up (docs/api-contract.md §3).

Retried: every ``TransientError`` (connection errors, timeouts, 429, 500, 502, 503, 504). Never: a
``TerminalError`` (any other status, a refused certificate).

Two bounds, for two different things:
- a server asking to wait (a ``429``, or a ``503`` that says for how long with ``Retry-After``) is not a
  fault: it is retried for as long as ``max_retry_seconds`` allows, however many times it comes;
- ``max_attempts`` bounds the real faults (5xx, dropped connections, timeouts), the first attempt
  included, within the same ``max_retry_seconds`` (time since the first attempt, waits included: a retry
  whose wait would overrun it is not made).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from tenacity import RetryCallState, Retrying, retry_if_exception

from airflow_provider_optimizely.core.errors import (
    OptimizelyApiError,
    OptimizelyError,
    OptimizelyTransportError,
    RateLimitedError,
    ServerError,
    TransientError,
)
from airflow_provider_optimizely.core.ratelimit import RateLimiter
from airflow_provider_optimizely.core.request_stats import RequestStats

# Methods whose repetition can't apply anything twice.
READ_ONLY_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Methods whose retry after a 5xx may apply the request twice (PUT and DELETE replace or remove: the
# same state either way).
_NON_IDEMPOTENT = frozenset({"POST", "PATCH"})


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    max_retry_seconds: float = 600.0
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    # When a 429/503 comes without Retry-After: how long every thread pauses, per status (DCP: 60 s).
    default_retry_after: Mapping[int, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.max_retry_seconds < 0:
            raise ValueError("max_retry_seconds must not be negative")

    def backoff(self, attempt: int) -> float:
        """Exponential backoff with jitter after ``attempt`` failures.

        Uniform in [c/2, c] where c = min(backoff_max, backoff_initial * 2**(attempt-1)).
        """
        ceiling = min(self.backoff_max, self.backoff_initial * (2 ** max(0, attempt - 1)))
        return random.uniform(ceiling / 2, ceiling)


def is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, TransientError)


def asks_to_wait(exc: BaseException) -> bool:
    """The server is asking us to slow down, not failing: a 429, or a 5xx that says how long to wait."""
    if isinstance(exc, RateLimitedError):
        return True
    return isinstance(exc, ServerError) and bool(exc.retry_after)


def may_have_been_applied(exc: BaseException, method: str) -> bool:
    """Whether the failed attempt may already have changed something on the server: a request that
    reached it and is not read-only, failing with no answer, or a POST/PATCH answered 500/502/503/504.
    A 429 was refused before anything was applied."""
    if isinstance(exc, OptimizelyTransportError):
        return method not in READ_ONLY_METHODS and exc.may_have_reached_server
    return isinstance(exc, ServerError) and method in _NON_IDEMPOTENT


def retry_after_of(exc: BaseException) -> float | None:
    """The pause a failed attempt asked for (``Retry-After`` or the API's default), if any."""
    if isinstance(exc, OptimizelyApiError) and exc.retry_after:
        return exc.retry_after
    return None


@dataclass
class CallState:
    """What one call's retry loop remembers between attempts (a local of ``RestClient.request``)."""

    method: str
    path: str
    host: str
    started: float
    limiter: RateLimiter
    attempts: int = 0
    faults: int = 0  # failed attempts that count against max_attempts (not a server asking to wait)
    waits: int = 0  # answers that asked us to wait
    may_have_applied: bool = False
    reauthenticated: bool = False
    #: Made once, just before the first attempt that goes on the wire (``core.send_mark``).
    mark: Callable[[], None] | None = None

    def going_out(self) -> None:
        """This attempt's request is about to be sent: make the call's mark if no attempt made it yet."""
        mark, self.mark = self.mark, None
        if mark is not None:
            mark()

    def failed(self, error: OptimizelyError, *, sent: bool = True) -> OptimizelyError:
        """Note what a failed attempt means for the loop, and hand the error back to be raised.
        ``sent=False``: the attempt failed before its request left (no credentials to send)."""
        if asks_to_wait(error):
            self.waits += 1
        else:
            self.faults += 1
        self.may_have_applied = sent and may_have_been_applied(error, self.method)
        return error


class Reauthenticate(Exception):
    """A 401 to credentials that have since been refreshed: sent again at once, once."""


class _Client(Protocol):
    retry: RetryPolicy
    stats: RequestStats
    log: logging.Logger
    api_name: str


def retrying_for(client: _Client) -> Retrying:
    """The tenacity loop of one client. It reads ``client.retry`` at every decision (so a policy replaced
    later applies), counts into ``client.stats`` and logs every retry with its reason."""

    def wait(state: RetryCallState) -> float:
        call: CallState = state.kwargs["call"]
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, Reauthenticate) or (exc is not None and retry_after_of(exc)):
            return 0.0  # new credentials go at once; a Retry-After pauses every thread in the limiter
        if exc is not None and asks_to_wait(exc):
            return client.retry.backoff(call.waits)
        return client.retry.backoff(call.faults)

    def stop(state: RetryCallState) -> bool:
        call: CallState = state.kwargs["call"]
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, Reauthenticate):
            return False
        pending = max(state.upcoming_sleep, (retry_after_of(exc) if exc is not None else None) or 0.0)
        spent = time.monotonic() - call.started
        policy = client.retry
        return call.faults >= policy.max_attempts or spent + pending > policy.max_retry_seconds

    def before_sleep(state: RetryCallState) -> None:
        call: CallState = state.kwargs["call"]
        exc = state.outcome.exception() if state.outcome else None
        client.stats.add(
            retries=1,
            maybe_applied_twice=1 if call.may_have_applied else 0,
            backoff_seconds=state.upcoming_sleep,
        )
        _log_retry(client, call, exc, state.upcoming_sleep)
        call.may_have_applied = False

    return Retrying(
        retry=retry_if_exception(lambda exc: isinstance(exc, Reauthenticate) or is_retryable(exc)),
        stop=stop,
        wait=wait,
        before_sleep=before_sleep,
        reraise=True,
    )


def _log_retry(client: _Client, call: CallState, exc: BaseException | None, sleep: float) -> None:
    where = f"{client.api_name or 'API'} {call.method} {call.path}"
    pause = retry_after_of(exc) if exc is not None else None
    if isinstance(exc, Reauthenticate):
        client.log.info("%s: 401 to an expired access token; sending again with a fresh one", where)
    elif exc is not None and asks_to_wait(exc):
        left = client.retry.max_retry_seconds - (time.monotonic() - call.started)
        client.log.warning(
            "%s: %s, the server asks to wait; retrying in %.2fs%s (%.0fs of max_retry_seconds left)",
            where,
            _short_status(exc),
            pause if pause is not None else sleep,
            " (Retry-After: every thread pauses)" if pause is not None else "",
            left,
        )
    else:
        client.log.warning(
            "%s failed (%s%s); fault %d of max_attempts %d, retrying in %.2fs",
            where,
            _short_status(exc),
            ", may already have been applied" if call.may_have_applied else "",
            call.faults,
            client.retry.max_attempts,
            pause if pause is not None else sleep,
        )


def _short_status(exc: BaseException | None) -> str:
    if isinstance(exc, OptimizelyApiError):
        return f"{exc.status} {exc.code}" if exc.code else str(exc.status)
    if isinstance(exc, OptimizelyTransportError):
        return exc.reason
    return type(exc).__name__
