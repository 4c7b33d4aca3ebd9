from __future__ import annotations

import json
import logging

import pytest

from airflow_provider_optimizely.core.report import (
    ProgressLog,
    Rejection,
    RejectLimit,
    RunReport,
    TooManyRejectedRows,
)


@pytest.mark.parametrize(
    ("value", "count", "fraction"),
    [
        (0, 0, None),
        (10, 10, None),
        ("10", 10, None),
        (0.05, None, 0.05),
        ("0.05", None, 0.05),
        ("5%", None, 0.05),
    ],
)
def test_reject_limit_parses_counts_and_fractions(value, count, fraction):
    limit = RejectLimit.parse(value)
    assert limit.count == count
    assert limit.fraction == pytest.approx(fraction) if fraction is not None else limit.fraction is None


@pytest.mark.parametrize("value", [-1, 1.0, 1.5, "abc", True, None, "-3", [1]])
def test_reject_limit_refuses_nonsense(value):
    with pytest.raises(ValueError, match=r"max_rejected|fraction"):
        RejectLimit.parse(value)


def test_reject_limit_decides():
    assert RejectLimit.parse(0).exceeded_by(1, 100)
    assert not RejectLimit.parse(2).exceeded_by(2, 100)
    assert RejectLimit.parse(2).exceeded_by(3, 100)
    assert not RejectLimit.parse(0.1).exceeded_by(10, 100)
    assert RejectLimit.parse(0.1).exceeded_by(11, 100)


def test_report_keeps_only_the_first_rejects_but_counts_them_all_and_is_json():
    report = RunReport(operation="upsert-profiles", api="ODP", rejects_kept=2)
    report.rows_read = 10
    for row in range(5):
        report.reject(Rejection(row=row + 1, key=f"k{row}", reason="bad", column="c"))
    report.requests = {"requests": 4, "retries": 2, "maybe_applied_twice": 1, "throttled_seconds": 0.25}
    report.duration_seconds = 2.0
    data = json.loads(json.dumps(report.as_dict()))
    assert data["rows_rejected"] == 5
    assert data["rejected_rows"] == [
        {"row": 1, "key": "k0", "column": "c", "reason": "bad"},
        {"row": 2, "key": "k1", "column": "c", "reason": "bad"},
    ]
    assert data["requests"] == 4 and data["retried_requests"] == 2
    assert data["requests_maybe_applied_twice"] == 1
    assert data["rows_per_second"] == 5.0


def test_too_many_rejected_lists_the_first_rejects():
    report = RunReport(operation="send-events", api="ODP")
    report.rows_read, report.rows_succeeded = 3, 1
    report.reject(Rejection(row=2, key="a@x", reason="the event has no type", column="type"))
    report.reject(Rejection(row=3, key=None, reason="not valid JSON"))
    message = str(TooManyRejectedRows(report, RejectLimit.parse(0)))
    assert "2 of 3 row(s) rejected" in message
    assert "the 1 good row(s) were written" in message
    assert "row 2 (key 'a@x'), column 'type': the event has no type" in message
    assert "row 3: not valid JSON" in message


def test_progress_lines_come_at_the_interval_with_time_left_when_the_total_is_known(caplog):
    now = [0.0]
    progress = ProgressLog(logging.getLogger("t"), interval=10, total=1000, clock=lambda: now[0])
    report = RunReport(operation="o", api="a")
    with caplog.at_level(logging.INFO, logger="t"):
        report.rows_read = 100
        now[0] = 5.0
        progress.tick(report)
        assert caplog.messages == []
        now[0] = 10.0
        progress.tick(report)
        now[0] = 11.0
        progress.tick(report)
    assert len(caplog.messages) == 1
    assert "100 row(s) read" in caplog.messages[0]
    assert "10 rows/s" in caplog.messages[0]
    assert "about 1m30s left (10%)" in caplog.messages[0]
