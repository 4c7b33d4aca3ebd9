"""The installed package registers with Airflow: providers, hooks, connection form fields (real CLI)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

AIRFLOW = str(Path(sys.executable).with_name("airflow"))


def _airflow(tmp_path: Path, *args: str) -> str:
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    result = subprocess.run(
        [AIRFLOW, "providers", *args, "--output", "plain"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    )
    return result.stdout


def test_airflow_lists_the_provider_its_hooks_and_form_fields(tmp_path: Path) -> None:
    assert "airflow-provider-optimizely" in _airflow(tmp_path, "list")
    hooks = _airflow(tmp_path, "hooks")
    for conn_type, hook in [
        ("optimizely", "hooks.dcp.OptimizelyDcpHook"),
        ("optimizely_odp", "hooks.odp.OptimizelyOdpHook"),
        ("optimizely_profile_store", "hooks.profile_store.OptimizelyProfileStoreHook"),
        ("optimove", "hooks.optimove.OptimoveHook"),
    ]:
        line = next((row for row in hooks.splitlines() if row.split() and row.split()[0] == conn_type), "")
        assert hook in line, f"{conn_type} missing from `airflow providers hooks`"


def test_airflow_loads_the_plugin_that_fixes_the_ui_test_button(tmp_path: Path) -> None:
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    listed = subprocess.run(
        [AIRFLOW, "plugins", "--output", "plain"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    ).stdout
    line = next((row for row in listed.splitlines() if row.startswith("optimizely_provider ")), "")
    assert "ui_test_connection.PortlessConnectionTestMiddleware" in line


def test_airflow_lists_the_extra_links_to_each_vendor(tmp_path: Path) -> None:
    links = _airflow(tmp_path, "links")
    for link in ("DcpTableLink", "OdpObjectLink", "ProfileStoreScopeLink", "OptimoveConnectionLink"):
        assert f"airflow_provider_optimizely.links.{link}" in links
