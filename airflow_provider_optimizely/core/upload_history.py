"""Has DCP processed our bulk-upload files? One rule for the sensor's poke, its trigger and its resumption.

Upload History (docs/api-contract.md §4.6) lists files newest first with a ``status`` of ``pending``,
``processing``, ``processed`` or ``failed``. The files we wait for are named by S3 key (or bare file
name); the newest entry that names one is its state. The verdict:

- ``failed``: some file is ``failed`` (refused whole), or the rows refused across ``processed`` files
  exceed ``max_rejected`` (a count, or a fraction of the rows: ``core.report.RejectLimit``);
- ``done``: every file is ``processed`` within that limit;
- ``waiting``: otherwise (a file not listed yet, ``pending`` or ``processing``).

Entries are plain dicts (the JSON of the API), so a verdict and the entries it came from travel in a
trigger event unchanged.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from airflow_provider_optimizely.core.report import RejectLimit

WAITING, DONE, FAILED = "waiting", "done", "failed"
#: How far down the history a search goes for files not listed yet (they would be near the top).
DEFAULT_MAX_SCANNED = 1000
ERRORS_SHOWN = 10


def find_entries(
    history: Iterable[Mapping[str, Any]], wanted: Sequence[str], *, max_scanned: int = DEFAULT_MAX_SCANNED
) -> dict[str, dict[str, Any] | None]:
    """For each wanted S3 key or file name, the newest history entry naming it (None: not listed yet).

    ``history`` is read lazily, newest first, and only as far as needed.
    """
    found: dict[str, dict[str, Any] | None] = dict.fromkeys(wanted)
    missing = set(wanted)
    for scanned, entry in enumerate(history, start=1):
        for name in list(missing):
            if _names(entry, name):
                found[name] = dict(entry)
                missing.discard(name)
        if not missing or scanned >= max_scanned:
            break
    return found


class UploadHistorySource(Protocol):
    """What ``find_in_history`` reads: ``OptimizelyDcpHook.list_upload_history`` (pydantic entries)."""

    def list_upload_history(self, table_id: int) -> Iterable[Any]: ...


def find_in_history(
    source: UploadHistorySource, table_id: int, wanted: Sequence[str]
) -> dict[str, dict[str, Any] | None]:
    """``find_entries`` over a table's Upload History as the hook lists it, read lazily."""
    history = (entry.model_dump(mode="json") for entry in source.list_upload_history(table_id))
    return find_entries(history, wanted)


def _names(entry: Mapping[str, Any], wanted: str) -> bool:
    if entry.get("s3_key") and "/" in wanted:
        return str(entry["s3_key"]).strip("/") == wanted.strip("/")
    return str(entry.get("file_name") or "") == posixpath.basename(wanted)


@dataclass(frozen=True)
class Verdict:
    state: str
    message: str
    files: dict[str, dict[str, Any]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"state": self.state, "message": self.message, "files": self.files}


def upload_verdict(found: Mapping[str, Mapping[str, Any] | None], max_rejected: Any = 0) -> Verdict:
    """The state of the wait, from ``find_entries``'s answer."""
    limit = RejectLimit.parse(max_rejected)
    files = {name: _summary(entry) for name, entry in found.items()}
    failed = [name for name, entry in found.items() if entry is not None and entry.get("status") == "failed"]
    if failed:
        lines = [f"DCP refused {len(failed)} file(s): " + ", ".join(failed)]
        lines += [_error_line(name, error) for name in failed for error in files[name]["errors"]]
        return Verdict(FAILED, "\n".join(lines), files)
    waiting = [name for name, entry in found.items() if entry is None or entry.get("status") != "processed"]
    if waiting:
        states = ", ".join(f"{name}: {files[name]['status']}" for name in waiting)
        return Verdict(WAITING, f"waiting for {states}", files)
    rows_total = sum(file["rows_total"] for file in files.values())
    rows_failed = sum(file["rows_failed"] for file in files.values())
    if limit.exceeded_by(rows_failed, rows_total):
        lines = [
            f"DCP refused {rows_failed} of {rows_total} row(s), more than max_rejected ({limit.describe()})"
        ]
        lines += [_error_line(name, error) for name, file in files.items() for error in file["errors"]]
        return Verdict(FAILED, "\n".join(lines), files)
    message = f"DCP processed {len(files)} file(s): {rows_total - rows_failed} of {rows_total} row(s) applied"
    if rows_failed:
        message += f", {rows_failed} refused (within max_rejected {limit.describe()})"
    return Verdict(DONE, message, files)


def _summary(entry: Mapping[str, Any] | None) -> dict[str, Any]:
    if entry is None:
        return {
            "status": "not listed yet",
            "rows_total": 0,
            "rows_processed": 0,
            "rows_failed": 0,
            "errors": [],
        }
    return {
        "status": entry.get("status"),
        "rows_total": int(entry.get("rows_total") or 0),
        "rows_processed": int(entry.get("rows_processed") or 0),
        "rows_failed": int(entry.get("rows_failed") or 0),
        "errors": [dict(error) for error in (entry.get("errors") or [])[:ERRORS_SHOWN]],
        "processed_at": entry.get("processed_at"),
    }


def _error_line(name: str, error: Mapping[str, Any]) -> str:
    where = f"row {error.get('row')}" + (f", column {error['column']!r}" if error.get("column") else "")
    return f"  {posixpath.basename(name)}: {where}: {error.get('message', '')}"
