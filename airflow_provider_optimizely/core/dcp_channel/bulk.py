"""The bulk channel of a DCP sync: upload the change set's file once per run, wait for Upload History,
and turn its answer into an outcome per row.

- **One upload per run.** The file is named as the bulk-upload operator names its files
  (``core.bulk_upload``: the task instance's run, the try, the content's hash). A retried try that
  builds the same change set (nothing was acknowledged: it is acknowledged only once DCP processed the
  file) finds the earlier try's file, in S3 or, if DCP removed it, in Upload History, and waits for that
  one instead of uploading it again.
- **Answers.** Upload History (docs/api-contract.md §4.6) says ``failed`` (the whole file refused: every
  row failed) or ``processed`` with ``rows_failed`` and the first 100 ``errors``, each naming the line
  where the refused record ends. A row is acknowledged only when the answer clears it: a line listed is
  refused (the reason is the error's message); when more rows failed than are listed, the lines after the
  last one listed are unknown, and carried over too (sent again next run, which DCP's upsert makes
  harmless) rather than recorded as written.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from airflow_provider_optimizely.core.bulk_upload import earlier_upload, upload_name
from airflow_provider_optimizely.core.report import Log
from airflow_provider_optimizely.core.upload_history import DEFAULT_MAX_SCANNED, find_entries

PROCESSED, FAILED = "processed", "failed"
DEFAULT_UPLOAD_TIMEOUT = 6 * 60 * 60.0
DEFAULT_POLL_INTERVAL = 5.0
DEFAULT_MAX_POLL_INTERVAL = 60.0


class BulkTarget(Protocol):
    """A DCP table's import path as the bulk channel uses it (``operators._dcp_channel`` builds it)."""

    #: The S3 key prefix every try of this task instance's run uploads under.
    prefix: str
    try_number: int

    def keys_under(self, prefix: str) -> list[str]: ...

    def upload(self, path: Path, key: str) -> None: ...

    def history(self) -> Iterable[Mapping[str, Any]]:
        """The table's Upload History, newest first, read lazily (dicts of the API's JSON)."""
        ...


class UploadHistoryTimeout(TimeoutError):
    """DCP had not processed the file in time. Nothing was acknowledged: a retry waits for the same file."""


def upload_once(target: BulkTarget, path: Path, content_hash: str, log: Log) -> tuple[str, bool]:
    """``(S3 key, reused)``: the file an earlier try of this run uploaded with this content, else a new
    upload of ``path``."""
    existing = earlier_upload(target.keys_under(target.prefix), content_hash, "csv")
    if existing is None and target.try_number > 1:  # only an earlier try can have uploaded it
        existing = _in_history(target.history(), target.prefix, content_hash)
    if existing is not None:
        log.info("an earlier try of this run uploaded this change set as %s: waiting for it", existing)
        return existing, True
    key = f"{target.prefix}{upload_name('', target.try_number, content_hash, 'csv')}"
    target.upload(path, key)
    return key, False


def _in_history(history: Iterable[Mapping[str, Any]], prefix: str, content_hash: str) -> str | None:
    suffix = f"__{content_hash[:16]}.csv"
    for scanned, entry in enumerate(history, start=1):
        key = str(entry.get("s3_key") or "")
        if key.startswith(prefix) and key.endswith(suffix):
            return key
        if scanned >= DEFAULT_MAX_SCANNED:
            break
    return None


def wait_processed(
    target: BulkTarget,
    key: str,
    *,
    timeout: float = DEFAULT_UPLOAD_TIMEOUT,
    poll_interval: float = DEFAULT_POLL_INTERVAL,
    max_poll_interval: float = DEFAULT_MAX_POLL_INTERVAL,
    log: Log,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """The Upload History entry of ``key`` once ``processed`` or ``failed``; the wait doubles up to
    ``max_poll_interval``. ``UploadHistoryTimeout`` after ``timeout`` seconds."""
    deadline = clock() + timeout
    interval = poll_interval
    while True:
        entry = find_entries(target.history(), [key])[key]
        if entry is not None and entry.get("status") in (PROCESSED, FAILED):
            return entry
        remaining = deadline - clock()
        if remaining <= 0:
            raise UploadHistoryTimeout(
                f"DCP had not processed {key} after {timeout:.0f}s (Upload History: "
                f"{'not listed yet' if entry is None else entry.get('status')}); a retry waits for it again"
            )
        log.info(
            "waiting for DCP to process %s (%s)", key, "not listed yet" if entry is None else entry["status"]
        )
        sleep(min(interval, remaining))
        interval = min(interval * 2, max_poll_interval)


@dataclass
class FileOutcome:
    """Upload History's answer for one file, per line of it (see the module doc)."""

    status: str
    rows_total: int = 0
    rows_failed: int = 0
    #: Line -> why DCP refused the record ending there.
    refused: dict[int, str] = field(default_factory=dict)
    #: Lines after this one may have been refused: Upload History lists only the first errors.
    unknown_after: int | None = None
    #: Why the whole file was refused (``failed``), else None.
    whole_file: str | None = None

    @classmethod
    def of(cls, entry: Mapping[str, Any]) -> FileOutcome:
        errors = [dict(error) for error in entry.get("errors") or []]
        outcome = cls(
            status=str(entry.get("status")),
            rows_total=int(entry.get("rows_total") or 0),
            rows_failed=int(entry.get("rows_failed") or 0),
        )
        if outcome.status == FAILED:
            reasons = [_reason(error) for error in errors[:3]] or ["no reason given"]
            outcome.whole_file = "DCP refused the whole file: " + "; ".join(reasons)
            return outcome
        for error in errors:
            if isinstance(error.get("row"), int) and error["row"] > 1:
                outcome.refused.setdefault(error["row"], _reason(error))
        if outcome.rows_failed > len(outcome.refused):
            outcome.unknown_after = max(outcome.refused, default=1)
        return outcome

    def answers(self, lines: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For records ending at ``lines``: ``(written, refused)`` masks; neither is unknown."""
        if self.whole_file is not None:
            return np.zeros(len(lines), bool), np.ones(len(lines), bool)
        refused = np.isin(lines, np.fromiter(self.refused, np.int64, len(self.refused)))
        unknown = lines > self.unknown_after if self.unknown_after is not None else np.zeros(len(lines), bool)
        unknown &= ~refused
        return ~(refused | unknown), refused

    def reason(self, line: int) -> str:
        return self.whole_file or f"refused by DCP (Upload History): {self.refused.get(line, '')}"

    def summary(self) -> dict[str, Any]:
        return {"status": self.status, "rows_total": self.rows_total, "rows_failed": self.rows_failed}


def _reason(error: Mapping[str, Any]) -> str:
    column = f"column {error['column']!r}: " if error.get("column") else ""
    return f"{column}{error.get('message', '')}".strip()
