"""OptimizelyDcpUploadHistoryTrigger: polls DCP's Upload History in the triggerer until our files are
settled.

It only reads (a triggerer restart may run it twice, which is harmless), with a backoff between polls.
A transient answer (``429``, ``5xx``, a dropped connection) is logged and polled again later, after at
least the server's ``Retry-After``; any other error ends the wait with an ``error`` event. Its timeout is
an absolute ``deadline`` (UTC epoch seconds) fixed by the sensor when it first deferred, so a restarted
triggerer carries on towards the same deadline instead of starting the clock again.

The single event it yields carries the raw history entries found (``found``), not a decision: the sensor
decides, on the worker, with the same function its poke uses (``core.upload_history.upload_verdict``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_optimizely.core.errors import OptimizelyApiError, OptimizelyError, TransientError
from airflow_provider_optimizely.core.upload_history import WAITING, find_in_history, upload_verdict

EVENT_FOUND = "found"
EVENT_TIMEOUT = "timeout"
EVENT_ERROR = "error"


class OptimizelyDcpUploadHistoryTrigger(BaseTrigger):
    """Wait in the triggerer until every file in ``files`` is processed or failed in ``table_id``'s history.

    :param conn_id: the Optimizely (DCP) connection.
    :param table_id: the DCP table (datasource) the files were uploaded to.
    :param files: S3 keys (or bare file names) of the uploaded files.
    :param deadline: UTC epoch seconds after which the trigger gives up with a ``timeout`` event.
    :param poll_interval: seconds before the second poll; doubles up to ``max_poll_interval``.
    :param max_rejected: as for the sensor; used only to tell "settled" from "still waiting".
    """

    def __init__(
        self,
        *,
        conn_id: str,
        table_id: int,
        files: Sequence[str],
        deadline: float,
        poll_interval: float = 30.0,
        max_poll_interval: float = 300.0,
        max_rejected: int | float | str = 0,
    ) -> None:
        super().__init__()
        self.conn_id = conn_id
        self.table_id = int(table_id)
        self.files = list(files)
        self.deadline = float(deadline)
        self.poll_interval = float(poll_interval)
        self.max_poll_interval = float(max_poll_interval)
        self.max_rejected = max_rejected

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "conn_id": self.conn_id,
                "table_id": self.table_id,
                "files": list(self.files),
                "deadline": self.deadline,
                "poll_interval": self.poll_interval,
                "max_poll_interval": self.max_poll_interval,
                "max_rejected": self.max_rejected,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        hook = None
        delay = self.poll_interval
        while True:
            wait = delay
            try:
                if hook is None:
                    hook = await asyncio.to_thread(self._hook)
                found = await asyncio.to_thread(self._look, hook)
            except TransientError as exc:
                retry_after = exc.retry_after if isinstance(exc, OptimizelyApiError) else None
                wait = max(delay, retry_after or 0.0)
                self.log.warning("Upload History not readable now (%s); polling again in %.0f s", exc, wait)
            except Exception as exc:
                # Auth, a missing table or connection, a bad setting: waiting longer will not help.
                message = str(exc) if isinstance(exc, OptimizelyError) else f"{type(exc).__name__}: {exc}"
                yield TriggerEvent({"event": EVENT_ERROR, "message": message, "files": self.files})
                return
            else:
                verdict = upload_verdict(found, self.max_rejected)
                if verdict.state != WAITING:
                    yield TriggerEvent({"event": EVENT_FOUND, "found": found, "files": self.files})
                    return
                self.log.info("Upload History: %s", verdict.message)
            remaining = self.deadline - time.time()
            if remaining <= 0:
                yield TriggerEvent(
                    {"event": EVENT_TIMEOUT, "message": self._timeout_message(), "files": self.files}
                )
                return
            await asyncio.sleep(min(wait, remaining))
            delay = min(delay * 2, self.max_poll_interval)

    def _hook(self) -> Any:
        from airflow_provider_optimizely.hooks.dcp import OptimizelyDcpHook

        # One attempt per poll: the trigger's own loop is the retry, so no thread blocks in a long backoff.
        return OptimizelyDcpHook(self.conn_id, max_attempts=1)

    def _look(self, hook: Any) -> dict[str, dict[str, Any] | None]:
        return find_in_history(hook, self.table_id, self.files)

    def _timeout_message(self) -> str:
        files = ", ".join(self.files)
        return f"DCP had not processed {files} in table {self.table_id} by the sensor's deadline"
