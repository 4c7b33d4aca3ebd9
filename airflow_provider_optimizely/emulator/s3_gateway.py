"""The emulator's S3 endpoint: moto's S3 behind a gate that checks what the real bucket would.

Seed 000 and docs/api-contract.md §4.4: files go to the ``optimizely-import`` bucket under the table's
``s3_path``,
written "using SigV4" with the table's own ``aws_access_key``/``aws_secret_key``. moto accepts any
request, so this WSGI layer in front of it answers as S3 does before anything reaches moto:

- no signature (anonymous), or another scheme than ``AWS4-HMAC-SHA256``: ``403 AccessDenied`` (SigV2:
  ``400 InvalidRequest``);
- an access key that is not a live table's (the service's keys included): ``403 InvalidAccessKeyId``;
- a signature that does not match the one the table's secret gives: ``403 SignatureDoesNotMatch``; a
  credential scope of another region or service: ``400 AuthorizationHeaderMalformed``; ``X-Amz-Date``
  more than 15 minutes off: ``403 RequestTimeTooSkewed``; a presigned URL past ``X-Amz-Expires``:
  ``403 AccessDenied``; a body whose SHA-256 is not the signed ``x-amz-content-sha256``:
  ``400 XAmzContentSHA256Mismatch``;
- a table's keys used outside that table's ``s3_path/`` (another table's path, the bucket itself, another
  bucket): ``403 AccessDenied``. Under its path a table's keys may put, get and head objects, run a
  multipart upload (and abort it) and list keys with a ``prefix`` under it; they may not delete.

The emulator's own keys (``settings.s3_admin_access_key``) may do anything: the import worker and tests
that look into the bucket use them. Signatures are checked with this module's own SigV4 (header or query
string), not botocore's; the payloads of ``STREAMING-*`` and ``UNSIGNED-PAYLOAD`` requests are not hashed.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qsl, quote, unquote
from xml.sax.saxutils import escape

from airflow_provider_optimizely.emulator.common import EmulatorSettings
from airflow_provider_optimizely.emulator.dcp_state import DcpState

log = logging.getLogger(__name__)

ALGORITHM = "AWS4-HMAC-SHA256"
MAX_SKEW_SECONDS = 15 * 60
_HEX64 = re.compile(r"[0-9a-f]{64}")
_PAYLOAD_MARKERS = frozenset(
    {
        "UNSIGNED-PAYLOAD",
        "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
    }
)
_AUTH_FIELDS = re.compile(r"(Credential|SignedHeaders|Signature)=([^,\s]+)")


class S3Refusal(Exception):
    """An answer S3 would give instead of serving the request."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass(frozen=True)
class S3Request:
    method: str
    raw_path: str  # as sent, percent-encoded
    raw_query: str
    headers: dict[str, str]  # lower-case names
    body: bytes

    @classmethod
    def from_environ(cls, environ: dict[str, Any], body: bytes) -> S3Request:
        uri = environ.get("RAW_URI") or environ.get("REQUEST_URI") or quote(environ.get("PATH_INFO", "/"))
        path, _, query = uri.partition("?")
        headers = {
            key[5:].replace("_", "-").lower(): str(value)
            for key, value in environ.items()
            if key.startswith("HTTP_")
        }
        for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            if environ.get(key):
                headers[key.replace("_", "-").lower()] = str(environ[key])
        return cls(environ["REQUEST_METHOD"].upper(), path, query, headers, body)

    @property
    def query(self) -> list[tuple[str, str]]:
        return parse_qsl(self.raw_query, keep_blank_values=True)

    @property
    def bucket_and_key(self) -> tuple[str, str]:
        """Path-style addressing (``/bucket/key``): the only style a loopback endpoint gets."""
        bucket, _, key = unquote(self.raw_path).lstrip("/").partition("/")
        return bucket, key


@dataclass(frozen=True)
class Signature:
    access_key: str
    date: str  # yyyymmdd of the credential scope
    region: str
    service: str
    signed_headers: list[str]
    signature: str
    amz_date: str
    payload_hash: str
    expires: int | None  # presigned URLs only


def _parse_signature(request: S3Request) -> Signature:
    query = dict(request.query)
    authorization = request.headers.get("authorization")
    if (authorization or "").startswith("AWS ") or "AWSAccessKeyId" in query:
        raise S3Refusal(
            400,
            "InvalidRequest",
            f"The authorization mechanism you have provided is not supported. Please use {ALGORITHM}.",
        )
    if authorization is not None:
        if not authorization.startswith(ALGORITHM + " "):
            raise S3Refusal(403, "AccessDenied", "Access Denied")
        fields = dict(_AUTH_FIELDS.findall(authorization))
        if set(fields) != {"Credential", "SignedHeaders", "Signature"}:
            raise S3Refusal(400, "AuthorizationHeaderMalformed", "The authorization header is malformed")
        credential, signed, signature = fields["Credential"], fields["SignedHeaders"], fields["Signature"]
        amz_date = request.headers.get("x-amz-date", "")
        payload_hash = request.headers.get("x-amz-content-sha256")
        if payload_hash is None:
            raise S3Refusal(
                400, "InvalidRequest", "Missing required header for this request: x-amz-content-sha256"
            )
        expires = None
    elif query.get("X-Amz-Algorithm") == ALGORITHM:
        try:
            credential, signed = query["X-Amz-Credential"], query["X-Amz-SignedHeaders"]
            signature, amz_date = query["X-Amz-Signature"], query["X-Amz-Date"]
            expires = int(query["X-Amz-Expires"])
        except (KeyError, ValueError):
            raise S3Refusal(
                400, "AuthorizationQueryParametersError", "Query-string authentication is malformed"
            ) from None
        payload_hash = request.headers.get("x-amz-content-sha256", "UNSIGNED-PAYLOAD")
    else:
        raise S3Refusal(403, "AccessDenied", "Access Denied")
    parts = credential.split("/")
    if len(parts) != 5 or parts[4] != "aws4_request":
        raise S3Refusal(400, "AuthorizationHeaderMalformed", f"The credential {credential!r} is malformed")
    if payload_hash not in _PAYLOAD_MARKERS and not _HEX64.fullmatch(payload_hash):
        raise S3Refusal(
            400, "InvalidArgument", "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-… or a SHA-256"
        )
    return Signature(
        access_key=parts[0],
        date=parts[1],
        region=parts[2],
        service=parts[3],
        signed_headers=signed.split(";"),
        signature=signature,
        amz_date=amz_date,
        payload_hash=payload_hash,
        expires=expires,
    )


def _encode(text: str) -> str:
    return quote(text, safe="-_.~")


def canonical_request(request: S3Request, signature: Signature) -> str:
    pairs = [
        (_encode(name), _encode(value))
        for name, value in request.query
        if not (signature.expires is not None and name == "X-Amz-Signature")
    ]
    query = "&".join(f"{name}={value}" for name, value in sorted(pairs))
    headers = "".join(
        f"{name}:{' '.join(request.headers.get(name, '').split())}\n" for name in signature.signed_headers
    )
    return "\n".join(
        [
            request.method,
            request.raw_path or "/",
            query,
            headers,
            ";".join(signature.signed_headers),
            signature.payload_hash,
        ]
    )


def expected_signature(request: S3Request, signature: Signature, secret: str) -> str:
    scope = f"{signature.date}/{signature.region}/{signature.service}/aws4_request"
    string_to_sign = "\n".join(
        [
            ALGORITHM,
            signature.amz_date,
            scope,
            hashlib.sha256(canonical_request(request, signature).encode()).hexdigest(),
        ]
    )
    key = ("AWS4" + secret).encode()
    for part in (signature.date, signature.region, signature.service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Grant:
    """What one access key may reach: everything (the emulator's key), or one table's ``s3_path/``."""

    secret: str
    prefix: str | None  # None: the whole endpoint


class Authorizer:
    def __init__(self, state: DcpState, settings: EmulatorSettings, clock: Callable[[], float] = time.time):
        self.state = state
        self.settings = settings
        self.clock = clock

    def grant_for(self, access_key: str) -> Grant | None:
        if hmac.compare_digest(access_key, self.settings.s3_admin_access_key):
            return Grant(self.settings.s3_admin_secret_key, None)
        for table in self.state.live_tables():
            if hmac.compare_digest(access_key, table["aws_access_key"]):
                return Grant(table["aws_secret_key"], table["s3_path"] + "/")
        return None

    def check(self, request: S3Request) -> None:
        """Raise ``S3Refusal`` unless S3 would serve ``request``."""
        signature = _parse_signature(request)
        grant = self.grant_for(signature.access_key)
        if grant is None:
            raise S3Refusal(
                403, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records."
            )
        if signature.region != self.settings.s3_region or signature.service != "s3":
            raise S3Refusal(
                400,
                "AuthorizationHeaderMalformed",
                f"the credential's region or service is wrong: expecting {self.settings.s3_region}/s3",
            )
        if "host" not in signature.signed_headers:
            raise S3Refusal(403, "AccessDenied", "the host header must be signed")
        self._check_time(signature)
        if not hmac.compare_digest(expected_signature(request, signature, grant.secret), signature.signature):
            raise S3Refusal(
                403,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided. "
                "Check your key and signing method.",
            )
        if (
            _HEX64.fullmatch(signature.payload_hash)
            and hashlib.sha256(request.body).hexdigest() != signature.payload_hash
        ):
            raise S3Refusal(
                400, "XAmzContentSHA256Mismatch", "The provided 'x-amz-content-sha256' header does not match"
            )
        if grant.prefix is not None and not self._within(request, grant.prefix):
            raise S3Refusal(403, "AccessDenied", "Access Denied")

    def _check_time(self, signature: Signature) -> None:
        try:
            signed_at = datetime.strptime(signature.amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
        except ValueError:
            raise S3Refusal(403, "AccessDenied", "X-Amz-Date is missing or malformed") from None
        if signature.amz_date[:8] != signature.date:
            raise S3Refusal(403, "SignatureDoesNotMatch", "the credential date is not the X-Amz-Date")
        age = self.clock() - signed_at.timestamp()
        if signature.expires is not None:
            if age > signature.expires:
                raise S3Refusal(403, "AccessDenied", "Request has expired")
        elif abs(age) > MAX_SKEW_SECONDS:
            raise S3Refusal(
                403,
                "RequestTimeTooSkewed",
                "The difference between the request time and the current time is too large.",
            )

    def _within(self, request: S3Request, prefix: str) -> bool:
        """A table's keys: object calls under its path, and listings of a prefix under it."""
        bucket, key = request.bucket_and_key
        if bucket != self.settings.s3_bucket:
            return False
        query = dict(request.query)
        if not key:
            listing = request.method == "GET" and not (set(query) - _LISTING_PARAMETERS)
            return listing and query.get("prefix", "").startswith(prefix)
        if not key.startswith(prefix):
            return False
        if request.method == "DELETE":
            return "uploadId" in query  # abort a multipart upload, never delete an object
        return request.method in ("GET", "HEAD", "PUT", "POST")


# The parameters of ListObjects/ListObjectsV2 and ListMultipartUploads a table's keys may use.
_LISTING_PARAMETERS = frozenset(
    {
        "prefix",
        "delimiter",
        "list-type",
        "continuation-token",
        "start-after",
        "max-keys",
        "marker",
        "encoding-type",
        "fetch-owner",
        "uploads",
        "key-marker",
        "upload-id-marker",
        "max-uploads",
    }
)


def error_body(refusal: S3Refusal, resource: str) -> bytes:
    request_id = uuid.uuid4().hex[:16].upper()
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{refusal.code}</Code><Message>{escape(refusal.message)}</Message>"
        f"<Resource>{escape(resource)}</Resource><RequestId>{request_id}</RequestId></Error>"
    ).encode()


class SignedS3Gateway:
    """WSGI middleware: ``Authorizer.check`` each request, then hand it to moto's app."""

    def __init__(self, app: Callable[..., Iterable[bytes]], authorizer: Authorizer) -> None:
        self.app = app
        self.authorizer = authorizer

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        from werkzeug.wsgi import get_input_stream

        body = get_input_stream(environ).read()
        request = S3Request.from_environ(environ, body)
        try:
            self.authorizer.check(request)
        except S3Refusal as refusal:
            payload = b"" if request.method == "HEAD" else error_body(refusal, request.raw_path)
            start_response(
                f"{refusal.status} {refusal.code}",
                [("Content-Type", "application/xml"), ("Content-Length", str(len(payload)))],
            )
            return [payload]
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        environ.pop("wsgi.input_terminated", None)
        environ.pop("HTTP_TRANSFER_ENCODING", None)
        return self.app(environ, start_response)


@contextmanager
def signed_s3_server(host: str, port: int, authorizer: Authorizer) -> Iterator[str]:
    """moto's S3 behind ``SignedS3Gateway`` on ``host:port`` (0: a free port); yields its endpoint URL."""
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    app = SignedS3Gateway(DomainDispatcherApplication(create_backend_app), authorizer)
    server = make_server(host, port, app, threaded=True, request_handler=MotoRequestHandler)
    thread = threading.Thread(target=server.serve_forever, name="emulator-s3", daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=15)
