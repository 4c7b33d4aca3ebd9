"""Run by tests/integration/test_packaging.py with the Python of a clean venv that holds only the built
wheel (with its ``emulator`` extra) and a plain Airflow: the provider registers itself, and a DAG of its
operators runs under ``airflow dags test`` against the emulator. Prints ``OK`` on success."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

DAG = """
import datetime
from airflow.sdk import DAG
from airflow_provider_optimizely.operators.odp import OptimizelyOdpUpsertProfilesOperator

with DAG("installed_wheel_smoke", schedule=None, start_date=datetime.datetime(2026, 1, 1), catchup=False):
    OptimizelyOdpUpsertProfilesOperator(
        task_id="upsert",
        rows=[{"email": f"wheel{i}@example.com", "city": "Oslo"} for i in range(12)],
        identifier_column="email",
    )
"""


def airflow(*args: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [str(Path(sys.executable).parent / "airflow"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0:
        raise SystemExit(f"airflow {' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done.stdout


def main() -> None:
    home = Path(tempfile.mkdtemp(prefix="wheel-airflow-home-"))
    dags = home / "dags"
    dags.mkdir()
    (dags / "installed_wheel_smoke.py").write_text(DAG)
    # Nothing of the calling test session's Airflow settings: a new user's environment.
    env = {name: value for name, value in os.environ.items() if not name.startswith("AIRFLOW")}
    env |= {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
    }
    os.environ.clear()
    os.environ.update(env)
    listed = airflow("providers", "list", "--output", "json", env=env)
    assert any(p["package_name"] == "airflow-provider-optimizely" for p in json.loads(listed)), listed
    hooks = airflow("providers", "hooks", "--output", "json", env=env)
    for conn_type in ("optimizely", "optimizely_odp", "optimizely_profile_store", "optimove"):
        assert conn_type in hooks, f"{conn_type} is not registered: {hooks}"
    airflow("db", "migrate", env=env)
    # The DAG processor's job, done once here: `dags test` finds DAGs among those serialised.
    airflow("dags", "reserialize", env=env)

    from airflow_provider_optimizely.emulator.server import run_emulator

    with run_emulator() as emulator:
        airflow("dags", "test", "installed_wheel_smoke", env={**env, **emulator.airflow_env()})
        profiles = emulator.state("odp")["profiles"]
    stored = sorted(p["identifiers"]["email"] for p in profiles)
    assert stored == sorted(f"wheel{i}@example.com" for i in range(12)), stored
    print("OK")


if __name__ == "__main__":
    main()
