"""Each connection type as a person sets it up in Airflow 3.3's UI: the form from the UI's metadata, saved
and edited through Airflow's own REST API (the api-server app, over FastAPI's TestClient), then used by
the hook against the emulator, and tested with the Test button's exact request.

What this guards: an extra Airflow treats as sensitive is shown (and can be saved back) as ``***``, so no
non-secret may carry such a name and every secret must; and the Test button must answer for all four
types (Airflow 3.3.2 answered 400, see ``airflow_provider_optimizely/ui_test_connection.py``).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from airflow_provider_optimizely.emulator.handle import EmulatorHandle
from airflow_provider_optimizely.hooks.dcp import OptimizelyDcpHook
from airflow_provider_optimizely.hooks.odp import OptimizelyOdpHook
from airflow_provider_optimizely.hooks.optimove import OptimoveHook
from airflow_provider_optimizely.hooks.profile_store import OptimizelyProfileStoreHook

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def api(airflow_db: str) -> Iterator[Any]:
    """Airflow's api-server app (with the plugins it loads), signed in as an admin."""
    from fastapi.testclient import TestClient

    with pytest.MonkeyPatch.context() as env:
        env.setenv("AIRFLOW__CORE__TEST_CONNECTION", "Enabled")
        env.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "True")
        from airflow.api_fastapi.app import create_app, get_auth_manager
        from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

        app = create_app("core")
        token = get_auth_manager().generate_jwt(SimpleAuthManagerUser(username="admin", role="admin"))
        with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as client:
            yield client


# What a person types into each form: (host, password, extra fields); secrets are the password and
# the extras the form shows as password boxes.
Form = Callable[[EmulatorHandle], tuple[str, str, dict[str, Any]]]
FORMS: dict[str, tuple[Form, type, Callable[[Any], object]]] = {
    "optimizely": (
        lambda e: (
            e.urls["dcp"],
            e.keys["dcp_token"],
            {
                "auth_scheme": "classic",
                "profile_api_base": e.urls["dcp_profiles"],
                "s3_endpoint_url": e.s3_endpoint_url,
                "s3_region": e.s3_region,
                "requests_per_minute": 6000,
                "max_attempts": 3,
                "max_retry_seconds": 60,
            },
        ),
        OptimizelyDcpHook,
        lambda hook: hook.create_service("from the UI"),
    ),
    "optimizely_odp": (
        lambda e: (
            e.urls["odp"],
            e.keys["odp_private_key"],
            {"public_api_key": e.keys["odp_public_key"], "requests_per_second": 50},
        ),
        OptimizelyOdpHook,
        lambda hook: hook.send_events(
            [{"type": "ui", "action": "saved", "identifiers": {"email": "a@b.c"}, "data": {}}]
        ),
    ),
    "optimizely_profile_store": (
        lambda e: (e.urls["profile_store"], e.keys["profile_store_key"], {"default_scope": "default"}),
        OptimizelyProfileStoreHook,
        lambda hook: hook.create_profile({"DeviceIds": [str(uuid.uuid4())], "Name": "From the UI"}),
    ),
    "optimove": (
        lambda e: (
            e.urls["optimove"],
            e.keys["optimove_api_key"],
            {"brand_api_key": e.keys["optimove_brand_key"], "requests_per_second": 20},
        ),
        OptimoveHook,
        lambda hook: hook.create_connection("from_the_ui", "customer_id"),
    ),
}


def _form_fields(api: Any, conn_type: str) -> dict[str, Any]:
    meta = api.get("/ui/connections/hook_meta")
    assert meta.status_code == 200, meta.text
    (form,) = [m for m in meta.json() if m["connection_type"] == conn_type]
    standard = form["standard_fields"]
    assert standard["port"]["hidden"] and standard["login"]["hidden"]
    fields: dict[str, Any] = form["extra_fields"]
    return fields


def _save_as_the_ui_does(
    api: Any, conn_id: str, conn_type: str, host: str, password: str, extra: dict
) -> None:
    api.delete(f"/api/v2/connections/{conn_id}")
    # The add form leaves hidden and empty fields out (port, login, schema, description).
    body = {
        "connection_id": conn_id,
        "conn_type": conn_type,
        "host": host,
        "password": password,
        "extra": json.dumps(extra),
    }
    created = api.post("/api/v2/connections", json=body)
    assert created.status_code == 201, created.text


@pytest.mark.parametrize("conn_type", sorted(FORMS))
def test_a_connection_saved_and_edited_in_the_ui_works_with_its_hook(
    api: Any, emulator: EmulatorHandle, conn_type: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    form, hook_class, use = FORMS[conn_type]
    host, password, extra = form(emulator)
    fields = _form_fields(api, conn_type)
    assert set(extra) <= set(fields), "the form offers every extra the hook reads"
    secret = {name for name, spec in fields.items() if spec["schema"].get("format") == "password"}
    conn_id = f"ui_{conn_type}"
    _save_as_the_ui_does(api, conn_id, conn_type, host, password, extra)

    # The edit form shows what the API returns: every non-secret as typed, every secret as ***.
    shown = api.get(f"/api/v2/connections/{conn_id}").json()
    shown_extra = json.loads(shown["extra"])
    assert shown["password"] == "***"
    for name, value in extra.items():
        assert shown_extra[name] == ("***" if name in secret else value), name

    # Saved again unchanged from the edit form (it posts what it showed, port null).
    edited = {**shown, "password": "***", "port": None, "login": None, "schema": None}
    patched = api.patch(f"/api/v2/connections/{conn_id}", json=edited)
    assert patched.status_code == 200, patched.text

    # A worker gets the connection as stored in the metadata DB (here: handed over as AIRFLOW_CONN_*).
    from airflow.models import Connection

    stored = Connection.get_connection_from_secrets(conn_id)
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", stored.as_json())
    hook = hook_class(conn_id)
    assert hook.connection.extra_dejson == extra  # nothing became *** on the way
    assert hook.connection.password == password
    use(hook)
    ok, message = hook.test_connection()
    assert ok, message


@pytest.mark.parametrize("conn_type", sorted(FORMS))
def test_the_ui_test_button_answers_for_every_type(
    api: Any, emulator: EmulatorHandle, conn_type: str
) -> None:
    form, _, _ = FORMS[conn_type]
    host, password, extra = form(emulator)
    conn_id = f"ui_test_{conn_type}"
    _save_as_the_ui_does(api, conn_id, conn_type, host, password, extra)
    listed = api.get("/api/v2/connections", params={"limit": 100}).json()["connections"]
    (row,) = [c for c in listed if c["connection_id"] == conn_id]
    # The body the connection list's Test button builds (Airflow 3.3 UI): Number(null) is 0.
    body = {
        "conn_type": row["conn_type"],
        "connection_id": row["connection_id"],
        "description": row["description"] or "",
        "extra": row["extra"] or "{}",
        "host": row["host"] or "",
        "login": row["login"] or "",
        "password": row["password"] or "",
        "port": int(row["port"] or 0),
        "schema": row["schema"] or "",
    }
    tested = api.post("/api/v2/connections/test", json=body)
    assert tested.status_code == 200, tested.text
    assert tested.json()["status"] is True, tested.json()["message"]

    # A wrong stored key: the button answers why, without the key.
    api.patch(
        f"/api/v2/connections/{conn_id}",
        json={**body, "password": "wrong-canary-key", "port": None},
        params={"update_mask": "password"},
    )
    refused = api.post("/api/v2/connections/test", json=body).json()
    assert refused["status"] is False
    assert "401" in refused["message"] and "Check the connection's" in refused["message"]
    assert "wrong-canary-key" not in refused["message"]


def test_other_connection_types_keep_airflows_own_answer(api: Any) -> None:
    # The workaround is ours only: a generic connection without a port still gets Airflow's 400.
    api.delete("/api/v2/connections/ui_generic")
    api.post(
        "/api/v2/connections",
        json={"connection_id": "ui_generic", "conn_type": "generic", "host": "h", "password": "p"},
    )
    body = {"conn_type": "generic", "connection_id": "ui_generic", "host": "h", "password": "***", "port": 0}
    answer = api.post("/api/v2/connections/test", json=body)
    from airflow.api_fastapi.core_api.routes.public.connections import _same_endpoint

    assert answer.status_code == (200 if _same_endpoint(0, None) else 400), answer.text
