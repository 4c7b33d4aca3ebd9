"""``make demo``'s script, run as a user runs it: a subprocess that prints the run report and checks it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.integration

SCRIPT = REPO_ROOT / "scripts" / "run_example_sync.py"


def test_demo_syncs_the_example_and_prints_its_report(airflow_db, tmp_path):
    # Reuse this session's migrated metadata DB (same Airflow), so the script needn't migrate a new one;
    # the stamp is the script's own "already migrated" mark.
    home = tmp_path / "airflow-home"
    home.mkdir()
    shutil.copy(Path(airflow_db) / "airflow.db", home / "airflow.db")
    (home / f".migrated-{version('apache-airflow')}").touch()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}

    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--customers", "150", "--workdir", str(tmp_path)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )

    out = done.stdout
    assert done.returncode == 0, out[-3000:] + done.stderr[-3000:]
    assert "Run report (sync_profiles)" in out
    assert re.search(r"rows_read\s+150\b", out) and re.search(r"rows_succeeded\s+150\b", out)
    assert re.search(r"rows_rejected\s+0\b", out)
    assert re.search(r"profiles stored\s+150 of 150", out)
    assert re.search(r"values that differ\s+0\b", out)
    assert re.search(r"last_seen\s+datetime \(yyyy-mm-ddThh:mm:ssZ\)", out)
    assert "OK: every customer" in out
    assert (tmp_path / "warehouse.db").exists()
    assert "emulator-dcp-token" not in out + done.stderr  # the token never reaches the output
