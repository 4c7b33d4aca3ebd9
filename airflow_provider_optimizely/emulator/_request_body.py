"""Reading a JSON body and checking a key, the same way in every router.

Bodies are parsed here rather than by FastAPI's pydantic binding, so that a malformed body answers with
the API's own 400 (or 413) instead of FastAPI's 422.
"""

from __future__ import annotations

import hmac
import json
from datetime import datetime, timezone
from typing import Any

from fastapi import Request

from airflow_provider_optimizely.emulator.common import ApiError


async def read_json(request: Request, *, max_bytes: int | None = None) -> Any:
    """The body parsed as JSON; 413 as soon as it grows past ``max_bytes``, 400 when it isn't JSON."""
    chunks: list[bytes] = []
    size = 0
    # Read in chunks so that an oversized body is refused without holding all of it.
    async for chunk in request.stream():
        size += len(chunk)
        if max_bytes is not None and size > max_bytes:
            raise ApiError(413, f"request body is larger than {max_bytes} bytes")
        chunks.append(chunk)
    if size == 0:
        raise ApiError(400, "request body is empty: a JSON document is expected")
    try:
        return json.loads(b"".join(chunks))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "request body is not valid JSON") from exc


async def read_json_object(request: Request) -> dict[str, Any]:
    body = await read_json(request)
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object")
    return body


def same_secret(given: str | None, expected: str) -> bool:
    """Compare a presented key with the configured one in constant time."""
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def iso_utc(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def parse_iso_datetime(value: Any) -> datetime | None:
    """An ISO 8601 date-time (``Z`` allowed; a naive value is read as UTC), or None when it isn't one."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
