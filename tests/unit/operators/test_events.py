"""The send-events operator over a fake ODP hook."""

from __future__ import annotations

import json
import re
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_optimizely.core.errors import BadRequestError
from airflow_provider_optimizely.core.rest import RequestStats
from airflow_provider_optimizely.hooks.odp import OptimizelyOdpHook
from airflow_provider_optimizely.hooks.optimove import OptimoveHook
from airflow_provider_optimizely.operators import OptimizelySendEventsOperator


class FakeOdp(OptimizelyOdpHook):
    def __init__(self, conn_id: str) -> None:
        super().__init__(conn_id)
        self.__dict__["_client"] = SimpleNamespace(stats=RequestStats())
        self.posts: list[list[dict]] = []

    def send_events(self, events):
        self.posts.append(list(events))
        bad = [i for i, e in enumerate(events) if e.get("data", {}).get("n") == 13]
        if bad:
            raise BadRequestError(400, "invalid", invalids=[{"event": i, "message": "unlucky"} for i in bad])
        return {}


class Ti:
    def __init__(self) -> None:
        self.pushed: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


def test_defaults_and_templates():
    op = OptimizelySendEventsOperator(task_id="t", rows=[], event_type="{{ params.kind }}")
    assert op.conn_id == "optimizely_odp_default"
    assert {"sql", "parameters", "event_type", "identifier_columns", "data_columns"} <= set(
        op.template_fields
    )


def test_events_go_in_batches_of_500_and_a_refused_event_is_reported_while_its_batch_is_resent():
    hook = FakeOdp("fake")
    rows = [{"type": "order", "email": f"u{i}@x.io", "n": i} for i in range(1001)]
    op = OptimizelySendEventsOperator(
        task_id="t", rows=rows, identifier_columns=["email"], max_rejected=1, max_concurrency=1
    )
    op.__dict__["hook"] = hook
    report = op.execute({"ti": Ti()})  # type: ignore[arg-type]
    assert [len(p) for p in hook.posts] == [500, 499, 500, 1]
    assert report["rows_sent"] == 1001 and report["rows_succeeded"] == 1000
    assert report["rejected_rows"] == [{"row": 14, "key": "u13@x.io", "column": None, "reason": "unlucky"}]
    assert report["details"] == {"batches_resent_without_invalids": 1}
    json.dumps(report)


def test_an_event_without_type_fails_the_task_after_the_others_were_sent():
    hook = FakeOdp("fake")
    rows = [{"type": "a", "email": "x@x.io"}, {"email": "y@x.io"}]
    op = OptimizelySendEventsOperator(task_id="t", rows=rows, identifier_columns=["email"])
    op.__dict__["hook"] = hook
    with pytest.raises(
        AirflowFailException, match=re.escape("row 2 (key 'y@x.io'), column 'type': the event has no type")
    ):
        op.execute({"ti": Ti()})  # type: ignore[arg-type]
    assert len(hook.posts) == 1 and hook.posts[0][0]["identifiers"] == {"email": "x@x.io"}


def test_events_need_an_odp_connection():
    op = OptimizelySendEventsOperator(task_id="t", rows=[{"type": "a"}])
    with pytest.raises(Exception, match="ODP"):
        op.build_writer(OptimoveHook("x"))


def test_a_connection_of_an_api_without_events_fails_without_retries(monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_PEOPLE", json.dumps({"conn_type": "optimove", "host": "https://x.io", "password": "k"})
    )
    op = OptimizelySendEventsOperator(task_id="t", conn_id="people", rows=[{"type": "a"}])
    with pytest.raises(AirflowFailException, match="send-events is not available on connection 'people'"):
        op.execute({"ti": Ti()})  # type: ignore[arg-type]
