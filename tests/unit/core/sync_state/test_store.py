"""The store: URIs and filesystems, a fresh process continuing another's state, inspection and reset."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import fsspec

from airflow_provider_optimizely.core.sync_state import StateStore
from airflow_provider_optimizely.core.sync_state.__main__ import main
from airflow_provider_optimizely.core.sync_state.storage import safe_name
from tests.unit.core.sync_state.conftest import BUCKET, all_files, s3_options
from tests.unit.core.sync_state.syncing import run_sync, source

REPO = Path(__file__).resolve().parents[4]
SIGNATURE = {"target": "t"}

WORKER = textwrap.dedent(
    """
    import json, sys
    from airflow_provider_optimizely.core.sync_state import StateStore, fingerprints, key_hashes

    uri, options, first, count = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    keys = [f"user-{i}" for i in range(first, first + count)]
    run = StateStore.from_uri(uri, options).sync("shared").begin_run(sys.argv[5], {"target": "t"})
    hashes, prints = key_hashes(keys), fingerprints([k.encode() for k in keys])
    result = run.classify(hashes, prints)
    send = result.indexes()
    run.acknowledge(hashes[send], [keys[i] for i in send], prints[send], True)
    manifest = run.commit()
    print(json.dumps({"sent": len(send), "full_reason": run.full_reason, "keys": manifest.keys}))
    """
)


def worker(uri: str, options: dict, first: int, count: int, run_key: str, home: Path) -> dict:
    """One sync in a fresh Python process with an Airflow home of its own (a pod on another host)."""
    home.mkdir()
    env = {"AIRFLOW_HOME": str(home), "PATH": "/usr/bin:/bin", "HOME": str(home)}
    done = subprocess.run(
        [sys.executable, "-c", WORKER, uri, json.dumps(options), str(first), str(count), run_key],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=120,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_fresh_process_continues_from_the_state_another_left_in_s3(s3_endpoint, tmp_path):
    uri = f"s3://{BUCKET}/{uuid.uuid4().hex}"
    options = {**s3_options(s3_endpoint)}
    options.pop("skip_instance_cache")
    first = worker(uri, options, 0, 1000, "dag-run-1", tmp_path / "home-1")
    assert first == {"sent": 1000, "full_reason": "first run", "keys": 1000}
    second = worker(uri, options, 990, 20, "dag-run-2", tmp_path / "home-2")
    assert second == {"sent": 10, "full_reason": None, "keys": 1010}


def test_a_store_from_a_filesystem_and_a_root(tmp_path):
    fs = fsspec.filesystem("file")
    run = StateStore(fs, f"file://{tmp_path}/root/").sync("s").begin_run("r", SIGNATURE)
    run_sync(run, source(10))
    run.commit()
    assert StateStore.from_uri(f"file://{tmp_path}/root").sync("s").describe()["keys"] == 10
    assert StateStore(fs, str(tmp_path / "root")).sync("s").describe()["keys"] == 10
    assert (tmp_path / "root" / "s" / "keys-all" / "manifests" / "000000000001.json").exists()


def test_a_store_from_an_s3_filesystem_and_a_root_with_or_without_its_scheme(s3_endpoint):
    fs = fsspec.filesystem("s3", **s3_options(s3_endpoint))
    prefix = f"{BUCKET}/{uuid.uuid4().hex}"
    run = StateStore(fs, f"s3://{prefix}").sync("s").begin_run("r", SIGNATURE)
    run_sync(run, source(350))  # four checkpoint files: read in one concurrent call
    run.commit()
    assert StateStore(fs, prefix).sync("s").describe()["keys"] == 350


def test_names_are_safe_and_distinct():
    assert safe_name("dag.task.target") == "dag.task.target"
    run_key = "scheduled__2026-03-01T00:00:00+00:00"
    assert safe_name(run_key).startswith("scheduled__2026-03-01T00_00_00_00_00~")
    assert safe_name("a/b") != safe_name("a_b")
    assert safe_name("..") not in ("..", ".", "")
    assert len(safe_name("x" * 500)) < 100


def test_describe_and_reset_from_the_command_line(tmp_path, capsys):
    uri = str(tmp_path / "state")
    run = StateStore.from_uri(uri).sync("dag.task", "0/2").begin_run("r1", SIGNATURE)
    run_sync(run, source(100), fails=lambda key: key == "user-3" or key == "user-4")
    run.commit({"rows_read": 100})
    StateStore.from_uri(uri).sync("dag.task").begin_interval("2026-03-01", "2026-03-02").complete()

    assert main(["show", uri, "dag.task"]) == 0
    shown = json.loads(capsys.readouterr().out)
    [described] = shown["key_ranges"]
    assert described["key_range"] == "slice 0 of 2"
    assert described["keys"] == described["ok"] + described["failed"] > 0
    assert described["last_run"]["rows_read"] == 100
    assert described["signature"] == SIGNATURE
    assert set(described["carried_over_sample"]) <= {"user-3", "user-4"}
    assert shown["intervals_done"] == 1
    assert shown["last_intervals_done"][0]["start"] == "2026-03-01"

    assert main(["show", uri, "dag.task", "--key-range", "0/2"]) == 0
    assert json.loads(capsys.readouterr().out)["generation"] == 1

    assert main(["reset", uri, "dag.task"]) == 0
    assert "reset" in capsys.readouterr().out
    assert all_files(StateStore.from_uri(uri)) == []
    run = StateStore.from_uri(uri).sync("dag.task", "0/2").begin_run("r2", SIGNATURE)
    assert run.full_reason == "first run"


def test_the_module_runs_as_a_command(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "airflow_provider_optimizely.core.sync_state", "show", str(tmp_path), "none"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        check=True,
    )
    assert json.loads(done.stdout) == {
        "sync_id": "none",
        "key_ranges": [],
        "intervals_done": 0,
        "last_intervals_done": [],
    }


def test_the_sync_state_never_imports_airflow(tmp_path):
    code = (
        "import sys\n"
        "from airflow_provider_optimizely.core.sync_state import StateStore\n"
        "from airflow_provider_optimizely.core.sync_state.__main__ import main\n"
        f"main(['show', {str(tmp_path)!r}, 'any'])\n"
        "bad = sorted(m for m in sys.modules if m == 'airflow' or m.startswith('airflow.'))\n"
        "print('airflow modules:', ','.join(bad))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout.strip().splitlines()[-1] == "airflow modules:"
