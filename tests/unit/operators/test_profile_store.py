"""The Profile Store operators over a fake hook."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from airflow_provider_optimizely.core.rest import RequestStats
from airflow_provider_optimizely.hooks.profile_store import OptimizelyProfileStoreHook
from airflow_provider_optimizely.operators.profile_store import (
    OptimizelyProfileStoreDeleteProfilesOperator,
    OptimizelyProfileStorePutProfilesOperator,
)


class FakeStore(OptimizelyProfileStoreHook):
    def __init__(self, conn_id: str, existing: set[str]) -> None:
        super().__init__(conn_id)
        self.__dict__["_client"] = SimpleNamespace(stats=RequestStats())
        self._connection = SimpleNamespace(extra_dejson={"default_scope": "site"}, host=None, password="x")
        self.existing = existing
        self.calls: list[tuple[str, str | None]] = []

    def delete_profile(self, profile_id, scope=None):
        self.calls.append((profile_id, scope))
        if profile_id in self.existing:
            self.existing.remove(profile_id)
            return True
        return False


def run(op: Any, hook: Any) -> dict:
    op.__dict__["hook"] = hook
    return op.execute({})  # type: ignore[arg-type]


def test_delete_by_ids_twice_succeeds_both_times():
    hook = FakeStore("fake", {"a", "b"})
    op = OptimizelyProfileStoreDeleteProfilesOperator(task_id="t", profile_ids=["a", "b", "c"])
    first = run(op, hook)
    assert first["details"] == {"deleted": 2, "already_deleted": 1}
    assert {scope for _, scope in hook.calls} == {"site"}  # the connection's default_scope
    again = run(OptimizelyProfileStoreDeleteProfilesOperator(task_id="t", profile_ids=["a", "b", "c"]), hook)
    assert again["rows_succeeded"] == 3 and again["details"] == {"already_deleted": 3}


def test_ids_from_a_file(tmp_path):
    path = tmp_path / "ids.csv"
    path.write_text("profile_id\np1\np2\n")
    hook = FakeStore("fake", {"p1"})
    report = run(
        OptimizelyProfileStoreDeleteProfilesOperator(
            task_id="t", path=str(path), id_column="profile_id", scope="s"
        ),
        hook,
    )
    assert hook.calls == [("p1", "s"), ("p2", "s")]
    assert report["details"] == {"deleted": 1, "already_deleted": 1}


def test_arguments():
    op = OptimizelyProfileStoreDeleteProfilesOperator(task_id="t", profile_ids="{{ params.ids }}")
    assert op.profile_ids == "{{ params.ids }}" and "rows" in op.template_fields
    assert op.conn_id == "optimizely_profile_store_default"
    with pytest.raises(ValueError, match="not both"):
        OptimizelyProfileStoreDeleteProfilesOperator(task_id="t", profile_ids=["a"], rows=[{"id": "a"}])


def test_the_put_writer_takes_the_scope_asked_else_the_connection_s():
    hook = FakeStore("fake", set())
    op = OptimizelyProfileStorePutProfilesOperator(task_id="t", identifier_column="id", rows=[])
    assert op.build_writer(hook).scope == "site"
    asked = OptimizelyProfileStorePutProfilesOperator(task_id="t", identifier_column="id", rows=[], scope="s")
    assert asked.build_writer(hook).scope == "s"
