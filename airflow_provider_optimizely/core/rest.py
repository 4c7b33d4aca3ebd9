"""RestClient: the HTTP work shared by the four APIs (auth headers, pooling, pacing, retries, pagination).

Airflow-free on purpose: the hooks configure it from a connection, tests and benchmarks use it bare.
Thread-safe: one client serves a pool of threads. Every piece of per-call state lives in locals; the
object holds only configuration, the shared pool, the shared limiter and the counters.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from tenacity import RetryCallState, Retrying, retry_if_exception

from airflow_provider_optimizely.core.errors import (
    OptimizelyApiError,
    OptimizelyTransportError,
    error_from_response,
)
from airflow_provider_optimizely.core.json_body import encode_json
from airflow_provider_optimizely.core.ratelimit import RateLimiter, parse_retry_after
from airflow_provider_optimizely.core.retry import (
    RetryPolicy,
    is_retryable_status,
    transport_error_happened_before_send,
    transport_reason,
)

DEFAULT_TIMEOUT = (10.0, 60.0)
MAX_PER_PAGE = 100
_MASK = "***"
_TRANSPORT_ERRORS = (requests.exceptions.ConnectionError, requests.exceptions.Timeout)
_NON_IDEMPOTENT = frozenset({"POST", "PATCH"})


class InsecureUrlError(ValueError):
    """A plain ``http://`` URL for a host that is not loopback, or a URL with no scheme."""


def check_url_is_safe(url: str) -> None:
    """HTTPS everywhere; plain HTTP only to a loopback host (the emulator)."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname and _is_loopback(parts.hostname):
        return
    # The URL itself holds no secret (auth goes in headers), but keep only scheme and host in the message.
    raise InsecureUrlError(
        f"refusing {parts.scheme or 'scheme-less'} URL for host {parts.hostname!r}: "
        "use https:// (plain http:// is allowed only to a loopback host)"
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class RequestStats:
    """Thread-safe counters an operator puts in its run report.

    ``retries_after_send`` counts the retries whose previous attempt may already have been applied: a
    non-GET request that failed after its connection was made (read timeout, dropped connection), or a
    POST/PATCH answered 500/502/503/504. A 429, a refused connection, or a GET never counts there.
    """

    _FIELDS = ("requests", "retries", "retries_after_send", "throttled_seconds", "backoff_seconds")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests = 0
        self.retries = 0
        self.retries_after_send = 0
        self.throttled_seconds = 0.0
        self.backoff_seconds = 0.0

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


@dataclass
class _Attempt:
    """What one call's retry loop remembers between attempts (a local of ``request``)."""

    method: str
    path: str
    started: float
    limiter: RateLimiter
    attempts: int = 0
    may_have_applied: bool = False


class RestClient:
    """HTTP for one API over one connection.

    ``base_url`` ends the same way the vendor documents it (``.../experiment/v1``); paths are relative to
    it (``dcp_services``) and may be given another base per call (DCP profiles live on another host).
    """

    def __init__(
        self,
        base_url: str,
        *,
        headers: Mapping[str, str] | None = None,
        secrets: Iterable[str] = (),
        rate_limiter: RateLimiter | None = None,
        retry: RetryPolicy | None = None,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        logger: logging.Logger | None = None,
        api_name: str = "",
        pool_size: int = 10,
        user_agent: str = "airflow-provider-optimizely",
    ) -> None:
        check_url_is_safe(base_url)
        self.base_url = base_url.rstrip("/") + "/"
        self.api_name = api_name
        self.timeout = timeout
        self.rate_limiter = rate_limiter or RateLimiter()
        self.retry = retry or RetryPolicy()
        self.log = logger or logging.getLogger("airflow_provider_optimizely.rest")
        self.stats = RequestStats()
        self._headers = {"User-Agent": user_agent, "Accept": "application/json", **(headers or {})}
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)
        self._safe_origins: set[str] = {_origin(self.base_url)}
        # urllib3's pool is thread-safe; requests.Session is not documented as such, so each thread gets
        # its own Session over the one shared adapter (and so the one shared connection pool).
        self._adapter = HTTPAdapter(pool_connections=4, pool_maxsize=max(1, pool_size), max_retries=0)
        self._local = threading.local()
        self._retrying = Retrying(
            retry=retry_if_exception(self._should_retry),
            stop=self._should_stop,
            wait=self._wait_before_retry,
            before_sleep=self._log_retry,
            reraise=True,
        )

    # -- public API ---------------------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        expected: Sequence[int] | None = None,
        base_url: str | None = None,
        headers: Mapping[str, str] | None = None,
        rate_limiter: RateLimiter | None = None,
    ) -> requests.Response:
        """Send one request (retrying as the policy says) and return a 2xx/3xx answer, else raise.

        ``json`` is serialised once, here (``encode_json``), and the same bytes are resent on a retry.
        ``expected`` (success codes the API documents) is informational: any 2xx is accepted, another
        one than documented is logged at debug level.
        ``rate_limiter`` replaces the client's for this call (a route with its own limit, e.g. ODP profiles).
        """
        method = method.upper()
        url = self._url(path, base_url)
        body = None if json is None else encode_json(json)
        call_headers = {**self._headers, **(headers or {})}
        if body is not None:
            call_headers["Content-Type"] = "application/json"
        call = _Attempt(
            method=method,
            path=_display_path(path),
            started=time.monotonic(),
            limiter=rate_limiter or self.rate_limiter,
        )
        response: requests.Response | None = None
        try:
            for attempt in self._retrying:
                with attempt:
                    attempt.retry_state.kwargs["call"] = call
                    response = self._send_once(call, url, body, params, call_headers)
        except _RetryableTransport as exc:
            raise OptimizelyTransportError(
                method, call.path, str(exc), call.attempts, self.api_name
            ) from None
        assert response is not None
        if expected and response.status_code not in expected:
            self.log.debug(
                "%s %s answered %s (documented: %s)", method, call.path, response.status_code, expected
            )
        return response

    def get_json(self, path: str, **kwargs: Any) -> Any:
        return _json_of(self.request("GET", path, **kwargs))

    def paginate(
        self,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        per_page: int = MAX_PER_PAGE,
        base_url: str | None = None,
        items_key: str | None = None,
    ) -> Iterator[Any]:
        """Yield the items of a paginated list, fetching a page only when the previous one is used up.

        Follows ``Link: <...>; rel="next"`` (API.md §3); never to another origin than the first page's.
        """
        if not 1 <= per_page <= MAX_PER_PAGE:
            raise ValueError(f"per_page must be between 1 and {MAX_PER_PAGE}")
        first_params = {"per_page": per_page, "page": 1, **(params or {})}
        response = self.request("GET", path, params=first_params, base_url=base_url)
        origin = _origin(response.url)
        while True:
            page = _json_of(response)
            items = page.get(items_key, []) if items_key and isinstance(page, dict) else page
            yield from items or []
            next_url = response.links.get("next", {}).get("url")
            if not next_url:
                return
            next_url = urljoin(response.url, next_url)
            if _origin(next_url) != origin:
                raise InsecureUrlError(
                    "pagination Link points to another host; not following it with our credentials"
                )
            response = self.request("GET", next_url)

    def scrub(self, text: str) -> str:
        """``text`` with every secret this client knows replaced by ``***``."""
        for secret in self._secrets:
            text = text.replace(secret, _MASK)
        return text

    def add_secret(self, secret: str) -> None:
        """Scrub ``secret`` too from now on (a key learnt from an answer, such as a table's S3 key)."""
        if secret and secret not in self._secrets:
            # Replace the list rather than mutate it: other threads may be iterating the old one.
            self._secrets = sorted({*self._secrets, secret}, key=len, reverse=True)

    def close(self) -> None:
        self._adapter.close()

    # -- one attempt ---------------------------------------------------------------------------------------

    def _send_once(
        self,
        call: _Attempt,
        url: str,
        body: bytes | None,
        params: Mapping[str, Any] | None,
        headers: Mapping[str, str],
    ) -> requests.Response:
        call.attempts += 1
        waited = call.limiter.acquire()
        self.stats.add(requests=1, throttled_seconds=waited)
        try:
            response = self._session().request(
                call.method, url, data=body, params=params, headers=headers, timeout=self.timeout
            )
            # Observed while this request still counts as in flight (the limiter discounts the others).
            call.limiter.observe(response.headers)
        except _TRANSPORT_ERRORS as exc:
            call.may_have_applied = call.method != "GET" and not transport_error_happened_before_send(exc)
            raise _RetryableTransport(self.scrub(transport_reason(exc))) from None
        finally:
            call.limiter.release()
        if response.status_code < 400:
            return response
        raise self._error_for(call, response)

    def _error_for(self, call: _Attempt, response: requests.Response) -> OptimizelyApiError:
        status = response.status_code
        retry_after = None
        if status in (429, 503):
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if retry_after is None:
                retry_after = self.retry.default_retry_after.get(status)
            if retry_after is not None:
                # Every thread of this client waits, not only this one.
                call.limiter.pause(retry_after)
        call.may_have_applied = (
            call.method in _NON_IDEMPOTENT and status >= 500 and is_retryable_status(status)
        )
        return error_from_response(
            status,
            self.scrub(response.text),
            method=call.method,
            path=call.path,
            api=self.api_name,
            reason=response.reason or "",
            retry_after=retry_after,
        )

    # -- retry policy (tenacity callbacks; per-call state arrives in retry_state) --------------------------

    @staticmethod
    def _should_retry(exc: BaseException) -> bool:
        if isinstance(exc, _RetryableTransport):
            return True
        return isinstance(exc, OptimizelyApiError) and is_retryable_status(exc.status)

    def _wait_before_retry(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, OptimizelyApiError) and exc.retry_after is not None:
            return 0.0  # the limiter's pause makes every thread (this one included) wait that long
        return self.retry.backoff(state.attempt_number)

    def _should_stop(self, state: RetryCallState) -> bool:
        call: _Attempt = state.kwargs["call"]
        exc = state.outcome.exception() if state.outcome else None
        pending = state.upcoming_sleep
        if isinstance(exc, OptimizelyApiError) and exc.retry_after is not None:
            pending = max(pending, exc.retry_after)
        spent = time.monotonic() - call.started
        return (
            state.attempt_number >= self.retry.max_attempts or spent + pending > self.retry.max_retry_seconds
        )

    def _log_retry(self, state: RetryCallState) -> None:
        call: _Attempt = state.kwargs["call"]
        exc = state.outcome.exception() if state.outcome else None
        reason = str(exc) if isinstance(exc, _RetryableTransport) else _short_status(exc)
        self.stats.add(
            retries=1,
            retries_after_send=1 if call.may_have_applied else 0,
            backoff_seconds=state.upcoming_sleep,
        )
        pause = (
            exc.retry_after if isinstance(exc, OptimizelyApiError) and exc.retry_after is not None else None
        )
        self.log.warning(
            "%s %s %s failed (%s%s); attempt %d of %d, retrying in %.2fs%s",
            self.api_name or "API",
            call.method,
            call.path,
            reason,
            ", may already have been applied" if call.may_have_applied else "",
            state.attempt_number,
            self.retry.max_attempts,
            pause if pause is not None else state.upcoming_sleep,
            " (Retry-After, all threads pause)" if pause is not None else "",
        )
        call.may_have_applied = False

    # -- plumbing -----------------------------------------------------------------------------------------

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.mount("https://", self._adapter)
            session.mount("http://", self._adapter)
            session.trust_env = False  # a proxy from the environment must not see our headers by accident
            self._local.session = session
        return session

    def _url(self, path: str, base_url: str | None) -> str:
        if path.startswith(("http://", "https://")):
            if _origin(path) not in self._safe_origins:
                raise InsecureUrlError("absolute URL to an unknown host; refusing to send credentials there")
            return path
        base = self.base_url
        if base_url is not None:
            base = base_url.rstrip("/") + "/"
            if _origin(base) not in self._safe_origins:
                check_url_is_safe(base)
                self._safe_origins.add(_origin(base))
        return base + path.lstrip("/")


class _RetryableTransport(Exception):
    """Internal: a transport failure between retries (the public error is built when retries stop)."""


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _display_path(path: str) -> str:
    """The path as errors and logs show it: no scheme, host or query string."""
    parts = urlsplit(path)
    return parts.path.lstrip("/") if parts.scheme else path.split("?", 1)[0].lstrip("/")


def _short_status(exc: BaseException | None) -> str:
    if isinstance(exc, OptimizelyApiError):
        return f"{exc.status} {exc.code}" if exc.code else str(exc.status)
    return type(exc).__name__


def _json_of(response: requests.Response) -> Any:
    if not response.content:
        return None
    return response.json()
