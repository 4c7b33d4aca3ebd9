"""A DCP bulk upload, Airflow-free: check (and rewrite) the file, name it, find an earlier upload of it.

1. The file (or a query's rows) is checked against the table's live attributes in one streaming pass
   (``core.csv_check``) that also hashes and counts it. Columns named in ``hash_columns`` are
   replaced by salted SHA-256 hashes as it goes.
2. With problems, nothing is uploaded (``UploadRefused``, naming rows, columns and values), unless
   ``max_rejected`` lets the bad rows be dropped: then the file is rewritten without them.
3. The name, ``<dag>.<task>[.<map index>]__<run>__try<N>__<sha256[:16]>.<csv|tsv>``, is new for every run
   and every content, so an upload never reuses the name of a file DCP has not processed yet (two files
   of one name may be processed out of order). An earlier try of the same run that uploaded the same
   content is found by its prefix and hash, and reused.
"""

from __future__ import annotations

import dataclasses
import posixpath
import re
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from airflow_provider_optimizely.core.csv_check import (
    Attribute,
    CheckOptions,
    CheckResult,
    check_csv,
    check_rows,
)
from airflow_provider_optimizely.core.errors import TerminalError
from airflow_provider_optimizely.core.pii import SaltedHasher
from airflow_provider_optimizely.core.report import Log, RejectLimit, request_counts

UPLOAD_FORMATS = ("csv", "tsv")
_UNSAFE_IN_NAME = re.compile(r"[^A-Za-z0-9._-]+")


class UploadRefused(TerminalError, ValueError):
    """DCP would refuse the file (or more rows of it than ``max_rejected`` allows): nothing was uploaded."""


@dataclass(frozen=True)
class PreparedUpload:
    """The file to upload (the source itself, or a rewrite of it), its check and its suffix."""

    path: Path
    check: CheckResult
    extension: str


def parse_hash_columns(value: Sequence[str] | str | None) -> list[str]:
    """``hash_columns`` as a list: a list, a comma-separated text, or a list rendered by a template
    without native objects (``"['email', 'phone']"``)."""
    if not value:
        return []
    if isinstance(value, str):
        return [name.strip() for name in value.strip("[]").replace("'", "").split(",") if name.strip()]
    return [str(name) for name in value]


def name_prefix(dag_id: str, task_id: str, run_id: str, map_index: int | None) -> str:
    """What every upload of one task instance's run begins with (every try shares it)."""
    task = f"{dag_id}.{task_id}" + (f".{map_index}" if map_index is not None and map_index >= 0 else "")
    return f"{_safe(task)}__{_safe(run_id)}__"


def upload_name(prefix: str, try_number: int, content_hash: str, extension: str) -> str:
    return f"{prefix}try{try_number}__{content_hash[:16]}.{extension}"


def earlier_upload(keys: Iterable[str], content_hash: str, extension: str) -> str | None:
    """Of the keys under this run's prefix, the one an earlier try uploaded with the same content."""
    suffix = f"__{content_hash[:16]}.{extension}"
    return next((key for key in keys if key.endswith(suffix)), None)


def check_options(
    attributes: Iterable[Any], hashers: dict[str, SaltedHasher], limit: RejectLimit, max_problems: int
) -> CheckOptions:
    """How to check a file against a table's attributes (``list_attributes``'s answer): archived ones can
    be neither read nor written, so they are left out."""
    live = {a.name: Attribute(a.name, str(a.datatype), a.format) for a in attributes if not a.archived}
    # With rows allowed to be dropped, every row must be read to count them.
    return CheckOptions(
        live,
        hash_columns=hashers,
        skip_bad_rows=bool(limit.count or limit.fraction),
        max_problems=max_problems,
    )


def log_dropped_rows(prepared: PreparedUpload, limit: RejectLimit, log: Log) -> None:
    if prepared.check.rows_rejected:
        log.warning(
            "Dropping %d bad row(s) of %d (max_rejected %s):\n%s",
            prepared.check.rows_rejected,
            prepared.check.rows,
            limit.describe(),
            prepared.check.describe_problems(),
        )


def judge(check: CheckResult, limit: RejectLimit) -> None:
    """``UploadRefused`` unless the file may go up (with its bad rows left out, within ``limit``)."""
    if check.file_refused or limit.exceeded_by(check.rows_rejected, check.rows):
        what = "the file" if check.file_refused else f"{check.rows_rejected} of {check.rows} row(s)"
        raise UploadRefused(
            f"DCP would refuse {what}; nothing was uploaded. Problems:\n{check.describe_problems()}"
        )


def prepare_file(
    source: Path, extension: str, options: CheckOptions, limit: RejectLimit, work_dir: Path
) -> PreparedUpload:
    """Check ``source``; rewrite it when a column is hashed or bad rows are to be left out."""
    if extension not in UPLOAD_FORMATS:
        raise UploadRefused(f"a DCP bulk upload is CSV or TSV, not {extension}: {source.name}")
    delimiter = "\t" if extension == "tsv" else ","
    output = work_dir / f"upload.{extension}"
    if options.rewrites:
        with source.open("rb") as raw, output.open("wb") as target:
            check = check_csv(raw, options, delimiter=delimiter, output=target)
        judge(check, limit)
        return PreparedUpload(output, check, extension)
    # Nothing to change: check the original, and rewrite it without its bad rows only if it has some
    # (within max_rejected); the second pass drops exactly the rows the first one counted.
    with source.open("rb") as raw:
        check = check_csv(raw, options, delimiter=delimiter)
    judge(check, limit)
    if check.rows_rejected == 0:
        return PreparedUpload(source, check, extension)
    dropping = dataclasses.replace(options, skip_bad_rows=True)
    with source.open("rb") as raw, output.open("wb") as target:
        rewritten = check_csv(raw, dropping, delimiter=delimiter, output=target)
    return PreparedUpload(output, rewritten, extension)


def prepare_rows(
    columns: Sequence[str],
    rows: Iterator[Sequence[Any]],
    options: CheckOptions,
    limit: RejectLimit,
    work_dir: Path,
) -> PreparedUpload:
    """Write a query's rows to a CSV, checked as they go."""
    output = work_dir / "upload.csv"
    with output.open("wb") as target:
        check = check_rows(columns, rows, options, target)
    judge(check, limit)
    return PreparedUpload(output, check, "csv")


def upload_result(
    table_id: int,
    bucket: str,
    key: str | None,
    check: CheckResult | None,
    try_number: int,
    started: float,
    stats: dict[str, float],
    *,
    reused: bool = False,
) -> dict[str, Any]:
    """The XCom: what the Upload History sensor needs (table, key) and what a report shows."""
    summary = check.summary() if check is not None else {}
    return {
        "table_id": table_id,
        "bucket": bucket,
        "s3_key": key,
        "file_name": posixpath.basename(key) if key else None,
        "rows": summary.get("rows", 0),
        "rows_uploaded": summary.get("rows_accepted", 0),
        "rows_rejected": summary.get("rows_rejected", 0),
        "bytes": summary.get("bytes", 0),
        "content_hash": summary.get("content_hash"),
        # The file's header: the attributes it wrote (for lineage).
        "columns": list(check.columns) if check is not None else [],
        "problems": summary.get("problems", []),
        "reused": reused,
        "try_number": try_number,
        "requests": request_counts(stats),
        "duration_seconds": round(time.monotonic() - started, 3),
    }


def _safe(text: str) -> str:
    return _UNSAFE_IN_NAME.sub("_", text).strip("_") or "run"
