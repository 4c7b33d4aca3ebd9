"""Commits: atomic, compare-and-swap between attempts, independent between key ranges, cleaned up."""

from __future__ import annotations

import threading

import pytest

from airflow_provider_optimizely.core.sync_state import KeyRange, StateConflictError
from airflow_provider_optimizely.core.sync_state import generation as generation_module
from airflow_provider_optimizely.core.sync_state import manifest as manifest_module
from tests.unit.core.sync_state.conftest import all_files
from tests.unit.core.sync_state.syncing import run_sync, source

SIGNATURE = {"target": "profile store scope"}


def names_under(store, part: str) -> list[str]:
    return [path for path in all_files(store) if f"/{part}/" in path]


def test_a_crash_between_the_files_and_the_manifest_leaves_the_old_state(new_store, monkeypatch):
    rows = source(1000)
    run = new_store().sync("s").begin_run("r1", SIGNATURE)
    run_sync(run, rows)
    run.commit()

    run = new_store().sync("s").begin_run("r2", SIGNATURE)
    run_sync(run, {k: v + b"!" for k, v in rows.items()})

    def killed(*args, **kwargs):
        raise SystemExit("killed after the files, before the manifest")

    monkeypatch.setattr("airflow_provider_optimizely.core.sync_state.commit.publish", killed)
    with pytest.raises(SystemExit):
        run.commit()
    monkeypatch.undo()

    store = new_store()
    assert (
        len({path.split("/generations/")[1].split("/")[0] for path in names_under(store, "generations")}) == 2
    )
    described = store.sync("s").describe()
    assert (described["generation"], described["keys"]) == (1, 1000)
    again = store.sync("s").begin_run("r2", SIGNATURE)  # the retry: resumes, all acknowledged already
    assert again.acknowledged_before == 1000
    assert run_sync(again, {k: v + b"!" for k, v in rows.items()}).keys == []
    assert again.commit().generation == 2
    # The half-made generation is gone; generations 1 (the previous) and 2 remain.
    assert (
        len({path.split("/generations/")[1].split("/")[0] for path in names_under(store, "generations")}) == 2
    )


def test_two_attempts_from_one_generation_cannot_both_commit(new_store):
    rows = source(500)
    run = new_store().sync("s").begin_run("r1", SIGNATURE)
    run_sync(run, rows)
    run.commit()

    one = new_store().sync("s").begin_run("r2", SIGNATURE)
    other = new_store().sync("s").begin_run("r3", SIGNATURE)
    run_sync(one, {"a": b"1"})
    run_sync(other, {"b": b"2"})
    one.commit()
    with pytest.raises(StateConflictError, match="moved from generation 1 to 2 by run 'r2'"):
        other.commit()

    # Nothing the losing attempt was told by the API is lost: the next run commits it first.
    run = new_store().sync("s").begin_run("r4", SIGNATURE)
    assert run.recovered == ["r3"]
    assert run.committed_keys == 502


def test_the_manifest_is_created_only_once_per_generation(new_store):
    """The compare-and-swap itself: the second creation of a generation's manifest fails, even when
    both attempts passed the re-read (the race that a check alone would leave open)."""
    run = new_store().sync("s").begin_run("r1", SIGNATURE)
    run_sync(run, {"a": b"1"})
    first = run.commit()
    store = new_store()
    area = store.sync("s").area
    assert not manifest_module.publish(area.storage, area.path, first)


def test_two_key_ranges_commit_at_the_same_time(new_store):
    rows = source(3000)
    ranges = [KeyRange(0, 2), KeyRange(1, 2)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def sync(key_range: KeyRange) -> None:
        try:
            run = new_store().sync("split", key_range).begin_run("r1", SIGNATURE)
            run_sync(run, rows)
            barrier.wait(timeout=60)
            run.commit()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=sync, args=(r,)) for r in ranges]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    store = new_store()
    counts = [store.sync("split", r).describe()["keys"] for r in ranges]
    assert sum(counts) == 3000
    assert all(1300 < count < 1700 for count in counts)
    assert store.key_ranges("split") == ranges


def test_state_spread_over_many_files_survives_a_change_of_file_count(new_store, monkeypatch):
    monkeypatch.setattr(generation_module, "KEYS_PER_FILE", 100)
    rows = source(1000)
    run = new_store().sync("s").begin_run("r1", SIGNATURE)
    run_sync(run, rows, fails=lambda key: key.endswith("7"))
    first = run.commit()
    assert len(first.files) == 16
    assert sum(f.keys for f in first.files) == 1000

    monkeypatch.setattr(generation_module, "KEYS_PER_FILE", 300)
    more = {**rows, **source(500, start=1000)}
    run = new_store().sync("s").begin_run("r2", SIGNATURE)
    assert run.committed_keys == 1000
    sent = run_sync(run, more)
    assert len(sent.keys) == 500 + 100  # the new keys and the carried-over ones
    second = run.commit()
    assert len(second.files) == 8
    assert (second.keys, second.failed) == (1500, 0)
    run = new_store().sync("s").begin_run("r3", SIGNATURE)
    assert run_sync(run, more).keys == []


def test_a_run_with_nothing_to_record_keeps_the_files(local_store):
    rows = source(200)
    run = local_store().sync("s").begin_run("r1", SIGNATURE)
    run_sync(run, rows)
    first = run.commit()
    run = local_store().sync("s").begin_run("r2", SIGNATURE)
    run_sync(run, rows)
    second = run.commit({"note": "nothing changed"})
    assert second.generation == 2
    assert second.folder == first.folder
    assert second.last_run["note"] == "nothing changed"


def test_old_generations_and_manifests_are_removed(local_store):
    rows = source(100)
    for number in range(5):
        run = local_store().sync("s").begin_run(f"r{number}", SIGNATURE)
        run_sync(run, {k: v + str(number).encode() for k, v in rows.items()})
        run.commit()
    store = local_store()
    manifests = [path.rsplit("/", 1)[1] for path in names_under(store, "manifests")]
    assert manifests == ["000000000004.json", "000000000005.json"]
    folders = {
        path.split("/generations/")[1].split("/")[0][:12] for path in names_under(store, "generations")
    }
    assert folders == {"000000000004", "000000000005"}
    assert names_under(store, "runs") == []
