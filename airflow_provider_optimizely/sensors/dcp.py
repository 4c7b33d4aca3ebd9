"""OptimizelyDcpUploadHistorySensor: wait until DCP has processed bulk-upload files
(docs/api-contract.md §4.6).

It checks Upload History once on the worker; if the files are not settled yet it defers to
``OptimizelyDcpUploadHistoryTrigger`` (``deferrable=True``, the default), which frees the worker slot while it
polls, or, with ``deferrable=False``, pokes like any sensor (``mode="poke"`` or ``"reschedule"``). Both
paths decide with the same function, ``core.upload_history.upload_verdict``:

- every file ``processed`` with no more refused rows than ``max_rejected``: success; the XCom is a small
  summary per file (status, rows total/processed/failed, the first errors);
- a file ``failed``, or too many refused rows: the task fails (no retry: DCP's answer will not change)
  with the files' row and column errors;
- otherwise: wait.

The files default to those of the upstream ``OptimizelyDcpBulkUploadOperator`` tasks (their XCom names
the table and the S3 key), so ``upload >> OptimizelyDcpUploadHistorySensor(task_id="wait")`` is enough.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from airflow.sdk import BaseSensorOperator, Context, PokeReturnValue
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSensorTimeout

from airflow_provider_optimizely.core.report import RejectLimit
from airflow_provider_optimizely.core.upload_history import (
    DONE,
    FAILED,
    Verdict,
    find_in_history,
    upload_verdict,
)
from airflow_provider_optimizely.hooks.dcp import OptimizelyDcpHook
from airflow_provider_optimizely.operators._base import OptimizelyBaseOperator, as_bool
from airflow_provider_optimizely.triggers.dcp import (
    EVENT_ERROR,
    EVENT_FOUND,
    OptimizelyDcpUploadHistoryTrigger,
)

# Airflow's own deferral timeout is a backstop behind the trigger's deadline, which ends the wait first.
_DEFERRAL_GRACE = timedelta(minutes=10)


class OptimizelyDcpUploadHistorySensor(BaseSensorOperator, OptimizelyBaseOperator[OptimizelyDcpHook]):
    """Wait until DCP has processed bulk-upload files, without holding a worker slot by default.

    :param conn_id: an ``optimizely`` connection (default ``optimizely_default``), templated.
    :param uploads: what to wait for: the XCom of ``OptimizelyDcpBulkUploadOperator`` (a dict, or a list
        of them), or S3 keys / file names. Default: the XCom of the upstream bulk-upload tasks.
    :param table_id: the DCP table; default: the one named in the uploads' XCom.
    :param max_rejected: rows DCP may refuse in ``processed`` files: a count, or a fraction in [0, 1).
    :param deferrable: defer to the triggerer between checks (default); False pokes on the worker.
        Templated (with ``render_template_as_native_obj`` a DAG param can switch it).
    :param poll_interval: seconds between checks, templated; default ``poke_interval``. The trigger
        doubles it after each check, up to ``max_poll_interval``.
    """

    hook_class = OptimizelyDcpHook
    template_fields: Sequence[str] = (
        "conn_id",
        "uploads",
        "table_id",
        "max_rejected",
        "deferrable",
        "poll_interval",
    )
    ui_color = "#d6e4f5"

    def __init__(
        self,
        *,
        uploads: Any = None,
        table_id: int | str | None = None,
        max_rejected: int | float | str = 0,
        deferrable: bool | str = True,
        poll_interval: float | str | None = None,
        poke_interval: float = 30.0,
        max_poll_interval: float = 300.0,
        timeout: float = 6 * 60 * 60,
        **kwargs: Any,
    ) -> None:
        super().__init__(poke_interval=poke_interval, timeout=timeout, **kwargs)
        self.uploads = uploads
        self.table_id = table_id
        self.max_rejected = max_rejected
        self.deferrable = deferrable
        self.poll_interval = poll_interval
        self.max_poll_interval = max_poll_interval
        if not (isinstance(max_rejected, str) and "{{" in max_rejected):
            RejectLimit.parse(max_rejected)  # a bad setting fails at parse time, not after hours of waiting

    # -- the two ways to wait ----------------------------------------------------------------------------

    def execute(self, context: Context) -> Any:
        self.deferrable = as_bool(self.deferrable, "deferrable")
        if self.poll_interval not in (None, ""):
            self.poke_interval = float(str(self.poll_interval))
        if not self.deferrable:
            return super().execute(context)
        table_id, files = self._targets(context)
        if not files:
            return self._nothing_to_wait_for()
        verdict = self._check(table_id, files)
        if verdict.state != "waiting":
            return self._finish(verdict)
        self.log.info("%s; deferring to the triggerer", verdict.message)
        deadline = time.time() + float(self.timeout)  # fixed once: a triggerer restart keeps it
        self.defer(
            trigger=OptimizelyDcpUploadHistoryTrigger(
                conn_id=self.conn_id,
                table_id=table_id,
                files=files,
                deadline=deadline,
                poll_interval=float(self.poke_interval),
                max_poll_interval=self.max_poll_interval,
                max_rejected=self.max_rejected,
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=float(self.timeout)) + _DEFERRAL_GRACE,
        )

    def execute_complete(self, context: Context, event: Mapping[str, Any] | None = None) -> Any:
        """Back on a worker after the trigger's event: decide with the same rule as a poke."""
        if not event:
            raise AirflowException("the Upload History trigger ended without an event")
        if event.get("event") == EVENT_FOUND:
            self.log.info("Resumed from the triggerer with the state of %s", ", ".join(event["found"]))
            return self._finish(upload_verdict(event["found"], self.max_rejected))
        if event.get("event") == EVENT_ERROR:
            raise AirflowException(f"could not read Upload History: {event.get('message')}")
        raise AirflowSensorTimeout(str(event.get("message") or "the Upload History wait timed out"))

    def poke(self, context: Context) -> PokeReturnValue:
        table_id, files = self._targets(context)
        if not files:
            return PokeReturnValue(is_done=True, xcom_value=self._nothing_to_wait_for())
        verdict = self._check(table_id, files)
        if verdict.state == "waiting":
            self.log.info("%s", verdict.message)
            return PokeReturnValue(is_done=False)
        return PokeReturnValue(is_done=True, xcom_value=self._finish(verdict))

    # -- shared ------------------------------------------------------------------------------------------

    def _check(self, table_id: int, files: list[str]) -> Verdict:
        return upload_verdict(find_in_history(self.hook, table_id, files), self.max_rejected)

    def _finish(self, verdict: Verdict) -> dict[str, Any]:
        if verdict.state == FAILED:
            raise AirflowFailException(verdict.message)
        assert verdict.state == DONE
        self.log.info("%s", verdict.message)
        return verdict.as_dict()

    def _nothing_to_wait_for(self) -> dict[str, Any]:
        self.log.info("The upstream uploads sent no file (no rows): nothing to wait for")
        return Verdict(DONE, "nothing was uploaded").as_dict()

    def _targets(self, context: Context) -> tuple[int, list[str]]:
        """(table id, S3 keys or file names) from the arguments, else from upstream bulk-upload XComs."""
        uploads = self.uploads
        if uploads is None:
            pulled = context["ti"].xcom_pull(task_ids=sorted(self.upstream_task_ids))
            uploads = [item for item in _as_list(pulled) if isinstance(item, Mapping) and "s3_key" in item]
            if not uploads:
                raise AirflowException(
                    "no upload to wait for: pass uploads=<the bulk upload's XCom or S3 keys>, or put this "
                    "sensor downstream of an OptimizelyDcpBulkUploadOperator"
                )
        items = _as_list(uploads)
        files: list[str] = []
        tables: set[int] = set()
        for item in items:
            if isinstance(item, Mapping):
                if item.get("table_id") is not None:
                    tables.add(int(item["table_id"]))
                if item.get("s3_key"):  # an upload of no rows sent no file
                    files.append(str(item["s3_key"]))
            else:
                files.append(str(item))
        if self.table_id not in (None, ""):
            return int(str(self.table_id)), files
        if len(tables) != 1:
            raise AirflowException(
                f"table_id is needed: the uploads name {len(tables)} tables {sorted(tables)}"
            )
        return tables.pop(), files


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, (str, Mapping)):
        return [value]
    return list(value)
