"""The pytest plugin: fixtures, connections, and an import that stays light."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import requests

from airflow_provider_optimizely.emulator.pytest_plugin import EmulatorHandle


def test_emulator_connections_point_airflow_at_the_emulator(emulator_connections, emulator: EmulatorHandle):
    assert set(emulator_connections) == {
        "optimizely_default",
        "optimizely_odp_default",
        "optimizely_profile_store_default",
        "optimove_default",
    }
    for conn_id, value in emulator_connections.items():
        assert os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"] == value
    dcp = json.loads(emulator_connections["optimizely_default"])
    assert dcp["conn_type"] == "optimizely"
    assert dcp["extra"] == {
        "profile_api_base": f"{emulator.base_url}/dcp/profile-api",
        "s3_endpoint_url": emulator.s3_endpoint_url,
        "s3_region": "us-east-1",
    }
    odp = json.loads(emulator_connections["optimizely_odp_default"])
    assert (odp["host"], odp["password"], odp["extra"]["public_api_key"]) == (
        emulator.urls["odp"],
        emulator.keys["odp_private_key"],
        emulator.keys["odp_public_key"],
    )
    ps = json.loads(emulator_connections["optimizely_profile_store_default"])
    assert (ps["conn_type"], ps["host"]) == ("optimizely_profile_store", f"{emulator.base_url}/profile-store")
    optimove = json.loads(emulator_connections["optimove_default"])
    assert optimove["extra"] == {"brand_api_key": emulator.keys["optimove_brand_key"]}
    assert optimove["host"] == f"{emulator.base_url}/optimove/api/data-connections/v1"


def test_airflow_reads_the_connection(emulator_connections):
    from airflow.sdk import Connection

    conn = Connection.get("optimizely_default")
    assert conn.conn_type == "optimizely"
    assert conn.password == "emulator-dcp-token"
    assert conn.extra_dejson["profile_api_base"].endswith("/dcp/profile-api")


def test_emulator_fixture_starts_empty(emulator: EmulatorHandle):
    headers = {"Token": emulator.keys["dcp_token"]}
    requests.post(f"{emulator.urls['dcp']}/dcp_services", json={"name": "x"}, headers=headers, timeout=10)
    emulator.set_faults("odp", drop_rate=1.0)
    emulator.reset()
    assert emulator.state("dcp")["services"] == []
    assert requests.get(f"{emulator.urls['admin']}/faults", timeout=10).json() == []
    assert emulator.received("dcp")["requests"] == {}


def test_importing_the_plugin_loads_nothing_heavy():
    code = (
        "import sys, airflow_provider_optimizely.emulator.pytest_plugin;"
        "print(sorted(m for m in ('fastapi', 'moto', 'uvicorn', 'starlette', 'boto3') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "[]"


def test_every_fixture_of_the_plugin_is_named_so_that_no_user_suite_clashes_with_it():
    from airflow_provider_optimizely.emulator import pytest_plugin

    fixtures = [
        name
        for name, value in vars(pytest_plugin).items()
        if hasattr(value, "_fixture_function_marker") or type(value).__name__ == "FixtureFunctionDefinition"
    ]
    assert sorted(fixtures) == [
        "optimizely_emulator",
        "optimizely_emulator_connections",
        "optimizely_emulator_session",
    ]
