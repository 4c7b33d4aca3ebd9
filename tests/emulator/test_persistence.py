"""``--state-file``: the state of every API survives a restart of the emulator."""

from __future__ import annotations

import json

import requests

from airflow_provider_optimizely.emulator.common import EmulatorSettings
from airflow_provider_optimizely.emulator.persistence import StateSaver, load_state_file
from airflow_provider_optimizely.emulator.server import run_emulator


def test_state_survives_a_restart(tmp_path):
    state_file = tmp_path / "emulator-state.json"
    settings = EmulatorSettings(state_file=str(state_file), state_save_interval=60)
    with run_emulator(settings) as first:
        headers = {"Token": first.keys["dcp_token"]}
        service = requests.post(
            f"{first.urls['dcp']}/dcp_services", json={"name": "kept"}, headers=headers, timeout=10
        )
        svc = service.json()["id"]
        body = {"name": "crm", "keyfield_locator_type": "uid"}
        table = requests.post(
            f"{first.urls['dcp']}/dcp_services/{svc}/dcp_datasources", json=body, headers=headers, timeout=10
        ).json()
        requests.post(
            f"{first.urls['dcp']}/dcp_datasources/{table['id']}/dcp_datasource_attributes",
            json={"name": "orders", "datatype": "long"},
            headers=headers,
            timeout=10,
        )
        write = requests.post(
            f"{first.urls['dcp_profiles']}/customer_profile/{svc}/{table['id']}/c1",
            json={"data": {"orders": 4}},
            headers=headers,
            timeout=10,
        )
        assert write.status_code == 201
        odp_before = first.state("odp")
        grant = first.issue_oauth_token()
    # Shut down: written on shutdown although the interval never passed.
    assert json.loads(state_file.read_text())["dcp"]["services"][0]["name"] == "kept"

    with run_emulator(settings) as second:
        headers = {"Token": second.keys["dcp_token"]}
        profile = requests.get(
            f"{second.urls['dcp_profiles']}/customer_profile/{svc}/{table['id']}/c1",
            headers=headers,
            timeout=10,
        )
        assert profile.json()["data"] == {"orders": 4}
        again = requests.post(
            f"{second.urls['dcp']}/dcp_services", json={"name": "x"}, headers=headers, timeout=10
        )
        assert again.status_code == 409
        assert second.state("odp") == odp_before
        # OAuth clients and tokens are kept too: a DAG on OAuth goes on after a restart.
        bearer = {"Authorization": f"Bearer {grant['access_token']}"}
        assert (
            requests.get(f"{second.urls['dcp']}/dcp_services", headers=bearer, timeout=10).status_code == 200
        )
        # New ids continue after the old ones.
        new_table = requests.post(
            f"{second.urls['dcp']}/dcp_services/{svc}/dcp_datasources", json=body, headers=headers, timeout=10
        ).json()
        assert new_table["id"] > table["id"]


def test_saver_writes_only_on_change_and_atomically(tmp_path):
    path = tmp_path / "nested" / "state.json"
    snapshot = {"n": 1}
    saver = StateSaver(str(path), lambda: snapshot, interval=60)
    assert load_state_file(str(path)) is None
    assert saver.save() is True
    assert saver.save() is False
    snapshot = {"n": 2}
    saver.snapshot = lambda: snapshot
    assert saver.save() is True
    assert load_state_file(str(path)) == {"n": 2}
    assert [p.name for p in path.parent.iterdir()] == ["state.json"]


def test_saver_thread_writes_periodically(tmp_path):
    from tests.waiting import wait_until

    path = tmp_path / "state.json"
    counter = {"n": 0}
    saver = StateSaver(str(path), lambda: dict(counter), interval=0.05)
    saver.start()
    try:
        counter["n"] = 5
        wait_until(
            lambda: path.exists() and load_state_file(str(path)) == {"n": 5},
            timeout=5,
            what="a periodic save",
        )
    finally:
        saver.stop()
