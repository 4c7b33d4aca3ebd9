"""Incremental syncs through a row-sync operator over a fake hook: what the second run sends, what a
failed row and a changed mapping do, a dry run, and a run resumed after its first attempt died."""

from __future__ import annotations

import json
import uuid
from types import SimpleNamespace
from typing import Any

import pytest

from airflow_provider_optimizely.core.errors import BadRequestError
from airflow_provider_optimizely.core.rest import RequestStats
from airflow_provider_optimizely.hooks.odp import OptimizelyOdpHook
from airflow_provider_optimizely.operators.odp import OptimizelyOdpUpsertProfilesOperator
from tests.unit.operators.fakes import Ti, on_the_wire


class Odp(OptimizelyOdpHook):
    """ODP in memory: refuses the emails in ``refuse``, dies (like a killed worker) on ``die_on``."""

    def __init__(self) -> None:
        super().__init__("fake")
        self.__dict__["_client"] = SimpleNamespace(stats=RequestStats())
        self._connection = SimpleNamespace(extra_dejson={}, host=None, password="x")
        self.sent: list[str] = []
        self.refuse: set[str] = set()
        self.die_on: str | None = None

    @property
    def base_url(self) -> str:
        return "https://odp.test/v3"

    def get_schema_object(self, object_type):
        fields = [SimpleNamespace(name=n, type=t) for n, t in (("email", "string"), ("age", "number"))]
        return SimpleNamespace(fields=fields)

    def upsert_profiles(self, profiles):
        profiles = on_the_wire(profiles)
        emails = [p["identifiers"]["email"] for p in profiles]
        if self.die_on in emails:
            raise SystemExit("the worker died")
        bad = [i for i, email in enumerate(emails) if email in self.refuse]
        if bad:
            raise BadRequestError(400, "invalid", invalids=[{"profile": i, "reason": "nope"} for i in bad])
        self.sent.extend(emails)
        return {}


def rows(count: int, age: int = 30, changed: dict[int, int] | None = None) -> list[dict[str, Any]]:
    return [{"email": f"u{i}@x.io", "age": (changed or {}).get(i, age)} for i in range(count)]


def sync(hook: Odp, source: list[dict], ti: Ti | None = None, **kwargs: Any) -> dict[str, Any]:
    op = OptimizelyOdpUpsertProfilesOperator(
        task_id="task", identifier_column="email", rows=source, max_concurrency=1, **kwargs
    )
    op.__dict__["hook"] = hook
    hook.sent = []
    return op.execute({"ti": ti or Ti(dag_id="dag", task_id="task")})  # type: ignore[arg-type]


def test_the_first_run_sends_everything_and_the_next_only_what_changed():
    hook = Odp()
    first = sync(hook, rows(1200))
    assert len(hook.sent) == 1200 and first["sync_state"]["full_reason"] == "first run"
    second = sync(hook, [*rows(1200, changed={5: 99, 700: 1}), {"email": "new@x.io", "age": 1}])
    assert sorted(hook.sent) == sorted(["u5@x.io", "u700@x.io", "new@x.io"])
    state = second["sync_state"]
    assert state["full"] is False
    assert state["classified"]["unchanged"] == 1198
    assert (state["classified"]["changed"], state["classified"]["new"]) == (2, 1)
    assert second["rows_read"] == 1201 and second["rows_sent"] == second["rows_succeeded"] == 3
    sync(hook, [*rows(1200, changed={5: 99, 700: 1}), {"email": "new@x.io", "age": 1}])
    assert hook.sent == []


def test_a_refused_row_is_carried_over_and_sent_next_run():
    hook = Odp()
    hook.refuse = {"u3@x.io"}
    sync(hook, rows(10), max_rejected=1)
    hook.refuse = set()
    again = sync(hook, rows(10))
    assert hook.sent == ["u3@x.io"]
    assert again["sync_state"]["classified"]["carried_over"] == 1
    assert again["sync_state"]["samples"]["carried_over"] == ["u3@x.io"]


def test_a_changed_mapping_sends_everything_and_says_why():
    hook = Odp()
    sync(hook, rows(10))
    remapped = sync(
        hook, [{"email": r["email"], "years": r["age"]} for r in rows(10)], column_mapping={"years": "age"}
    )
    assert len(hook.sent) == 10
    assert remapped["sync_state"]["full_reason"] == "signature changed: mapping"


def test_full_refresh_sends_everything_and_incremental_false_keeps_no_state():
    hook = Odp()
    sync(hook, rows(10))
    assert len(hook.sent) == 0 or (sync(hook, rows(10)) and hook.sent == [])
    refreshed = sync(hook, rows(10), full_refresh=True)
    assert len(hook.sent) == 10 and refreshed["sync_state"]["full_reason"] == "full_refresh"
    plain = sync(hook, rows(10), incremental=False)
    assert len(hook.sent) == 10 and plain["sync_state"] is None


def test_a_dry_run_sends_and_keeps_nothing_but_counts_and_names():
    hook = Odp()
    sync(hook, rows(10))
    preview = sync(hook, [*rows(10, changed={2: 5}), {"email": "n@x.io", "age": 3}], dry_run=True)
    assert hook.sent == [] and preview["rows_sent"] == 0
    state = preview["sync_state"]
    assert (state["classified"]["changed"], state["classified"]["new"], state["classified"]["unchanged"]) == (
        1,
        1,
        9,
    )
    assert state["samples"]["changed"] == ["u2@x.io"] and state["samples"]["new"] == ["n@x.io"]
    sync(hook, [*rows(10, changed={2: 5}), {"email": "n@x.io", "age": 3}])
    assert sorted(hook.sent) == ["n@x.io", "u2@x.io"]  # the dry run kept nothing


def test_a_retry_of_a_run_whose_attempt_died_sends_only_what_had_no_answer():
    hook = Odp()
    source = rows(2000)  # four requests of 500
    ti = Ti(run_id=f"scheduled__{uuid.uuid4().hex}", dag_id="dag", task_id="task")
    hook.die_on = "u1500@x.io"  # the fourth request
    with pytest.raises(SystemExit):
        sync(hook, source, ti=ti)
    hook.die_on = None
    ti.try_number = 2
    retried = sync(hook, source, ti=ti)
    assert hook.sent == [f"u{i}@x.io" for i in range(1500, 2000)]
    state = retried["sync_state"]
    assert state["resumed"] is True and state["acknowledged_before"] == 1500
    assert state["classified"]["acknowledged"] == 1500


def test_partitions_send_every_row_once_and_keep_their_own_state():
    from airflow_provider_optimizely.core.report import summarize

    hook = Odp()
    source = rows(1000)
    reports, sent = [], []
    for index in range(4):
        reports.append(sync(hook, source, partition=f"{index}/4"))
        sent += hook.sent
    assert sorted(sent) == sorted(r["email"] for r in source)  # each row by exactly one partition
    summary = summarize(reports)
    assert summary["rows_read"] == summary["rows_sent"] == 1000 and summary["partitions"] == 4
    again = sync(hook, rows(1000, changed={7: 1}), partition="2/4")
    assert hook.sent in ([], ["u7@x.io"])  # only its own partition's change, if u7 is its
    assert again["partition"] == "2/4" and again["sync_state"]["full"] is False


def test_the_state_can_be_shown_and_reset_from_the_command_line(capsys):
    from airflow_provider_optimizely.sync_state_cli import main

    hook = Odp()
    sync(hook, rows(10))
    sync_id = "dag.task.customers"
    capsys.readouterr()  # the sync's own log lines
    assert main(["show", sync_id]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["key_ranges"][0]["keys"] == 10
    assert main(["reset", sync_id]) == 0
    assert "next run sends every row" in capsys.readouterr().out
    sync(hook, rows(10))
    assert len(hook.sent) == 10
