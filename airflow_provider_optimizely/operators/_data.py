"""What the data operators share: one source (``operators._sources``), and how a run report ends a task.

``DataOperator`` is the base of the profile, event and delete operators (and may serve others): it renders
the source, builds the API's writer, runs ``core.sync.run_sync`` and returns the report as its XCom.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_optimizely.core.report import (
    DEFAULT_PROGRESS_INTERVAL,
    DEFAULT_REJECTS_KEPT,
    ProgressLog,
    RejectLimit,
    TooManyRejectedRows,
)
from airflow_provider_optimizely.core.sources import DEFAULT_FETCH_SIZE, SourceError
from airflow_provider_optimizely.core.sync import DEFAULT_MAX_CONCURRENCY, SyncConfigError, Writer, run_sync
from airflow_provider_optimizely.hooks.base import OptimizelyConfigError
from airflow_provider_optimizely.operators._dispatch import UnsupportedCapabilityError, hook_for
from airflow_provider_optimizely.operators._sources import count_sources, open_rows

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_optimizely.hooks.base import OptimizelyBaseHook

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
#: XCom key under which a failed run still leaves its report.
REPORT_XCOM_KEY = "run_report"


class DataOperator(BaseOperator):
    """Base of the operators that stream rows to an API through a ``Writer`` and return a run report."""

    #: The capability the connection's API must offer (``_dispatch``).
    capability: ClassVar[str] = ""
    template_ext: Sequence[str] = (".sql",)
    template_fields_renderers: ClassVar[dict[str, str]] = {"sql": "sql", "parameters": "json"}

    def __init__(
        self,
        *,
        conn_id: str,
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
        if not (isinstance(max_rejected, str) and "{{" in max_rejected):
            RejectLimit.parse(max_rejected)  # fail at parse time, not after a long run
        if int(max_concurrency) < 1:
            raise ValueError("max_concurrency must be at least 1")
        self.conn_id = conn_id
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

    @cached_property
    def hook(self) -> OptimizelyBaseHook:
        return hook_for(self.conn_id, self.capability)

    def build_writer(self, hook: OptimizelyBaseHook) -> Writer:
        raise NotImplementedError

    #: Column name given to the items of a ``rows`` list that are plain values (ids to delete).
    single_column: ClassVar[str | None] = None

    def execute(self, context: Context) -> dict[str, Any]:
        try:
            RejectLimit.parse(self.max_rejected)
        except ValueError as exc:
            raise AirflowFailException(str(exc)) from None
        try:
            hook = self.hook
            # One pooled connection per worker thread, so that no thread waits on the pool.
            hook.pool_size = max(hook.pool_size, self.max_concurrency)
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
                report = run_sync(
                    pages,
                    writer,
                    max_concurrency=self.max_concurrency,
                    max_rejected=self.max_rejected,
                    rejects_kept=self.rejected_rows_in_report,
                    progress=ProgressLog(self.log, interval=self.progress_interval, total=total),
                    request_stats=hook.client.stats.as_dict,
                    logger=self.log,
                )
        except TooManyRejectedRows as exc:
            context["ti"].xcom_push(key=REPORT_XCOM_KEY, value=exc.report.as_dict())
            raise AirflowFailException(str(exc)) from None
        except (SyncConfigError, SourceError, OptimizelyConfigError, UnsupportedCapabilityError) as exc:
            # Retrying would meet the same setting or the same file: fail without retries.
            raise AirflowFailException(str(exc)) from None
        return report.as_dict()
