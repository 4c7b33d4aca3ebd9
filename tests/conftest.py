"""Test-wide settings: an Airflow home of our own and our DAG bundles, before anything imports Airflow."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_DAGS = REPO_ROOT / "example_dags"
TEST_DAGS = REPO_ROOT / "tests" / "integration" / "dags"

os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="airflow-home-"))
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(EXAMPLE_DAGS)
# dag.test() finds a DAG through the bundles it syncs to the metadata DB: the example DAGs and the
# DAGs written for the integration tests are two local bundles.
os.environ["AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST"] = json.dumps(
    [
        {
            "name": name,
            "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
            "kwargs": {"path": str(path)},
        }
        for name, path in (("optimizely_example_dags", EXAMPLE_DAGS), ("optimizely_test_dags", TEST_DAGS))
    ]
)


@pytest.fixture(autouse=True)
def _sync_state_of_its_own(tmp_path_factory, monkeypatch):
    """Each test's incremental syncs keep their state in a folder of its own: a state another test left
    would make a sync send nothing to an emulator that was reset since."""
    monkeypatch.setenv("AIRFLOW__OPTIMIZELY__SYNC_STATE_URI", str(tmp_path_factory.mktemp("sync-state")))


# This suite's short names for the plugin's fixtures (a user's suite may call them what it likes).
@pytest.fixture
def emulator(optimizely_emulator):
    return optimizely_emulator


@pytest.fixture
def emulator_connections(optimizely_emulator_connections):
    return optimizely_emulator_connections
