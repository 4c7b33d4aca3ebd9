"""The Profile Store operators over a fake hook."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_optimizely.core.rest import RequestStats
from airflow_provider_optimizely.hooks.profile_store import OptimizelyProfileStoreHook
from airflow_provider_optimizely.operators.profile_store import (
    OptimizelyProfileStoreDeleteProfilesOperator,
    OptimizelyProfileStorePutProfilesOperator,
)
from tests.unit.operators.fakes import Ti


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


class MirroredStore(OptimizelyProfileStoreHook):
    """A Profile Store in memory: PUT and DELETE."""

    def __init__(self) -> None:
        super().__init__("fake")
        self.__dict__["_client"] = SimpleNamespace(stats=RequestStats())
        self._connection = SimpleNamespace(extra_dejson={}, host=None, password="x")
        self.profiles: dict[str, Any] = {}
        self.deleted: list[str] = []

    @property
    def base_url(self) -> str:
        return "https://store.test"

    def put_profile(self, profile_id, profile):
        created = profile_id not in self.profiles
        self.profiles[profile_id] = profile
        return SimpleNamespace(created=created)

    def delete_profile(self, profile_id, scope=None):
        self.deleted.append(profile_id)
        return self.profiles.pop(profile_id, None) is not None


def mirror(store: MirroredStore, ids: list[str], **kwargs: Any) -> dict:
    op = OptimizelyProfileStorePutProfilesOperator(
        task_id="mirror",
        identifier_column="id",
        rows=[{"id": i, "Name": i.upper()} for i in ids],
        mirror=True,
        **kwargs,
    )
    op.__dict__["hook"] = store
    store.deleted = []
    return op.execute({"ti": Ti(dag_id="dag", task_id="mirror")})  # type: ignore[arg-type]


IDS = [f"p{i}" for i in range(20)]


def test_mirror_mode_deletes_the_ids_gone_from_the_source_and_only_those():
    store = MirroredStore()
    mirror(store, IDS)
    assert sorted(store.profiles) == sorted(IDS) and store.deleted == []
    report = mirror(store, IDS[:-2])  # two rows removed: 10%, within the default guard
    assert sorted(store.deleted) == ["p18", "p19"]
    assert report["details"]["deleted"] == 2 and sorted(store.profiles) == sorted(IDS[:-2])
    again = mirror(store, IDS[:-2])
    assert store.deleted == [] and again["rows_sent"] == 0  # the state forgot the deleted ids


def test_the_mirror_guards_refuse_an_empty_source_and_a_large_drop_before_any_delete():
    store = MirroredStore()
    mirror(store, IDS)
    with pytest.raises(AirflowFailException, match="source is empty"):
        mirror(store, [], force_deletes=True)
    with pytest.raises(AirflowFailException, match=r"would delete 10 of 20 key\(s\) \(50.0%\)"):
        mirror(store, IDS[:10])
    assert store.deleted == [] and len(store.profiles) == 20
    forced = mirror(store, IDS[:10], force_deletes=True)
    assert forced["details"]["deleted"] == 10 and len(store.profiles) == 10


def test_a_dry_run_of_mirror_mode_counts_the_deletes_and_makes_none():
    store = MirroredStore()
    mirror(store, IDS)
    preview = mirror(store, IDS[:-1], dry_run=True)
    assert store.deleted == [] and preview["details"]["would_delete"] == 1
    assert len(store.profiles) == 20


def test_mirror_mode_needs_the_sync_state():
    with pytest.raises(ValueError, match="needs incremental=True"):
        OptimizelyProfileStorePutProfilesOperator(
            task_id="t", identifier_column="id", rows=[], mirror=True, incremental=False
        )
