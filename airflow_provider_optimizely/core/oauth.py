"""OAuth 2.0 access tokens from a refresh token (DCP; docs/api-contract.md §2, seeds 000 and 004).

The token endpoint takes ``POST`` form-encoded ``grant_type=refresh_token&refresh_token=..&client_id=..
&client_secret=..`` and answers ``{"access_token", "token_type": "bearer", "expires_in", "refresh_token"
(optional: a rotated one)}``; a refused refresh token or client is ``400 invalid_grant`` /
``401 invalid_client``.

One ``OAuthRefresher`` serves every thread of a hook: the first thread that finds the token missing or
close to its expiry refreshes it while the others wait on the same lock, so there is one refresh at a
time. A 401 to the token in use drops it (once per request): the next attempt gets a fresh one. Neither
token ever reaches a log line or an error: both go to ``on_secret`` (the hook registers them with
Airflow's masker) and to ``secrets()`` (the REST client scrubs answer texts with them).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from airflow_provider_optimizely.core.errors import AuthError, BadRequestError, OptimizelyConfigError
from airflow_provider_optimizely.core.rest import DEFAULT_TIMEOUT, RestClient
from airflow_provider_optimizely.core.retry import RetryPolicy
from airflow_provider_optimizely.core.urls import origin

# Inferred: the vendor documents OAuth for its REST APIs (seed 004) without printing this URL.
DEFAULT_TOKEN_URL = "https://app.optimizely.com/oauth2/token"  # noqa: S105 (a URL, not a secret)
# Refresh this long before the announced expiry (at most a tenth of the token's lifetime), so that a
# request never leaves with a token that expires on the way.
_EARLY_SECONDS = 60.0
_TOKEN_RETRY = RetryPolicy(max_attempts=3, max_retry_seconds=60.0)


class OAuthRefresher:
    """``Authorization: Bearer <access token>``, refreshed from a refresh token (a REST client's ``auth``)."""

    def __init__(
        self,
        refresh_token: str,
        client_id: str,
        client_secret: str | None = None,
        *,
        token_url: str = DEFAULT_TOKEN_URL,
        on_secret: Callable[[str], None] = lambda secret: None,
        api_name: str = "",
        conn_id: str = "",
        hint: str = "",
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        retry: RetryPolicy = _TOKEN_RETRY,
        clock: Callable[[], float] = time.monotonic,
        logger: logging.Logger | None = None,
    ) -> None:
        if not refresh_token or not client_id:
            raise OptimizelyConfigError("an OAuth refresh needs a refresh token and a client id")
        self._token_url = token_url
        self._refresh_token = refresh_token
        self._client_id = client_id
        self._client_secret = client_secret
        self._on_secret = on_secret
        self._hint = hint
        self._clock = clock
        self._log = logger or logging.getLogger("airflow_provider_optimizely.oauth")
        self._http = RestClient(
            origin(token_url),
            secrets=[refresh_token, client_secret or ""],
            retry=retry,
            timeout=timeout,
            api_name=f"{api_name} OAuth".strip(),
            conn_id=conn_id,
            auth_hint=hint,
            logger=self._log,
        )
        self._lock = threading.Lock()
        self._access_token: str | None = None
        self._refresh_at = 0.0
        self.refreshes = 0

    # -- the REST client's Authenticator -----------------------------------------------------------------

    def headers(self) -> Mapping[str, str]:
        return {"Authorization": f"Bearer {self.access_token()}"}

    def unauthorized(self, sent: Mapping[str, str]) -> bool:
        with self._lock:
            # Only the token that was refused: another thread may have refreshed it already.
            if self._access_token is not None and sent.get("Authorization") == f"Bearer {self._access_token}":
                self._access_token = None
        return True

    def secrets(self) -> Iterable[str]:
        return [s for s in (self._access_token, self._refresh_token, self._client_secret) if s]

    # -- tokens -------------------------------------------------------------------------------------------

    def access_token(self) -> str:
        """A token that is not about to expire, refreshed first if needed (one thread at a time)."""
        with self._lock:
            if self._access_token is None or self._clock() >= self._refresh_at:
                self._refresh()
            assert self._access_token is not None
            return self._access_token

    def _refresh(self) -> None:
        form = {
            "grant_type": "refresh_token",
            "refresh_token": self._refresh_token,
            "client_id": self._client_id,
        }
        if self._client_secret:
            form["client_secret"] = self._client_secret
        asked_at = self._clock()
        try:
            response = self._http.request("POST", self._token_url, form=form, expected=(200,))
        except BadRequestError as exc:
            # invalid_grant: the refresh token is wrong, expired or revoked. Nothing to retry.
            raise AuthError(**{**_fields(exc), "hint": self._hint}) from None
        answer = _answer(response.json() if response.content else None)
        access_token = answer["access_token"]
        self._secret(access_token)
        rotated = answer.get("refresh_token")
        if isinstance(rotated, str) and rotated and rotated != self._refresh_token:
            self._secret(rotated)
            self._refresh_token = rotated
            self._log.info(
                "The token endpoint issued a new refresh token; it is used from now on in this process "
                "(the connection still holds the old one)"
            )
        self._access_token = access_token
        self._refresh_at = asked_at + _refresh_after(answer.get("expires_in"))
        self.refreshes += 1

    def _secret(self, value: str) -> None:
        self._on_secret(value)
        self._http.add_secret(value)


def _answer(body: Any) -> dict[str, Any]:
    if (
        not isinstance(body, dict)
        or not isinstance(body.get("access_token"), str)
        or not body["access_token"]
    ):
        raise AuthError(
            status=200,
            message="the token endpoint answered without an access_token",
            api="OAuth",
        )
    return body


def _refresh_after(expires_in: Any) -> float:
    """Seconds until the token should be refreshed: before its expiry, by at most a tenth of its life."""
    try:
        lifetime = float(expires_in)
    except (TypeError, ValueError):
        return math.inf  # no expiry announced: refreshed on its first 401
    if not math.isfinite(lifetime) or lifetime <= 0:
        return 0.0
    return lifetime - min(_EARLY_SECONDS, lifetime / 10)


def _fields(exc: BadRequestError) -> dict[str, Any]:
    return {
        "status": exc.status,
        "message": exc.message,
        "code": exc.code,
        "uuid": exc.uuid,
        "method": exc.method,
        "path": exc.path,
        "api": exc.api,
        "conn_id": exc.conn_id,
        "host": exc.host,
        "attempts": exc.attempts,
    }
