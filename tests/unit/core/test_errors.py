"""The typed errors: parsing the vendors' bodies, the message a user reads, pickling, no secrets."""

from __future__ import annotations

import pickle

import pytest

from airflow_provider_optimizely.core.errors import (
    AuthError,
    BadRequestError,
    ConflictError,
    NotFoundError,
    OptimizelyApiError,
    OptimizelyTransportError,
    PayloadTooLargeError,
    RateLimitedError,
    ServerError,
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
        (503, ServerError),
        (418, OptimizelyApiError),
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
        429, '{"message": "slow down", "code": "RL", "uuid": "u-1"}', method="GET", path="p", retry_after=7.0
    )
    again = pickle.loads(pickle.dumps(err))
    assert type(again) is RateLimitedError
    assert (again.status, again.message, again.code, again.uuid, again.retry_after) == (
        429,
        "slow down",
        "RL",
        "u-1",
        7.0,
    )
    assert str(again) == str(err)


def test_transport_error_pickles_and_reads_well() -> None:
    err = OptimizelyTransportError("POST", "events", "read timeout", 5, api="ODP")
    again = pickle.loads(pickle.dumps(err))
    assert str(again) == str(err) == "ODP POST events: read timeout (after 5 attempt(s))"
