"""The sensor's decisions, with a fake hook (no network): check once, defer, poke, resume."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSensorTimeout, TaskDeferred

from airflow_provider_optimizely.models.dcp import UploadHistoryEntry
from airflow_provider_optimizely.sensors.dcp import OptimizelyDcpUploadHistorySensor
from airflow_provider_optimizely.triggers.dcp import OptimizelyDcpUploadHistoryTrigger

KEY = "dcp/1/9/run__try1__abc.csv"
UPLOAD = {"table_id": 9, "s3_key": KEY, "file_name": "run__try1__abc.csv", "rows": 2}


class FakeHook:
    def __init__(self, *entries):
        self.entries = [UploadHistoryEntry.model_validate(e) for e in entries]
        self.calls = []

    def list_upload_history(self, table_id):
        self.calls.append(table_id)
        return iter(self.entries)


def entry(status, **fields):
    return {"file_name": "run__try1__abc.csv", "s3_key": KEY, "status": status, **fields}


def sensor(hook, **kwargs):
    task = OptimizelyDcpUploadHistorySensor(task_id="wait", **{"uploads": UPLOAD, **kwargs})
    task.__dict__["hook"] = hook  # the cached_property's slot
    return task


class FakeTi:
    def __init__(self, pulled):
        self.pulled = pulled
        self.asked = None

    def xcom_pull(self, task_ids):
        self.asked = task_ids
        return self.pulled


def test_construction_reads_no_connection_and_the_connection_is_templated():
    task = OptimizelyDcpUploadHistorySensor(task_id="wait", conn_id="no_such_connection")
    assert "hook" not in task.__dict__
    assert "conn_id" in task.template_fields
    assert OptimizelyDcpUploadHistorySensor(task_id="w").conn_id == "optimizely_default"


def test_a_file_still_pending_defers_to_the_trigger_with_a_fixed_deadline():
    hook = FakeHook(entry("pending"))
    task = sensor(hook, timeout=600, poll_interval=2)
    before = time.time()
    with pytest.raises(TaskDeferred) as deferred:
        task.execute({})
    trigger = deferred.value.trigger
    assert isinstance(trigger, OptimizelyDcpUploadHistoryTrigger)
    assert trigger.files == [KEY] and trigger.table_id == 9 and trigger.poll_interval == 2
    assert before + 600 <= trigger.deadline <= time.time() + 600
    assert deferred.value.method_name == "execute_complete"
    assert hook.calls == [9]  # checked once on the worker first


def test_a_file_already_processed_succeeds_without_deferring():
    result = sensor(FakeHook(entry("processed", rows_total=2, rows_processed=2, rows_failed=0))).execute({})
    assert result["state"] == "done"
    assert result["files"][KEY]["rows_processed"] == 2


def test_resuming_decides_with_the_same_rule_and_fails_with_the_errors():
    task = sensor(FakeHook())
    found = {
        KEY: entry(
            "failed", rows_total=2, rows_failed=2, errors=[{"row": 2, "column": "ltv", "message": "x"}]
        )
    }
    with pytest.raises(AirflowFailException, match="row 2, column 'ltv'"):
        task.execute_complete({}, {"event": "found", "found": found})
    partial = {KEY: entry("processed", rows_total=100, rows_processed=99, rows_failed=1)}
    with pytest.raises(AirflowFailException, match="more than max_rejected"):
        task.execute_complete({}, {"event": "found", "found": partial})
    lenient = sensor(FakeHook(), max_rejected=0.05)
    assert lenient.execute_complete({}, {"event": "found", "found": partial})["state"] == "done"


def test_a_timeout_or_error_event_fails_the_task():
    task = sensor(FakeHook())
    with pytest.raises(AirflowSensorTimeout, match="deadline"):
        task.execute_complete({}, {"event": "timeout", "message": "past the deadline"})
    with pytest.raises(AirflowException, match="could not read Upload History: 401"):
        task.execute_complete({}, {"event": "error", "message": "401"})


def test_poke_mode_waits_then_returns_the_summary():
    hook = FakeHook(entry("processing"))
    task = sensor(hook, deferrable=False)
    assert task.poke({}).is_done is False
    hook.entries = [UploadHistoryEntry.model_validate(entry("processed", rows_total=1, rows_processed=1))]
    done = task.poke({})
    assert done.is_done and done.xcom_value["state"] == "done"


def test_deferrable_can_come_from_a_rendered_template():
    task = sensor(
        FakeHook(entry("processed", rows_total=1, rows_processed=1)), deferrable="False", poll_interval="0"
    )
    assert task.execute({})["state"] == "done"  # poked: a "False" string does not defer
    assert task.deferrable is False and task.poke_interval == 0


def test_files_and_table_default_to_the_upstream_uploads():
    task = OptimizelyDcpUploadHistorySensor(task_id="wait")
    task.__dict__["hook"] = FakeHook(entry("processed", rows_total=1, rows_processed=1))
    task.upstream_task_ids.add("upload")
    ti = FakeTi([UPLOAD, None, {"something": "else"}])
    assert task.execute({"ti": ti})["state"] == "done"
    assert ti.asked == ["upload"]


def test_an_upload_of_no_rows_leaves_nothing_to_wait_for():
    task = sensor(FakeHook(), uploads={"table_id": 9, "s3_key": None, "rows": 0})
    assert task.execute({})["message"] == "nothing was uploaded"


def test_without_uploads_or_upstream_it_says_what_to_do():
    task = OptimizelyDcpUploadHistorySensor(task_id="wait")
    task.__dict__["hook"] = FakeHook()
    with pytest.raises(AirflowException, match="no upload to wait for"):
        task.execute({"ti": SimpleNamespace(xcom_pull=lambda task_ids: None)})


def test_a_bad_max_rejected_fails_when_the_dag_is_parsed():
    with pytest.raises(ValueError, match="max_rejected"):
        OptimizelyDcpUploadHistorySensor(task_id="wait", max_rejected=-1)
