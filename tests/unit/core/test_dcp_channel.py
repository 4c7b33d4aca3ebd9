"""The DCP channel (core.dcp_channel) with a fake API and a fake import path: which channel a change set
takes, the file it writes, what Upload History's answer does to the sync state, and a retried try."""

from __future__ import annotations

import csv
import io
import logging
from pathlib import Path
from types import SimpleNamespace

import msgspec
import numpy as np
import pytest

from airflow_provider_optimizely.core.dcp_channel import (
    ChannelSettings,
    FileOutcome,
    UploadHistoryTimeout,
    choose_channel,
    parse_method,
    parse_threshold,
    sync_by_channel,
)
from airflow_provider_optimizely.core.dcp_channel.spool import ChangeSpool
from airflow_provider_optimizely.core.incremental import ChangeFilter, encoded_bodies
from airflow_provider_optimizely.core.page import Page
from airflow_provider_optimizely.core.report import RunReport, TooManyRejectedRows
from airflow_provider_optimizely.core.sync import Batch
from airflow_provider_optimizely.core.sync_state import StateStore
from airflow_provider_optimizely.core.writers.dcp import DcpProfileWriter

log = logging.getLogger(__name__)


# -- the choice ---------------------------------------------------------------------------------------


def test_auto_takes_the_file_from_the_threshold_on_and_the_api_below_it():
    assert choose_channel("auto", 120_000, 20_000).reason == "bulk: 120,000 changed ≥ threshold 20,000"
    assert choose_channel("auto", 20_000, 20_000).channel == "bulk"
    below = choose_channel("auto", 19_999, 20_000)
    assert (below.channel, below.reason) == ("rest", "rest: 19,999 changed < threshold 20,000")


def test_rest_and_bulk_force_their_channel_whatever_the_size():
    assert choose_channel("rest", 10**6, 1).channel == "rest"
    assert choose_channel("bulk", 1, 10**6).channel == "bulk"
    assert choose_channel("bulk", 1, 10**6).reason == "bulk: method='bulk' (1 changed)"


def test_bad_settings_are_refused():
    assert parse_method(" Bulk ") == "bulk"
    assert parse_threshold("20_000") == 20_000
    with pytest.raises(ValueError, match="one of auto, rest, bulk"):
        parse_method("s3")
    with pytest.raises(ValueError, match="at least 1"):
        parse_threshold(0)


# -- Upload History's answer --------------------------------------------------------------------------


def test_listed_refusals_are_exact_and_lines_after_an_incomplete_list_are_unknown():
    exact = FileOutcome.of(
        {"status": "processed", "rows_total": 4, "rows_failed": 1, "errors": [{"row": 3, "message": "x"}]}
    )
    written, refused = exact.answers(np.array([2, 3, 4, 5]))
    assert written.tolist() == [True, False, True, True] and refused.tolist() == [False, True, False, False]
    partial = FileOutcome.of(
        {"status": "processed", "rows_total": 9, "rows_failed": 5, "errors": [{"row": 3, "message": "x"}]}
    )
    written, refused = partial.answers(np.array([2, 3, 4, 5]))
    assert written.tolist() == [True, False, False, False] and refused.tolist() == [False, True, False, False]
    whole = FileOutcome.of({"status": "failed", "errors": [{"row": 1, "column": "a", "message": "bad"}]})
    written, refused = whole.answers(np.array([2, 3]))
    assert not written.any() and refused.all()
    assert whole.reason(2) == "DCP refused the whole file: column 'a': bad"


# -- the spool ----------------------------------------------------------------------------------------


def test_the_file_holds_only_rows_that_write_every_attribute_as_dcp_reads_them(tmp_path):
    spool = ChangeSpool(tmp_path)
    spool.set_columns(["plan", "visits"])
    bodies = [
        {"plan": 'pro "plus", yearly', "visits": 3},
        {"plan": "two\nlines", "visits": -1},
        {"plan": "gold"},  # no visits: an empty cell would fail the file
        {"visits": 7, "plan": "free"},
    ]
    sent, _ = encoded_bodies(bodies)
    spool.add(Batch([1, 2, 3, 4], ["c1", "c2", "c3", "c4"], sent), bodies)
    spool.close()
    text = spool.csv_path.read_text("utf-8")
    assert text == 'customerId,plan,visits\nc1,"pro ""plus"", yearly",3\nc2,"two\nlines",-1\nc4,free,7\n'
    assert list(csv.reader(io.StringIO(text)))[1] == ["c1", 'pro "plus", yearly', "3"]
    ((in_file, lines),) = list(spool.read(in_file=True))
    assert in_file.keys == ["c1", "c2", "c4"] and lines.tolist() == [2, 4, 5]  # c2's record ends on line 4
    ((rest, _),) = list(spool.read(in_file=False))
    assert rest.keys == ["c3"] and bytes(memoryview(rest.bodies[0])) == b'{"plan":"gold"}'
    assert (spool.items, spool.in_file) == (4, 3)


# -- the whole flow -----------------------------------------------------------------------------------


class FakeDcp:
    def __init__(self):
        self.writes: list[tuple[str, object]] = []

    def list_attributes(self, table_id):
        return [
            SimpleNamespace(name="plan", datatype="string", format=None, archived=False),
            SimpleNamespace(name="visits", datatype="long", format=None, archived=False),
        ]

    def upsert_profile(self, table_id, customer_id, data):
        # The body as the real client sends it: a spooled item's JSON bytes as they are.
        self.writes.append(
            (customer_id, msgspec.json.decode(data) if isinstance(data, msgspec.Raw) else data)
        )


class FakeImportPath:
    """Uploads kept in memory; DCP 'processes' each at once, refusing the rows of ``refuse``."""

    def __init__(self, refuse=(), status="processed", processes=True):
        self.prefix = "dcp/t/dag.task__run__"
        self.try_number = 1
        self.files: dict[str, bytes] = {}
        self.refuse = set(refuse)
        self.status = status
        self.processes = processes

    def keys_under(self, prefix):
        return [key for key in self.files if key.startswith(prefix)]

    def upload(self, path: Path, key):
        assert key not in self.files
        self.files[key] = path.read_bytes()

    def history(self):
        if not self.processes:
            return [{"s3_key": key, "file_name": key, "status": "pending"} for key in self.files]
        entries = []
        for key, data in self.files.items():
            records = list(csv.reader(io.StringIO(data.decode())))[1:]
            errors = [
                {"row": line, "column": None, "message": "customer blocked"}
                for line, record in enumerate(records, start=2)
                if record[0] in self.refuse
            ]
            entries.append(
                {
                    "s3_key": key,
                    "file_name": key.rsplit("/", 1)[-1],
                    "status": self.status,
                    "rows_total": len(records),
                    "rows_failed": len(errors) if self.status == "processed" else len(records),
                    "errors": errors,
                }
            )
        return entries


def pages(rows, size=50):
    for start in range(0, len(rows), size):
        yield Page(rows=rows[start : start + size])


def people(count, version=""):
    return [{"id": f"c{i}", "plan": f"plan{i}{version}", "visits": str(i)} for i in range(count)]


def sync(rows, target, *, method="auto", threshold=100, changes=None, dcp=None, max_rejected=0, **settings):
    dcp = dcp or FakeDcp()
    writer = DcpProfileWriter(dcp, table_id=7, identifier_column="id")
    report = RunReport(operation="upsert-profiles", api="DCP")
    sync_by_channel(
        pages(rows),
        writer,
        report=report,
        settings=ChannelSettings(method=method, bulk_threshold=threshold, poll_interval=0.01, **settings),
        bulk_target=lambda: target,
        changes=changes,
        max_rejected=max_rejected,
        logger=log,
        sleep=lambda seconds: None,
    )
    return report, dcp


def test_auto_uploads_one_file_above_the_threshold_and_uses_the_api_below_it():
    target = FakeImportPath()
    report, dcp = sync(people(150), target)
    assert dcp.writes == [] and len(target.files) == 1
    assert report.channel["reason"] == "bulk: 150 changed ≥ threshold 100"
    assert (report.rows_sent, report.rows_succeeded, report.channel["rows_in_file"]) == (150, 150, 150)
    report, dcp = sync(people(99), FakeImportPath())
    assert report.channel["reason"] == "rest: 99 changed < threshold 100"
    assert len(dcp.writes) == 99 and dcp.writes[0] == ("c0", {"plan": "plan0", "visits": 0})


def test_rows_with_an_empty_attribute_go_through_the_api_beside_the_file():
    rows = people(120)
    rows[5]["visits"] = ""
    target = FakeImportPath()
    report, dcp = sync(rows, target)
    assert dcp.writes == [("c5", {"plan": "plan5"})]
    assert (report.channel["rows_in_file"], report.channel["rows_by_profile_api"]) == (119, 1)
    assert report.rows_succeeded == 120


def state_run(tmp_path, run_key="run-1"):
    run = StateStore.from_uri(str(tmp_path / "state")).sync("s").begin_run(run_key, {"t": 1})
    return run, ChangeFilter(run, marks_dispatch=False)


def test_rows_upload_history_refused_are_carried_over_and_the_rest_committed(tmp_path):
    run, changes = state_run(tmp_path)
    target = FakeImportPath(refuse={"c3", "c140"})
    with pytest.raises(TooManyRejectedRows):
        sync(people(150), target, changes=changes)
    run.commit()
    run, changes = state_run(tmp_path, "run-2")
    report, dcp = sync(people(150), FakeImportPath(), changes=changes)
    # Only the two refused rows are sent again: by the API, being fewer than the threshold.
    assert sorted(key for key, _ in dcp.writes) == ["c140", "c3"]
    assert run.counts["carried_over"] == 2 and run.counts["unchanged"] == 148
    assert report.channel["reason"] == "rest: 2 changed < threshold 100"


def test_refused_rows_within_max_rejected_are_reported_as_carried_over(tmp_path):
    run, changes = state_run(tmp_path)
    report, _ = sync(people(150), FakeImportPath(refuse={"c7"}), changes=changes, max_rejected=5)
    assert report.details["carried_over"] == 1 and report.channel["carried_over_keys"] == ["c7"]
    assert report.rows_rejected == 1 and "customer blocked" in report.rejected_rows[0].reason
    assert run.acknowledged == {"ok": 149, "failed": 1, "deleted": 0}


def test_a_retry_after_a_crash_waits_for_the_same_file_and_commits_once(tmp_path):
    run, changes = state_run(tmp_path)
    target = FakeImportPath(processes=False)
    with pytest.raises(UploadHistoryTimeout):
        sync(people(150), target, changes=changes, upload_timeout=0.0)
    run.abandon()  # the task failed: its checkpoints stay for the retry
    assert len(target.files) == 1
    retry, changes = state_run(tmp_path)  # the same run key: Airflow's retry
    assert retry.resumed and retry.unanswered_before == 150
    target.processes, target.try_number = True, 2
    report, dcp = sync(people(150), target, changes=changes)
    assert len(target.files) == 1 and report.channel["reused_upload"] is True and dcp.writes == []
    assert retry.counts["resent"] == 150
    retry.commit()
    run, changes = state_run(tmp_path, "run-2")
    report, dcp = sync(people(150), FakeImportPath(), changes=changes)
    assert report.channel["changed"] == 0 and run.counts["unchanged"] == 150


def test_a_dry_run_says_which_channel_it_would_take_and_sends_nothing(tmp_path):
    store = StateStore.from_uri(str(tmp_path / "state")).sync("s")
    run = store.begin_run("r", {"t": 1}, dry_run=True)
    target = FakeImportPath()
    report, dcp = sync(people(150), target, changes=ChangeFilter(run, marks_dispatch=False))
    assert report.channel == {
        "method": "auto",
        "channel": "bulk",
        "reason": "bulk: 150 changed ≥ threshold 100",
        "dry_run": True,
    }
    assert dcp.writes == [] and target.files == {}


def test_a_retry_finds_the_earlier_file_in_upload_history_when_dcp_removed_it_from_s3(tmp_path):
    run, changes = state_run(tmp_path)
    target = FakeImportPath(processes=False)
    with pytest.raises(UploadHistoryTimeout):
        sync(people(150), target, changes=changes, upload_timeout=0.0)
    run.abandon()
    target.keys_under = lambda prefix: []  # DCP processed the object and removed it from the bucket
    target.processes, target.try_number = True, 2
    _, changes = state_run(tmp_path)
    report, _ = sync(people(150), target, changes=changes)
    assert len(target.files) == 1 and report.channel["reused_upload"] is True
