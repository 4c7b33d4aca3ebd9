"""Who may call the emulated DCP (docs/api-contract.md §2; seeds 000 and 004), and its OAuth 2.0 token
endpoint.

The emulator's reading:

- ``Token: <classic token>`` is accepted: seed 000, "all DCP REST APIs make use of only classic tokens".
- ``Authorization: Bearer <access token>`` is accepted only for an OAuth 2.0 access token this emulator's
  token endpoint issued (seed 000 recommends OAuth for integrations; seed 004 sends OAuth tokens as
  Bearer), until it expires; then 401 with ``WWW-Authenticate: Bearer error="invalid_token"``.
- A personal token (``settings.dcp_personal_token``) is refused in either header (seed 000: DCP "don't
  accept personal-tokens"), and so is any other Bearer value, the classic token included: 401.
- The token endpoint (``{base}/dcp/oauth2/token``; the vendor's is ``https://app.optimizely.com/oauth2/
  token``, inferred) takes ``POST`` form-encoded ``grant_type=refresh_token&refresh_token&client_id&
  client_secret`` and answers ``200 {access_token, token_type: "bearer", expires_in, refresh_token}``.
  ``expires_in`` is ``settings.oauth_access_token_seconds`` scaled (whole seconds, at least 1). With
  ``oauth_rotate_refresh_tokens`` (the default) each refresh answers a new refresh token and revokes the one
  used, as OAuth's refresh-token rotation does; otherwise the answer has none and the old one stays good.
  Errors (RFC 6749 §5.2): a body that is not form-encoded, or a missing parameter, ``400 invalid_request``;
  another grant type ``400 unsupported_grant_type``; an unknown client or wrong secret ``401
  invalid_client``; an unknown, revoked or another client's refresh token ``400 invalid_grant``.
- Clients and their first refresh token come from the admin API (``POST /_emulator/oauth/clients``, the
  handle's ``issue_oauth_token()``), standing in for the vendor's app registration and consent screen.
"""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse

from airflow_provider_optimizely.emulator._request_body import same_secret
from airflow_provider_optimizely.emulator.common import ApiError, EmulatorSettings
from airflow_provider_optimizely.emulator.dcp_state import DcpState

FORM = "application/x-www-form-urlencoded"
_BEARER_CHALLENGE = 'Bearer error="invalid_token"'


def _new_secret(prefix: str) -> str:
    return f"{prefix}-{secrets.token_urlsafe(24)}"


def token_auth(state: DcpState, settings: EmulatorSettings) -> Callable[..., None]:
    """A dependency that lets a request through only with a credential DCP accepts (see above)."""

    def check(
        token: str | None = Header(default=None), authorization: str | None = Header(default=None)
    ) -> None:
        if token is None and authorization is None:
            raise ApiError(
                401, "authentication required: send 'Token: <classic token>' or an OAuth access token"
            )
        personal = settings.dcp_personal_token
        if same_secret(token, personal) or same_secret(_bearer(authorization), personal):
            raise ApiError(401, "DCP does not accept personal tokens: use a classic token or OAuth 2.0")
        if token is not None:
            if not same_secret(token, settings.dcp_token):
                raise ApiError(401, "the classic token is not valid for this account")
            return
        bearer = _bearer(authorization)
        if bearer is None:
            raise ApiError(401, "the Authorization header must be 'Bearer <OAuth access token>'")
        expires_at = state.access_token_expiry(bearer)
        if expires_at is None:
            raise ApiError(
                401, "the Bearer token is not an OAuth access token of this account", headers=_challenge()
            )
        if time.time() >= expires_at:
            raise ApiError(401, "the OAuth access token has expired: refresh it", headers=_challenge(True))

    return check


def _bearer(authorization: str | None) -> str | None:
    scheme, _, value = (authorization or "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def _challenge(expired: bool = False) -> dict[str, str]:
    detail = ', error_description="The access token expired"' if expired else ""
    return {"WWW-Authenticate": _BEARER_CHALLENGE + detail}


def _oauth_error(status: int, error: str, description: str) -> ApiError:
    headers = {"Cache-Control": "no-store"}
    if status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="oauth2"'
    body = {"error": error, "error_description": description}
    return ApiError(status, description, body=body, headers=headers)


def issue_access_token(state: DcpState, settings: EmulatorSettings) -> tuple[str, int]:
    """A new access token and its lifetime in (scaled) whole seconds."""
    lifetime = max(1, math.ceil(settings.real_seconds(settings.oauth_access_token_seconds) - 1e-9))
    access_token = _new_secret("emu-oauth-access")
    state.add_access_token(access_token, time.time() + lifetime)
    return access_token, lifetime


def register_client(state: DcpState, settings: EmulatorSettings, client_id: str | None) -> dict[str, Any]:
    """A registered OAuth client with a first grant: what an app has after the user's consent."""
    client_id = client_id or _new_secret("emu-oauth-client")
    client_secret = _new_secret("emu-oauth-secret")
    refresh_token = _new_secret("emu-oauth-refresh")
    with state.lock:
        state.oauth_clients[client_id] = client_secret
        state.refresh_tokens[refresh_token] = client_id
        access_token, lifetime = issue_access_token(state, settings)
    return {
        "client_id": client_id,
        "client_secret": client_secret,
        "refresh_token": refresh_token,
        "access_token": access_token,
        "token_type": "bearer",
        "expires_in": lifetime,
    }


def create_router(state: DcpState, settings: EmulatorSettings) -> APIRouter:
    """The token endpoint; mount under ``/dcp/oauth2``."""
    router = APIRouter()

    @router.post("/token")
    async def token(request: Request) -> JSONResponse:
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type != FORM:
            raise _oauth_error(400, "invalid_request", f"the body must be {FORM}")
        try:
            pairs = parse_qsl((await request.body()).decode("ascii"), strict_parsing=False)
        except (UnicodeDecodeError, ValueError):
            raise _oauth_error(400, "invalid_request", "the body is not form-encoded") from None
        form: dict[str, str] = {}
        for name, value in pairs:
            if name in form:
                raise _oauth_error(400, "invalid_request", f"{name} is given twice")
            form[name] = value
        missing = [
            name
            for name in ("grant_type", "refresh_token", "client_id", "client_secret")
            if not form.get(name)
        ]
        if "grant_type" in missing:
            raise _oauth_error(400, "invalid_request", "grant_type is required")
        if form["grant_type"] != "refresh_token":
            raise _oauth_error(400, "unsupported_grant_type", "only grant_type=refresh_token is served")
        if missing:
            raise _oauth_error(400, "invalid_request", f"missing: {', '.join(missing)}")
        with state.lock:
            secret = state.oauth_clients.get(form["client_id"])
            if secret is None or not same_secret(form["client_secret"], secret):
                raise _oauth_error(401, "invalid_client", "unknown client or wrong client_secret")
            if state.refresh_tokens.get(form["refresh_token"]) != form["client_id"]:
                raise _oauth_error(400, "invalid_grant", "the refresh token is unknown, revoked or not yours")
            access_token, lifetime = issue_access_token(state, settings)
            answer: dict[str, Any] = {
                "access_token": access_token,
                "token_type": "bearer",
                "expires_in": lifetime,
            }
            if settings.oauth_rotate_refresh_tokens:
                del state.refresh_tokens[form["refresh_token"]]
                rotated = _new_secret("emu-oauth-refresh")
                state.refresh_tokens[rotated] = form["client_id"]
                answer["refresh_token"] = rotated
        return JSONResponse(answer, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    return router
