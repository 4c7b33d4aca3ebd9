"""Lower-layer failures become our types by their type alone: real failures over loopback, and chains
built the way requests and urllib3 build them."""

from __future__ import annotations

import datetime
import http.client
import socket
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
import urllib3.exceptions
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from airflow_provider_optimizely.core.errors import (
    CertificateError,
    ConnectFailedError,
    ConnectionLostError,
    InvalidRequestError,
    ResponseTimeoutError,
    TerminalError,
)
from airflow_provider_optimizely.core.rest import RestClient
from airflow_provider_optimizely.core.retry import RetryPolicy
from airflow_provider_optimizely.core.transport import classify

FAST_RETRY = RetryPolicy(max_attempts=3, max_retry_seconds=30, backoff_initial=0.01, backoff_max=0.02)


def _wrapped(inner: BaseException, outer: type[requests.exceptions.RequestException]) -> BaseException:
    """``inner`` as requests raises it: inside urllib3's MaxRetryError, inside a requests exception."""
    pool = urllib3.HTTPConnectionPool("api.example.com")
    return outer(urllib3.exceptions.MaxRetryError(pool, "/v1/x?token=secret", reason=inner))


def _caused(exc: BaseException, cause: BaseException) -> BaseException:
    exc.__cause__ = cause
    return exc


@pytest.mark.parametrize(
    ("exc", "kind", "reason"),
    [
        (
            _wrapped(
                urllib3.exceptions.NameResolutionError("api.example.com", None, socket.gaierror(-2, "x")),  # type: ignore[arg-type]
                requests.exceptions.ConnectionError,
            ),
            ConnectFailedError,
            "name resolution failed",
        ),
        (
            _wrapped(
                _caused(
                    urllib3.exceptions.NewConnectionError(None, "failed"), ConnectionRefusedError(111, "x")
                ),  # type: ignore[arg-type]
                requests.exceptions.ConnectionError,
            ),
            ConnectFailedError,
            "connection refused",
        ),
        (
            _wrapped(urllib3.exceptions.ConnectTimeoutError(), requests.exceptions.ConnectTimeout),
            ConnectFailedError,
            "connect timeout",
        ),
        (
            requests.exceptions.ReadTimeout(
                urllib3.exceptions.ReadTimeoutError(None, "/x", "read timed out")
            ),  # type: ignore[arg-type]
            ResponseTimeoutError,
            "no answer",
        ),
        (
            requests.exceptions.ConnectionError(
                urllib3.exceptions.ProtocolError(
                    "Connection aborted.",
                    http.client.RemoteDisconnected("NewConnectionError ConnectionRefused"),
                )
            ),
            ConnectionLostError,
            "closed by the server",
        ),
        (
            requests.exceptions.ConnectionError(
                urllib3.exceptions.ProtocolError("Connection aborted.", ConnectionResetError(104, "reset"))
            ),
            ConnectionLostError,
            "connection reset",
        ),
        (requests.exceptions.ChunkedEncodingError("x"), ConnectionLostError, "cut short"),
        (
            _wrapped(
                urllib3.exceptions.SSLError(ssl.SSLCertVerificationError(1, "certificate verify failed")),
                requests.exceptions.SSLError,
            ),
            CertificateError,
            "certificate",
        ),
        (requests.exceptions.InvalidURL("bad"), InvalidRequestError, "could not be sent"),
        (requests.exceptions.RequestException("something new"), ConnectionLostError, "RequestException"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_classified_by_the_types_in_the_chain(exc: BaseException, kind: type, reason: str) -> None:
    found, text = classify(exc)
    assert found is kind
    assert reason in text
    assert "secret" not in text and "api.example.com" not in text  # no URL in a reason


def test_a_refused_connection_never_reached_the_server() -> None:
    with pytest.raises(ConnectFailedError):
        RestClient("http://127.0.0.1:9/v1", retry=FAST_RETRY, timeout=(0.5, 0.5)).request(
            "POST", "x", json={}
        )


# -- a TLS certificate the machine does not trust: terminal, not retried --------------------------------


@pytest.fixture(scope="module")
def untrusted_https_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("tls")
    cert, key = _self_signed(folder)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    handled: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            handled.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
    assert handled == []  # no request ever got through the handshake


def test_a_refused_certificate_is_terminal_and_not_retried(untrusted_https_url: str) -> None:
    client = RestClient(untrusted_https_url, retry=FAST_RETRY, timeout=(2.0, 2.0), conn_id="tls")
    with pytest.raises(CertificateError) as caught:
        client.request("GET", "x")
    assert isinstance(caught.value, TerminalError)
    assert client.stats.requests == 1
    assert "connection 'tls'" in str(caught.value)


def _self_signed(folder: Path) -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return str(cert_path), str(key_path)
