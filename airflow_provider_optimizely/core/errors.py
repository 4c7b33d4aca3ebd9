"""Typed errors of the four APIs (API.md §3).

An error keeps what a user needs to act or to quote to the vendor's support (status, message, code, the
vendor's ``uuid``, method and path) and nothing that could leak a credential: no header, no query string,
no base URL. Errors pickle, because Airflow may serialise an exception that ends a task.
"""

from __future__ import annotations

import json
from typing import Any

# How much of an unparseable answer body an error keeps: enough to diagnose, never a whole page.
_BODY_EXCERPT = 500


class OptimizelyError(Exception):
    """Root of every error this provider raises about a remote API."""


class OptimizelyApiError(OptimizelyError):
    """The API answered with a 4xx or 5xx status."""

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
        super().__init__(self._describe())

    def _describe(self) -> str:
        prefix = " ".join(part for part in (self.api, self.method, self.path) if part)
        code = f" {self.code}" if self.code else ""
        text = (
            f"{prefix} -> {self.status}{code}: {self.message}"
            if prefix
            else f"{self.status}{code}: {self.message}"
        )
        if self.invalids:
            text += f" (invalids: {json.dumps(self.invalids[:5], default=str)})"
        if self.uuid:
            text += f" (uuid {self.uuid})"
        return text

    def __str__(self) -> str:
        return self._describe()

    def __reduce__(self) -> tuple[Any, ...]:
        # Exception pickling replays ``args`` into ``__init__``; ours takes keywords, so rebuild explicitly.
        return (
            _rebuild_api_error,
            (
                type(self),
                {
                    "status": self.status,
                    "message": self.message,
                    "code": self.code,
                    "uuid": self.uuid,
                    "method": self.method,
                    "path": self.path,
                    "body": self.body,
                    "api": self.api,
                    "invalids": self.invalids,
                    "retry_after": self.retry_after,
                },
            ),
        )


def _rebuild_api_error(cls: type[OptimizelyApiError], fields: dict[str, Any]) -> OptimizelyApiError:
    return cls(**fields)


class BadRequestError(OptimizelyApiError):
    """400 or 422: the request was refused as invalid; ``invalids`` lists ODP's per-item reasons."""


class AuthError(OptimizelyApiError):
    """401 or 403: missing, wrong or expired credentials, or not allowed."""


class NotFoundError(OptimizelyApiError):
    """404."""


class ConflictError(OptimizelyApiError):
    """409: for example a Profile Store profile with the same DeviceIds or email exists."""


class PayloadTooLargeError(OptimizelyApiError):
    """413: the body is over the API's size limit."""


class RateLimitedError(OptimizelyApiError):
    """429 once retries are spent; ``retry_after`` holds the server's last ``Retry-After``."""


class ServerError(OptimizelyApiError):
    """5xx once retries are spent (or at once, for a 5xx that is never retried)."""


class OptimizelyTransportError(OptimizelyError):
    """A connection error or timeout that outlasted the retries. Never carries a URL's query or a header."""

    def __init__(self, method: str, path: str, reason: str, attempts: int, api: str = "") -> None:
        self.method = method
        self.path = path
        self.reason = reason
        self.attempts = attempts
        self.api = api
        super().__init__(method, path, reason, attempts, api)

    def __str__(self) -> str:
        prefix = " ".join(part for part in (self.api, self.method, self.path) if part)
        return f"{prefix}: {self.reason} (after {self.attempts} attempt(s))"


_BY_STATUS: dict[int, type[OptimizelyApiError]] = {
    400: BadRequestError,
    401: AuthError,
    403: AuthError,
    404: NotFoundError,
    409: ConflictError,
    413: PayloadTooLargeError,
    422: BadRequestError,
    429: RateLimitedError,
}


def error_class_for(status: int) -> type[OptimizelyApiError]:
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    if status >= 500:
        return ServerError
    return OptimizelyApiError


def error_from_response(
    status: int,
    body_text: str,
    *,
    method: str,
    path: str,
    api: str = "",
    reason: str = "",
    retry_after: float | None = None,
) -> OptimizelyApiError:
    """Build the typed error from an answer: v2 ``{message, code, uuid}``, ODP ``{detail: {invalids}}``,
    FastAPI-style ``{detail: "..."}``, or plain text (kept as a short excerpt)."""
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
    )


def _fields_of(body: Any) -> tuple[str, str | None, str | None, list[dict[str, Any]]]:
    if isinstance(body, str):
        return body.strip(), None, None, []
    if not isinstance(body, dict):
        return "", None, None, []
    message = body.get("message") or body.get("title") or ""
    code = body.get("code")
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
    return str(message), (str(code) if code is not None else None), (str(uuid) if uuid else None), invalids
