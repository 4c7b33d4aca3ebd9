"""Mirror mode: keys gone from the source are deleted from the target, behind guards.

After every row of the source was sent, the sync state knows which keys it holds that no row had (a
row removed from the warehouse since the last run). Mirror mode deletes those through the API, and
records each delete in the state. Two guards stand before any delete, because a broken query looks
like a warehouse that emptied:

- never when the source had no row at all, whatever ``force`` says;
- not more than ``max_delete_fraction`` of the keys in the state, unless ``force``.

A guard's refusal (``MirrorRefused``) fails the task before the first delete; the rows sent are kept.
"""

from __future__ import annotations

from itertools import islice

from airflow_provider_optimizely.core.errors import TerminalError
from airflow_provider_optimizely.core.page import Page
from airflow_provider_optimizely.core.partitions import Partition
from airflow_provider_optimizely.core.report import Log, RunReport
from airflow_provider_optimizely.core.sync import Batch, BatchResult, Writer, run_sync
from airflow_provider_optimizely.core.sync_state import KeyRun

DEFAULT_MAX_DELETE_FRACTION = 0.1
_PAGE = 5000


class MirrorRefused(TerminalError, ValueError):
    """A mirror guard refused the deletes: the source looks broken rather than emptied."""


def check_guards(rows_read: int, unseen: int, committed: int, max_fraction: float, force: bool) -> None:
    """``MirrorRefused`` unless ``unseen`` of the ``committed`` keys may be deleted."""
    if rows_read == 0:
        raise MirrorRefused(
            f"mirror mode deletes nothing when the source is empty: it had no row, and the state holds "
            f"{committed} key(s). An empty result is more often a broken query than an emptied table"
        )
    if committed and unseen / committed > max_fraction and not force:
        raise MirrorRefused(
            f"mirror mode would delete {unseen} of {committed} key(s) ({unseen / committed:.1%}), more "
            f"than max_delete_fraction ({max_fraction:.1%}); nothing was deleted. If the source really "
            "lost that many rows, run again with force_deletes=True"
        )


class _DeletesRecorded:
    """``ChangeTracking`` for the deletes: every key sent is sent; a key deleted (or already gone) is
    dropped from the state, a refused one stays."""

    def __init__(self, run: KeyRun) -> None:
        self.run = run

    def preselect(self, page: Page, partition: Partition | None) -> None:
        """Every key gone is deleted: nothing to leave out."""

    def select(self, batch: Batch) -> Batch:
        return batch

    def dispatching(self, batch: Batch) -> None:
        """Deletes repeat harmlessly: nothing to mark before they go."""

    def record(self, batch: Batch, result: BatchResult) -> None:
        refused = {rejection.row for rejection in result.rejected}
        done = [key for row, key in zip(batch.rows, batch.keys, strict=True) if row not in refused]
        self.run.acknowledge_deleted(done)


def delete_unseen(
    run: KeyRun,
    deleter: Writer,
    report: RunReport,
    *,
    max_fraction: float = DEFAULT_MAX_DELETE_FRACTION,
    force: bool = False,
    max_concurrency: int = 1,
    logger: Log,
) -> None:
    """Delete the keys of the state that the source no longer has (guards first); the counts go into
    ``report.details`` (``deleted``, ``already_deleted``, ``delete_rejected``; ``would_delete`` in a
    dry run)."""
    unseen = run.unseen_count()
    check_guards(report.rows_read, unseen, run.committed_keys, max_fraction, force)
    if run.dry_run:
        report.details["would_delete"] += unseen
        sample = list(islice(run.unseen_keys(), 5))
        logger.info("mirror mode: a real run would delete %d key(s), e.g. %s", unseen, sample)
        return
    if not unseen:
        return
    logger.info("mirror mode: deleting %d key(s) the source no longer has", unseen)
    keys = run.unseen_keys()
    pages = (Page([{"id": key} for key in chunk]) for chunk in iter(lambda: list(islice(keys, _PAGE)), []))
    deletes = run_sync(
        pages,
        deleter,
        changes=_DeletesRecorded(run),
        max_concurrency=max_concurrency,
        max_rejected=unseen,  # a refused delete is reported, and its key kept for the next run
        logger=logger,
    )
    report.details.update(deletes.details)
    if deletes.rows_rejected:
        report.details["delete_rejected"] += deletes.rows_rejected
        for rejection in deletes.rejected_rows:
            report.reject(rejection)
