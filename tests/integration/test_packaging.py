"""The package as a user installs it: ``make dist``'s wheel, in a clean venv with a plain Airflow, registers
itself with Airflow and runs a DAG against the emulator (nothing of the development venv is reused)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from importlib.metadata import version
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.integration
UV = Path(sys.executable).parent / "uv"


def run(*args: str | Path, cwd: Path = REPO_ROOT) -> str:
    done = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"{args} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    run("make", "dist")
    built = sorted((REPO_ROOT / "dist").glob("*.whl"))
    assert len(built) == 1 and sorted((REPO_ROOT / "dist").glob("*.tar.gz"))
    target = out / built[0].name
    target.write_bytes(built[0].read_bytes())
    return target


def test_the_wheel_carries_its_license_types_and_registration(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert "airflow_provider_optimizely/py.typed" in names
    assert any(n.endswith("licenses/LICENSE") for n in names)
    entry_points = (
        zipfile.ZipFile(wheel)
        .read(next(n for n in names if n.endswith(".dist-info/entry_points.txt")))
        .decode()
    )
    assert "apache_airflow_provider" in entry_points and "get_provider_info" in entry_points
    assert not any(n.startswith(("tests/", "benchmarks/", "example_dags/")) for n in names)


def test_the_wheel_installed_in_a_clean_venv_registers_and_runs_a_dag(wheel, tmp_path):
    venv = tmp_path / "venv"
    run(UV, "venv", "--quiet", "--python", sys.executable, venv)
    python = venv / "bin" / "python"
    # The Airflow this suite runs on, so that the check is about the package, not a newer Airflow.
    run(
        UV,
        "pip",
        "install",
        "--quiet",
        "--python",
        python,
        f"{wheel}[emulator]",
        f"apache-airflow=={version('apache-airflow')}",
    )
    script = REPO_ROOT / "tests" / "integration" / "packaging" / "check_installed_wheel.py"
    # Run from outside the repository, so that nothing is imported from the source tree.
    assert run(python, script, cwd=tmp_path).strip().endswith("OK")
