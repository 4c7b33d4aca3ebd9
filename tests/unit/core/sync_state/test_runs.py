"""Change detection, carried-over failures, mirror-mode deletes and dry runs, on a local and an S3 store."""

from __future__ import annotations

import pytest

from airflow_provider_optimizely.core.sync_state import ItemClass, RunClosedError, fingerprint, key_hashes
from tests.unit.core.sync_state.conftest import all_files
from tests.unit.core.sync_state.syncing import change, run_sync, source

SIGNATURE = {"target": "data connection 1", "mapping": {"email": "email"}, "primary_key": "user_id"}


def test_first_run_is_full_and_sends_every_key(new_store):
    state = new_store().sync("dag.task.target")
    rows = source(2000)

    run = state.begin_run("run-1", SIGNATURE)
    assert (run.full, run.full_reason, run.resumed, run.base_generation) == (True, "first run", False, 0)
    sent = run_sync(run, rows)
    manifest = run.commit({"rows_read": len(rows)})

    assert sorted(sent.keys) == sorted(rows)
    assert (manifest.generation, manifest.keys, manifest.failed) == (1, 2000, 0)
    assert manifest.last_run["classified"]["new"] == 2000
    assert manifest.last_run["rows_read"] == 2000


def test_second_run_sends_exactly_the_changed_and_new_keys_and_finds_the_removed(new_store):
    rows = source(5000)
    first = new_store().sync("s").begin_run("run-1", SIGNATURE)
    run_sync(first, rows)
    first.commit()
    rows2, changed, new, removed = change(rows, 0.01, 0.001, 0.001)

    run = new_store().sync("s").begin_run("run-2", SIGNATURE)  # a new StateStore object: another worker
    assert (run.full, run.full_reason, run.committed_keys) == (False, None, 5000)
    sent = run_sync(run, rows2)

    assert sorted(sent.keys) == sorted(changed | new)
    assert run.counts["changed"] == len(changed) == 50
    assert run.counts["new"] == len(new) == 5
    assert run.counts["unchanged"] == 5000 - 50 - 5
    assert run.unseen_count() == len(removed) == 5
    assert sorted(run.unseen_keys()) == sorted(removed)
    manifest = run.commit()
    assert manifest.keys == 5005  # not mirror mode: a removed key stays in the state


def test_a_changed_signature_makes_a_full_run_and_says_what_changed(new_store):
    rows = source(300)
    run = new_store().sync("s").begin_run("run-1", SIGNATURE)
    run_sync(run, rows)
    run.commit()

    remapped = {**SIGNATURE, "mapping": {"email": "mail"}, "primary_key": "id"}
    run = new_store().sync("s").begin_run("run-2", remapped)
    assert run.full
    assert run.full_reason == "signature changed: mapping, primary_key"
    assert run.signature_changes == ["mapping", "primary_key"]
    sent = run_sync(run, dict(list(rows.items())[:200]))
    assert len(sent.keys) == 200  # the payloads are the same, but the target or mapping is not
    assert run.counts["unchanged"] == 200
    manifest = run.commit()
    # The old keys belonged to the old signature: the new state holds what this run sent.
    assert (manifest.keys, manifest.signature) == (200, remapped)

    again = new_store().sync("s").begin_run("run-3", {**remapped})
    assert (again.full, again.full_reason) == (False, None)


def test_the_signature_is_compared_as_json(local_store):
    run = local_store().sync("s").begin_run("run-1", {"columns": ("a", "b"), "x": 1})
    run.commit()
    run = local_store().sync("s").begin_run("run-2", {"x": 1, "columns": ["a", "b"]})
    assert not run.full


def test_full_refresh_sends_everything_and_keeps_the_state(new_store):
    rows = source(300)
    run = new_store().sync("s").begin_run("run-1", SIGNATURE)
    run_sync(run, rows)
    run.commit()

    run = new_store().sync("s").begin_run("run-2", SIGNATURE, full_refresh=True)
    assert (run.full, run.full_reason) == (True, "full_refresh")
    sent = run_sync(run, dict(list(rows.items())[:100]))
    assert len(sent.keys) == 100
    assert run.commit().keys == 300


def test_failed_keys_keep_their_old_fingerprint_and_are_carried_over(new_store):
    rows = source(1000)
    run = new_store().sync("s").begin_run("run-1", SIGNATURE)
    run_sync(run, rows, fails=lambda key: key in {"user-3", "user-500"})
    manifest = run.commit()
    assert (manifest.keys, manifest.failed) == (1000, 2)
    described = new_store().sync("s").describe()
    assert sorted(described["carried_over_sample"]) == ["user-3", "user-500"]
    assert (described["ok"], described["failed"]) == (998, 2)

    # user-5 changes and fails: it keeps its old fingerprint, so the next run sees it changed still.
    rows2 = {**rows, "user-5": b"changed"}
    run = new_store().sync("s").begin_run("run-2", SIGNATURE)
    sent = run_sync(run, rows2, fails=lambda key: key == "user-5")
    assert sorted(sent.keys) == ["user-3", "user-5", "user-500"]
    assert run.counts["carried_over"] == 2
    assert sorted(run.samples["carried_over"]) == ["user-3", "user-500"]
    run.commit()

    run = new_store().sync("s").begin_run("run-3", SIGNATURE)
    sent = run_sync(run, rows2)
    assert sent.keys == ["user-5"]
    assert (run.counts["carried_over"], run.counts["changed"]) == (1, 0)
    assert run.commit().failed == 0


def test_a_failed_new_key_is_carried_over_too(local_store):
    run = local_store().sync("s").begin_run("run-1", SIGNATURE)
    run_sync(run, source(10), fails=lambda key: key == "user-1")
    run.commit()
    run = local_store().sync("s").begin_run("run-2", SIGNATURE)
    assert run_sync(run, source(10)).keys == ["user-1"]


def test_mirror_mode_deletes_leave_the_state(new_store):
    rows = source(1000)
    run = new_store().sync("s").begin_run("run-1", SIGNATURE)
    run_sync(run, rows)
    run.commit()
    rows2, _, _, removed = change(rows, 0.0, 0.0, 0.01)

    run = new_store().sync("s").begin_run("run-2", SIGNATURE)
    run_sync(run, rows2)
    unseen = list(run.unseen_keys())
    assert sorted(unseen) == sorted(removed)
    run.acknowledge_deleted(unseen[:4])  # the API deleted four; the others failed
    assert run.unseen_count() == len(removed) - 4
    manifest = run.commit()
    assert manifest.keys == 1000 - 4
    assert manifest.last_run["acknowledged"]["deleted"] == 4

    run = new_store().sync("s").begin_run("run-3", SIGNATURE)
    run_sync(run, rows2)
    assert sorted(run.unseen_keys()) == sorted(set(removed) - set(unseen[:4]))


def test_a_key_that_comes_back_after_its_delete_is_new(local_store):
    run = local_store().sync("s").begin_run("run-1", SIGNATURE)
    run_sync(run, source(10))
    run.commit()
    run = local_store().sync("s").begin_run("run-2", SIGNATURE)
    run_sync(run, source(9))
    run.acknowledge_deleted(list(run.unseen_keys()))
    run.commit()
    run = local_store().sync("s").begin_run("run-3", SIGNATURE)
    assert run_sync(run, source(10)).keys == ["user-9"]
    assert run.counts["new"] == 1


def test_an_empty_source_sees_every_key_as_gone(local_store):
    """The operator's guard needs the count: never delete when the source is empty."""
    run = local_store().sync("s").begin_run("run-1", SIGNATURE)
    run_sync(run, source(50))
    run.commit()
    run = local_store().sync("s").begin_run("run-2", SIGNATURE)
    assert (run.items_classified, run.unseen_count()) == (0, 50)


def test_a_dry_run_classifies_and_writes_nothing(new_store):
    rows = source(500)
    run = new_store().sync("s").begin_run("run-1", SIGNATURE)
    run_sync(run, rows, fails=lambda key: key == "user-1")
    run.commit()
    store = new_store()
    before = all_files(store)
    rows2, changed, new, removed = change(rows, 0.02, 0.01, 0.01)

    run = store.sync("s").begin_run("run-2", SIGNATURE, dry_run=True)
    for keys in [list(rows2)[i : i + 100] for i in range(0, len(rows2), 100)]:
        run.classify(key_hashes(keys), [fingerprint(rows2[k]) for k in keys], keys=keys)
    assert run.counts["changed"] == len(changed - {"user-1"})
    assert run.counts["new"] == len(new)
    assert run.counts["carried_over"] == 1
    assert run.unseen_count() == len(removed)
    assert len(run.summary()["samples"]["changed"]) == 5
    with pytest.raises(RunClosedError):
        run.acknowledge(key_hashes(["user-1"]), ["user-1"], [1], True)
    with pytest.raises(RunClosedError):
        run.commit()
    run.abandon()
    assert all_files(store) == before


def test_classes_and_send_mask_agree(local_store):
    run = local_store().sync("s").begin_run("run-1", SIGNATURE)
    run_sync(run, source(10))
    run.commit()
    run = local_store().sync("s").begin_run("run-2", SIGNATURE)
    keys = ["user-1", "user-2", "other"]
    result = run.classify(key_hashes(keys), [fingerprint(source(10)["user-1"]), 5, 6])
    assert [ItemClass(c) for c in result.classes] == [ItemClass.UNCHANGED, ItemClass.CHANGED, ItemClass.NEW]
    assert result.send.tolist() == [False, True, True]
    assert result.indexes().tolist() == [1, 2]
    assert result.counts()["changed"] == 1


def test_keys_of_any_text_come_back_as_they_were(new_store):
    keys = ["zoë", "日本", "", "plain", "bad\udc80"]
    run = new_store().sync("s").begin_run("run-1", SIGNATURE)
    hashes = key_hashes(keys)
    run.dispatching(hashes[:2])
    run.acknowledge(hashes, keys, [1, 2, 3, 4, 5], [True, True, True, False, True])
    assert run.commit().keys == 5
    run = new_store().sync("s").begin_run("run-2", SIGNATURE)
    assert sorted(run.unseen_keys()) == sorted(["zoë", "日本", "", "plain", "bad\\udc80"])
    assert new_store().sync("s").describe()["carried_over_sample"] == ["plain"]
