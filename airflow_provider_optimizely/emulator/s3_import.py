"""The DCP bulk import: a worker that finds new objects under each table's ``s3_path`` and processes them.

The bucket (``optimizely-import``) is created with versioning on, so every PUT of an object is a new
version: a file uploaded twice under the same name is seen, and processed, twice. Each tick the worker
lists the versions under ``dcp/``, records every new one under a live table as ``pending`` in that table's
Upload History (in upload order), and once ``upload_processing_delay`` has passed moves it to
``processing`` and then ``processed`` or ``failed`` (``upload_check``). Processed files are recorded in
``Received`` as items of kind ``dcp_uploads`` keyed by S3 key.

Seed 000: "Uploading multiple files with the same name to the same S3 path can cause the files to be
processed out of order". When ``reorder_same_name`` says so (the ``reorder_same_name_uploads`` setting:
by default while DCP has faults set), versions of one key that wait together are processed newest first,
so the older content lands last, as the vendor warns; otherwise everything goes in upload order
(docs/api-contract.md §4.5).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import IO, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from airflow_provider_optimizely.emulator.common import EmulatorSettings, Received
from airflow_provider_optimizely.emulator.dcp_state import DcpState, now_iso
from airflow_provider_optimizely.emulator.upload_check import (
    FileReport,
    FileRules,
    Row,
    check_file,
    text_stream,
)

log = logging.getLogger(__name__)


def s3_client(settings: EmulatorSettings) -> Any:
    """The worker's client, signed with the emulator's own S3 credentials (a table's are the uploader's)."""
    return boto3.client(
        "s3",
        endpoint_url=settings.s3_endpoint_url,
        region_name=settings.s3_region,
        aws_access_key_id=settings.s3_admin_access_key,
        aws_secret_access_key=settings.s3_admin_secret_key,
        config=Config(retries={"max_attempts": 2, "mode": "standard"}, s3={"addressing_style": "path"}),
    )


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


class S3Importer:
    def __init__(
        self,
        state: DcpState,
        settings: EmulatorSettings,
        received: Received,
        reorder_same_name: Callable[[], bool] = lambda: False,
        row_refusal: Callable[[], Callable[[str], bool] | None] = lambda: None,
    ) -> None:
        self.state = state
        self.settings = settings
        self.received = received
        self.reorder_same_name = reorder_same_name
        self.row_refusal = row_refusal
        self.bucket = settings.s3_bucket
        self.s3 = s3_client(settings)
        self._stop = threading.Event()
        self._busy = threading.Lock()  # held while a tick runs, so that clear() waits for it
        # When each version was first seen; an entry loaded from a state file is due at once.
        self._pending_since: dict[str, float] = {}
        self._thread = threading.Thread(target=self._run, name="emulator-s3-import", daemon=True)

    # --- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        self.ensure_bucket()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def ensure_bucket(self) -> None:
        try:
            self.s3.head_bucket(Bucket=self.bucket)
        except ClientError:
            create: dict[str, Any] = {"Bucket": self.bucket}
            if self.settings.s3_region != "us-east-1":
                create["CreateBucketConfiguration"] = {"LocationConstraint": self.settings.s3_region}
            self.s3.create_bucket(**create)
        self.s3.put_bucket_versioning(Bucket=self.bucket, VersioningConfiguration={"Status": "Enabled"})

    def clear(self) -> None:
        """Delete every object version in the bucket (a reset), after any tick in progress."""
        with self._busy:
            batch: list[dict[str, str]] = []
            for version in self._versions(prefix=""):
                batch.append({"Key": version["Key"], "VersionId": version["VersionId"]})
                if len(batch) == 1000:
                    self.s3.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
                    batch = []
            if batch:
                self.s3.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})

    def _run(self) -> None:
        while not self._stop.wait(self.settings.upload_poll_interval):
            try:
                with self._busy:
                    self.tick()
            except (BotoCoreError, ClientError) as exc:
                log.warning("S3 import: %s", exc)
                self._recreate_bucket_if_gone(exc)
            except Exception:
                log.exception("S3 import worker error")

    def _recreate_bucket_if_gone(self, exc: Exception) -> None:
        # A test elsewhere in the process may reset moto's backends (mock_aws does): make the bucket again.
        if isinstance(exc, ClientError) and exc.response.get("Error", {}).get("Code") == "NoSuchBucket":
            self.ensure_bucket()

    # --- one pass --------------------------------------------------------------------------------

    def tick(self) -> None:
        """Record new uploads as pending, then process those whose delay has passed, oldest first."""
        with self.state.lock:
            tables = {t["s3_path"] + "/": t["id"] for t in self.state.live_tables()}
            generation = self.state.generation
        if not tables:
            return
        self._record_new_uploads(tables, generation)
        for entry in self._due_entries(generation):
            if self._stop.is_set():
                return
            self._process(entry, generation)

    def _versions(self, prefix: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for page in self.s3.get_paginator("list_object_versions").paginate(Bucket=self.bucket, Prefix=prefix):
            found.extend(page.get("Versions", []))
        return found

    def _record_new_uploads(self, tables: dict[str, int], generation: int) -> None:
        seen = self.state.seen_versions()
        fresh = []
        # S3 lists a key's versions newest first, and moto's LastModified has whole seconds: order by
        # time, then key, then oldest version first, so a re-upload of a name always comes after it.
        for index, version in enumerate(self._versions(prefix="dcp/")):
            if version["VersionId"] in seen:
                continue
            key: str = version["Key"]
            path, _, file_name = key.rpartition("/")
            table_id = tables.get(path + "/")
            if table_id is None or not file_name:
                continue
            fresh.append((version["LastModified"], key, -index, version, table_id, file_name))
        fresh.sort(key=lambda item: item[:3])
        with self.state.lock:
            if self.state.generation != generation:
                return
            for last_modified, key, _, version, table_id, file_name in fresh:
                self.state.uploads[table_id].append(
                    {
                        "id": self.state.new_id(),
                        "table_id": table_id,
                        "file_name": file_name,
                        "s3_key": key,
                        "s3_version_id": version["VersionId"],
                        "size": version.get("Size", 0),
                        "status": "pending",
                        "rows_total": 0,
                        "rows_processed": 0,
                        "rows_failed": 0,
                        "errors": [],
                        "uploaded_at": _iso(last_modified),
                        "processed_at": None,
                    }
                )
                self._pending_since[version["VersionId"]] = time.time()

    def _due_entries(self, generation: int) -> list[dict[str, Any]]:
        """Entries waiting to be processed (``processing`` ones too, after a restart), in upload order."""
        now = time.time()
        with self.state.lock:
            if self.state.generation != generation:
                return []
            waiting = [
                e
                for entries in self.state.uploads.values()
                for e in entries
                if e["status"] in ("pending", "processing")
            ]
        delay = self.settings.real_seconds(self.settings.upload_processing_delay)
        due = [e for e in waiting if now - self._pending_since.get(e["s3_version_id"], 0.0) >= delay]
        due.sort(key=lambda e: (e["uploaded_at"], e["id"]))
        return newest_first_per_key(due) if self.reorder_same_name() else due

    def _process(self, entry: dict[str, Any], generation: int) -> None:
        with self.state.lock:
            if self.state.generation != generation:
                return
            entry["status"] = "processing"
            table_id = entry["table_id"]
            table = self.state.tables.get(table_id)
            attributes = self.state.live_attributes(table_id) if table and not table["archived"] else {}

        def open_stream() -> IO[str]:
            body = self.s3.get_object(
                Bucket=self.bucket, Key=entry["s3_key"], VersionId=entry["s3_version_id"]
            )
            return text_stream(body["Body"])

        def apply(rows: list[Row]) -> None:
            with self.state.lock:
                if self.state.generation != generation:
                    raise _ResetDuringImport
                for customer_id, values in rows:
                    self.state.write_profile(table_id, customer_id, values)

        rules = FileRules(
            max_bytes=self.settings.dcp_max_file_bytes,
            empty_cells=self.settings.empty_cells,
            value_syntax=self.settings.value_syntax,
            refuse_row=self.row_refusal(),
        )
        try:
            report = check_file(
                open_stream, entry["file_name"], attributes, apply, size=entry.get("size", 0), rules=rules
            )
        except _ResetDuringImport:
            return
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("NoSuchKey", "NoSuchVersion"):
                raise
            report = _missing_object_report()
        with self.state.lock:
            if self.state.generation != generation:
                return
            entry.update(report.as_dict())
            entry["status"] = "failed" if report.failed else "processed"
            entry["processed_at"] = now_iso()
        self._pending_since.pop(entry["s3_version_id"], None)
        self.received.add_items("dcp_uploads", [entry["s3_key"]])


def newest_first_per_key(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``entries`` (in upload order) with the versions of each S3 key reversed among their own places."""
    places: dict[str, list[int]] = {}
    for index, entry in enumerate(entries):
        places.setdefault(entry["s3_key"], []).append(index)
    reordered = list(entries)
    for indexes in places.values():
        for index, source in zip(indexes, reversed(indexes), strict=True):
            reordered[index] = entries[source]
    return reordered


class _ResetDuringImport(Exception):
    """The state was reset while a file was being applied: drop the rest of it."""


def _missing_object_report() -> FileReport:
    report = FileReport()
    report.fail(0, None, "the object is no longer in S3")
    return report
