"""The sync loop shared by every data operator: rows in, batches out, a run report back.

The loop reads pages of rows in the caller's thread, asks the API's ``Writer`` to turn each row into an
item (or to reject it with a reason), cuts the items into batches of the writer's size and hands each
batch to a bounded pool of threads that send it. Memory holds at most ``max_concurrency`` batches in
flight plus a page and the batch being filled, whatever the row count.

A writer states how its API wants batches sent:

- ``orders_by_key``: two writes of one key must land in source order (profiles): a batch that holds a key
  still in flight waits for it.
- ``holds_last_batch``: the last batch goes alone, after every other batch was acknowledged, with
  ``final=True`` (Optimove: ``batch_completed`` only on the last request of a ``batch_uuid``).

Before the first row, the writer checks the source's columns against its target (``check_columns``), so a
column the target can't take fails the run once, not once a row. Rejected rows never stop the run: all
good rows are sent first, then ``max_rejected`` decides (``TooManyRejectedRows``). An error that is not
about a row (auth, a missing table, retries spent) ends the run at once; the report, filled in place,
says where (``stopped_by``).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

from airflow_provider_optimizely.core.batch import Batch, Item
from airflow_provider_optimizely.core.batching import BoundedPool
from airflow_provider_optimizely.core.concurrency import AdaptiveConcurrency
from airflow_provider_optimizely.core.errors import TerminalError
from airflow_provider_optimizely.core.partitions import Partition
from airflow_provider_optimizely.core.report import (
    DEFAULT_REJECTS_KEPT,
    Log,
    ProgressLog,
    Rejection,
    RejectLimit,
    RunReport,
    TooManyRejectedRows,
)
from airflow_provider_optimizely.core.send_mark import marked_on_send
from airflow_provider_optimizely.core.sources import Page, Row, Unreadable

if TYPE_CHECKING:
    from airflow_provider_optimizely.core.source_fingerprints import Preselection

DEFAULT_MAX_CONCURRENCY = 4
log = logging.getLogger(__name__)


class RowRejected(Exception):
    """Raised by ``Writer.prepare`` for a row that can't be sent; the run goes on without it."""

    def __init__(self, reason: str, *, column: str | None = None, key: Any = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.column = column
        self.key = None if key is None else str(key)


class SyncConfigError(TerminalError, ValueError):
    """The sync is set up wrong (a mapping names an unknown attribute...): nothing more is sent."""


@dataclass
class BatchResult:
    """What the API made of one batch: how many items it took, which it refused, and other counts."""

    succeeded: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    details: Counter[str] = field(default_factory=Counter)

    def refuse(self, item: Item, reason: str, column: str | None = None) -> None:
        self.rejected.append(Rejection(row=item.row, key=item.key, reason=reason, column=column))


class Writer(Protocol):
    operation: str
    api: str
    batch_size: int
    orders_by_key: bool
    holds_last_batch: bool

    @property
    def target(self) -> str | None: ...

    def check_columns(self, columns: Sequence[str]) -> None:
        """Raise ``SyncConfigError`` if the source's columns can't all be written (called once, before
        the first row is prepared), naming every column at fault and how to fix it."""
        ...

    @property
    def signature(self) -> dict[str, Any]:
        """What the target and the mapping are (JSON-ready): an incremental sync whose signature changed
        sends every row again."""
        ...

    def resume(self, metadata: dict[str, Any]) -> None:
        """Take over (or leave) what an earlier attempt of this run kept in ``metadata``; called before the
        first row is sent, and ``metadata`` is kept durably before it is."""
        ...

    def prepare_page(self, first_row: int, page: Page) -> tuple[Batch, list[Rejection]]: ...

    def send(self, batch: Batch, final: bool) -> BatchResult: ...


class ChangeTracking(Protocol):
    """Between the source and the API (``core.incremental.ChangeFilter``): which rows to prepare
    (``preselect``: None prepares them all), which items to send, and what the API answered for them."""

    def preselect(self, page: Page, partition: Partition | None) -> Preselection | None: ...

    def select(self, batch: Batch) -> Batch: ...

    def dispatching(self, batch: Batch) -> None:
        """``batch`` is going out: called by the request that carries it, just before it is sent
        (``core.send_mark``), at most once a batch."""
        ...

    def record(self, batch: Batch, result: BatchResult) -> None: ...


class RowWriter:
    """A writer that prepares one row at a time (``prepare``); a writer with a faster way for whole
    pages overrides ``whole_page``, and pages it can't take at once go row by row."""

    operation: str
    api: str
    target: str | None
    #: The attributes that make the signature, besides the API and the operation.
    signature_fields: tuple[str, ...] = ("target",)

    def prepare(self, row_number: int, row: Row) -> Item:
        raise NotImplementedError

    def check_columns(self, columns: Sequence[str]) -> None:
        """Every column is fine by default (a writer with a schema overrides this)."""

    @property
    def signature(self) -> dict[str, Any]:
        return {
            "api": self.api,
            "operation": self.operation,
            **{name: getattr(self, name) for name in self.signature_fields},
        }

    def resume(self, metadata: dict[str, Any]) -> None:
        """Nothing to take over by default."""

    def prepare_page(self, first_row: int, page: Page) -> tuple[Batch, list[Rejection]]:
        whole = self.whole_page(first_row, page)
        if whole is not None:
            return whole, []
        return self.prepare_rows(first_row, page, self.prepare)

    def whole_page(self, first_row: int, page: Page) -> Batch | None:
        """The page's items made at once, when every row of it is fine; None (the default) prepares it
        row by row, which rejects each row that is not, naming it."""
        return None

    @staticmethod
    def prepare_rows(
        first: int, page: Page, prepare: Callable[[int, Row], Item]
    ) -> tuple[Batch, list[Rejection]]:
        ready = Batch()  # the items ``prepare`` makes; a row it rejects, or unreadable, is a rejection
        rejected: list[Rejection] = []
        for number, row in enumerate(page.rows, start=first):
            if type(row) is Unreadable:
                rejected.append(Rejection(row=number, key=None, reason=row.reason))
                continue
            try:
                ready.append(prepare(number, row))  # type: ignore[arg-type]
            except RowRejected as exc:
                rejected.append(Rejection(row=number, key=exc.key, reason=exc.reason, column=exc.column))
        return ready, rejected


def run_sync(
    pages: Iterable[Page],
    writer: Writer,
    *,
    report: RunReport | None = None,
    changes: ChangeTracking | None = None,
    partition: Partition | None = None,
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
    concurrency: AdaptiveConcurrency | None = None,
    max_rejected: Any = 0,
    rejects_kept: int = DEFAULT_REJECTS_KEPT,
    progress: ProgressLog | None = None,
    request_stats: Callable[[], Mapping[str, float]] | None = None,
    logger: Log | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> RunReport:
    """Send every row of ``pages`` through ``writer``; return the report, or raise ``TooManyRejectedRows``.

    ``report`` is filled in place when given, so that a caller keeps it whatever ends the run: an error
    that is not about a row leaves it with ``stopped_by`` set. ``request_stats`` gives the REST client's
    counters for the report: those of a client used for this run alone, so that they count its setup
    reads (the attributes, the schema) too. With ``changes``, only the items it selects are sent, and
    every answered batch is recorded with it. With ``partition``, only the rows of that partition are
    sent and counted (row numbers still count every row of the source). With ``concurrency``, the batches
    in flight follow its moving limit (up to its cap) instead of ``max_concurrency``.
    """
    limit = RejectLimit.parse(max_rejected)
    logger = logger or log
    if report is None:
        report = RunReport(operation=writer.operation, api=writer.api, rejects_kept=rejects_kept)
    report.target = writer.target
    started = clock()

    def on_done(future: Future[tuple[Batch, BatchResult]]) -> None:
        batch, result = future.result()  # an error that is not about a row ends the run here
        if changes is not None:
            changes.record(batch, result)
        report.rows_sent += result.succeeded + len(result.rejected)
        report.rows_succeeded += result.succeeded
        for rejection in result.rejected:
            report.reject(rejection)
        report.details.update(result.details)

    def finish() -> None:
        report.duration_seconds = clock() - started
        if request_stats:
            report.requests = dict(request_stats())

    try:
        slots, moving = max_concurrency, None
        if concurrency is not None:
            slots, moving = concurrency.cap, (lambda: concurrency.limit)
        with BoundedPool[tuple[Batch, BatchResult]](slots, on_done, limit=moving) as pool:
            _pump(pages, writer, report, pool, progress, changes, partition)
    except BaseException as exc:
        finish()
        report.stopped_by = describe_stop(exc)
        raise
    finish()
    if report.rows_read == 0:
        logger.warning("the source had no rows: nothing was sent")
    if report.rows_rejected and limit.exceeded_by(report.rows_rejected, report.rows_read):
        raise TooManyRejectedRows(report, limit)
    return report


def _owned(partition: Partition, ready: Batch, rejected: list[Rejection]) -> tuple[Batch, list[Rejection]]:
    """The items and rejections of ``partition``'s keys (a row with no key is the first partition's)."""
    owned = [index for index, key in enumerate(ready.keys) if partition.owns(key)]
    if len(owned) != len(ready):
        ready = ready.subset(owned)
    return ready, [rejection for rejection in rejected if partition.owns(rejection.key)]


def _prepared(
    writer: Writer, changes: ChangeTracking | None, partition: Partition | None, first_row: int, page: Page
) -> tuple[Batch, list[Rejection], int]:
    """The items and rejections of the page's rows that this run may send (``partition``'s, and with
    ``changes``, those it did not preselect away), and how many of its rows the run counts as read."""
    chosen = None if changes is None else changes.preselect(page, partition)
    if chosen is not None:
        ready, rejected = writer.prepare_page(0, chosen.page)
        return *chosen.attach(first_row, ready, rejected), chosen.rows_read
    ready, rejected = writer.prepare_page(first_row, page)
    if partition is None:
        return ready, rejected, len(page)
    ready, rejected = _owned(partition, ready, rejected)
    return ready, rejected, len(ready) + len(rejected)


def describe_stop(exc: BaseException) -> str:
    """What ended a run, for its report: the error's own text (errors of this provider hold no secret)."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def columns_of(page: Page) -> list[str]:
    """The columns of a page: a file's header, else every column its rows hold, in first-seen order."""
    if page.header is not None:
        return list(page.header)
    seen: dict[str, None] = {}
    for row in page.rows:
        if type(row) is dict:
            seen.update(dict.fromkeys(row))
    return list(seen)


def _pump(
    pages: Iterable[Page],
    writer: Writer,
    report: RunReport,
    pool: BoundedPool[tuple[Batch, BatchResult]],
    progress: ProgressLog | None,
    changes: ChangeTracking | None,
    partition: Partition | None,
) -> None:
    size = writer.batch_size
    held: Batch | None = None

    def send(batch: Batch, final: bool) -> tuple[Batch, BatchResult]:
        if changes is None:
            return batch, writer.send(batch, final)
        # Marked by the request that carries the batch, once past its rate-limit and pacing waits.
        with marked_on_send(partial(changes.dispatching, batch)):
            return batch, writer.send(batch, final)

    def dispatch(batch: Batch, final: bool = False) -> None:
        keys = batch.keys if writer.orders_by_key else ()
        pool.submit(send, batch, final, keys=keys)

    def flush(batch: Batch) -> None:
        nonlocal held
        if not writer.holds_last_batch:
            dispatch(batch)
            return
        if held is not None:
            dispatch(held)
        held = batch

    pending = Batch()
    columns_checked = False
    position = 0  # rows of the source so far, every partition's
    for page in pages:
        if not columns_checked:
            report.source_columns = columns_of(page)
            writer.check_columns(report.source_columns)
            columns_checked = True
        first_row = position + 1
        position += len(page)
        ready, rejected, rows_read = _prepared(writer, changes, partition, first_row, page)
        report.rows_read += rows_read
        for rejection in rejected:
            report.reject(rejection)
        if changes is not None:
            ready = changes.select(ready)
        pending.extend(ready)
        while len(pending) >= size:
            flush(pending.take(size))
        if progress is not None:
            progress.tick(report)
    if pending:
        flush(pending)
    pool.drain()
    if held is not None:
        dispatch(held, final=True)
        pool.drain()
