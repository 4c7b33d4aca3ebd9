"""Pieces every emulated API uses: error bodies, pagination, settings, a record of what was received.

Nothing here (or anywhere under ``emulator/``) may import the client side of the package: the emulator
follows docs/api-contract.md on its own so that it can catch the client's mistakes.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import JSONResponse

# The HTTP codes of docs/api-contract.md §3 mapped to the `code` string of the v2 error body.
_DEFAULT_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    422: "UNPROCESSABLE_ENTITY",
    429: "TOO_MANY_REQUESTS",
    500: "INTERNAL_SERVER_ERROR",
    502: "BAD_GATEWAY",
    503: "SERVICE_UNAVAILABLE",
    504: "GATEWAY_TIMEOUT",
}


class ApiError(Exception):
    """Raise from a route to answer with the v2 error body ``{message, code, uuid}``.

    ``body`` replaces that body where an API documents its own (ODP's ``{"detail": {"invalids": ...}}``).
    """

    def __init__(
        self,
        status: int,
        message: str,
        code: str | None = None,
        *,
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code or _DEFAULT_CODES.get(status, "ERROR")
        self.body = body
        self.headers = headers or {}


def error_response(
    status: int, message: str, code: str | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = {
        "message": message,
        "code": code or _DEFAULT_CODES.get(status, "ERROR"),
        "uuid": str(uuid.uuid4()),
    }
    return JSONResponse(body, status_code=status, headers=headers)


def api_error_response(exc: ApiError) -> JSONResponse:
    if exc.body is not None:
        return JSONResponse(exc.body, status_code=exc.status, headers=exc.headers)
    return error_response(exc.status, exc.message, exc.code, exc.headers)


def paginate(
    request: Request, items: list[Any], *, default_per_page: int = 25, max_per_page: int = 100
) -> JSONResponse:
    """One page of ``items`` as docs/api-contract.md §3 says: ``per_page``/``page`` and ``Link`` headers.

    No ``Link`` header when everything fits on page 1.
    """
    try:
        per_page = int(request.query_params.get("per_page", default_per_page))
        page = int(request.query_params.get("page", 1))
    except ValueError as exc:
        raise ApiError(400, "per_page and page must be integers") from exc
    if not 1 <= per_page <= max_per_page:
        raise ApiError(400, f"per_page must be between 1 and {max_per_page}")
    if page < 1:
        raise ApiError(400, "page must be 1 or more")
    last = max(1, -(-len(items) // per_page))
    chunk = items[(page - 1) * per_page : page * per_page]
    links = []

    def link(p: int, rel: str) -> str:
        params = dict(request.query_params)
        params.update(page=str(p), per_page=str(per_page))
        return f'<{request.url.replace(query=urlencode(params))}>; rel="{rel}"'

    if last > 1:
        if page < last:
            links.append(link(page + 1, "next"))
        if page > 1:
            links.append(link(page - 1, "prev"))
        links.append(link(last, "last"))
    headers = {"Link": ", ".join(links)} if links else {}
    return JSONResponse(chunk, headers=headers)


# Each emulated API and the path prefixes it answers under (docs/architecture.md, "URL layout").
API_PREFIXES: dict[str, tuple[str, ...]] = {
    "dcp": ("/dcp/experiment/v1", "/dcp/profile-api", "/dcp/oauth2"),
    "odp": ("/odp/v3",),
    "profile_store": ("/profile-store",),
    "optimove": ("/optimove/api/data-connections/v1",),
}
API_NAMES: tuple[str, ...] = tuple(API_PREFIXES)


@dataclass(frozen=True)
class RateLimit:
    """At most ``limit`` requests per ``window_seconds``, in fixed windows aligned to the epoch."""

    limit: int
    window_seconds: float

    @classmethod
    def parse(cls, text: str) -> RateLimit:
        """``"100/60"`` is 100 requests a minute; ``"10"`` alone is 10 a second."""
        limit_text, _, window_text = text.partition("/")
        try:
            limit = int(limit_text)
            window = float(window_text) if window_text else 1.0
        except ValueError as exc:
            raise ValueError(f"a rate limit looks like 100/60 (requests/seconds), not {text!r}") from exc
        if limit < 0 or window <= 0:
            raise ValueError(f"a rate limit needs limit >= 0 and seconds > 0, not {text!r}")
        return cls(limit, window)


# The budgets the vendors publish and the emulator enforces from the start (docs/api-contract.md §3): ODP's
# ``POST /profiles`` takes 10 requests a second. Every other route is unlimited: it still announces
# ``ANNOUNCED_BUDGET`` in its ``X-RateLimit-*`` headers, and never refuses past it.
PUBLISHED_RATE_LIMITS: dict[str, RateLimit] = {"odp:POST /profiles": RateLimit(10, 1.0)}
ANNOUNCED_BUDGET = RateLimit(1000, 1.0)
# DCP answers a 429 or 503 with a Retry-After of at least this many seconds (docs/api-contract.md §3).
DCP_MIN_RETRY_AFTER = 60.0

EmptyCells = Literal["invalid", "no_value"]
ValueSyntax = Literal["strict", "permissive"]
DuplicateScope = Literal["store", "scope"]
SameNameOrder = Literal["fault_mode", "always", "never"]
ServerSetFields = Literal["refuse", "ignore"]


@dataclass
class EmulatorSettings:
    """What the CLI flags, the admin API and the pytest plugin can change.

    Durations are in the vendor's seconds: ``time_scale`` turns each into real seconds, so that a test can
    see a 60 s ``Retry-After`` or a one-hour token lifetime go by in a fraction of a second.
    """

    dcp_token: str = "emulator-dcp-token"  # noqa: S105 - a fixed, public emulator credential
    # A personal token of the account: DCP refuses it in any header (seed 000).
    dcp_personal_token: str = "emulator-dcp-personal-token"  # noqa: S105
    odp_private_key: str = "emulator-odp-private"
    odp_public_key: str = "emulator-odp-public"
    profile_store_key: str = "emulator-ps-key"
    optimove_api_key: str = "emulator-optimove-key"
    optimove_brand_key: str = "emulator-optimove-brand"
    # The emulator's own S3 credentials (the import worker's, and a test's that inspects the bucket).
    s3_admin_access_key: str = "emulator-s3-admin"
    s3_admin_secret_key: str = "emulator-s3-admin-secret"  # noqa: S105
    # Real seconds per vendor second: every announced wait and window is multiplied by it.
    time_scale: float = 1.0
    # Lifetime of an OAuth access token issued by the DCP token endpoint (vendor seconds).
    oauth_access_token_seconds: float = 3600.0
    # Profile Store: events a DELETE may remove before the next daily clean-up (docs/api-contract.md §6).
    profile_store_delete_event_budget: int = 1_000_000
    s3_endpoint_url: str | None = None
    s3_region: str = "us-east-1"
    s3_bucket: str = "optimizely-import"
    # Vendor seconds an uploaded file stays `pending` in Upload History before it is processed.
    upload_processing_delay: float = 0.0
    # How often the S3 import worker looks for new objects (real seconds).
    upload_poll_interval: float = 0.1
    state_file: str | None = None
    # How often the state file is rewritten (when the state changed); it is also written on shutdown.
    state_save_interval: float = 2.0
    # Budgets enforced from the start and restored by a reset; key "api" or "api:METHOD /route".
    rate_limits: dict[str, RateLimit] = field(default_factory=lambda: dict(PUBLISHED_RATE_LIMITS))
    # Fault specs (see faults.py) applied from the start and restored by a reset.
    faults: list[dict[str, Any]] = field(default_factory=list)

    # --- where the vendor documents read two ways (docs/emulator-fidelity.md): strict by default ---
    # "256KB" and "10GB": 256,000 and 10*10**9 bytes; binary units read them as 262,144 and 10*2**30.
    binary_units: bool = False
    # An empty cell of a bool/long/double/datetime column is not a value of its datatype and fails the
    # file ("invalid"), and an empty string cell writes ""; "no_value" leaves the stored value alone.
    empty_cells: EmptyCells = "invalid"
    # "strict": true/false in lower case, numbers without "+" or a bare ".", JSON values of the
    # attribute's own type; "permissive": any case, "+5", "5.", ".5", and numbers or booleans as strings.
    value_syntax: ValueSyntax = "strict"
    # Profile Store duplicates (409) are looked for in the whole store, or only in the profile's scope.
    profile_store_duplicates: DuplicateScope = "store"
    # Same-name uploads still pending are processed newest first: always, never, or only while DCP has
    # faults set (the emulator misbehaving on purpose).
    reorder_same_name_uploads: SameNameOrder = "fault_mode"
    # The token endpoint answers a refresh with a new refresh token and revokes the one used.
    oauth_rotate_refresh_tokens: bool = True
    # Profile Store bodies that send what the API sets (ProfileId, UpdateTime): refused, or ignored.
    profile_store_server_fields: ServerSetFields = "refuse"

    @property
    def profile_store_max_body_bytes(self) -> int:
        """Seed 001: "Maximum request body size: 256KB"."""
        return 256 * (1024 if self.binary_units else 1000)

    @property
    def dcp_max_file_bytes(self) -> int:
        """Seed 000: files "must be under 10GB"."""
        return 10 * (1024**3 if self.binary_units else 10**9)

    def real_seconds(self, vendor_seconds: float) -> float:
        return vendor_seconds * self.time_scale


def seconds_text(seconds: float, time_scale: float) -> str:
    """A wait as ``Retry-After`` carries it: whole seconds (at least 1) at the vendor's pace; under a
    time scale, the scaled wait in decimal seconds (to the millisecond), which no real server sends."""
    if time_scale == 1.0:
        return str(max(1, math.ceil(seconds - 1e-9)))
    return _decimal(max(0.001, seconds))


def instant_text(unix_seconds: float, time_scale: float) -> str:
    """An instant as ``X-RateLimit-Reset`` carries it: whole Unix seconds, or decimals under a time scale."""
    if time_scale == 1.0:
        return str(math.ceil(unix_seconds - 1e-9))
    return _decimal(unix_seconds)


def _decimal(value: float) -> str:
    return f"{value:.3f}".rstrip("0").rstrip(".")


def item_fingerprint(item: Any) -> str:
    """A stable digest of a JSON body item, so a second arrival of the same item counts as a duplicate."""
    return hashlib.sha256(json.dumps(item, sort_keys=True, default=str).encode()).hexdigest()


@dataclass
class Received:
    """What each API received: requests per route, items (events, records) with their duplicates, and the
    requests that got an injected fault or a rate-limit refusal instead of reaching their route."""

    requests: Counter[str] = field(default_factory=Counter)
    items: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    faults: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count_request(self, route: str) -> None:
        with self.lock:
            self.requests[route] += 1

    def count_fault(self, route: str, kind: str) -> None:
        """``kind`` is a status code (``"503"``), ``"drop"``, ``"delay"`` or ``"rate_limited"``."""
        with self.lock:
            self.faults[f"{route} -> {kind}"] += 1

    def add_items(self, kind: str, keys: list[str]) -> None:
        """Record items of ``kind`` by key (an id, or ``item_fingerprint`` of the whole item)."""
        with self.lock:
            self.items[kind].update(keys)

    def summary(self) -> dict[str, Any]:
        with self.lock:
            return {
                "requests": dict(self.requests),
                "items": {
                    kind: {
                        "total": sum(c.values()),
                        "distinct": len(c),
                        "duplicates": sum(n - 1 for n in c.values() if n > 1),
                        # A few of the keys that arrived more than once, so a failing test can show them.
                        "duplicate_keys": [key for key, n in c.items() if n > 1][:20],
                    }
                    for kind, c in self.items.items()
                },
                "faults": dict(self.faults),
            }

    def reset(self) -> None:
        with self.lock:
            self.requests.clear()
            self.items.clear()
            self.faults.clear()
