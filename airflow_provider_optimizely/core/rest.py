"""RestClient: the HTTP work shared by the four APIs (auth headers, pooling, pacing, retries, pagination).

Airflow-free on purpose: the hooks configure it from a connection, tests and benchmarks use it bare.
Thread-safe: one client serves a pool of threads. Every piece of per-call state lives in locals; the
object holds only configuration, the shared pool, the shared limiter and the counters.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol
from urllib.parse import urlencode, urljoin

import requests
from requests.adapters import HTTPAdapter

from airflow_provider_optimizely.core.concurrency import AdaptiveConcurrency
from airflow_provider_optimizely.core.errors import (
    InsecureUrlError,
    OptimizelyApiError,
    OptimizelyError,
    OptimizelyTransportError,
    error_from_response,
)
from airflow_provider_optimizely.core.json_body import encode_json
from airflow_provider_optimizely.core.ratelimit import RateLimiter, parse_retry_after
from airflow_provider_optimizely.core.request_stats import RequestStats
from airflow_provider_optimizely.core.retry import (
    READ_ONLY_METHODS,
    CallState,
    Reauthenticate,
    RetryPolicy,
    retrying_for,
)
from airflow_provider_optimizely.core.send_mark import take_mark
from airflow_provider_optimizely.core.transport import classify
from airflow_provider_optimizely.core.urls import check_url_is_safe, host_of, origin, path_of

__all__ = ["InsecureUrlError", "RequestStats", "RestClient", "check_url_is_safe", "encode_json"]

DEFAULT_TIMEOUT = (10.0, 60.0)
MAX_PER_PAGE = 100
_MASK = "***"


class Authenticator(Protocol):
    """Credentials that change while a client lives (an OAuth access token): asked before every attempt."""

    def headers(self) -> Mapping[str, str]:
        """The auth headers to send now (refreshing them first when they are about to expire)."""
        ...

    def unauthorized(self, sent: Mapping[str, str]) -> bool:
        """A 401 answered ``sent``: True when fresh credentials are now worth one more attempt."""
        ...

    def secrets(self) -> Iterable[str]:
        """The credentials it holds now, to be scrubbed from any text an error keeps."""
        ...


class RestClient:
    """HTTP for one API over one connection.

    ``base_url`` ends the same way the vendor documents it (``.../experiment/v1``); paths are relative to
    it (``dcp_services``) and may be given another base per call (DCP profiles live on another host).
    ``conn_id`` (the Airflow connection) and ``auth_hint`` (which of its fields hold the credentials)
    are named by every error, so a user knows where to look.
    """

    def __init__(
        self,
        base_url: str,
        *,
        headers: Mapping[str, str] | None = None,
        auth: Authenticator | None = None,
        secrets: Iterable[str] = (),
        rate_limiter: RateLimiter | None = None,
        retry: RetryPolicy | None = None,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        logger: logging.Logger | None = None,
        api_name: str = "",
        conn_id: str = "",
        auth_hint: str = "",
        pool_size: int = 10,
        user_agent: str = "airflow-provider-optimizely",
    ) -> None:
        check_url_is_safe(base_url)
        self.base_url = base_url.rstrip("/") + "/"
        self.api_name = api_name
        self.conn_id = conn_id
        self.auth_hint = auth_hint
        self.timeout = timeout
        self.rate_limiter = rate_limiter or RateLimiter()
        self.retry = retry or RetryPolicy()
        self.log = logger or logging.getLogger("airflow_provider_optimizely.rest")
        self.stats = RequestStats()
        #: Told of every request's outcome when set (adaptive concurrency: core.concurrency).
        self.concurrency: AdaptiveConcurrency | None = None
        self.auth = auth
        self._headers = {"User-Agent": user_agent, "Accept": "application/json", **(headers or {})}
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)
        self._safe_origins: set[str] = {origin(self.base_url)}
        # urllib3's pool is thread-safe; requests.Session is not documented as such, so each thread gets
        # its own Session over the one shared adapter (and so the one shared connection pool).
        self._adapter = HTTPAdapter(pool_connections=4, pool_maxsize=max(1, pool_size), max_retries=0)
        self._local = threading.local()
        self._retrying = retrying_for(self)

    # -- public API ---------------------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        form: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
        expected: Sequence[int] | None = None,
        base_url: str | None = None,
        headers: Mapping[str, str] | None = None,
        rate_limiter: RateLimiter | None = None,
    ) -> requests.Response:
        """Send one request (retrying as the policy says) and return a 2xx/3xx answer, else raise.

        ``json`` is serialised once, here (``encode_json``), and the same bytes are resent on a retry;
        ``form`` is sent form-encoded instead (an OAuth token endpoint).
        ``expected`` (success codes the API documents) is informational: any 2xx is accepted, another
        one than documented is logged at debug level.
        ``rate_limiter`` replaces the client's for this call (a route with its own limit, e.g. ODP profiles).
        """
        method = method.upper()
        url = self._url(path, base_url)
        call_headers = {**self._headers, **(headers or {})}
        body: bytes | None = None
        if json is not None:
            body = encode_json(json)
            call_headers["Content-Type"] = "application/json"
        elif form is not None:
            body = urlencode(form).encode()
            call_headers["Content-Type"] = "application/x-www-form-urlencoded"
        call = CallState(
            method=method,
            path=path_of(url),
            host=host_of(url),
            started=time.monotonic(),
            limiter=rate_limiter or self.rate_limiter,
            mark=None if method in READ_ONLY_METHODS else take_mark(),
        )
        response: requests.Response | None = None
        try:
            for attempt in self._retrying:
                with attempt:
                    attempt.retry_state.kwargs["call"] = call
                    response = self._send_once(call, url, body, params, call_headers)
        except (OptimizelyApiError, OptimizelyTransportError) as exc:
            exc.attempts = call.attempts  # the last attempt's error, raised once retries stop
            raise
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

        Follows ``Link: <...>; rel="next"`` (docs/api-contract.md §3); never to another origin than the
        first page's.
        """
        if not 1 <= per_page <= MAX_PER_PAGE:
            raise ValueError(f"per_page must be between 1 and {MAX_PER_PAGE}")
        first_params = {"per_page": per_page, "page": 1, **(params or {})}
        response = self.request("GET", path, params=first_params, base_url=base_url)
        first_origin = origin(response.url)
        while True:
            page = _json_of(response)
            items = page.get(items_key, []) if items_key and isinstance(page, dict) else page
            yield from items or []
            next_url = response.links.get("next", {}).get("url")
            if not next_url:
                return
            next_url = urljoin(response.url, next_url)
            if origin(next_url) != first_origin:
                raise InsecureUrlError(
                    "pagination Link points to another host; not following it with our credentials"
                )
            response = self.request("GET", next_url)

    def scrub(self, text: str) -> str:
        """``text`` with every secret this client knows replaced by ``***``."""
        secrets = self._secrets
        if self.auth is not None:
            secrets = sorted({*secrets, *self.auth.secrets()}, key=len, reverse=True)
        for secret in secrets:
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
        call: CallState,
        url: str,
        body: bytes | None,
        params: Mapping[str, Any] | None,
        headers: Mapping[str, str],
    ) -> requests.Response:
        call.attempts += 1
        try:
            auth_headers = self.auth.headers() if self.auth is not None else {}
        except OptimizelyError as exc:
            # No credentials to send (the token endpoint failed): this request never left.
            raise call.failed(exc, sent=False) from None
        waited = call.limiter.acquire()
        try:
            call.going_out()  # past every wait: nothing stands between the mark and the wire
        except BaseException:
            call.limiter.release()
            raise
        self.stats.add(requests=1, throttled_seconds=waited)
        concurrency = self.concurrency
        if concurrency is not None:
            concurrency.started()
        sent_at = time.monotonic()
        status: int | None = None
        try:
            response = self._session().request(
                call.method,
                url,
                data=body,
                params=params,
                headers={**headers, **auth_headers},
                timeout=self.timeout,
            )
            status = response.status_code
            # Observed while this request still counts as in flight (the limiter discounts the others).
            call.limiter.observe(response.headers)
        except requests.exceptions.RequestException as exc:
            raise call.failed(self._transport_error(call, exc)) from None
        finally:
            call.limiter.release()
            if concurrency is not None:
                concurrency.record(status, time.monotonic() - sent_at)
        if response.status_code < 400:
            if body:
                self.stats.add(bytes_accepted=len(body))
            return response
        if response.status_code == 401 and self.auth is not None and not call.reauthenticated:
            call.reauthenticated = True
            if self.auth.unauthorized(auth_headers):
                raise Reauthenticate()
        raise call.failed(self._error_for(call, response))

    def _transport_error(self, call: CallState, exc: requests.exceptions.RequestException) -> OptimizelyError:
        kind, reason = classify(exc)
        if issubclass(kind, OptimizelyTransportError):
            return kind(call.method, call.path, reason, call.attempts, self.api_name, self.conn_id, call.host)
        where = f"{self.api_name} {call.method} {call.path} (connection {self.conn_id!r}, host {call.host})"
        return kind(f"{where}: {reason}")

    def _error_for(self, call: CallState, response: requests.Response) -> OptimizelyApiError:
        status = response.status_code
        retry_after = None
        if status in (429, 503):
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if not retry_after:
                retry_after = self.retry.default_retry_after.get(status)
            if retry_after:
                # Every thread of this client waits, not only this one.
                call.limiter.pause(retry_after)
        return error_from_response(
            status,
            self.scrub(response.text),
            method=call.method,
            path=call.path,
            api=self.api_name,
            reason=response.reason or "",
            retry_after=retry_after,
            conn_id=self.conn_id,
            host=call.host,
            hint=self.auth_hint,
        )

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
            if origin(path) not in self._safe_origins:
                raise InsecureUrlError("absolute URL to an unknown host; refusing to send credentials there")
            return path
        base = self.base_url
        if base_url is not None:
            base = base_url.rstrip("/") + "/"
            if origin(base) not in self._safe_origins:
                check_url_is_safe(base)
                self._safe_origins.add(origin(base))
        return base + path.lstrip("/")


def _json_of(response: requests.Response) -> Any:
    if not response.content:
        return None
    return response.json()
