"""The typed errors: one taxonomy (transient or terminal), parsing the vendors' bodies, the message a
user reads, pickling, no secrets."""

from __future__ import annotations

import inspect
import pickle

import pytest

from airflow_provider_optimizely.core import errors
from airflow_provider_optimizely.core.errors import (
    AuthError,
    BadRequestError,
    ConflictError,
    ConnectFailedError,
    ConnectionLostError,
    InvalidIdentifierError,
    NotFoundError,
    OptimizelyApiError,
    OptimizelyConfigError,
    OptimizelyError,
    OptimizelyTransportError,
    PayloadTooLargeError,
    RateLimitedError,
    ServerError,
    TerminalError,
    TransientError,
    UnexpectedStatusError,
    error_from_response,
)


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequestError),
        (422, BadRequestError),
        (401, AuthError),
        (403, AuthError),
        (404, NotFoundError),
        (409, ConflictError),
        (413, PayloadTooLargeError),
        (429, RateLimitedError),
        (500, ServerError),
        (502, ServerError),
        (503, ServerError),
        (504, ServerError),
        (418, UnexpectedStatusError),
        (501, UnexpectedStatusError),
    ],
)
def test_each_status_gets_its_class(status: int, cls: type) -> None:
    err = error_from_response(status, '{"message": "m"}', method="GET", path="p")
    assert type(err) is cls
    assert isinstance(err, OptimizelyApiError)


def test_v2_body_gives_message_code_uuid_and_readable_text() -> None:
    body = '{"message": "name is required", "code": "BAD_REQUEST", "uuid": "1234-abcd"}'
    err = error_from_response(400, body, method="POST", path="dcp_services/12/dcp_datasources", api="DCP")
    assert (err.status, err.message, err.code, err.uuid) == (
        400,
        "name is required",
        "BAD_REQUEST",
        "1234-abcd",
    )
    assert (
        str(err)
        == "DCP POST dcp_services/12/dcp_datasources -> 400 BAD_REQUEST: name is required (uuid 1234-abcd)"
    )


_ABSTRACT = {
    OptimizelyError,
    TransientError,
    TerminalError,
    OptimizelyApiError,
    OptimizelyTransportError,
}


@pytest.mark.parametrize(
    "cls",
    [
        cls
        for _, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, OptimizelyError) and cls not in _ABSTRACT
    ],
    ids=lambda cls: cls.__name__,
)
def test_every_error_is_either_transient_or_terminal(cls: type) -> None:
    assert issubclass(cls, TransientError) != issubclass(cls, TerminalError)


def test_retryability_is_carried_by_the_type() -> None:
    transient = {429, 500, 502, 503, 504}
    for status in range(400, 600):
        error = error_from_response(status, "", method="GET", path="p")
        assert isinstance(error, TransientError) == (status in transient), status
        assert isinstance(error, TerminalError) == (status not in transient), status
    assert issubclass(ConnectFailedError, TransientError)
    assert not ConnectFailedError.may_have_reached_server
    assert ConnectionLostError.may_have_reached_server


def test_configuration_and_identifier_errors_are_terminal_value_errors() -> None:
    for cls in (OptimizelyConfigError, InvalidIdentifierError):
        assert issubclass(cls, TerminalError) and issubclass(cls, ValueError)
    err = InvalidIdentifierError("ProfileStore scope", "..")
    assert str(err).startswith("ProfileStore scope '..' can't be sent as a URL path segment")
    again = pickle.loads(pickle.dumps(err))
    assert (again.slot, again.value, str(again)) == (err.slot, err.value, str(err))


def test_the_message_names_connection_host_path_and_what_to_check() -> None:
    err = error_from_response(
        401,
        '{"message": "bad key", "code": "UNAUTHORIZED", "uuid": "u-9"}',
        method="POST",
        path="/v3/profiles",
        api="ODP",
        conn_id="odp_eu",
        host="api.eu1.odp.optimizely.com",
        hint="Check the connection's password (the ODP private API key)",
    )
    assert str(err) == (
        "ODP POST /v3/profiles (connection 'odp_eu', host api.eu1.odp.optimizely.com) -> 401 UNAUTHORIZED: "
        "bad key (uuid u-9). Check the connection's password (the ODP private API key)"
    )
    not_auth = error_from_response(
        404, "", method="GET", path="/x", hint="Check the password", reason="Not Found"
    )
    assert "Check" not in str(not_auth)  # the hint is for 401/403 only


def test_oauth_error_bodies_are_read() -> None:
    err = error_from_response(
        400, '{"error": "invalid_grant", "error_description": "expired"}', method="POST", path="/t"
    )
    assert (type(err), err.code, err.message) == (BadRequestError, "invalid_grant", "expired")
    bare = error_from_response(401, '{"error": "invalid_client"}', method="POST", path="/t")
    assert (bare.code, bare.message) == ("invalid_client", "invalid_client")


def test_odp_invalids_are_parsed() -> None:
    body = '{"detail": {"invalids": [{"event": 3, "message": "type is required"}]}}'
    err = error_from_response(400, body, method="POST", path="events", api="ODP")
    assert isinstance(err, BadRequestError)
    assert err.invalids == [{"event": 3, "message": "type is required"}]
    assert "type is required" in str(err)


def test_plain_text_body_is_kept_short() -> None:
    err = error_from_response(502, "x" * 5000, method="GET", path="p", reason="Bad Gateway")
    assert isinstance(err, ServerError)
    assert len(err.message) <= 500


def test_empty_body_falls_back_to_reason() -> None:
    err = error_from_response(404, "", method="GET", path="p", reason="Not Found")
    assert err.message == "Not Found"
    assert err.uuid is None


def test_api_errors_pickle_with_every_field() -> None:
    err = error_from_response(
        429,
        '{"message": "slow down", "code": "RL", "uuid": "u-1"}',
        method="GET",
        path="p",
        retry_after=7.0,
        conn_id="c",
        host="h",
    )
    err.attempts = 3
    again = pickle.loads(pickle.dumps(err))
    assert type(again) is RateLimitedError
    assert (again.status, again.message, again.code, again.uuid, again.retry_after) == (
        429,
        "slow down",
        "RL",
        "u-1",
        7.0,
    )
    assert (again.conn_id, again.host, again.attempts) == ("c", "h", 3)
    assert str(again) == str(err)
    assert str(err).endswith("(after 3 attempts)")


def test_transport_error_pickles_and_reads_well() -> None:
    err = ConnectionLostError("POST", "/v3/events", "read timeout", 5, api="ODP", conn_id="odp", host="h:1")
    again = pickle.loads(pickle.dumps(err))
    assert type(again) is ConnectionLostError
    assert (
        str(again)
        == str(err)
        == "ODP POST /v3/events (connection 'odp', host h:1): read timeout (after 5 attempt(s))"
    )
