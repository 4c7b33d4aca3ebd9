"""DCP's OAuth 2.0 token endpoint (docs/api-contract.md §2; seeds 000 and 004; RFC 6749 §5-§6)."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests

from airflow_provider_optimizely.emulator.handle import EmulatorHandle
from tests.emulator.conftest import assert_v2_error
from tests.waiting import wait_until


def refresh(emulator: EmulatorHandle, grant: dict[str, Any], **overrides: str) -> requests.Response:
    form = {
        "grant_type": "refresh_token",
        "refresh_token": grant["refresh_token"],
        "client_id": grant["client_id"],
        "client_secret": grant["client_secret"],
        **overrides,
    }
    return requests.post(emulator.urls["dcp_oauth_token"], data=form, timeout=10)


def services(emulator: EmulatorHandle, access_token: str) -> requests.Response:
    headers = {"Authorization": f"Bearer {access_token}"}
    return requests.get(f"{emulator.urls['dcp']}/dcp_services", headers=headers, timeout=10)


def test_a_refresh_answers_a_working_access_token_and_a_rotated_refresh_token(emulator):
    """The token endpoint of docs/api-contract.md §2: form-encoded refresh_token grant -> 200
    ``{access_token, token_type: "bearer", expires_in, refresh_token}``; the old refresh token is revoked."""
    grant = emulator.issue_oauth_token()
    assert grant["token_url"] == emulator.urls["dcp_oauth_token"]
    answer = refresh(emulator, grant)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token"}
    assert body["token_type"] == "bearer" and isinstance(body["expires_in"], int)
    assert body["refresh_token"] != grant["refresh_token"]
    assert answer.headers["Cache-Control"] == "no-store"
    assert services(emulator, body["access_token"]).status_code == 200

    again = refresh(emulator, grant)  # the refresh token just used
    assert (again.status_code, again.json()["error"]) == (400, "invalid_grant")
    assert refresh(emulator, {**grant, "refresh_token": body["refresh_token"]}).status_code == 200


def test_expires_in_is_the_token_lifetime_under_the_time_scale_and_then_it_is_refused(emulator):
    """Access tokens expire after ``expires_in`` (3600 vendor seconds, scaled): the next call is a 401."""
    assert emulator.issue_oauth_token()["expires_in"] == 36  # the test emulator runs at 1/100
    emulator.configure(oauth_access_token_seconds=100)  # one real second
    grant = emulator.issue_oauth_token()
    assert grant["expires_in"] == 1
    started = time.monotonic()
    assert services(emulator, grant["access_token"]).status_code == 200
    # A Response is falsy when it is an error: wrap it, so the first 401 ends the wait.
    [expired] = wait_until(
        lambda: [r] if (r := services(emulator, grant["access_token"])).status_code == 401 else None,
        timeout=10,
        what="the token to expire",
    )
    assert time.monotonic() - started >= 0.5
    assert_v2_error(expired, 401, contains="expired")


@pytest.mark.parametrize(
    ("overrides", "status", "error"),
    [
        ({"client_secret": "wrong"}, 401, "invalid_client"),
        ({"client_id": "nobody"}, 401, "invalid_client"),
        ({"refresh_token": "made-up"}, 400, "invalid_grant"),
        ({"grant_type": "client_credentials"}, 400, "unsupported_grant_type"),
        ({"grant_type": ""}, 400, "invalid_request"),
        ({"client_secret": ""}, 400, "invalid_request"),
    ],
)
def test_token_endpoint_errors_are_rfc_6749(emulator, overrides, status, error):
    """RFC 6749 §5.2 error bodies, as docs/api-contract.md §2 names them."""
    answer = refresh(emulator, emulator.issue_oauth_token(), **overrides)
    assert answer.status_code == status
    assert answer.json()["error"] == error
    assert "X-RateLimit-Limit" in answer.headers  # every answer of every API (docs/api-contract.md §3)


def test_another_clients_refresh_token_is_invalid_grant(emulator):
    mine, theirs = emulator.issue_oauth_token(), emulator.issue_oauth_token()
    answer = refresh(emulator, mine, refresh_token=theirs["refresh_token"])
    assert (answer.status_code, answer.json()["error"]) == (400, "invalid_grant")


def test_a_json_body_is_not_a_token_request(emulator):
    """RFC 6749 §6 (and the contract): the request is ``application/x-www-form-urlencoded``."""
    grant = emulator.issue_oauth_token()
    body = {
        "grant_type": "refresh_token",
        **{k: grant[k] for k in ("refresh_token", "client_id", "client_secret")},
    }
    answer = requests.post(emulator.urls["dcp_oauth_token"], json=body, timeout=10)
    assert (answer.status_code, answer.json()["error"]) == (400, "invalid_request")


def test_only_post_is_served(emulator):
    answer = requests.get(emulator.urls["dcp_oauth_token"], timeout=10)
    assert_v2_error(answer, 405)
    assert answer.headers["Allow"] == "POST"


def test_keeping_refresh_tokens_is_a_setting(emulator):
    """The other reading of "refresh_token (optional, rotated)": no new refresh token, the old one lives."""
    emulator.configure(oauth_rotate_refresh_tokens=False)
    grant = emulator.issue_oauth_token()
    for _ in range(2):
        answer = refresh(emulator, grant)
        assert answer.status_code == 200 and "refresh_token" not in answer.json()


def test_the_oauth_connection_of_the_handle_holds_what_a_client_needs(emulator):
    connection = emulator.oauth_connection("optimizely_default")
    extra = connection["extra"]
    assert extra["auth_scheme"] == "oauth" and extra["oauth_refresh_url"] == emulator.urls["dcp_oauth_token"]
    assert services(emulator, connection["password"]).status_code == 200
    grant = {
        "refresh_token": extra["oauth_refresh_token"],
        "client_id": extra["oauth_client_id"],
        "client_secret": extra["oauth_client_secret"],
    }
    assert refresh(emulator, grant).status_code == 200


def test_a_reset_forgets_clients_and_tokens(emulator):
    grant = emulator.issue_oauth_token()
    emulator.reset()
    assert services(emulator, grant["access_token"]).status_code == 401
    assert refresh(emulator, grant).json()["error"] == "invalid_client"
