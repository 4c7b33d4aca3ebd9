"""Sending a batch the API refuses whole for a few bad items: refuse those, resend the rest.

ODP answers ``400 {"detail": {"invalids": [{"event": 3, "message": ...}]}}`` and stores nothing of the
batch; Optimove answers ``400`` with ``record 3: ...``. Resending the batch without the named items is
therefore no duplicate. An answer that names no item refuses the whole batch with its message.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from airflow_provider_optimizely.core.errors import BadRequestError
from airflow_provider_optimizely.core.sync import Batch, BatchResult

# The key under which each API's invalids entry names the item's index in the batch.
_INDEX_KEYS = ("event", "profile", "object", "record", "index", "item")
_RECORD_IN_MESSAGE = re.compile(r"\brecord (\d+)\b")


def send_dropping_invalids(
    batch: Batch,
    post: Callable[[Sequence[Any]], Any],
    *,
    column_of: Mapping[str, str] | None = None,
) -> BatchResult:
    """``post`` the bodies; on a 400 that names items, refuse them and resend the others."""
    result = BatchResult()
    pending = batch
    while len(pending):
        try:
            post(pending.bodies)
        except BadRequestError as exc:
            named = _named_items(exc, len(pending))
            if not named:
                for item in pending.items():
                    result.refuse(item, f"refused by the API: {exc.message}")
                return result
            for index, (reason, field) in named.items():
                column = (column_of or {}).get(field, field) if field else None
                result.refuse(pending.item(index), reason, column)
            pending = pending.without(named)
            if len(pending):
                result.details["batches_resent_without_invalids"] += 1
            continue
        result.succeeded += len(pending)
        return result
    return result


def _named_items(exc: BadRequestError, size: int) -> dict[int, tuple[str, str | None]]:
    """Index -> (reason, field) of the items a 400 names; several problems of one item are joined."""
    named: dict[int, tuple[str, str | None]] = {}
    for entry in exc.invalids:
        index = _index_of(entry)
        if index is None or not 0 <= index < size:
            return {}  # an entry we can't place: don't guess which items were good
        field = entry.get("field")
        reason = str(entry.get("message") or entry.get("reason") or "refused")
        if field and not reason.startswith(f"{field}:"):
            reason = f"{field}: {reason}"
        if index in named:
            reason = f"{named[index][0]}; {reason}"
            field = named[index][1] or field
        named[index] = (reason, str(field) if field else None)
    if not exc.invalids:
        for match in _RECORD_IN_MESSAGE.finditer(exc.message):
            index = int(match.group(1))
            if 0 <= index < size:
                named[index] = (exc.message, None)
    return named


def _index_of(entry: Mapping[str, Any]) -> int | None:
    for key in _INDEX_KEYS:
        value = entry.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


__all__: Sequence[str] = ("send_dropping_invalids",)
