"""Which failures are retried, how long to wait, and when to give up (API.md §3).

Retried: connection errors, timeouts, 429, 500, 502, 503, 504. Never: any other status. Bounded by
``max_attempts`` (all attempts, the first included) and by ``max_retry_seconds`` (time since the first
attempt, waits included: a retry whose wait would overrun it is not made).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field

import requests

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})


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


def is_retryable_status(status: int) -> bool:
    return status in RETRYABLE_STATUSES


def transport_error_happened_before_send(exc: BaseException) -> bool:
    """True when the request surely never reached the server (no connection was made)."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    if isinstance(exc, requests.exceptions.ConnectionError):
        text = repr(exc.args[0]) if exc.args else ""
        return "NewConnectionError" in text or "ConnectionRefused" in text or "NameResolution" in text
    return False


def transport_reason(exc: BaseException) -> str:
    """A short reason without the URL that requests' messages carry."""
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return "read timeout"
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return "connect timeout"
    inner = exc.args[0] if exc.args else None
    for marker, reason in (
        ("RemoteDisconnected", "connection closed by the server"),
        ("ConnectionResetError", "connection reset"),
        ("ConnectionRefused", "connection refused"),
        ("NewConnectionError", "could not connect"),
        ("NameResolution", "name resolution failed"),
        ("IncompleteRead", "answer cut short"),
        ("ProtocolError", "connection broken"),
        ("SSLError", "TLS error"),
    ):
        if marker in repr(inner) or marker in type(exc).__name__:
            return reason
    return type(exc).__name__
