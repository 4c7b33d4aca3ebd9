"""The run report of a data operator (its XCom return value), the reject limit, and progress lines.

A report is small and JSON-serialisable whatever the row count: counters, the first few rejected rows
(row number, key, column, reason) and the request counters of the REST client. Row numbers count the
source's records from 1, a file's header excluded.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

DEFAULT_REJECTS_KEPT = 20
DEFAULT_PROGRESS_INTERVAL = 10.0


@dataclass(frozen=True)
class Rejection:
    """One row the sync did not write, and why."""

    row: int | None
    key: str | None
    reason: str
    column: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row, "key": self.key, "column": self.column, "reason": self.reason}

    def describe(self) -> str:
        where = f"row {self.row}" if self.row is not None else "a row"
        if self.key is not None:
            where += f" (key {self.key!r})"
        if self.column:
            where += f", column {self.column!r}"
        return f"{where}: {self.reason}"


def request_counts(stats: Mapping[str, float]) -> dict[str, Any]:
    """The REST client's counters in the one shape every XCom of this provider uses."""
    return {
        "total": int(stats.get("requests", 0)),
        "retried": int(stats.get("retries", 0)),
        # A retry whose earlier attempt may have been applied (timeout or dropped connection after the
        # body was sent, or a 5xx to a POST): what it carried may have been written twice.
        "maybe_applied_twice": int(stats.get("maybe_applied_twice", 0)),
        "throttled_seconds": round(float(stats.get("throttled_seconds", 0.0)), 3),
    }


@dataclass
class RunReport:
    """Counters of one run. Only the thread that drives the sync changes it (workers hand results back)."""

    operation: str
    api: str
    target: str | None = None
    rows_read: int = 0
    # Rows of the batches the API answered (succeeded, or refused by it).
    rows_sent: int = 0
    rows_succeeded: int = 0
    rows_rejected: int = 0
    rejected_rows: list[Rejection] = field(default_factory=list)
    rejects_kept: int = DEFAULT_REJECTS_KEPT
    # Per-API figures that have no column of their own (already deleted, created, resent batches...).
    details: Counter[str] = field(default_factory=Counter)
    # The REST client's counters for this run (``RequestStats.as_dict()``).
    requests: Mapping[str, float] = field(default_factory=dict)
    duration_seconds: float = 0.0
    # Why the run ended before its source did (an error that is not about a row), or None.
    stopped_by: str | None = None
    # What the sync state made of the rows (``KeyRun.summary()``), for an incremental sync.
    sync_state: dict[str, Any] | None = None
    # ``i/n`` when this run is one partition of a sync (``core.partitions``).
    partition: str | None = None
    # Which channel carried the rows and why, where an API has more than one (``core.dcp_channel``).
    channel: dict[str, Any] | None = None
    # The source's columns, as its first page had them (for lineage; not in the XCom).
    source_columns: list[str] | None = None

    def reject(self, rejection: Rejection) -> None:
        self.rows_rejected += 1
        if len(self.rejected_rows) < self.rejects_kept:
            self.rejected_rows.append(rejection)

    @property
    def rows_per_second(self) -> float:
        return self.rows_read / self.duration_seconds if self.duration_seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "operation": self.operation,
            "api": self.api,
            "target": self.target,
            "partition": self.partition,
            "rows_read": self.rows_read,
            "rows_sent": self.rows_sent,
            "rows_succeeded": self.rows_succeeded,
            "rows_rejected": self.rows_rejected,
            # The first rejects met (the sync meets them out of order across batches), by row number.
            "rejected_rows": [
                r.as_dict() for r in sorted(self.rejected_rows, key=lambda r: (r.row is None, r.row or 0))
            ],
            "requests": request_counts(self.requests),
            "details": dict(self.details),
            "duration_seconds": round(self.duration_seconds, 3),
            "rows_per_second": round(self.rows_per_second, 1),
            "sync_state": self.sync_state,
            "stopped": None
            if self.stopped_by is None
            else {"after_row": self.rows_read, "reason": self.stopped_by},
            **({} if self.channel is None else {"channel": self.channel}),
        }

    def summary(self) -> str:
        """The whole report on one line: the last line a data task logs, failed or not."""
        requests = request_counts(self.requests)
        where = f" ({self.target})" if self.target else ""
        line = (
            f"{self.operation} on {self.api}{where}: {self.rows_read} row(s) read, {self.rows_sent} sent, "
            f"{self.rows_succeeded} succeeded, {self.rows_rejected} rejected; "
            f"{requests['total']} request(s), {requests['retried']} retried, "
            f"{requests['maybe_applied_twice']} maybe applied twice, "
            f"{requests['throttled_seconds']:.1f}s throttled; {self.duration_seconds:.1f}s, "
            f"{self.rows_per_second:.0f} rows/s"
        )
        if self.details:
            line += "; " + ", ".join(f"{name} {count}" for name, count in sorted(self.details.items()))
        if self.channel is not None:
            line += f"; channel {self.channel['reason']}"
        if self.stopped_by is not None:
            line += f"; STOPPED after row {self.rows_read}: {self.stopped_by}"
        return line

    def as_markdown(self) -> str:
        """The report as a Markdown table, for the task log (Airflow's UI renders the log as text)."""
        requests = request_counts(self.requests)
        rows = [
            ("operation", f"{self.operation} on {self.api}" + (f" ({self.target})" if self.target else "")),
            *((("channel", self.channel["reason"]),) if self.channel is not None else ()),
            ("rows read", self.rows_read),
            ("rows sent", self.rows_sent),
            ("rows succeeded", self.rows_succeeded),
            ("rows rejected", self.rows_rejected),
            *((name.replace("_", " "), count) for name, count in sorted(self.details.items())),
            ("requests", requests["total"]),
            ("requests retried", requests["retried"]),
            ("requests maybe applied twice", requests["maybe_applied_twice"]),
            ("seconds throttled", requests["throttled_seconds"]),
            ("duration (s)", round(self.duration_seconds, 1)),
            ("rows/s", round(self.rows_per_second)),
        ]
        if self.stopped_by is not None:
            rows.append(("stopped", f"after row {self.rows_read}: {self.stopped_by}"))
        lines = ["| run report | |", "| --- | --- |"]
        lines += [f"| {name} | {str(value).replace('|', '/')} |" for name, value in rows]
        lines += [f"| rejected | {r.describe().replace('|', '/')} |" for r in self.rejected_rows[:5]]
        return "\n".join(lines)


def summarize(reports: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One report for the runs of a partitioned sync (their ``as_dict()``): counts added up, the slowest
    partition's duration, the first rejected rows, what stopped any of them."""
    if not reports:
        raise ValueError("no run reports to summarize")
    added = ("rows_read", "rows_sent", "rows_succeeded", "rows_rejected")
    summary: dict[str, Any] = {
        "operation": reports[0]["operation"],
        "api": reports[0]["api"],
        "target": reports[0]["target"],
        "partitions": len(reports),
        **{name: sum(int(r[name]) for r in reports) for name in added},
    }
    requests: Counter[str] = Counter()
    details: Counter[str] = Counter()
    classified: Counter[str] = Counter()
    for report in reports:
        requests.update(report["requests"])
        details.update(report["details"])
        classified.update((report.get("sync_state") or {}).get("classified") or {})
    summary["requests"] = {**dict(requests), "throttled_seconds": round(requests["throttled_seconds"], 3)}
    summary["details"] = dict(details)
    summary["classified"] = dict(classified)
    summary["rejected_rows"] = [row for report in reports for row in report["rejected_rows"]][
        :DEFAULT_REJECTS_KEPT
    ]
    summary["duration_seconds"] = max(float(r["duration_seconds"]) for r in reports)
    summary["stopped"] = [
        r["stopped"] | {"partition": r.get("partition")} for r in reports if r.get("stopped")
    ]
    return summary


# -- the reject limit -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RejectLimit:
    """``max_rejected``: a whole number of rows, or a fraction of the rows read in [0, 1)."""

    count: int | None = None
    fraction: float | None = None

    @classmethod
    def parse(cls, value: Any) -> RejectLimit:
        """From an int (a count), a float in [0, 1) (a fraction), or their text ("10", "0.05", "5%")."""
        if isinstance(value, RejectLimit):
            return value
        if isinstance(value, bool) or value is None:
            raise ValueError(f"max_rejected must be a count or a fraction in [0, 1), not {value!r}")
        if isinstance(value, str):
            text = value.strip()
            try:
                if text.endswith("%"):
                    return cls._fraction(float(text[:-1]) / 100, value)
                if text.lstrip("+").isdigit():
                    return cls._count(int(text), value)
                return cls._fraction(float(text), value)
            except ValueError:
                raise ValueError(
                    f"max_rejected must be a count or a fraction in [0, 1), not {value!r}"
                ) from None
        if isinstance(value, int):
            return cls._count(value, value)
        if isinstance(value, float):
            return cls._fraction(value, value)
        raise ValueError(f"max_rejected must be a count or a fraction in [0, 1), not {value!r}")

    @classmethod
    def _count(cls, count: int, original: Any) -> RejectLimit:
        if count < 0:
            raise ValueError(f"max_rejected must not be negative, got {original!r}")
        return cls(count=count)

    @classmethod
    def _fraction(cls, fraction: float, original: Any) -> RejectLimit:
        if not 0.0 <= fraction < 1.0:
            raise ValueError(f"a fraction for max_rejected lies in [0, 1), got {original!r}")
        return cls(fraction=fraction)

    def exceeded_by(self, rejected: int, read: int) -> bool:
        if self.count is not None:
            return rejected > self.count
        return rejected > (self.fraction or 0.0) * read

    def describe(self) -> str:
        if self.count is not None:
            return f"{self.count} row(s)"
        return f"{(self.fraction or 0.0):.2%} of the rows read"


class TooManyRejectedRows(Exception):
    """More rows were rejected than ``max_rejected`` allows; raised after every good row was sent."""

    def __init__(self, report: RunReport, limit: RejectLimit) -> None:
        self.report = report
        self.limit = limit
        firsts = "; ".join(r.describe() for r in report.rejected_rows[:5])
        more = report.rows_rejected - min(5, len(report.rejected_rows))
        super().__init__(
            f"{report.rows_rejected} of {report.rows_read} row(s) rejected, more than max_rejected "
            f"({limit.describe()}); the {report.rows_succeeded} good row(s) were written. "
            f"First rejects: {firsts}" + (f" (and {more} more)" if more > 0 else "")
        )


# -- progress lines ---------------------------------------------------------------------------------------


class Log(Protocol):
    """A stdlib logger or Airflow's task logger (structlog): both format ``%s`` arguments."""

    def info(self, msg: Any, /, *args: Any) -> Any: ...

    def warning(self, msg: Any, /, *args: Any) -> Any: ...

    def error(self, msg: Any, /, *args: Any) -> Any: ...


class ProgressLog:
    """A line every ``interval`` seconds on long runs: rows done, rate, time left when the total is known."""

    def __init__(
        self,
        logger: Log,
        *,
        interval: float = DEFAULT_PROGRESS_INTERVAL,
        total: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.log = logger
        self.interval = interval
        self.total = total
        self._clock = clock
        self._started = clock()
        self._next = self._started + interval

    def tick(self, report: RunReport) -> None:
        """Cheap enough to call once a row: one clock read, a line only when due."""
        now = self._clock()
        if now < self._next:
            return
        self._next = now + self.interval
        elapsed = now - self._started
        rate = report.rows_read / elapsed if elapsed > 0 else 0.0
        line = (
            f"{report.rows_read} row(s) read, {report.rows_succeeded} written, "
            f"{report.rows_rejected} rejected; {rate:.0f} rows/s"
        )
        if self.total and rate > 0:
            left = max(0, self.total - report.rows_read) / rate
            line += f", about {_duration(left)} left ({report.rows_read * 100 // self.total}%)"
        self.log.info("%s", line)


def _duration(seconds: float) -> str:
    seconds = int(seconds + 0.5)
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"
