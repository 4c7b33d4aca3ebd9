"""Delta commits: an overlay of the keys answered since the base was written, applied by every reader.

The property test drives the real store through random runs and keeps, beside it, a plain dict of what
each key should be: after every commit the two must agree, whichever of a delta commit or a compaction
the store chose.
"""

from __future__ import annotations

import json
import random

import numpy as np
import pyarrow as pa
import pytest

from airflow_provider_optimizely.core.sync_state import ItemClass, fingerprints, key_hash, key_hashes
from airflow_provider_optimizely.core.sync_state import generation as generation_module
from airflow_provider_optimizely.core.sync_state.commit import OVERLAY_FRACTION
from airflow_provider_optimizely.core.sync_state.generation import (
    DELETED,
    FAILED,
    OK,
    load_committed,
    read_overlay,
)
from airflow_provider_optimizely.core.sync_state.manifest import Manifest
from tests.unit.core.sync_state.conftest import all_files
from tests.unit.core.sync_state.syncing import run_sync, source

SIGNATURE = {"target": "profile store scope", "mapping": None}
UNIVERSE = 400


# -- the reference model -----------------------------------------------------------------------------


def payload(key: str, version: int) -> bytes:
    return f"{key}:{version}".encode()


def print_of(data: bytes) -> int:
    return int(fingerprints([data])[0])


def expected_class(reference: dict[str, tuple[int, int]], key: str, data: bytes) -> ItemClass:
    if key not in reference:
        return ItemClass.NEW
    known, outcome = reference[key]
    if outcome == FAILED:
        return ItemClass.CARRIED_OVER
    return ItemClass.UNCHANGED if known == print_of(data) else ItemClass.CHANGED


def apply_answers(
    reference: dict[str, tuple[int, int]], answers: list[tuple[str, int, int]]
) -> dict[str, tuple[int, int]]:
    """The state after a run's answers (key, fingerprint, outcome), in the order given, as documented: the
    last answer decides, a failure keeps the fingerprint of the last success, a delete removes the key."""
    result = dict(reference)
    last_ok: dict[str, int] = {}
    final: dict[str, int] = {}
    for key, sent, outcome in answers:
        final[key] = outcome
        if outcome == OK:
            last_ok[key] = sent
    for key, outcome in final.items():
        if outcome == DELETED:
            result.pop(key, None)
        else:
            kept = last_ok.get(key, reference[key][0] if key in reference else 0)
            result[key] = (kept, outcome)
    return result


def by_hash(reference: dict[str, tuple[int, int]]) -> list[str]:
    return sorted(reference, key=key_hash)


# -- the property test -------------------------------------------------------------------------------


def next_source(rng: random.Random, rows: dict[str, int], step: int) -> dict[str, int]:
    """Tomorrow's source (key -> payload version): mostly a few keys changed, added or removed; now and
    then a large change (past the compaction threshold), or none at all."""
    rows = dict(rows)
    kind = rng.random()
    touched = 0 if kind < 0.15 else (rng.randint(60, 150) if kind > 0.85 else rng.randint(1, 15))
    for _ in range(touched):
        key = f"k{rng.randrange(UNIVERSE)}"
        if key in rows and rng.random() < 0.25:
            del rows[key]
        else:
            rows[key] = step  # new, or changed
    return rows


def check_state(store, manifest: Manifest, reference: dict[str, tuple[int, int]]) -> None:
    state = store.sync("s")
    area = state.area
    committed = load_committed(area.storage, area.path, manifest)
    keys = by_hash(reference)
    assert committed.hashes.tolist() == [key_hash(key) for key in keys]
    assert committed.fingerprints.tolist() == [reference[key][0] for key in keys]
    assert committed.outcomes.tolist() == [reference[key][1] for key in keys]
    # Any subset of the columns, a table a base file, in hash order.
    for columns in (["key"], ["fingerprint", "key_hash"], ["outcome", "key"]):
        tables = list(area.files(manifest, columns))
        assert len(tables) == len(manifest.files)
        merged = pa.concat_tables(tables)
        assert merged.column_names == columns
        if "key" in columns:
            assert merged.column("key").to_pylist() == keys
    described = state.describe()
    failed = sum(1 for _, outcome in reference.values() if outcome == FAILED)
    assert (described["keys"], described["failed"], described["ok"]) == (
        len(reference),
        failed,
        len(reference) - failed,
    )
    assert described["files"] == len(manifest.all_files())


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_random_runs_agree_with_a_reference_dict(local_store, monkeypatch, seed):
    # Small files: the base spreads over many, and the overlay over a few.
    monkeypatch.setattr(generation_module, "KEYS_PER_FILE", 20)
    rng = random.Random(seed)
    rows = {f"k{i}": 0 for i in range(0, UNIVERSE, 2)}
    reference: dict[str, tuple[int, int]] = {}
    signature = SIGNATURE
    kinds = {"delta": 0, "compaction": 0, "no answers": 0}
    for step in range(1, 41):
        if step == 25:
            signature = {**SIGNATURE, "mapping": {"plan": "plan"}}
        run = local_store().sync("s").begin_run(f"run-{step}", signature)
        full = run.full
        if full and reference:
            assert run.full_reason == "signature changed: mapping"
        keys = list(rows)
        datas = [payload(key, rows[key]) for key in keys]
        hashes, prints = key_hashes(keys), fingerprints(datas)
        classes = run.classify(hashes, prints, keys=keys)
        assert [ItemClass(c) for c in classes.classes] == [
            expected_class(reference, key, data) for key, data in zip(keys, datas, strict=True)
        ]
        assert set(run.unseen_keys()) == set(reference) - set(rows)

        answers: list[tuple[str, int, int]] = []
        if rng.random() > 0.1:  # else: a run that records no answer at all
            sent = classes.indexes()
            oks = [rng.random() > 0.2 for _ in sent]
            run.acknowledge(hashes[sent], [keys[i] for i in sent], prints[sent], oks)
            answers += [
                (keys[i], int(prints[i]), OK if ok else FAILED) for i, ok in zip(sent, oks, strict=True)
            ]
            # Some keys answered twice, the second time with another payload: the last answer decides.
            again = [i for i in sent if rng.random() < 0.1]
            if again:
                other = fingerprints([datas[i] + b"'" for i in again])
                oks = [rng.random() > 0.5 for _ in again]
                run.acknowledge(hashes[again], [keys[i] for i in again], other, oks)
                answers += [
                    (keys[i], int(p), OK if ok else FAILED)
                    for i, p, ok in zip(again, other, oks, strict=True)
                ]
            gone = sorted(set(reference) - set(rows))
            deleted = [key for key in gone if rng.random() < 0.5]
            if deleted:
                run.acknowledge_deleted(deleted)
                answers += [(key, 0, DELETED) for key in deleted]
        before = run.manifest
        manifest = run.commit()
        reference = apply_answers({} if full else reference, answers)

        if not answers:
            kinds["no answers"] += 1
            assert before is not None and manifest.all_files() == before.all_files()
        elif manifest.overlay is not None:
            kinds["delta"] += 1
            assert before is not None and manifest.folder == before.folder
            assert manifest.overlay.entries <= manifest.base_keys * OVERLAY_FRACTION
        else:
            kinds["compaction"] += 1
        check_state(local_store(), manifest, reference)
        rows = next_source(rng, rows, step)
    assert kinds["delta"] >= 5 and kinds["compaction"] >= 3 and kinds["no answers"] >= 1, kinds


# -- delta commits, compaction and clean-up ----------------------------------------------------------


def folders_of(store) -> set[str]:
    """The generation folders in the store, as a manifest names them (``generations/<name>``)."""
    return {
        "generations/" + path.split("/generations/")[1].split("/")[0]
        for path in all_files(store)
        if "/generations/" in path
    }


def files_in(store, folder: str) -> list[str]:
    return sorted(path.rsplit("/", 1)[1] for path in all_files(store) if f"/{folder}/" in path)


def test_a_delta_commit_writes_only_the_touched_keys_and_past_the_threshold_compacts(new_store):
    rows = source(1000)
    run = new_store().sync("s").begin_run("r1", SIGNATURE)
    run_sync(run, rows)
    first = run.commit()
    assert first.overlay is None
    base_files = files_in(new_store(), first.folder)

    # 10 changed, 5 new, 3 deleted: 18 entries, against a limit of 125.
    changed = {f"user-{i}": rows[f"user-{i}"] + b"!" for i in range(10)}
    removed = [f"user-{i}" for i in range(10, 13)]
    today = {**{k: v for k, v in rows.items() if k not in removed}, **changed, **source(5, start=1000)}
    run = new_store().sync("s").begin_run("r2", SIGNATURE)
    sent = run_sync(run, today, fails=lambda key: key == "user-0")
    assert sorted(run.unseen_keys()) == removed
    run.acknowledge_deleted(removed)
    second = run.commit()

    assert second.overlay is not None
    assert (second.folder, second.files) == (first.folder, first.files)  # the base, as it was
    assert files_in(new_store(), first.folder) == base_files
    assert files_in(new_store(), second.overlay.folder) == [f.name for f in second.overlay.files]
    area = new_store().sync("s").area
    entries = read_overlay(area.storage, area.path, second.overlay)
    assert sorted(entries.column("key").to_pylist()) == sorted([*sent.keys, *removed])
    outcomes = dict(
        zip(entries.column("key").to_pylist(), entries.column("outcome").to_pylist(), strict=True)
    )
    assert outcomes["user-0"] == FAILED and outcomes["user-1"] == OK and outcomes["user-10"] == DELETED
    failed_entry = entries.filter(pa.compute.equal(entries.column("key"), "user-0"))
    assert failed_entry.column("fingerprint").to_pylist() == [print_of(rows["user-0"])]  # its last success
    assert (second.keys, second.failed) == (1000 - 3 + 5, 1)
    described = new_store().sync("s").describe()
    assert described["files"] == len(first.files) + len(second.overlay.files)
    assert described["bytes"] == sum(f.bytes for f in [*first.files, *second.overlay.files])

    # A second delta: the overlay holds both runs' keys, the later entry winning.
    run = new_store().sync("s").begin_run("r3", SIGNATURE)
    assert run_sync(run, today).keys == ["user-0"]  # carried over, and now sent with success
    third = run.commit()
    assert third.overlay is not None and third.folder == first.folder
    entries = read_overlay(area.storage, area.path, third.overlay)
    assert entries.num_rows == 18
    assert entries.filter(pa.compute.equal(entries.column("key"), "user-0")).column(
        "outcome"
    ).to_pylist() == [OK]
    assert (third.keys, third.failed) == (1002, 0)

    # 200 changed: past the threshold, a compaction (a new base, no overlay).
    tomorrow = {k: (v + b"?" if int(k.split("-")[1]) % 5 == 0 else v) for k, v in today.items()}
    run = new_store().sync("s").begin_run("r4", SIGNATURE)
    run_sync(run, tomorrow)
    fourth = run.commit()
    assert fourth.overlay is None and fourth.folder != first.folder
    assert fourth.keys == 1002
    # Kept: the manifests of generations 3 and 4, and each folder they name.
    assert folders_of(new_store()) == {first.folder, third.overlay.folder, fourth.folder}

    # One more delta: generation 3's base and overlay are no reader's any more.
    run = new_store().sync("s").begin_run("r5", SIGNATURE)
    run_sync(run, {**tomorrow, "user-1": b"again"})
    fifth = run.commit()
    assert fifth.overlay is not None and fifth.folder == fourth.folder
    assert folders_of(new_store()) == {fourth.folder, fifth.overlay.folder}
    run = new_store().sync("s").begin_run("r6", SIGNATURE)
    assert run_sync(run, {**tomorrow, "user-1": b"again"}).keys == []
    assert run.committed_keys == 1002


def test_a_commit_without_the_committed_state_compacts(local_store):
    """The recovery of another run's answers commits without a loaded state: it compacts."""
    rows = source(400)
    run = local_store().sync("s").begin_run("r1", SIGNATURE)
    run_sync(run, rows)
    run.commit()
    stopped = local_store().sync("s").begin_run("r2", SIGNATURE)
    run_sync(stopped, {**rows, "user-1": b"changed"})
    stopped.abandon()  # its answers stay in checkpoints
    run = local_store().sync("s").begin_run("r3", SIGNATURE)
    assert run.recovered == ["r2"]
    manifest = run.manifest
    assert manifest is not None and manifest.overlay is None and manifest.keys == 400
    assert run_sync(run, {**rows, "user-1": b"changed"}).keys == []


# -- the manifest ------------------------------------------------------------------------------------


def test_a_manifest_without_an_overlay_reads_as_format_1_and_one_with_it_as_format_2():
    written_before = {
        "sync_id": "s",
        "key_range": {"index": 0, "count": 1},
        "generation": 3,
        "folder": "generations/000000000003-0123456789ab",
        "files": [{"name": "part-00000.parquet", "keys": 10, "bytes": 400}],
        "signature": SIGNATURE,
        "keys": 10,
        "failed": 1,
        "committed_at": "2026-03-01T00:00:00+00:00",
        "run_key": "r3",
        "last_run": {},
        "format": 1,
    }
    manifest = Manifest.from_dict(json.loads(json.dumps(written_before)))
    assert manifest.overlay is None and manifest.base_keys == 10
    assert manifest.as_dict() == written_before  # what an older version reads
    assert manifest.folders() == ["generations/000000000003-0123456789ab"]

    with_overlay = {
        **written_before,
        "overlay": {
            "folder": "generations/000000000004-ba9876543210",
            "files": [{"name": "part-00000.parquet", "keys": 2, "bytes": 90}],
        },
        "format": 2,
    }
    manifest = Manifest.from_dict(with_overlay)
    assert manifest.overlay is not None and manifest.overlay.entries == 2
    assert manifest.as_dict() == with_overlay
    assert [f.bytes for f in manifest.all_files()] == [400, 90]
    with pytest.raises(ValueError, match="format 3 is not one this version reads"):
        Manifest.from_dict({**written_before, "format": 3})


def test_the_overlay_applies_to_each_base_file_in_hash_order():
    """Entries before the first base hash, between files, after the last, replacing and removing."""
    base = [
        pa.table({"key_hash": np.array(hashes, np.uint64), "key": [f"b{h}" for h in hashes]})
        for hashes in ([10, 20, 30], [40, 50])
    ]
    overlay = pa.table(
        {
            "key_hash": np.array([5, 20, 30, 35, 50, 60], np.uint64),
            "key": ["o5", "o20", "o30", "o35", "o50", "o60"],
            "outcome": np.array([OK, FAILED, DELETED, OK, DELETED, OK], np.uint8),
        }
    )
    first = generation_module.overlaid(base[0], overlay.slice(0, 3))
    second = generation_module.overlaid(base[1], overlay.slice(3))
    assert first.column("key").to_pylist() == ["o5", "b10", "o20"]
    assert second.column("key").to_pylist() == ["o35", "b40", "o60"]
    assert first.column_names == ["key_hash", "key"]
    kept = generation_module.overlaid(base[0], overlay.slice(0, 3), keep_tombstones=True)
    assert kept.column("key").to_pylist() == ["o5", "b10", "o20", "o30"]
