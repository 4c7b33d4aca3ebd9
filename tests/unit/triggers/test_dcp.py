"""The Upload History trigger against the emulator over loopback: real HTTP, real S3 (moto), real faults."""

from __future__ import annotations

import asyncio
import importlib
import json
import time
import uuid

import pytest

from airflow_provider_optimizely.core.upload_history import FAILED, upload_verdict
from airflow_provider_optimizely.hooks.dcp import OptimizelyDcpHook
from airflow_provider_optimizely.triggers.dcp import OptimizelyDcpUploadHistoryTrigger

HISTORY_ROUTE = "GET /dcp_datasources/{table_id}/upload_history"


@pytest.fixture
def table(emulator, emulator_connections):
    dcp = OptimizelyDcpHook()
    dcp.create_service("trigger")
    created = dcp.create_table(f"t_{uuid.uuid4().hex[:8]}")
    dcp.create_attribute(created.id, "visits", "long")
    return dcp.get_table(created.id)


def upload(emulator, table, name, text):
    s3 = emulator.s3_client(table.aws_access_key, table.aws_secret_key.get_secret_value())
    key = f"{table.s3_path}/{name}"
    s3.put_object(Bucket="optimizely-import", Key=key, Body=text.encode())
    return key


def trigger_for(table, key, **kwargs):
    settings = {"deadline": time.time() + 30, "poll_interval": 0.05, "max_poll_interval": 0.2, **kwargs}
    return OptimizelyDcpUploadHistoryTrigger(
        conn_id="optimizely_default", table_id=table.id, files=[key], **settings
    )


def first_event(trigger, timeout=20):
    async def run():
        async for event in trigger.run():
            return event
        return None

    return asyncio.run(asyncio.wait_for(run(), timeout)).payload


def test_it_serialises_to_kwargs_that_rebuild_the_same_trigger():
    trigger = OptimizelyDcpUploadHistoryTrigger(
        conn_id="optimizely_default",
        table_id=7,
        files=["dcp/1/7/a.csv"],
        deadline=1_900_000_000.5,
        poll_interval=5,
        max_poll_interval=60,
        max_rejected="5%",
    )
    classpath, kwargs = trigger.serialize()
    kwargs = json.loads(json.dumps(kwargs))  # what the metadata DB keeps
    module, _, name = classpath.rpartition(".")
    rebuilt = getattr(importlib.import_module(module), name)(**kwargs)
    assert rebuilt.serialize() == (classpath, kwargs)
    assert kwargs["deadline"] == 1_900_000_000.5  # absolute: a triggerer restart keeps the same deadline


def test_it_waits_through_pending_then_reports_the_processed_file(emulator, table):
    emulator.set_processing_delay(0.5)
    key = upload(emulator, table, "a.csv", "customerId,visits\nc1,1\nc2,2\n")
    event = first_event(trigger_for(table, key))
    assert event["event"] == "found"
    entry = event["found"][key]
    assert (entry["status"], entry["rows_total"], entry["rows_processed"]) == ("processed", 2, 2)
    json.dumps(event)  # the event crosses from the triggerer to a worker


def test_a_503_a_429_and_a_dropped_connection_while_polling_do_not_fail_it(emulator, table):
    key = upload(emulator, table, "b.csv", "customerId,visits\nc1,1\n")
    emulator.set_faults("dcp", route=HISTORY_ROUTE, next=["503", "429", "drop"], retry_after=1)
    started = time.monotonic()
    event = first_event(trigger_for(table, key))
    assert event["event"] == "found" and event["found"][key]["status"] == "processed"
    received = emulator.received("dcp")
    assert {kind: received["faults"][f"{HISTORY_ROUTE} -> {kind}"] for kind in ("503", "429", "drop")} == {
        "503": 1,
        "429": 1,
        "drop": 1,
    }
    assert received["requests"][HISTORY_ROUTE] >= 1  # then real answers
    # DCP asks at least 60 s after a 429 or 503 (scaled by the emulator's time scale): both were waited out.
    assert time.monotonic() - started >= 2 * 60 * emulator.config()["time_scale"]


def test_a_failed_file_ends_it_with_the_files_errors(emulator, table):
    key = upload(emulator, table, "c.csv", "customerId,visits\nc1,1\nc2,two\n")
    event = first_event(trigger_for(table, key))
    assert event["found"][key]["status"] == "failed"
    verdict = upload_verdict(event["found"])
    assert verdict.state == FAILED
    assert "row 3, column 'visits'" in verdict.message


def test_it_gives_up_at_its_deadline_with_a_timeout_event(emulator, table):
    emulator.set_processing_delay(60)
    key = upload(emulator, table, "d.csv", "customerId,visits\nc1,1\n")
    event = first_event(trigger_for(table, key, deadline=time.time() + 0.3))
    assert event["event"] == "timeout"
    assert key in event["message"]


def test_an_error_that_waiting_will_not_fix_ends_it_at_once(emulator, table, monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_OPTIMIZELY_DEFAULT",
        emulator.connection_json("optimizely_default").replace(emulator.keys["dcp_token"], "wrong-token"),
    )
    event = first_event(trigger_for(table, "dcp/x/y/z.csv"))
    assert event["event"] == "error"
    assert "401" in event["message"] or "403" in event["message"]
    assert "wrong-token" not in event["message"]
