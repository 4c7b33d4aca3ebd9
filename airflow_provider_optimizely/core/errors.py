"""Every error the provider raises, typed by what trying again can do (docs/connections.md, "Errors").

Two marker bases carry retryability, so a retry decision, the trigger's "poll again" set and an
operator's ``except`` list all read the type and never the text of a message:

- ``TransientError``: trying again later may succeed (429, 500/502/503/504, a dropped connection, a
  timeout);
- ``TerminalError``: it won't until something changes (any other 4xx, a bad configuration, an identifier
  that can't be sent, a refused TLS certificate).

An error keeps what a user needs to act or to quote to the vendor's support (status, message, code, the
vendor's ``uuid``, the Airflow connection id, method, host and URL path, and which connection field to
check) and nothing that could leak a credential: no header, no query string, no user info. Errors
pickle, because Airflow may serialise an exception that ends a task.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

# How much of an unparseable answer body an error keeps: enough to diagnose, never a whole page.
_BODY_EXCERPT = 500


class OptimizelyError(Exception):
    """Root of every error this provider raises."""


class TransientError(OptimizelyError):
    """Trying again later may succeed."""


class TerminalError(OptimizelyError):
    """Trying again will fail the same way until the request, the data or the configuration changes."""


class OptimizelyConfigError(TerminalError, ValueError):
    """The connection lacks something the hook needs (a host, a key), or holds a value it can't use."""


class InsecureUrlError(TerminalError, ValueError):
    """A plain ``http://`` URL for a host that is not loopback, or a URL with no scheme."""


class InvalidRequestError(TerminalError, ValueError):
    """A request the API can't take, refused before sending (too many items, a malformed URL)."""


class InvalidIdentifierError(InvalidRequestError):
    """An identifier that can't be one URL path segment: ``.`` and ``..`` would change the route (every
    HTTP stack on the way may collapse them), and an empty one would merge two segments."""

    def __init__(self, slot: str, value: object, reason: str | None = None) -> None:
        self.slot = slot
        self.value = value
        self.reason = reason
        super().__init__(
            f"{slot} {value!r} can't be sent as a URL path segment: "
            + (reason or "'.', '..' and an empty value would change the request's route")
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.slot, self.value, self.reason))


def _where(api: str, method: str, path: str, conn_id: str, host: str) -> str:
    """``DCP POST /experiment/v1/dcp_services (connection 'x', host api.optimizely.com)``."""
    text = " ".join(part for part in (api, method, path) if part)
    context = [f"connection {conn_id!r}"] if conn_id else []
    if host:
        context.append(f"host {host}")
    return f"{text} ({', '.join(context)})" if context else text


class OptimizelyApiError(OptimizelyError):
    """The API answered with a 4xx or 5xx status (always raised as one of the subclasses below)."""

    def __init__(
        self,
        status: int,
        message: str,
        code: str | None = None,
        uuid: str | None = None,
        method: str = "",
        path: str = "",
        body: Any = None,
        api: str = "",
        invalids: list[dict[str, Any]] | None = None,
        retry_after: float | None = None,
        conn_id: str = "",
        host: str = "",
        hint: str = "",
        attempts: int = 1,
    ) -> None:
        self.status = status
        self.message = message
        self.code = code
        self.uuid = uuid
        self.method = method
        self.path = path
        self.body = body
        self.api = api
        self.invalids = list(invalids or [])
        self.retry_after = retry_after
        self.conn_id = conn_id
        self.host = host
        self.hint = hint
        self.attempts = attempts
        super().__init__(self._describe())

    def _describe(self) -> str:
        where = _where(self.api, self.method, self.path, self.conn_id, self.host)
        code = f" {self.code}" if self.code else ""
        text = f"{self.status}{code}: {self.message}"
        if where:
            text = f"{where} -> {text}"
        if self.invalids:
            text += f" (invalids: {json.dumps(self.invalids[:5], default=str)})"
        if self.uuid:
            text += f" (uuid {self.uuid})"
        if self.attempts > 1:
            text += f" (after {self.attempts} attempts)"
        if self.hint:
            text += f". {self.hint}"
        return text

    def __str__(self) -> str:
        return self._describe()

    def __reduce__(self) -> tuple[Any, ...]:
        # Exception pickling replays ``args`` into ``__init__``; ours takes keywords, so rebuild explicitly.
        fields = {name: getattr(self, name) for name in _API_ERROR_FIELDS}
        return (_rebuild, (type(self), fields))


_API_ERROR_FIELDS = (
    "status",
    "message",
    "code",
    "uuid",
    "method",
    "path",
    "body",
    "api",
    "invalids",
    "retry_after",
    "conn_id",
    "host",
    "hint",
    "attempts",
)


def _rebuild(cls: type[Any], fields: dict[str, Any]) -> Any:
    return cls(**fields)


class BadRequestError(OptimizelyApiError, TerminalError):
    """400 or 422: the request was refused as invalid; ``invalids`` lists ODP's per-item reasons."""


class AuthError(OptimizelyApiError, TerminalError):
    """401 or 403: missing, wrong or expired credentials, or not allowed; ``hint`` names the field."""


class NotFoundError(OptimizelyApiError, TerminalError):
    """404."""


class ConflictError(OptimizelyApiError, TerminalError):
    """409: for example a Profile Store profile with the same DeviceIds or email exists."""


class PayloadTooLargeError(OptimizelyApiError, TerminalError):
    """413: the body is over the API's size limit."""


class UnexpectedStatusError(OptimizelyApiError, TerminalError):
    """A 4xx or 5xx status the APIs don't document as retryable (405, 418, 501, ...)."""


class RateLimitedError(OptimizelyApiError, TransientError):
    """429 once the time budget is spent; ``retry_after`` holds the server's last ``Retry-After``."""


class ServerError(OptimizelyApiError, TransientError):
    """500, 502, 503 or 504 once retries are spent."""


class OptimizelyTransportError(TransientError):
    """No HTTP answer: the connection failed or broke, or the answer took too long (once retries are
    spent). Never carries a URL's query or a header. Raised as one of the subclasses below."""

    #: Whether the request may have reached the server (and so may have been applied).
    may_have_reached_server: ClassVar[bool] = True

    def __init__(
        self,
        method: str,
        path: str,
        reason: str,
        attempts: int,
        api: str = "",
        conn_id: str = "",
        host: str = "",
    ) -> None:
        self.method = method
        self.path = path
        self.reason = reason
        self.attempts = attempts
        self.api = api
        self.conn_id = conn_id
        self.host = host
        super().__init__(method, path, reason, attempts, api, conn_id, host)

    def __str__(self) -> str:
        where = _where(self.api, self.method, self.path, self.conn_id, self.host)
        return f"{where}: {self.reason} (after {self.attempts} attempt(s))"


class ConnectFailedError(OptimizelyTransportError):
    """No connection was made (name resolution, refused, connect timeout, TLS handshake): the request
    never left, so a retry can't apply it twice."""

    may_have_reached_server = False


class ConnectionLostError(OptimizelyTransportError):
    """The connection broke after the request was sent (reset, closed, an answer cut short)."""


class ResponseTimeoutError(OptimizelyTransportError):
    """The request was sent and no answer came within the read timeout."""


class CertificateError(TerminalError):
    """The server's TLS certificate was not accepted: retrying can't fix it (check the host, or the CA
    bundle of the machine)."""


_BY_STATUS: dict[int, type[OptimizelyApiError]] = {
    400: BadRequestError,
    401: AuthError,
    403: AuthError,
    404: NotFoundError,
    409: ConflictError,
    413: PayloadTooLargeError,
    422: BadRequestError,
    429: RateLimitedError,
    500: ServerError,
    502: ServerError,
    503: ServerError,
    504: ServerError,
}


def error_class_for(status: int) -> type[OptimizelyApiError]:
    return _BY_STATUS.get(status, UnexpectedStatusError)


def error_from_response(
    status: int,
    body_text: str,
    *,
    method: str,
    path: str,
    api: str = "",
    reason: str = "",
    retry_after: float | None = None,
    conn_id: str = "",
    host: str = "",
    hint: str = "",
) -> OptimizelyApiError:
    """Build the typed error from an answer: v2 ``{message, code, uuid}``, ODP ``{detail: {invalids}}``,
    OAuth ``{error, error_description}``, FastAPI-style ``{detail: "..."}``, or plain text (an excerpt)."""
    body: Any
    try:
        body = json.loads(body_text) if body_text else None
    except ValueError:
        body = body_text[:_BODY_EXCERPT]
    message, code, uuid, invalids = _fields_of(body)
    return error_class_for(status)(
        status=status,
        message=message or reason or "no message",
        code=code,
        uuid=uuid,
        method=method,
        path=path,
        body=body,
        api=api,
        invalids=invalids,
        retry_after=retry_after,
        conn_id=conn_id,
        host=host,
        hint=hint if status in (401, 403) else "",
    )


def _fields_of(body: Any) -> tuple[str, str | None, str | None, list[dict[str, Any]]]:
    if isinstance(body, str):
        return body.strip(), None, None, []
    if not isinstance(body, dict):
        return "", None, None, []
    message = body.get("message") or body.get("title") or body.get("error_description") or ""
    code = body.get("code") or body.get("error")
    uuid = body.get("uuid")
    invalids: list[dict[str, Any]] = []
    detail = body.get("detail")
    if isinstance(detail, dict):
        raw = detail.get("invalids")
        if isinstance(raw, list):
            invalids = [item if isinstance(item, dict) else {"message": str(item)} for item in raw]
        message = message or detail.get("message") or ""
    elif isinstance(detail, str):
        message = message or detail
    elif isinstance(detail, list):
        message = message or "; ".join(
            str(item.get("msg", item)) for item in detail if isinstance(item, dict)
        )
    if not message and invalids:
        first = invalids[0]
        message = str(first.get("message") or first.get("reason") or first)
    message = message or (str(code) if code else "")
    return str(message), (str(code) if code is not None else None), (str(uuid) if uuid else None), invalids
