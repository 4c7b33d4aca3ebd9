"""The base of the operators that stream rows into an API: one source, one writer, one run report.

``RowSyncOperator`` owns what every such operator shares: the source (``sql`` + ``sql_conn_id``, ``path``
+ ``path_conn_id``, or ``rows``; ``operators._sources`` opens it), ``max_rejected``, ``max_concurrency``,
the run report and ``execute``. A subclass names its hook class and builds its API's writer
(``build_writer``); ``core.sync.run_sync`` does the rest.

The report is left whatever ends the task: it is the XCom return value of a run that succeeds, it is
pushed under the XCom key ``run_report`` in every case (a failed run included), and the task's last log
lines state it whole (a Markdown table, then one line).
"""

from __future__ import annotations

import time
from abc import abstractmethod
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_optimizely.core.errors import TerminalError
from airflow_provider_optimizely.core.report import (
    DEFAULT_PROGRESS_INTERVAL,
    DEFAULT_REJECTS_KEPT,
    ProgressLog,
    RejectLimit,
    RunReport,
    TooManyRejectedRows,
)
from airflow_provider_optimizely.core.sources import DEFAULT_FETCH_SIZE
from airflow_provider_optimizely.core.sync import DEFAULT_MAX_CONCURRENCY, Writer, describe_stop, run_sync
from airflow_provider_optimizely.operators._base import HookT, OptimizelyBaseOperator
from airflow_provider_optimizely.operators._sources import count_sources, open_rows

if TYPE_CHECKING:
    from airflow.sdk import Context

#: Templated source arguments, for a subclass's ``template_fields``.
SOURCE_TEMPLATE_FIELDS: tuple[str, ...] = (
    "sql",
    "sql_conn_id",
    "parameters",
    "path",
    "path_conn_id",
    "file_format",
    "rows",
)
#: The XCom key under which every run, failed or not, leaves its report.
REPORT_XCOM_KEY = "run_report"


def parse_reject_limit(value: Any) -> RejectLimit:
    """``max_rejected`` as a limit; a bad value fails the task without retries (the setting is wrong)."""
    try:
        return RejectLimit.parse(value)
    except ValueError as exc:
        raise AirflowFailException(str(exc)) from None


def check_reject_limit_at_parse(value: Any) -> None:
    """Refuse a bad ``max_rejected`` when the DAG is parsed, unless it is a template rendered later."""
    if not (isinstance(value, str) and "{{" in value):
        RejectLimit.parse(value)


class RowSyncOperator(OptimizelyBaseOperator[HookT]):
    """Stream rows from one source into the API through its writer; return the run report (the XCom).

    :param sql: a query (or a ``.sql`` file) run on ``sql_conn_id``, any Airflow SQL connection whose hook
        is a common-sql ``DbApiHook``; ``parameters`` bind into it. Read a page at a time (``fetch_size``
        rows), with a server-side cursor where the driver has one.
    :param path: a CSV, TSV or JSON Lines file, local or on object storage (``s3://...`` with
        ``path_conn_id``), streamed; ``file_format`` when the name does not tell.
    :param rows: a list of mappings (or an XCom of one).
    :param max_rejected: rejected rows that still let the task succeed: a count, or a fraction in [0, 1)
        of the rows read ("5%" works too). Default 0: any reject fails the task, after every good row
        was written.
    :param max_concurrency: requests in flight at once (all within the connection's rate budget).
    :param rejected_rows_in_report: how many rejected rows (row, key, column, reason) the report lists.
    :param progress_interval: seconds between progress lines on long runs.
    """

    template_fields: Sequence[str] = ("conn_id", *SOURCE_TEMPLATE_FIELDS, "max_rejected")
    template_ext: Sequence[str] = (".sql",)
    template_fields_renderers: ClassVar[dict[str, str]] = {"sql": "sql", "parameters": "json"}
    #: What the report calls this operation ("upsert-profiles", "send-events", "delete-profile").
    operation: ClassVar[str]
    #: Column name given to the items of a ``rows`` list that are plain values (ids to delete).
    single_column: ClassVar[str | None] = None

    def __init__(
        self,
        *,
        sql: str | None = None,
        sql_conn_id: str | None = None,
        parameters: Mapping[str, Any] | Sequence[Any] | None = None,
        path: str | None = None,
        path_conn_id: str | None = None,
        file_format: str | None = None,
        rows: Sequence[Any] | None = None,
        fetch_size: int = DEFAULT_FETCH_SIZE,
        max_rejected: int | float | str = 0,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        rejected_rows_in_report: int = DEFAULT_REJECTS_KEPT,
        progress_interval: float = DEFAULT_PROGRESS_INTERVAL,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if count_sources(sql, path, rows) != 1:
            raise ValueError(f"{type(self).__name__}: give exactly one of sql, path or rows")
        if sql is not None and not sql_conn_id:
            raise ValueError(f"{type(self).__name__}: sql needs sql_conn_id")
        check_reject_limit_at_parse(max_rejected)
        if int(max_concurrency) < 1:
            raise ValueError("max_concurrency must be at least 1")
        self.sql = sql
        self.sql_conn_id = sql_conn_id
        self.parameters = parameters
        self.path = path
        self.path_conn_id = path_conn_id
        self.file_format = file_format
        self.rows = rows
        self.fetch_size = int(fetch_size)
        self.max_rejected = max_rejected
        self.max_concurrency = int(max_concurrency)
        self.rejected_rows_in_report = int(rejected_rows_in_report)
        self.progress_interval = float(progress_interval)

    @abstractmethod
    def build_writer(self, hook: HookT) -> Writer:
        """The API's writer for this task's arguments (it may read the target's schema first)."""

    def execute(self, context: Context) -> dict[str, Any]:
        parse_reject_limit(self.max_rejected)
        report = RunReport(
            operation=self.operation,
            api=self.hook_class.api_name,
            rejects_kept=self.rejected_rows_in_report,
        )
        started = time.monotonic()
        try:
            self._run(report)
        except BaseException as exc:
            if report.stopped_by is None and not isinstance(exc, TooManyRejectedRows):
                # It ended before run_sync began (the connection, the target's schema, the source).
                report.stopped_by = describe_stop(exc)
                report.duration_seconds = time.monotonic() - started
            self._leave(context, report)
            # Another try would meet the same rows, setting or answer: fail without using the retries.
            if isinstance(exc, (TooManyRejectedRows, TerminalError)):
                raise AirflowFailException(str(exc)) from None
            raise
        self._leave(context, report)
        return report.as_dict()

    def _run(self, report: RunReport) -> None:
        hook = self.hook
        # One pooled connection per sending thread, so that no thread waits on the pool.
        hook.pool_size = max(hook.pool_size, self.max_concurrency)
        try:
            writer = self.build_writer(hook)
            with open_rows(
                sql=self.sql,
                sql_conn_id=self.sql_conn_id,
                parameters=self.parameters,
                path=self.path,
                path_conn_id=self.path_conn_id,
                file_format=self.file_format,
                rows=self.rows,
                fetch_size=self.fetch_size,
                single_column=self.single_column,
            ) as (pages, total):
                run_sync(
                    pages,
                    writer,
                    report=report,
                    max_concurrency=self.max_concurrency,
                    max_rejected=self.max_rejected,
                    progress=ProgressLog(self.log, interval=self.progress_interval, total=total),
                    request_stats=hook.client.stats.as_dict,
                    logger=self.log,
                )
        finally:
            client = hook.__dict__.get("_client")  # built only once the connection was usable
            if client is not None:
                report.requests = client.stats.as_dict()

    def _leave(self, context: Context, report: RunReport) -> None:
        ti = context.get("ti")
        if ti is not None:  # None only when a script calls execute() itself
            ti.xcom_push(key=REPORT_XCOM_KEY, value=report.as_dict())
        self.log.info("run report:\n%s", report.as_markdown())
        self.log.info("%s", report.summary())
