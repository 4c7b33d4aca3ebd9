"""OptimizelyBaseHook: reads an Airflow connection and configures the one REST core for an API.

The four API hooks add only their auth headers, defaults and typed endpoint methods. The connection is
read lazily (never in ``__init__``, which runs at every DAG parse) and the RestClient is built once per
hook; every thread that shares the hook shares its connection pool, rate limiter and counters.

Retry bounds: an argument given to the hook wins; else the connection's extra (``max_attempts``,
``max_retry_seconds``); else the API's default. The same rule holds for the rate budget
(``requests_per_second``/``requests_per_minute`` arguments, then extras, then docs/api-contract.md §3's
defaults); the extra ``rate_limit_store_conn_id`` shares it with every worker (docs/rate-limits.md).

Every error a hook raises names its connection id, and every identifier that goes into a URL path
passes through ``segment`` (one path segment, never ``.``/``..``/empty; docs/connections.md).
"""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Mapping
from typing import Any, ClassVar

from airflow.exceptions import AirflowProviderDeprecationWarning
from airflow.sdk import BaseHook, Connection
from airflow.sdk.log import mask_secret

from airflow_provider_optimizely.core.errors import (
    InsecureUrlError,
    InvalidIdentifierError,
    OptimizelyConfigError,
    OptimizelyError,
)
from airflow_provider_optimizely.core.ratelimit import Budget, RateLimiter
from airflow_provider_optimizely.core.rest import DEFAULT_TIMEOUT, Authenticator, RestClient
from airflow_provider_optimizely.core.retry import RetryPolicy
from airflow_provider_optimizely.core.urls import path_segment
from airflow_provider_optimizely.hooks.rate_store import rate_limiter_for

__all__ = ["OptimizelyBaseHook"]

_CLIENT_LOCK = threading.Lock()
# test_connection answers a person waiting in the UI: a short bound, whatever the connection says.
_PROBE_RETRY = RetryPolicy(max_attempts=2, max_retry_seconds=15.0, backoff_initial=0.5, backoff_max=2.0)


class OptimizelyBaseHook(BaseHook):
    """Shared REST core of the four API hooks (abstract: use one of the API hooks)."""

    conn_name_attr: ClassVar[str] = "optimizely_conn_id"
    default_conn_name: ClassVar[str] = "optimizely_default"
    conn_type: ClassVar[str] = ""
    hook_name: ClassVar[str] = ""
    #: Short name used in errors and logs ("DCP", "ODP", ...).
    api_name: ClassVar[str] = ""
    default_host: ClassVar[str | None] = None
    #: Extras that hold secrets: masked in logs and scrubbed from error texts.
    secret_extras: ClassVar[tuple[str, ...]] = ()
    #: The default client-side budget when the connection sets none (None: no client budget).
    default_budget: ClassVar[Budget | None] = None
    #: Pause applied to a 429/503 that comes without Retry-After (DCP: 60 s, per docs/api-contract.md §3).
    default_retry_after: ClassVar[Mapping[int, float]] = {}
    default_max_attempts: ClassVar[int] = 5
    default_max_retry_seconds: ClassVar[float] = 600.0
    #: The most requests in flight adaptive concurrency may reach (``max_concurrency="auto"``).
    default_concurrency_cap: ClassVar[int] = 16

    def __init__(
        self,
        conn_id: str | None = None,
        *,
        max_attempts: int | None = None,
        max_retry_seconds: float | None = None,
        requests_per_second: float | None = None,
        requests_per_minute: float | None = None,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        pool_size: int = 10,
        logger_name: str | None = None,
        **conn_id_kwarg: str,
    ) -> None:
        super().__init__(logger_name=logger_name)
        # Airflow (Connection.get_hook) passes the id under the hook's conn_name_attr, e.g. optimove_conn_id.
        named = conn_id_kwarg.pop(self.conn_name_attr, None)
        if conn_id_kwarg:
            raise TypeError(f"{type(self).__name__} got unexpected arguments: {', '.join(conn_id_kwarg)}")
        self.conn_id = conn_id or named or self.default_conn_name
        self._max_attempts = max_attempts
        self._max_retry_seconds = max_retry_seconds
        self._requests_per_second = requests_per_second
        self._requests_per_minute = requests_per_minute
        self.timeout = timeout
        self.pool_size = pool_size
        self._connection: Connection | None = None

    # -- connection ---------------------------------------------------------------------------------------

    @property
    def connection(self) -> Connection:
        """The Airflow connection, read on first use; its secrets are registered with the masker then."""
        if self._connection is None:
            conn = self.get_connection(self.conn_id)
            for secret in self._secrets_of(conn):
                mask_secret(secret)
            if conn.conn_type and conn.conn_type != self.conn_type:
                raise OptimizelyConfigError(
                    f"connection {self.conn_id!r} is of type {conn.conn_type!r}, but {self.hook_name} needs "
                    f"an {self.conn_type!r} connection: use an operator of that connection's API, or another "
                    "connection"
                )
            self._connection = conn
        return self._connection

    @property
    def extras(self) -> dict[str, Any]:
        """The connection's extra, parsed once (hot paths read it per request)."""
        extras = self.__dict__.get("_extras")
        if extras is None:
            extras = self.__dict__["_extras"] = self.connection.extra_dejson
        return extras

    def get_conn(self) -> RestClient:
        return self.client

    @property
    def client(self) -> RestClient:
        """The hook's one RestClient, built on first use (thread-safe: two threads never build two)."""
        client = self.__dict__.get("_client")
        if client is None:
            with _CLIENT_LOCK:
                client = self.__dict__.get("_client")
                if client is None:
                    client = self._build_client()
                    self.__dict__["_client"] = client
        return client

    @property
    def base_url(self) -> str:
        host = (self.connection.host or self.default_host or "").strip()
        if not host:
            raise OptimizelyConfigError(
                f"connection {self.conn_id!r} ({self.conn_type}) has no host: set it to the API's base URL"
            )
        if "://" not in host:
            raise OptimizelyConfigError(
                f"connection {self.conn_id!r}: host must be the whole base URL, scheme included "
                "(https://..., or http:// to a loopback emulator)"
            )
        return host.rstrip("/")

    # -- what each API hook provides ------------------------------------------------------------------------

    def auth_headers(self, conn: Connection) -> dict[str, str]:
        """Headers that carry a fixed credential (none when ``authenticator`` supplies them)."""
        raise NotImplementedError

    def authenticator(self, conn: Connection) -> Authenticator | None:
        """Credentials that change while the hook lives (an OAuth access token); None for fixed ones."""
        return None

    def auth_hint(self, conn: Connection) -> str:
        """What a 401/403 error tells the user to check: the connection fields that hold credentials."""
        return "Check the connection's password"

    def probe(self, client: RestClient) -> str:
        """One cheap authenticated call for ``test_connection``; returns what it proved."""
        raise NotImplementedError

    def test_connection(self) -> tuple[bool, str]:
        """What the UI's Test button shows: one cheap authenticated call, retried at most once, and a
        message that names the connection and never a secret."""
        try:
            client = self._build_client(retry=_PROBE_RETRY)
            try:
                message = self.probe(client)
            finally:
                client.close()
        except OptimizelyError as exc:
            return False, str(exc)
        return True, message

    def segment(self, value: object, slot: str) -> str:
        """``value`` as one URL path segment (``slot`` names it in an error: "customer id").

        Every identifier a hook puts in a path goes through here, so that none can leave its route.
        """
        try:
            return path_segment(value, f"{self.api_name} {slot}")
        except InvalidIdentifierError as exc:
            raise InvalidIdentifierError(f"{exc.slot} (connection {self.conn_id!r})", value) from None

    # -- building the client --------------------------------------------------------------------------------

    def _build_client(self, retry: RetryPolicy | None = None) -> RestClient:
        conn = self.connection
        try:
            authenticator = self.authenticator(conn)
            return RestClient(
                self.base_url,
                headers=self.auth_headers(conn) if authenticator is None else {},
                auth=authenticator,
                secrets=self._secrets_of(conn),
                rate_limiter=self.rate_limiter(self.budget()),
                retry=retry or self.retry_policy(),
                timeout=self.timeout,
                # A stdlib logger: Airflow routes it to the task log (masked); tests capture it with caplog.
                logger=logging.getLogger(f"airflow_provider_optimizely.rest.{self.api_name.lower()}"),
                api_name=self.api_name,
                conn_id=self.conn_id,
                auth_hint=self.auth_hint(conn),
                pool_size=self.pool_size,
            )
        except InsecureUrlError as exc:
            raise OptimizelyConfigError(f"connection {self.conn_id!r}: {exc}") from None

    def rate_limiter(self, budget: Budget | None, route: str = "") -> RateLimiter:
        """A limiter for ``budget``: shared with every worker of this account when the connection names a
        store (extra ``rate_limit_store_conn_id``, ``hooks.rate_store``), else this process's own.
        ``route`` names a route with a budget of its own (ODP profiles)."""
        conn = self.connection
        identity = [conn.login or "", *self._secrets_of(conn)]
        return rate_limiter_for(
            self.extras, budget, api=self.api_name, host=self.base_url, identity=identity, route=route
        )

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            max_attempts=int(self._setting(self._max_attempts, "max_attempts", self.default_max_attempts)),
            max_retry_seconds=float(
                self._setting(self._max_retry_seconds, "max_retry_seconds", self.default_max_retry_seconds)
            ),
            default_retry_after=self.default_retry_after,
        )

    def budget(self) -> Budget | None:
        """Client-side budget: argument, then extra, then the API's default."""
        per_second = self._setting(self._requests_per_second, "requests_per_second", None)
        per_minute = self._setting(self._requests_per_minute, "requests_per_minute", None)
        if per_second is not None:
            return Budget.per_second(_positive(per_second, "requests_per_second"))
        if per_minute is not None:
            return Budget.per_minute(_positive(per_minute, "requests_per_minute"))
        return self.default_budget

    def _setting(self, argument: Any, extra_name: str, default: Any) -> Any:
        if argument is not None:
            return argument
        value = self.extras.get(extra_name)
        if value in (None, ""):
            return default
        return value

    def _secrets_of(self, conn: Connection) -> list[str]:
        extras = conn.extra_dejson
        values = [conn.password or ""] + [str(extras.get(name) or "") for name in self.secret_extras]
        return [value for value in values if value]

    def _require_password(self, conn: Connection, what: str) -> str:
        if not conn.password:
            raise OptimizelyConfigError(
                f"connection {self.conn_id!r} ({self.conn_type}) needs {what} in password"
            )
        return conn.password

    def _extra(self, conn: Connection, name: str, *old_names: str) -> Any:
        """An extra by its name, else by an older name it replaced (with a deprecation warning)."""
        extras = conn.extra_dejson
        if extras.get(name) not in (None, ""):
            return extras[name]
        for old in old_names:
            if extras.get(old) not in (None, ""):
                warnings.warn(
                    f"connection {self.conn_id!r}: the extra {old!r} is now called {name!r}; rename it",
                    AirflowProviderDeprecationWarning,
                    stacklevel=3,
                )
                return extras[old]
        return None


def _positive(value: Any, name: str) -> float:
    number = float(value)
    if number <= 0:
        raise OptimizelyConfigError(f"{name} must be positive, got {value!r}")
    return number
