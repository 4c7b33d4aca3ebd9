"""The one place where lower-layer failures (requests, urllib3, http.client, ssl, socket) become our types.

requests wraps urllib3's exception, which wraps the socket's: the chain is walked and the first rule
below that matches any link wins, by type alone (never by the text of a message, which changes between
versions and holds the URL). What a type says matters twice: whether a retry may help (transient or
terminal), and whether the request may already have reached the server (``may_have_reached_server``),
which decides whether its retry counts as "maybe applied twice".
"""

from __future__ import annotations

import http.client
import socket
import ssl
from collections.abc import Iterator

import requests
import urllib3.exceptions

from airflow_provider_optimizely.core.errors import (
    CertificateError,
    ConnectFailedError,
    ConnectionLostError,
    InvalidRequestError,
    OptimizelyTransportError,
    ResponseTimeoutError,
)

_Kind = type[OptimizelyTransportError] | type[CertificateError] | type[InvalidRequestError]

# First match wins, so a subclass comes before its base (urllib3's NameResolutionError is a
# NewConnectionError, which is a ConnectTimeoutError; RemoteDisconnected is a ConnectionResetError).
_RULES: tuple[tuple[tuple[type[BaseException], ...], _Kind, str], ...] = (
    ((ssl.SSLCertVerificationError,), CertificateError, "the server's TLS certificate was not accepted"),
    (
        (urllib3.exceptions.NameResolutionError, socket.gaierror),
        ConnectFailedError,
        "could not connect: name resolution failed",
    ),
    ((ConnectionRefusedError,), ConnectFailedError, "could not connect: connection refused"),
    ((urllib3.exceptions.NewConnectionError,), ConnectFailedError, "could not connect"),
    (
        (requests.exceptions.ConnectTimeout, urllib3.exceptions.ConnectTimeoutError),
        ConnectFailedError,
        "could not connect: connect timeout",
    ),
    (
        (requests.exceptions.ReadTimeout, urllib3.exceptions.ReadTimeoutError, TimeoutError),
        ResponseTimeoutError,
        "no answer within the read timeout",
    ),
    # A TLS failure may come after the request was written (an EOF while reading): counted as sent.
    ((ssl.SSLError, urllib3.exceptions.SSLError), ConnectionLostError, "TLS error"),
    ((http.client.RemoteDisconnected,), ConnectionLostError, "connection closed by the server"),
    ((ConnectionResetError,), ConnectionLostError, "connection reset"),
    ((BrokenPipeError,), ConnectionLostError, "connection broken while sending"),
    (
        (http.client.IncompleteRead, requests.exceptions.ChunkedEncodingError),
        ConnectionLostError,
        "answer cut short",
    ),
    ((urllib3.exceptions.ProtocolError,), ConnectionLostError, "connection broken"),
    ((requests.exceptions.ContentDecodingError,), ConnectionLostError, "answer could not be decoded"),
    (
        (
            requests.exceptions.InvalidURL,
            requests.exceptions.InvalidSchema,
            requests.exceptions.MissingSchema,
            requests.exceptions.InvalidHeader,
            requests.exceptions.URLRequired,
            requests.exceptions.TooManyRedirects,
            requests.exceptions.InvalidJSONError,
            urllib3.exceptions.LocationParseError,
        ),
        InvalidRequestError,
        "the request could not be sent as built",
    ),
)


def classify(exc: BaseException) -> tuple[_Kind, str]:
    """Our error class for a lower-layer failure, and a short reason that holds no URL."""
    chain = list(_chain(exc))
    for types, kind, reason in _RULES:
        if any(isinstance(link, types) for link in chain):
            return kind, reason
    # Unknown: assume the worst on both counts that matter (it may have been sent; it may pass later).
    return ConnectionLostError, f"connection failed ({type(exc).__name__})"


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and everything it wraps: ``args`` (requests, urllib3's ProtocolError), urllib3's
    ``MaxRetryError.reason``, ``__cause__`` and ``__context__``."""
    pending: list[object] = [exc]
    seen: list[BaseException] = []
    while pending:
        link = pending.pop(0)
        if not isinstance(link, BaseException) or any(link is known for known in seen):
            continue
        seen.append(link)
        yield link
        pending.extend(link.args)
        pending.extend((getattr(link, "reason", None), link.__cause__, link.__context__))
