"""Checkpoints: an attempt that stopped (killed, or lost) is resumed by the next attempt of its run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

from airflow_provider_optimizely.core.sync_state import StateStore, key_hashes
from tests.unit.core.sync_state.syncing import BATCH, run_sync, source
from tests.waiting import wait_until

SIGNATURE = {"target": "odp customers"}
REPO = Path(__file__).resolve().parents[4]


def test_a_new_attempt_resumes_what_the_last_one_acknowledged(new_store):
    rows = source(2000)
    crashed = new_store().sync("s").begin_run("dag-run-1", SIGNATURE)
    crashed.metadata["batch_uuid"] = "b-1"
    first = run_sync(crashed, rows, stop_after_batches=7)  # then the worker dies: no commit
    assert len(first.keys) == 7 * BATCH
    del crashed

    run = new_store().sync("s").begin_run("dag-run-1", SIGNATURE)  # the Airflow retry: same run key
    assert (run.resumed, run.attempt, run.acknowledged_before) == (True, 2, 7 * BATCH)
    assert (run.full, run.full_reason) == (True, "first run")
    assert run.metadata == {"batch_uuid": "b-1"}
    second = run_sync(run, rows)
    assert run.counts["acknowledged"] == 7 * BATCH
    assert sorted(first.keys + second.keys) == sorted(rows)  # each key sent once
    manifest = run.commit()
    assert manifest.keys == 2000
    assert manifest.last_run["acknowledged"]["ok"] == 2000
    assert new_store().sync("s").describe()["runs_with_checkpoints"] == []


def test_a_key_whose_payload_changed_between_attempts_is_sent_again(local_store):
    rows = source(300)
    run = local_store().sync("s").begin_run("r", SIGNATURE)
    run_sync(run, rows, stop_after_batches=1)
    changed = {**rows, "user-0": b"new payload"}
    run = local_store().sync("s").begin_run("r", SIGNATURE)
    sent = run_sync(run, changed)
    assert "user-0" in sent.keys
    assert run.counts["changed"] == 1  # the API holds what the first attempt sent


def test_an_earlier_attempt_under_another_signature_is_committed_not_resumed(local_store):
    rows = source(300)
    run = local_store().sync("s").begin_run("r", SIGNATURE)
    run_sync(run, rows, stop_after_batches=1)
    run = local_store().sync("s").begin_run("r", {"target": "another"})
    assert not run.resumed
    assert run.recovered == ["r"]
    assert run.committed_keys == BATCH


def test_grouped_checkpoints_bound_what_is_lost(local_store):
    """Checkpoints grouped by count: a crash loses at most the answers not yet written."""
    run = local_store().sync("s").begin_run("r", SIGNATURE, checkpoint_every_items=250)
    # Batches of 100: written at 300 and 600 acknowledged; the seventh batch waits when the worker dies.
    run_sync(run, source(1000), stop_after_batches=7)
    assert run.checkpointed == 600
    resumed = local_store().sync("s").begin_run("r", SIGNATURE)
    assert resumed.acknowledged_before == 600


def test_grouped_checkpoints_by_time(local_store):
    now = [0.0]
    run = (
        local_store()
        .sync("s")
        .begin_run("r", SIGNATURE, checkpoint_every_items=10_000, checkpoint_every_seconds=5.0)
    )
    run._checkpoints._clock = lambda: now[0]
    keys = ["a", "b"]
    run.acknowledge(key_hashes(keys[:1]), keys[:1], [1], True)
    assert run.checkpointed == 0
    now[0] = 6.0
    run.acknowledge(key_hashes(keys[1:]), keys[1:], [2], True)
    assert run.checkpointed == 2


def test_dispatched_but_unanswered_items_are_counted_as_resent(new_store):
    rows = source(400)
    keys = list(rows)
    run = new_store().sync("s").begin_run("r", SIGNATURE)
    hashes = key_hashes(keys)
    run.dispatching(hashes[:100])
    run.acknowledge(hashes[:100], keys[:100], np.arange(100, dtype=np.uint64), True)
    run.dispatching(hashes[100:200])  # in flight when the worker died: applied or not, no one knows

    run = new_store().sync("s").begin_run("r", SIGNATURE)
    assert (run.acknowledged_before, run.unanswered_before) == (100, 100)
    result = run.classify(hashes, np.arange(400, dtype=np.uint64))
    assert run.counts["acknowledged"] == 100
    assert run.counts["resent"] == 100
    assert run.counts["new"] == 200
    assert result.send.sum() == 300


def test_marks_on_a_local_store_go_to_one_log_and_a_cut_mark_is_left_out(local_store):
    keys = list(source(50))
    hashes = key_hashes(keys)
    run = local_store().sync("s").begin_run("r", SIGNATURE, checkpoint_every_items=1000)
    for position in range(0, 50, 5):
        run.dispatching(hashes[position : position + 5])
    run.acknowledge(hashes[:5], keys[:5], np.arange(5, dtype=np.uint64), True)
    run.flush()
    folder = Path(local_store().storage.root) / "s" / "keys-all" / "runs" / "r"
    logs = sorted(folder.glob("dispatched-*.u64"))
    assert [path.stat().st_size for path in logs] == [50 * 8]  # ten marks, one file
    assert len(list(folder.glob("acks-*.arrow"))) == 1  # the answer only
    with open(logs[0], "r+b") as log:
        log.truncate(50 * 8 - 3)  # the host crashed inside the last hash's write

    run = local_store().sync("s").begin_run("r", SIGNATURE)
    assert (run.acknowledged_before, run.unanswered_before) == (5, 44)
    run.classify(hashes, np.arange(50, dtype=np.uint64))
    assert (run.counts["acknowledged"], run.counts["resent"], run.counts["new"]) == (5, 44, 1)


def test_a_committed_run_leaves_no_marks_for_a_later_attempt(local_store):
    keys = list(source(20))
    hashes = key_hashes(keys)
    lost = local_store().sync("s").begin_run("r", SIGNATURE)
    lost.dispatching(hashes[:10])
    lost.acknowledge(hashes[:10], keys[:10], np.arange(10, dtype=np.uint64), True)
    lost.flush()
    local_store().sync("s").begin_run("other", SIGNATURE).commit()  # commits run r's answers

    again = local_store().sync("s").begin_run("r", SIGNATURE)
    assert (again.resumed, again.unanswered_before) == (False, 0)
    assert not list(Path(local_store().storage.root).rglob("dispatched-*"))


def test_a_run_that_stopped_for_good_is_committed_by_the_next_run(new_store):
    rows = source(1000)
    run = new_store().sync("s").begin_run("dag-run-1", SIGNATURE)
    run_sync(run, rows)
    run.commit()
    rows2 = {k: v + b"!" for k, v in rows.items()}
    lost = new_store().sync("s").begin_run("dag-run-2", SIGNATURE)
    run_sync(lost, rows2, stop_after_batches=3)  # retries spent: this run never commits

    run = new_store().sync("s").begin_run("dag-run-3", SIGNATURE)
    assert run.recovered == ["dag-run-2"]
    assert run.base_generation == 2
    sent = run_sync(run, rows2)
    assert len(sent.keys) == 1000 - 3 * BATCH  # what dag-run-2 sent is not sent again
    run.commit()


def test_a_dry_run_neither_resumes_nor_recovers_in_writing(local_store):
    run = local_store().sync("s").begin_run("r1", SIGNATURE)
    run_sync(run, source(300), stop_after_batches=1)
    store = local_store()
    dry = store.sync("s").begin_run("r2", SIGNATURE, dry_run=True)
    assert dry.recovered == []
    assert dry.full_reason == "first run"
    assert store.sync("s").describe()["runs_with_checkpoints"][0]["checkpoint_files"] == 1


CHILD = textwrap.dedent(
    """
    import sys
    import numpy as np
    from airflow_provider_optimizely.core.sync_state import StateStore, fingerprints, key_hashes

    keys = [f"user-{i}" for i in range(5000)]
    prints = fingerprints([k.encode() for k in keys])
    run = StateStore.from_uri(sys.argv[1]).sync("killed").begin_run("dag-run-1", {"target": "t"})
    hashes = key_hashes(keys)
    for start in range(0, len(keys), 50):
        stop = start + 50
        run.acknowledge(hashes[start:stop], keys[start:stop], prints[start:stop], True)
        print(stop, flush=True)
    sys.stdin.read()  # wait to be killed
    """
)


def test_a_killed_process_is_resumed_from_its_last_checkpoint(tmp_path):
    """kill -9 of a real process: every batch it acknowledged is known to the next attempt."""
    uri = str(tmp_path / "state")
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, uri],
        stdout=subprocess.PIPE,
        stdin=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    assert child.stdout is not None
    acknowledged = [0]

    def enough() -> bool:
        acknowledged[0] = int(child.stdout.readline() or 0)
        return acknowledged[0] >= 1000

    try:
        # readline blocks on the child, which prints a line every few milliseconds until it has done.
        wait_until(enough, timeout=60, what="the child to acknowledge 1000 keys")
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    run = StateStore.from_uri(uri).sync("killed").begin_run("dag-run-1", {"target": "t"})
    # Each acknowledge call was written before the child printed it: nothing printed is lost, and at
    # most the calls after the last line read (the child went on while we read) are known on top.
    assert run.acknowledged_before >= acknowledged[0]
    assert run.acknowledged_before % 50 == 0
    run.commit()
    assert StateStore.from_uri(uri).sync("killed").describe()["keys"] == run.acknowledged_before
