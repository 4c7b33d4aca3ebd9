"""The ODP operators' decisions over fake hooks (the emulator runs them in
tests/integration)."""

from __future__ import annotations

import json
import re
from types import SimpleNamespace

import pytest
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_optimizely.core.errors import BadRequestError
from airflow_provider_optimizely.core.rest import RequestStats
from airflow_provider_optimizely.hooks.odp import OptimizelyOdpHook
from airflow_provider_optimizely.models.odp import SchemaField, SchemaObject
from airflow_provider_optimizely.operators.odp import (
    OptimizelyOdpCreateObjectTypeOperator,
    OptimizelyOdpRegisterFieldsOperator,
    OptimizelyOdpSendEventsOperator,
)
from tests.unit.operators.fakes import FakeOdp, Ti, on_the_wire, with_hook


def create_table(hook, table_name, display_name=None):
    op = OptimizelyOdpCreateObjectTypeOperator(
        task_id="create", object_type=table_name, display_name=display_name
    )
    return with_hook(op, hook).execute({})


def register(hook, object_type, **kwargs):
    op = OptimizelyOdpRegisterFieldsOperator(task_id="register", object_type=object_type, **kwargs)
    return with_hook(op, hook).execute({})


def test_odp_object_type_is_created_once_with_a_display_name():
    hook = FakeOdp()
    assert create_table(hook, table_name="loyalty_cards") == "loyalty_cards"
    assert hook.objects["loyalty_cards"].display_name == "Loyalty Cards"
    assert create_table(hook, table_name="loyalty_cards") == "loyalty_cards"


def test_odp_duplicate_refusal_after_a_lost_answer_is_success():
    hook = FakeOdp()
    hook.lost_answer = True
    assert create_table(hook, table_name="cards", display_name="Cards") == "cards"


def test_odp_registers_fields_and_treats_a_duplicate_refusal_as_existing():
    hook = FakeOdp()
    hook.objects["cards"] = SchemaObject(name="cards", fields=[SchemaField(name="tier", type="string")])
    result = register(
        hook,
        "cards",
        attributes=[
            {"name": "tier", "type": "string"},
            {"name": "points", "type": "number", "display_name": "Pts"},
        ],
    )
    assert result["created"] == [{"name": "points", "datatype": "number"}]
    assert [f.display_name for f in hook.objects["cards"].fields] == [None, "Pts"]


def test_odp_unknown_object_type_says_to_create_it_first():
    with pytest.raises(AirflowFailException, match="create it first"):
        register(FakeOdp(), "nope", attributes=[{"name": "a", "type": "string"}])


# -- send events ------------------------------------------------------------------------------------------


class EventsOdp(OptimizelyOdpHook):
    def __init__(self, conn_id: str) -> None:
        super().__init__(conn_id)
        self.__dict__["_client"] = SimpleNamespace(stats=RequestStats())
        self.posts: list[list[dict]] = []

    def send_events(self, events):
        events = on_the_wire(events)
        self.posts.append(list(events))
        bad = [i for i, e in enumerate(events) if e.get("data", {}).get("n") == 13]
        if bad:
            raise BadRequestError(400, "invalid", invalids=[{"event": i, "message": "unlucky"} for i in bad])
        return {}


def test_defaults_and_templates():
    op = OptimizelyOdpSendEventsOperator(task_id="t", rows=[], event_type="{{ params.kind }}")
    assert op.conn_id == "optimizely_odp_default"
    assert {"sql", "parameters", "event_type", "identifier_columns", "data_columns"} <= set(
        op.template_fields
    )


def test_events_go_in_batches_of_500_and_a_refused_event_is_reported_while_its_batch_is_resent():
    hook = EventsOdp("fake")
    rows = [{"type": "order", "action": "buy", "email": f"u{i}@x.io", "n": i} for i in range(1001)]
    op = OptimizelyOdpSendEventsOperator(
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
    hook = EventsOdp("fake")
    rows = [{"type": "a", "action": "b", "email": "x@x.io"}, {"email": "y@x.io", "action": "b"}]
    op = OptimizelyOdpSendEventsOperator(task_id="t", rows=rows, identifier_columns=["email"])
    op.__dict__["hook"] = hook
    with pytest.raises(
        AirflowFailException, match=re.escape("row 2 (key 'y@x.io'), column 'type': the event has no type")
    ):
        op.execute({"ti": Ti()})  # type: ignore[arg-type]
    assert len(hook.posts) == 1 and hook.posts[0][0]["identifiers"] == {"email": "x@x.io"}


def test_a_connection_of_another_api_fails_without_retries_naming_both_types(monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_PEOPLE", json.dumps({"conn_type": "optimove", "host": "https://x.io", "password": "k"})
    )
    op = OptimizelyOdpSendEventsOperator(task_id="t", conn_id="people", rows=[{"type": "a"}])
    with pytest.raises(AirflowFailException, match=r"'people' is of type 'optimove'.*'optimizely_odp'"):
        op.execute({"ti": Ti()})  # type: ignore[arg-type]


# -- events by data interval --------------------------------------------------------------------------------


class DyingOdp(EventsOdp):
    """Dies (a killed worker) on the event numbered ``die_on``; counts every event it received."""

    def __init__(self, conn_id: str) -> None:
        super().__init__(conn_id)
        self.die_on: int | None = None

    @property
    def base_url(self) -> str:
        return "https://odp.test/v3"

    def send_events(self, events):
        events = on_the_wire(events)
        if self.die_on is not None and self.die_on in [e.get("data", {}).get("n") for e in events]:
            raise SystemExit("the worker died")
        self.posts.append(events)
        return {}


def send_day(hook, day: int, ti: Ti | None = None, **kwargs):
    from datetime import datetime, timedelta, timezone

    start = datetime(2026, 3, day, tzinfo=timezone.utc)
    rows = [{"type": "order", "action": "buy", "email": f"u{i % 7}@x.io", "n": i} for i in range(1200)]
    op = OptimizelyOdpSendEventsOperator(
        task_id="events", rows=rows, identifier_columns=["email"], max_concurrency=1, **kwargs
    )
    op.__dict__["hook"] = hook
    hook.posts = []
    context = {
        "ti": ti or Ti(dag_id="dag", task_id="events"),
        "data_interval_start": start,
        "data_interval_end": start + timedelta(days=1),
    }
    return op.execute(context)  # type: ignore[arg-type]


def sent(hook) -> list[int]:
    return [event["data"]["n"] for post in hook.posts for event in post]


def test_an_interval_is_sent_once_a_rerun_sends_nothing_and_force_sends_it_again():
    hook = DyingOdp("fake")
    first = send_day(hook, 2)
    assert len(sent(hook)) == 1200 and first["sync_state"]["classified"]["new"] == 1200
    rerun = send_day(hook, 2)
    assert sent(hook) == [] and rerun["sync_state"]["already_done"] is True
    assert rerun["rows_read"] == 1200 and rerun["sync_state"]["classified"]["acknowledged"] == 1200
    forced = send_day(hook, 2, force=True)
    assert len(sent(hook)) == 1200 and forced["sync_state"]["forced"] is True
    send_day(hook, 3)  # another interval (a backfill works the same)
    assert len(sent(hook)) == 1200


def test_a_stopped_interval_resumes_without_resending_what_was_answered():
    hook = DyingOdp("fake")
    ti = Ti(run_id="scheduled__2026-03-05", dag_id="dag", task_id="events")
    hook.die_on = 1100  # the third request of 500
    with pytest.raises(SystemExit):
        send_day(hook, 5, ti=ti)
    hook.die_on = None
    resumed = send_day(hook, 5, ti=ti)
    assert sent(hook) == list(range(1000, 1200))
    state = resumed["sync_state"]
    assert state["resumed"] is True and state["acknowledged_before"] == 1000
    assert state["classified"] == {"new": 0, "acknowledged": 1000, "resent": 200}


def test_a_run_without_a_data_interval_keeps_no_state():
    hook = DyingOdp("fake")
    event = {"type": "t", "action": "a", "identifiers": {"e": "x"}}
    op = OptimizelyOdpSendEventsOperator(task_id="e", rows=[event])
    op.__dict__["hook"] = hook
    context = {"ti": Ti(), "data_interval_start": None, "data_interval_end": None}
    report = op.execute(context)  # type: ignore[arg-type]
    assert report["sync_state"] is None and report["rows_succeeded"] == 1
