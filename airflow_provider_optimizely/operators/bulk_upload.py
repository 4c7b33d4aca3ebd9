"""OptimizelyBulkUploadOperator: a checked CSV/TSV into a DCP table's S3 import path (API.md §4.4).

1. The source is one of: a CSV/TSV ``path`` (local or any ``ObjectStoragePath`` URL), or a ``sql`` query
   on any Airflow SQL connection, streamed into a CSV.
2. The file is checked against the table's live attributes before a byte is uploaded, in one streaming
   pass (``core.csv_check``) that also hashes and counts it. Columns named in ``hash_columns`` are
   replaced by salted SHA-256 hashes as it goes; other personal-data columns are refused.
3. With problems, nothing is uploaded and the task fails with the first problems (row, column, value).
   With ``max_rejected`` above 0, bad rows are dropped instead, as long as they stay within it.
4. The file goes to ``optimizely-import/<table s3_path>/<name>`` with the table's own keys, through the
   Amazon provider's ``S3Hook`` (managed multipart transfer, never the whole file in memory). The name,
   ``<dag>.<task>__<run>__try<N>__<sha256[:16]>.<csv|tsv>``, is new for every run and every content, so a
   new upload never reuses the name of a file DCP has not processed yet.
5. A retried task does not upload twice: the key of a finished upload is kept in ``task_state_store``
   (Airflow's ``ResumableJobMixin``) and reused while the object is there; without it (the worker died
   between upload and save), an object of this run with the same content hash is found and reused.

The XCom names the table, the S3 key, rows, bytes and content hash, for ``OptimizelyUploadHistorySensor``.
"""

from __future__ import annotations

import dataclasses
import posixpath
import re
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook, BaseOperator, ObjectStoragePath, ResumableJobMixin, Variable
from airflow.sdk.exceptions import AirflowFailException
from airflow.sdk.log import mask_secret

from airflow_provider_optimizely.core.csv_check import (
    DEFAULT_MAX_PROBLEMS,
    Attribute,
    CheckOptions,
    CheckResult,
    check_csv,
    check_rows,
)
from airflow_provider_optimizely.core.pii import SaltedHasher
from airflow_provider_optimizely.core.report import RejectLimit
from airflow_provider_optimizely.core.sources import DEFAULT_FETCH_SIZE, file_format_of, open_streaming_cursor
from airflow_provider_optimizely.core.upload_history import find_in_history
from airflow_provider_optimizely.operators._dispatch import BULK_UPLOAD, hook_for
from airflow_provider_optimizely.operators._table_s3 import DcpTableS3Hook

if TYPE_CHECKING:
    from airflow.sdk import Context
    from pydantic import JsonValue

    from airflow_provider_optimizely.hooks.dcp import DcpS3Credentials, OptimizelyDcpHook

UPLOADED = "uploaded"
MISSING = "missing"
_UNSAFE_IN_NAME = re.compile(r"[^A-Za-z0-9._-]+")


class OptimizelyBulkUploadOperator(ResumableJobMixin, BaseOperator):
    """Check a CSV/TSV (or a query's rows) against a DCP table, then upload it to the table's S3 path.

    :param table_id: the DCP table (datasource) id.
    :param path: a CSV/TSV file: a local path or an object-storage URL (``s3://...``, with ``path_conn_id``).
    :param sql: a query (or ``.sql`` file) on ``sql_conn_id``, uploaded as CSV; ``parameters`` bind into it.
    :param file_format: ``csv`` or ``tsv`` when the file name does not tell.
    :param hash_columns: columns of personal data to upload as ``sha256(salt + normalised value)``.
    :param hash_salt_conn_id: a connection whose password is the salt; or ``hash_salt_variable``, a
        Variable holding it. Needed with ``hash_columns``.
    :param max_rejected: bad rows that may be dropped (not uploaded) instead of failing the task: a count,
        or a fraction of the rows in [0, 1). Default 0: any bad row fails the task and nothing is uploaded.
    :param problems_in_report: how many problems (row, column, value, reason) the error and XCom list.
    :param aws_conn_id: an Amazon connection for the S3 endpoint, region and botocore settings (its own
        keys are not used: DCP takes only the table's). Default: the Optimizely connection's
        ``s3_endpoint_url``/``s3_region`` extras, else AWS's defaults.
    :param transfer_config_args: ``boto3.s3.transfer.TransferConfig`` settings (part size, concurrency).
    :param work_dir: where the rewritten file goes while it is checked and uploaded (default: temp dir).
    :param conn_id: the Optimizely (DCP) connection.
    """

    template_fields: Sequence[str] = (
        "conn_id",
        "table_id",
        "path",
        "path_conn_id",
        "sql",
        "sql_conn_id",
        "parameters",
        "file_format",
        "hash_columns",
        "max_rejected",
    )
    template_ext: Sequence[str] = (".sql",)
    template_fields_renderers = {"sql": "sql", "parameters": "json"}
    external_id_key = "optimizely_bulk_upload"
    ui_color = "#d6e4f5"

    def __init__(
        self,
        *,
        table_id: int | str,
        path: str | ObjectStoragePath | None = None,
        path_conn_id: str | None = None,
        sql: str | None = None,
        sql_conn_id: str | None = None,
        parameters: Mapping[str, Any] | Sequence[Any] | None = None,
        file_format: str | None = None,
        hash_columns: Sequence[str] | str = (),
        hash_salt_conn_id: str | None = None,
        hash_salt_variable: str | None = None,
        max_rejected: int | float | str = 0,
        problems_in_report: int = DEFAULT_MAX_PROBLEMS,
        aws_conn_id: str | None = None,
        transfer_config_args: Mapping[str, Any] | None = None,
        fetch_size: int = DEFAULT_FETCH_SIZE,
        work_dir: str | None = None,
        conn_id: str = "optimizely_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if (path is None) == (sql is None):
            raise ValueError(f"{type(self).__name__}: give exactly one of path or sql")
        if sql is not None and not sql_conn_id:
            raise ValueError(f"{type(self).__name__}: sql needs sql_conn_id")
        templated_columns = isinstance(hash_columns, str) and "{{" in hash_columns
        if hash_columns and not templated_columns and not (hash_salt_conn_id or hash_salt_variable):
            raise ValueError("hash_columns needs a salt: hash_salt_conn_id or hash_salt_variable")
        if isinstance(hash_columns, str) and not templated_columns:
            hash_columns = [name.strip() for name in hash_columns.split(",") if name.strip()]
        if not (isinstance(max_rejected, str) and "{{" in max_rejected):
            RejectLimit.parse(max_rejected)  # fail at parse time, not after reading a large file
        self.conn_id = conn_id
        self.table_id = table_id
        self.path = path
        self.path_conn_id = path_conn_id
        self.sql = sql
        self.sql_conn_id = sql_conn_id
        self.parameters = parameters
        self.file_format = file_format
        self.hash_columns = hash_columns if isinstance(hash_columns, str) else list(hash_columns)
        self.hash_salt_conn_id = hash_salt_conn_id
        self.hash_salt_variable = hash_salt_variable
        self.max_rejected = max_rejected
        self.problems_in_report = int(problems_in_report)
        self.aws_conn_id = aws_conn_id
        self.transfer_config_args = dict(transfer_config_args or {})
        self.fetch_size = int(fetch_size)
        self.work_dir = work_dir

    @cached_property
    def hook(self) -> OptimizelyDcpHook:
        return hook_for(self.conn_id, BULK_UPLOAD)  # type: ignore[return-value]

    def execute(self, context: Context) -> Any:
        return self.execute_resumable(context)

    # -- ResumableJobMixin: the "job" is the upload; its id is our XCom, kept in task_state_store ---------

    def submit_job(self, context: Context) -> JsonValue:
        result = self._check_and_upload(context)
        result["requests"] = self.hook.client.stats.as_dict()  # the DCP API calls this took
        return result

    def _check_and_upload(self, context: Context) -> dict[str, Any]:
        started = time.monotonic()
        table_id = int(str(self.table_id))
        limit = _reject_limit(self.max_rejected)
        credentials = self.hook.s3_credentials(table_id)
        attributes = self._attributes(table_id)
        try_number = context["ti"].try_number
        with ExitStack() as stack:
            temp = tempfile.TemporaryDirectory(prefix="dcp-upload-", dir=self.work_dir)
            work_dir = Path(stack.enter_context(temp))
            prepared = self._prepare(attributes, limit, work_dir, stack)
            if prepared is None:
                self.log.info("The query returned no rows: nothing to upload")
                return _result(table_id, credentials, None, None, try_number, started)
            upload_path, check, extension = prepared
            s3 = self._s3(credentials)
            name_prefix = self._name_prefix(context)
            short_hash = check.content_hash[:16]
            existing = self._earlier_upload(s3, credentials, name_prefix, short_hash, extension)
            if existing is not None:
                self.log.info(
                    "An earlier try of this run uploaded this same content as %s: reusing it", existing
                )
                return {
                    **_result(table_id, credentials, existing, check, try_number, started),
                    "reused": True,
                }
            key = credentials.key_for(f"{name_prefix}try{try_number}__{short_hash}.{extension}")
            self.log.info(
                "Uploading %d row(s), %d bytes, to s3://%s/%s",
                check.rows_accepted,
                check.bytes,
                credentials.bucket,
                key,
            )
            s3.load_file(str(upload_path), key=key, bucket_name=credentials.bucket, replace=False)
            return _result(table_id, credentials, key, check, try_number, started)

    def get_job_status(self, external_id: JsonValue, context: Context) -> str:
        """Is the upload an earlier try saved still there: in S3, or (if DCP removed it) in Upload History?"""
        if not isinstance(external_id, dict):
            return MISSING
        if not external_id.get("s3_key"):
            return UPLOADED  # a query of no rows: nothing was uploaded, nothing to redo
        key, table_id = str(external_id["s3_key"]), int(str(external_id["table_id"]))
        credentials = self.hook.s3_credentials(table_id)
        if self._s3(credentials).head_object(key, credentials.bucket) is not None:
            return UPLOADED
        return UPLOADED if find_in_history(self.hook, table_id, [key])[key] is not None else MISSING

    def is_job_active(self, status: str) -> bool:
        return False  # the upload runs inside submit_job: there is never one to reconnect to

    def is_job_succeeded(self, status: str) -> bool:
        return status == UPLOADED

    def poll_until_complete(self, external_id: JsonValue, context: Context) -> None:
        """Nothing to wait for here: DCP's processing is the Upload History sensor's business."""

    def get_job_result(self, external_id: JsonValue, context: Context) -> Any:
        result = dict(external_id) if isinstance(external_id, dict) else {}
        stored_try = result.get("try_number")
        if stored_try is not None and stored_try != context["ti"].try_number:
            self.log.info("Try %s already uploaded %s: not uploading again", stored_try, result.get("s3_key"))
            result["reused"] = True
        return result

    # -- steps -------------------------------------------------------------------------------------------

    def _attributes(self, table_id: int) -> dict[str, Attribute]:
        attributes = {}
        for attribute in self.hook.list_attributes(table_id):
            if not attribute.archived:
                attributes[attribute.name] = Attribute(
                    attribute.name, str(attribute.datatype), attribute.format
                )
        return attributes

    def _prepare(
        self, attributes: dict[str, Attribute], limit: RejectLimit, work_dir: Path, stack: ExitStack
    ) -> tuple[Path, CheckResult, str] | None:
        """Check the source; return the file to upload (the original, or a rewrite), its check, its suffix."""
        # With rows allowed to be dropped, every row must be read to count them; otherwise the first
        # problems settle it.
        may_drop_rows = bool(limit.count or limit.fraction)
        options = CheckOptions(
            attributes,
            hash_columns=self._hashers(),
            skip_bad_rows=may_drop_rows,
            max_problems=self.problems_in_report,
        )
        if self.sql is not None:
            return self._prepare_query(options, limit, work_dir)
        path_text = str(self.path)
        extension = file_format_of(path_text, self.file_format)
        if extension not in ("csv", "tsv"):
            raise AirflowFailException(f"a DCP bulk upload is CSV or TSV, not {extension}: {path_text}")
        delimiter = "\t" if extension == "tsv" else ","
        local = stack.enter_context(self._local_copy(work_dir))
        self.log.info("Checking %s against the table's %d attribute(s)", path_text, len(attributes))
        if options.rewrites:
            output = work_dir / f"upload.{extension}"
            with local.open("rb") as source, output.open("wb") as target:
                check = check_csv(source, options, delimiter=delimiter, output=target)
            self._judge(check, limit)
            return output, check, extension
        # Nothing to change: check the original, and rewrite it without its bad rows only if it has some
        # (within max_rejected); the second pass drops exactly the rows the first one counted.
        with local.open("rb") as source:
            check = check_csv(source, options, delimiter=delimiter)
        self._judge(check, limit)
        if check.rows_rejected == 0:
            return local, check, extension
        output = work_dir / f"upload.{extension}"
        dropping = dataclasses.replace(options, skip_bad_rows=True)
        with local.open("rb") as source, output.open("wb") as target:
            rewritten = check_csv(source, dropping, delimiter=delimiter, output=target)
        return output, rewritten, extension

    def _prepare_query(
        self, options: CheckOptions, limit: RejectLimit, work_dir: Path
    ) -> tuple[Path, CheckResult, str] | None:
        output = work_dir / "upload.csv"
        with self._query_rows() as (columns, rows):
            if columns is None:
                return None
            self.log.info("Writing the query's rows to CSV, checked against the table's attributes")
            with output.open("wb") as target:
                check = check_rows(columns, rows, options, target)
        self._judge(check, limit)
        return output, check, "csv"

    def _judge(self, check: CheckResult, limit: RejectLimit) -> None:
        """Fail (no retry: the same data would fail again) unless the file may go up."""
        if check.file_refused or limit.exceeded_by(check.rows_rejected, check.rows):
            what = "the file" if check.file_refused else f"{check.rows_rejected} of {check.rows} row(s)"
            raise AirflowFailException(
                f"DCP would refuse {what}; nothing was uploaded. Problems:\n{check.describe_problems()}"
            )
        if check.rows_rejected:
            self.log.warning(
                "Dropping %d bad row(s) of %d (max_rejected %s):\n%s",
                check.rows_rejected,
                check.rows,
                limit.describe(),
                check.describe_problems(),
            )

    @contextmanager
    def _local_copy(self, work_dir: Path) -> Iterator[Path]:
        """The source as a local file: itself when it is on local disk, else a streamed copy."""
        storage_path = self.path
        if not isinstance(storage_path, ObjectStoragePath):
            storage_path = ObjectStoragePath(str(storage_path), conn_id=self.path_conn_id)
        if storage_path.protocol in ("file", "local", ""):
            yield Path(storage_path.path)
            return
        copy = work_dir / ("source" + Path(storage_path.name).suffix)
        with storage_path.open("rb") as remote, copy.open("wb") as local:
            shutil.copyfileobj(remote, local, length=1 << 20)
        yield copy

    @contextmanager
    def _query_rows(self) -> Iterator[tuple[list[str] | None, Iterator[Sequence[Any]]]]:
        """The query's column names (None when it returned no row) and its rows, one page at a time."""
        from airflow.providers.common.sql.hooks.sql import DbApiHook

        hook = BaseHook.get_connection(str(self.sql_conn_id)).get_hook()
        if not isinstance(hook, DbApiHook):
            raise AirflowFailException(f"connection {self.sql_conn_id!r} is not a SQL connection")
        connection = hook.get_conn()
        try:
            cursor = open_streaming_cursor(connection, fetch_size=self.fetch_size)
            try:
                if self.parameters is None:
                    cursor.execute(str(self.sql))
                else:
                    cursor.execute(str(self.sql), self.parameters)
                # A server-side cursor knows its columns only once the first page is fetched.
                page = cursor.fetchmany(self.fetch_size)
                if cursor.description is None:
                    raise AirflowFailException("the SQL returned no result set: it must be a query")
                if not page:
                    yield None, iter(())
                    return
                columns = [str(column[0]) for column in cursor.description]
                yield columns, _pages(cursor, page, self.fetch_size)
            finally:
                cursor.close()
        finally:
            try:
                connection.rollback()  # read-only work: end the transaction the cursor opened
            finally:
                connection.close()

    def _hashers(self) -> dict[str, SaltedHasher]:
        columns = self.hash_columns
        if isinstance(columns, str):  # rendered from a template without native objects: "a,b"
            columns = [
                name.strip() for name in columns.strip("[]").replace("'", "").split(",") if name.strip()
            ]
        if not columns:
            return {}
        if not (self.hash_salt_conn_id or self.hash_salt_variable):
            raise AirflowFailException("hash_columns needs a salt: hash_salt_conn_id or hash_salt_variable")
        if self.hash_salt_conn_id:
            salt = BaseHook.get_connection(self.hash_salt_conn_id).password or ""
        else:
            salt = str(Variable.get(str(self.hash_salt_variable)))
        if not salt:
            raise AirflowFailException("the salt for hash_columns is empty")
        mask_secret(salt)
        hasher = SaltedHasher(salt)
        return dict.fromkeys(columns, hasher)

    def _s3(self, credentials: DcpS3Credentials) -> DcpTableS3Hook:
        return DcpTableS3Hook(
            credentials, aws_conn_id=self.aws_conn_id, transfer_config_args=self.transfer_config_args
        )

    def _name_prefix(self, context: Context) -> str:
        ti = context["ti"]
        map_index = ti.map_index if ti.map_index is not None else -1
        task = f"{ti.dag_id}.{ti.task_id}" + (f".{map_index}" if map_index >= 0 else "")
        return f"{_safe(task)}__{_safe(ti.run_id)}__"

    def _earlier_upload(
        self,
        s3: DcpTableS3Hook,
        credentials: DcpS3Credentials,
        name_prefix: str,
        short_hash: str,
        extension: str,
    ) -> str | None:
        """The key of an object an earlier try of this run uploaded with the same content, if any."""
        prefix = credentials.key_for(name_prefix)
        suffix = f"__{short_hash}.{extension}"
        for key in s3.list_keys(bucket_name=credentials.bucket, prefix=prefix):
            if key.endswith(suffix):
                return key
        return None


def _result(
    table_id: int,
    credentials: DcpS3Credentials,
    key: str | None,
    check: CheckResult | None,
    try_number: int,
    started: float,
) -> dict[str, Any]:
    """The XCom: what the sensor needs (table, key) and what a report shows; small and JSON-serialisable."""
    summary = check.summary() if check is not None else {}
    return {
        "table_id": table_id,
        "bucket": credentials.bucket,
        "s3_key": key,
        "file_name": posixpath.basename(key) if key else None,
        "rows": summary.get("rows", 0),
        "rows_uploaded": summary.get("rows_accepted", 0),
        "rows_rejected": summary.get("rows_rejected", 0),
        "bytes": summary.get("bytes", 0),
        "content_hash": summary.get("content_hash"),
        "problems": summary.get("problems", []),
        "reused": False,
        "try_number": try_number,
        "duration_seconds": round(time.monotonic() - started, 3),
    }


def _pages(cursor: Any, first: Sequence[Any], fetch_size: int) -> Iterator[Sequence[Any]]:
    page = first
    while page:
        yield from page
        page = cursor.fetchmany(fetch_size)


def _reject_limit(value: Any) -> RejectLimit:
    try:
        return RejectLimit.parse(value)
    except ValueError as exc:
        raise AirflowFailException(str(exc)) from None


def _safe(text: str) -> str:
    return _UNSAFE_IN_NAME.sub("_", text).strip("_") or "run"
