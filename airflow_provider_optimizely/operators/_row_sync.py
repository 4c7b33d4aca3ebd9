"""The base of the operators that stream rows into an API: one source, one writer, one run report.

``RowSyncOperator`` owns what every such operator shares: the source (``sql`` + ``sql_conn_id``, ``path``
+ ``path_conn_id``, or ``rows``; ``operators._sources`` opens it), ``max_rejected``, ``max_concurrency``,
the sync state (send only what changed, resume after a crash), the run report and ``execute``. A
subclass names its hook class and builds its API's writer (``build_writer``); ``core.sync.run_sync`` does
the rest.

The report is left whatever ends the task: it is the XCom return value of a run that succeeds, it is
pushed under the XCom key ``run_report`` in every case (a failed run included), and the task's last log
lines state it whole (a Markdown table, then one line).
"""

from __future__ import annotations

import time
from abc import abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_optimizely.core.concurrency import AdaptiveConcurrency
from airflow_provider_optimizely.core.errors import TerminalError
from airflow_provider_optimizely.core.incremental import ChangeFilter, EventFilter, change_tracking
from airflow_provider_optimizely.core.page import Page
from airflow_provider_optimizely.core.partitions import Partition
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
from airflow_provider_optimizely.core.sync_state import IntervalRun, KeyRun
from airflow_provider_optimizely.operators._base import HookT, OptimizelyBaseOperator, as_bool
from airflow_provider_optimizely.operators._lineage import Written
from airflow_provider_optimizely.operators._sources import count_sources, open_rows
from airflow_provider_optimizely.operators._sync_state import SyncStateMixin
from airflow_provider_optimizely.operators._target import SyncTargetMixin

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
#: Templated sync-state arguments.
STATE_TEMPLATE_FIELDS: tuple[str, ...] = (
    "partition",
    "sync_id",
    "state_store",
    "state_store_conn_id",
    "incremental",
    "full_refresh",
    "dry_run_only",
)
#: The XCom key under which every run, failed or not, leaves its report.
REPORT_XCOM_KEY = "run_report"


def parse_reject_limit(value: Any) -> RejectLimit:
    """``max_rejected`` as a limit; a bad value fails the task without retries (the setting is wrong)."""
    try:
        return RejectLimit.parse(value)
    except ValueError as exc:
        raise AirflowFailException(str(exc)) from None


#: ``max_concurrency="auto"``: adaptive concurrency (core.concurrency), up to ``max_concurrency_cap``.
AUTO = "auto"


def concurrency_of(value: Any) -> int:
    """``max_concurrency`` as a whole number of at least 1 (it may arrive rendered as text)."""
    concurrency = int(value)
    if concurrency < 1:
        raise ValueError(f"max_concurrency must be at least 1, got {value!r}")
    return concurrency


def check_reject_limit_at_parse(value: Any) -> None:
    """Refuse a bad ``max_rejected`` when the DAG is parsed, unless it is a template rendered later."""
    if not (isinstance(value, str) and "{{" in value):
        RejectLimit.parse(value)


class RowSyncOperator(SyncStateMixin, SyncTargetMixin, OptimizelyBaseOperator[HookT]):
    """Stream rows from one source into the API through its writer; return the run report (the XCom).

    Its target is an outlet Asset, an extra link and an OpenLineage output (``operators._target``).

    :param sql: a query (or a ``.sql`` file) run on ``sql_conn_id``, any Airflow SQL connection whose hook
        is a common-sql ``DbApiHook``; ``parameters`` bind into it. Read a page at a time (``fetch_size``
        rows), with a server-side cursor where the driver has one.
    :param path: a CSV, TSV or JSON Lines file, local or on object storage (``s3://...`` with
        ``path_conn_id``), streamed; ``file_format`` when the name does not tell.
    :param rows: a list of mappings (or an XCom of one).
    :param max_rejected: rejected rows that still let the task succeed: a count, or a fraction in [0, 1)
        of the rows read ("5%" works too). Default 0: any reject fails the task, after every good row
        was written.
    :param max_concurrency: requests in flight at once (all within the connection's rate budget), or
        ``"auto"``: start at 4 and adapt to what the server takes (more while it keeps up, fewer on a
        429/503 or rising latency; docs/rate-limits.md). DCP and Optimove default to ``"auto"``, which
        publish no limit; the other APIs to 4.
    :param max_concurrency_cap: the most requests in flight ``"auto"`` may reach; default the connection's
        extra ``max_concurrency_cap``, else the hook's (DCP 64, Optimove 32).
    :param rejected_rows_in_report: how many rejected rows (row, key, column, reason) the report lists.
    :param progress_interval: seconds between progress lines on long runs.
    :param incremental: keep a sync state and send only new and changed rows, rows that failed last run,
        and (after a crash) what the stopped attempt had no answer for. Default True. The first run, a
        ``full_refresh`` and a run whose target or mapping changed send every row.
    :param full_refresh: send every row this run (the state is still kept).
    :param dry_run: send nothing and keep nothing: the report counts what would be new, changed,
        unchanged and carried over, with a few keys of each (a check before a mapping change).
    :param sync_id: the sync's name in the state store (default: DAG id, task id, map index, target).
    :param state_store: where the state is kept: a folder or an object-storage URI (``s3://bucket/prefix``);
        default the setting ``[optimizely] sync_state_uri``, else ``optimizely_sync_state`` in the Airflow
        home. Workers on several hosts need a shared one.
    :param state_store_conn_id: the connection of an object-storage ``state_store``.
    :param partition: ``"i/n"``: this task sends only the keys of partition ``i`` of ``n`` (a hash of the
        key, ``core.partitions``), with a sync state of its own, so that one sync runs as ``n`` mapped
        tasks (``.partial(...).expand(partition=[f"{i}/8" for i in range(8)])``). A SQL source may read
        only its partition with ``core.partitions.Partition.sql_predicate``; the reports add up with
        ``core.report.summarize``.
    """

    template_fields: Sequence[str] = (
        "conn_id",
        *SOURCE_TEMPLATE_FIELDS,
        "max_rejected",
        "max_concurrency",
        "max_concurrency_cap",
        *STATE_TEMPLATE_FIELDS,
    )
    template_ext: Sequence[str] = (".sql",)
    template_fields_renderers: ClassVar[dict[str, str]] = {"sql": "sql", "parameters": "json"}
    #: What the report calls this operation ("upsert-profiles", "send-events", "delete-profile").
    operation: ClassVar[str]
    #: Column name given to the items of a ``rows`` list that are plain values (ids to delete).
    single_column: ClassVar[str | None] = None
    #: Whether rows are upserts of keys that a sync state can compare run to run (deletes and events
    #: are not).
    keeps_state: ClassVar[bool] = True
    #: ``max_concurrency`` when none is given: a number, or ``"auto"`` for an API with no published limit.
    default_max_concurrency: ClassVar[int | str] = DEFAULT_MAX_CONCURRENCY
    #: The report of the last run, for its lineage.
    _last_report: RunReport | None = None

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
        max_concurrency: int | str | None = None,
        max_concurrency_cap: int | str | None = None,
        rejected_rows_in_report: int = DEFAULT_REJECTS_KEPT,
        progress_interval: float = DEFAULT_PROGRESS_INTERVAL,
        incremental: bool | str = True,
        full_refresh: bool | str = False,
        dry_run: bool | str = False,
        sync_id: str | None = None,
        state_store: str | None = None,
        state_store_conn_id: str | None = None,
        partition: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if partition is not None and "{{" not in str(partition):
            Partition.parse(partition)
        if count_sources(sql, path, rows) != 1:
            raise ValueError(f"{type(self).__name__}: give exactly one of sql, path or rows")
        if sql is not None and not sql_conn_id:
            raise ValueError(f"{type(self).__name__}: sql needs sql_conn_id")
        check_reject_limit_at_parse(max_rejected)
        if max_concurrency is None:
            max_concurrency = self.default_max_concurrency
        templated = isinstance(max_concurrency, str) and "{{" in max_concurrency
        if not templated and str(max_concurrency).strip().lower() != AUTO:
            concurrency_of(max_concurrency)
        if max_concurrency_cap is not None and "{{" not in str(max_concurrency_cap):
            concurrency_of(max_concurrency_cap)
        self.sql = sql
        self.sql_conn_id = sql_conn_id
        self.parameters = parameters
        self.path = path
        self.path_conn_id = path_conn_id
        self.file_format = file_format
        self.rows = rows
        self.fetch_size = int(fetch_size)
        self.max_rejected = max_rejected
        self.max_concurrency = max_concurrency
        self.max_concurrency_cap = max_concurrency_cap
        self.rejected_rows_in_report = int(rejected_rows_in_report)
        self.progress_interval = float(progress_interval)
        self.incremental = incremental
        self.full_refresh = full_refresh
        # Not ``self.dry_run``: BaseOperator.dry_run() is Airflow's own (it renders the templates).
        self.dry_run_only = dry_run
        self.sync_id = sync_id
        self.state_store = state_store
        self.state_store_conn_id = state_store_conn_id
        self.partition = partition

    @abstractmethod
    def build_writer(self, hook: HookT) -> Writer:
        """The API's writer for this task's arguments (it may read the target's schema first)."""

    def after_sync(self, hook: HookT, run: KeyRun | IntervalRun | None, report: RunReport) -> None:
        """Work once every row was sent and before the state is kept (mirror-mode deletes)."""

    def written(self) -> Written | None:
        report = self._last_report
        if report is None:
            return None
        return Written(
            self.written_fields(report.source_columns),
            rows=report.rows_succeeded,
            bytes=int(report.requests.get("bytes_accepted", 0)),
        )

    def execute(self, context: Context) -> dict[str, Any]:
        parse_reject_limit(self.max_rejected)
        partition = None if self.partition in (None, "") else Partition.parse(self.partition)
        report = RunReport(
            operation=self.operation,
            api=self.hook_class.api_name,
            rejects_kept=self.rejected_rows_in_report,
            partition=None if partition is None else str(partition),
        )
        self._last_report = report
        started = time.monotonic()
        try:
            self._run(report, context, partition)
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

    def _run(self, report: RunReport, context: Context, partition: Partition | None) -> None:
        hook = self.hook
        # One pooled connection per sending thread, so that no thread waits on the pool.
        concurrency, adaptive = self._concurrency(hook)
        hook.pool_size = max(hook.pool_size, concurrency)
        if adaptive is not None:
            hook.client.concurrency = adaptive  # built now, with the pool of the cap
        run: KeyRun | IntervalRun | None = None
        try:
            writer = self.build_writer(hook)
            self.announce_target(context, changes_target=not as_bool(self.dry_run_only, "dry_run"))
            with self._open_source() as (pages, total):
                # Opened first: the source's first pages are read ahead while the sync state loads.
                run = self.begin_state(writer, hook, context)
                self._sync(pages, total, writer, hook, report, run, concurrency, partition, adaptive)
        except TooManyRejectedRows:
            self._end(run, report, commit=True)  # the rejected rows are carried over to the next run
            raise
        except BaseException:
            self._end(run, report, commit=False)
            raise
        else:
            self.after_sync(hook, run, report)
            self._end(run, report, commit=True)
        finally:
            client = hook.__dict__.get("_client")  # built only once the connection was usable
            if client is not None:
                report.requests = client.stats.as_dict()

    def _open_source(self) -> AbstractContextManager[tuple[Iterator[Page], int | None]]:
        return open_rows(
            sql=self.sql,
            sql_conn_id=self.sql_conn_id,
            parameters=self.parameters,
            path=self.path,
            path_conn_id=self.path_conn_id,
            file_format=self.file_format,
            rows=self.rows,
            fetch_size=self.fetch_size,
            single_column=self.single_column,
        )

    def _sync(
        self,
        pages: Iterator[Page],
        total: int | None,
        writer: Writer,
        hook: HookT,
        report: RunReport,
        run: KeyRun | IntervalRun | None,
        concurrency: int,
        partition: Partition | None,
        adaptive: AdaptiveConcurrency | None = None,
    ) -> None:
        self.send_pages(
            pages,
            writer,
            hook,
            report=report,
            changes=None if run is None else change_tracking(run, writer),
            partition=partition,
            concurrency=concurrency,
            adaptive=adaptive,
            progress=ProgressLog(self.log, interval=self.progress_interval, total=total),
        )

        if adaptive is not None:
            self.log.info(
                "adaptive concurrency: %d requests in flight at the end (at most %d, cap %d)",
                adaptive.limit,
                max(adaptive.history),
                adaptive.cap,
            )

    def _concurrency(self, hook: HookT) -> tuple[int, AdaptiveConcurrency | None]:
        """Threads to send with, and the adaptive limit that moves within them (``"auto"``)."""
        if str(self.max_concurrency).strip().lower() != AUTO:
            return concurrency_of(self.max_concurrency), None
        cap = self.max_concurrency_cap
        if cap in (None, ""):
            cap = hook.extras.get("max_concurrency_cap") or hook.default_concurrency_cap
        adaptive = AdaptiveConcurrency(concurrency_of(cap))
        return adaptive.cap, adaptive

    def send_pages(
        self,
        pages: Iterable[Page],
        writer: Writer,
        hook: HookT,
        *,
        report: RunReport,
        changes: ChangeFilter | EventFilter | None,
        partition: Partition | None,
        concurrency: int,
        adaptive: AdaptiveConcurrency | None,
        progress: ProgressLog,
    ) -> None:
        """Send the source's pages through ``writer`` (``core.sync.run_sync``); an API with another way
        to send them overrides this."""
        run_sync(
            pages,
            writer,
            report=report,
            changes=changes,
            partition=partition,
            max_concurrency=concurrency,
            concurrency=adaptive,
            max_rejected=self.max_rejected,
            progress=progress,
            request_stats=hook.client.stats.as_dict,
            logger=self.log,
        )

    def _leave(self, context: Context, report: RunReport) -> None:
        ti = context.get("ti")
        if ti is not None:  # None only when a script calls execute() itself
            ti.xcom_push(key=REPORT_XCOM_KEY, value=report.as_dict())
        self.log.info("run report:\n%s", report.as_markdown())
        self.log.info("%s", report.summary())
