"""Every error the app answers, FastAPI's own included, uses the v2 body of docs/api-contract.md §3."""

from __future__ import annotations

from fastapi.testclient import TestClient

from airflow_provider_optimizely.emulator.app import create_app
from airflow_provider_optimizely.emulator.common import EmulatorSettings


def client_with_typed_route() -> TestClient:
    app = create_app(EmulatorSettings())

    @app.get("/dcp/experiment/v1/_typed/{number}")
    def typed(number: int) -> dict[str, int]:
        return {"number": number}

    @app.get("/dcp/experiment/v1/_boom")
    def boom() -> None:
        raise RuntimeError("secret detail")

    return TestClient(app, raise_server_exceptions=False)


def test_fastapi_validation_errors_become_400_with_the_v2_body():
    response = client_with_typed_route().get("/dcp/experiment/v1/_typed/abc")
    assert response.status_code == 400
    body = response.json()
    assert set(body) == {"message", "code", "uuid"}
    assert body["code"] == "BAD_REQUEST" and "number" in body["message"]


def test_unexpected_errors_are_500_with_the_v2_body_and_no_detail():
    response = client_with_typed_route().get("/dcp/experiment/v1/_boom")
    assert response.status_code == 500
    assert set(response.json()) == {"message", "code", "uuid"}
    assert "secret detail" not in response.text


def test_404_and_405_outside_any_api_use_the_v2_body_too():
    client = client_with_typed_route()
    assert client.get("/nowhere").json()["code"] == "NOT_FOUND"
    response = client.put("/_emulator/health")
    assert response.status_code == 405 and response.json()["code"] == "METHOD_NOT_ALLOWED"
    assert "GET" in response.headers["allow"]
