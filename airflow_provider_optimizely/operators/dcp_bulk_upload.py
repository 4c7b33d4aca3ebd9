"""OptimizelyDcpBulkUploadOperator: a checked CSV/TSV into a DCP table's S3 import path (§4.4).

The check, the rewrite, the naming and the reuse of an earlier try's upload are ``core.bulk_upload``'s;
this operator reads the source (``operators._sources``), gets the salt and the table's keys, and uploads
through the Amazon provider's ``S3Hook`` signed with those keys (``operators._table_s3``).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook, ObjectStoragePath, ResumableJobMixin, Variable
from airflow.sdk.exceptions import AirflowFailException
from airflow.sdk.log import mask_secret

from airflow_provider_optimizely.assets import DCP_TABLE
from airflow_provider_optimizely.core.bulk_upload import (
    PreparedUpload,
    UploadRefused,
    check_options,
    earlier_upload,
    log_dropped_rows,
    name_prefix,
    parse_hash_columns,
    prepare_file,
    prepare_rows,
    upload_name,
    upload_result,
)
from airflow_provider_optimizely.core.csv_check import DEFAULT_MAX_PROBLEMS
from airflow_provider_optimizely.core.page import SourceError
from airflow_provider_optimizely.core.pii import SaltedHasher
from airflow_provider_optimizely.core.sources import DEFAULT_FETCH_SIZE, file_format_of
from airflow_provider_optimizely.core.upload_history import find_in_history
from airflow_provider_optimizely.hooks.dcp import OptimizelyDcpHook
from airflow_provider_optimizely.links import DcpTableLink
from airflow_provider_optimizely.operators._base import OptimizelyBaseOperator
from airflow_provider_optimizely.operators._lineage import Written
from airflow_provider_optimizely.operators._row_sync import check_reject_limit_at_parse, parse_reject_limit
from airflow_provider_optimizely.operators._sources import local_file, query_tuples
from airflow_provider_optimizely.operators._table_s3 import DcpTableS3Hook
from airflow_provider_optimizely.operators._target import SyncTargetMixin

if TYPE_CHECKING:
    from airflow.sdk import Context
    from pydantic import JsonValue

UPLOADED, MISSING = "uploaded", "missing"


def work_dir_name(run_prefix: str) -> str:
    return f"optimizely-dcp-upload-{run_prefix.rstrip('_')}"


@contextmanager
def _work_dir(parent: str | None, run_prefix: str) -> Iterator[Path]:
    """A folder for this task instance's run, emptied first (a killed try may have left one) and removed
    on every way out."""
    folder = Path(parent or tempfile.gettempdir()) / work_dir_name(run_prefix)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def salted_hashers(
    hash_columns: Sequence[str] | str, salt_conn_id: str | None, salt_variable: str | None
) -> dict[str, SaltedHasher]:
    """A hasher for each column to upload hashed, salted with the connection's password or the Variable."""
    columns = parse_hash_columns(hash_columns)
    if not columns:
        return {}
    if salt_conn_id:
        salt = BaseHook.get_connection(salt_conn_id).password or ""
    elif salt_variable:
        salt = str(Variable.get(salt_variable))
    else:
        raise AirflowFailException("hash_columns needs a salt: hash_salt_conn_id or hash_salt_variable")
    if not salt:
        raise AirflowFailException("the salt for hash_columns is empty")
    mask_secret(salt)
    return dict.fromkeys(columns, SaltedHasher(salt))


class OptimizelyDcpBulkUploadOperator(
    SyncTargetMixin, ResumableJobMixin, OptimizelyBaseOperator[OptimizelyDcpHook]
):
    """Check a CSV/TSV (or a query's rows) against a DCP table, then upload it to the table's S3 path.

    Nothing is uploaded when a row is bad (the task fails naming rows, columns and values), unless
    ``max_rejected`` lets bad rows be dropped. The file name is new for every run and content, and a
    retried task reuses the upload of an earlier try (kept by Airflow's ``ResumableJobMixin``, or found
    in S3 by run and content hash) and aborts what a killed try left half-uploaded. The XCom names the
    table, the S3 key, rows, bytes and content hash, for ``OptimizelyDcpUploadHistorySensor``. Its asset
    event says the file was uploaded (DCP imports it later: the sensor waits for that).

    :param table_id: the DCP table (datasource) id.
    :param path: a CSV/TSV file: a local path or an object-storage URL (``s3://...`` with ``path_conn_id``).
    :param sql: a query (or ``.sql`` file) on ``sql_conn_id``, uploaded as CSV; ``parameters`` bind into it.
    :param file_format: ``csv`` or ``tsv`` when the file name does not tell.
    :param hash_columns: personal-data columns to upload as ``sha256(salt + normalised value)`` (a list,
        or comma-separated names); other personal-data columns are refused.
    :param hash_salt_conn_id: a connection whose password is the salt; or ``hash_salt_variable``, a
        Variable holding it. Needed with ``hash_columns``.
    :param max_rejected: bad rows that may be dropped instead of failing the task: a count, or a fraction
        of the rows in [0, 1). Default 0.
    :param problems_in_report: how many problems (row, column, value, reason) the error and XCom list.
    :param aws_conn_id: an Amazon connection for the S3 endpoint, region and botocore settings (never its
        keys: DCP takes only the table's). Default: the connection's ``s3_endpoint_url``/``s3_region``.
    :param transfer_config_args: ``boto3.s3.transfer.TransferConfig`` settings (part size, concurrency).
    :param work_dir: where the rewritten file is written while checked and uploaded (default: temp dir).
    :param conn_id: an ``optimizely`` connection (default ``optimizely_default``).
    """

    hook_class = OptimizelyDcpHook
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
    target_kind = DCP_TABLE
    target_link = DcpTableLink
    operator_extra_links = (DcpTableLink(),)
    #: The XCom of the last run, for its lineage.
    _last_result: dict[str, Any] | None = None

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
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if (path is None) == (sql is None):
            raise ValueError(f"{type(self).__name__}: give exactly one of path or sql")
        if sql is not None and not sql_conn_id:
            raise ValueError(f"{type(self).__name__}: sql needs sql_conn_id")
        templated = isinstance(hash_columns, str) and "{{" in hash_columns
        if not templated:
            hash_columns = parse_hash_columns(hash_columns)
            if hash_columns and not (hash_salt_conn_id or hash_salt_variable):
                raise ValueError("hash_columns needs a salt: hash_salt_conn_id or hash_salt_variable")
        check_reject_limit_at_parse(max_rejected)
        self.table_id = table_id
        self.path = path
        self.path_conn_id = path_conn_id
        self.sql = sql
        self.sql_conn_id = sql_conn_id
        self.parameters = parameters
        self.file_format = file_format
        self.hash_columns = hash_columns
        self.hash_salt_conn_id = hash_salt_conn_id
        self.hash_salt_variable = hash_salt_variable
        self.max_rejected = max_rejected
        self.problems_in_report = int(problems_in_report)
        self.aws_conn_id = aws_conn_id
        self.transfer_config_args = dict(transfer_config_args or {})
        self.fetch_size = int(fetch_size)
        self.work_dir = work_dir
        self.declare_target()

    def target_argument(self) -> Any:
        return self.table_id

    def target_name(self) -> str:
        return str(int(str(self.table_id)))

    def written_fields(self, columns: Sequence[str] | None) -> list[tuple[str | None, str]]:
        """The file's columns, each the attribute of its name (DCP's CSV rule)."""
        return [(column, column) for column in columns or ()]

    def written(self) -> Written | None:
        result = self._last_result
        if not result:
            return None
        fields = self.written_fields(result.get("columns"))
        return Written(fields, rows=result.get("rows_uploaded"), bytes=result.get("bytes"))

    def execute(self, context: Context) -> Any:
        self.announce_target(context)
        result = self.execute_resumable(context)
        self._last_result = result if isinstance(result, dict) else None
        return result

    # -- ResumableJobMixin: the "job" is the upload; its id is our XCom, kept in task_state_store ---------

    def submit_job(self, context: Context) -> JsonValue:
        started = time.monotonic()
        ti = context["ti"]
        table_id = int(str(self.table_id))
        credentials = self.hook.s3_credentials(table_id)
        s3 = self._s3(credentials)
        run_prefix = name_prefix(ti.dag_id, ti.task_id, ti.run_id, ti.map_index)
        prefix = credentials.key_for(run_prefix)
        s3.abort_uploads_under(credentials.bucket, prefix)  # what a killed try left half-uploaded
        with ExitStack() as stack:
            work_dir = stack.enter_context(_work_dir(self.work_dir, run_prefix))
            prepared = self._prepare(table_id, work_dir, stack)

            def result(key: str | None, reused: bool = False) -> dict[str, Any]:
                check = prepared.check if prepared else None
                stats = self.hook.client.stats.as_dict()
                return upload_result(
                    table_id, credentials.bucket, key, check, ti.try_number, started, stats, reused=reused
                )

            if prepared is None:
                self.log.info("The query returned no rows: nothing to upload")
                return result(None)
            check, extension = prepared.check, prepared.extension
            existing = earlier_upload(
                s3.keys_under(credentials.bucket, prefix), check.content_hash, extension
            )
            if existing is not None:
                self.log.info("An earlier try of this run uploaded this content as %s: reusing it", existing)
                return result(existing, reused=True)
            key = f"{prefix}{upload_name('', ti.try_number, check.content_hash, extension)}"
            self.log.info("Uploading %d row(s), %d bytes, to %s", check.rows_accepted, check.bytes, key)
            s3.upload_new(prepared.path, credentials.bucket, key)
            return result(key)

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

    def _prepare(self, table_id: int, work_dir: Path, stack: ExitStack) -> PreparedUpload | None:
        """The checked file to upload; None when the query returned no row."""
        limit = parse_reject_limit(self.max_rejected)
        attributes = self.hook.list_attributes(table_id)
        hashers = salted_hashers(self.hash_columns, self.hash_salt_conn_id, self.hash_salt_variable)
        options = check_options(attributes, hashers, limit, self.problems_in_report)
        try:
            if self.sql is not None:
                with query_tuples(str(self.sql), self.sql_conn_id, self.parameters, self.fetch_size) as query:
                    columns, rows = query
                    if columns is None:
                        return None
                    self.log.info("Writing the query's rows to CSV, checked as they go")
                    prepared = prepare_rows(columns, rows, options, limit, work_dir)
            else:
                extension = file_format_of(str(self.path), self.file_format)
                source = stack.enter_context(local_file(str(self.path), self.path_conn_id, work_dir))
                self.log.info("Checking %s against the table's attributes", self.path)
                prepared = prepare_file(source, extension, options, limit, work_dir)
        except (UploadRefused, SourceError) as exc:
            raise AirflowFailException(str(exc)) from None
        log_dropped_rows(prepared, limit, self.log)
        return prepared

    def _s3(self, credentials: Any) -> DcpTableS3Hook:
        return DcpTableS3Hook(
            credentials, aws_conn_id=self.aws_conn_id, transfer_config_args=self.transfer_config_args
        )


__all__ = ["OptimizelyDcpBulkUploadOperator"]
