"""DCP helpers for the emulator tests: a session with the token, and a service with one table.

The ``emulator`` fixture is tests/conftest.py's short name for the plugin's ``optimizely_emulator``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from airflow_provider_optimizely.emulator.handle import EmulatorHandle


@dataclass
class Dcp:
    """Plain ``requests`` against the emulated DCP: ``rest(...)`` and ``profiles(...)`` take a path."""

    emulator: EmulatorHandle
    session: requests.Session

    def rest(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.session.request(method, f"{self.emulator.urls['dcp']}/{path}", timeout=10, **kwargs)

    def profiles(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.session.request(
            method, f"{self.emulator.urls['dcp_profiles']}/{path}", timeout=10, **kwargs
        )

    def ok(self, method: str, path: str, status: int, **kwargs: Any) -> Any:
        response = self.rest(method, path, **kwargs)
        assert response.status_code == status, response.text
        return response.json() if response.content else None

    def service(self) -> dict[str, Any]:
        return self.ok("POST", "dcp_services", 201, json={"name": "shop"})

    def table(self, service_id: int, name: str = "crm", **fields: Any) -> dict[str, Any]:
        body = {"name": name, "keyfield_locator_type": "cookie", "keyfield_locator_name": "crm_id", **fields}
        return self.ok("POST", f"dcp_services/{service_id}/dcp_datasources", 201, json=body)

    def attribute(self, table_id: int, name: str, datatype: str, fmt: str | None = None) -> dict[str, Any]:
        body = {"name": name, "datatype": datatype, **({"format": fmt} if fmt else {})}
        return self.ok("POST", f"dcp_datasources/{table_id}/dcp_datasource_attributes", 201, json=body)


@dataclass
class Table:
    service: dict[str, Any]
    table: dict[str, Any]

    @property
    def id(self) -> int:
        return int(self.table["id"])

    @property
    def service_id(self) -> int:
        return int(self.service["id"])


@pytest.fixture
def dcp(emulator: EmulatorHandle) -> Iterator[Dcp]:
    with requests.Session() as session:
        session.headers["Token"] = emulator.keys["dcp_token"]
        yield Dcp(emulator, session)


@pytest.fixture
def crm(dcp: Dcp) -> Table:
    """A service with a table ``crm`` holding one attribute of each datatype and datetime format."""
    service = dcp.service()
    table = dcp.table(service["id"])
    for name, datatype, fmt in [
        ("segment", "string", None),
        ("vip", "bool", None),
        ("orders", "long", None),
        ("ltv", "double", None),
        ("birthday", "datetime", "yyyy-mm-dd"),
        ("last_seen", "datetime", "yyyy-mm-ddThh:mm:ssZ"),
        ("signup", "datetime", "epoch"),
    ]:
        dcp.attribute(table["id"], name, datatype, fmt)
    return Table(service, table)


def assert_v2_error(response: requests.Response, status: int, *, contains: str = "") -> dict[str, Any]:
    """The v2 error body of docs/api-contract.md §3: ``{message, code, uuid}``."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"message", "code", "uuid"}, body
    assert body["uuid"] and body["code"]
    assert contains.lower() in body["message"].lower(), body
    return body
