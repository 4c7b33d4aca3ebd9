"""A small client of the cluster's api-server (Airflow 3.3's REST API, ``/api/v2``): trigger a DAG run,
wait for its end with a deadline, read its task instances, their tries and XComs.

Auth is the simple auth manager's: ``POST /auth/token`` with the admin's user name and password (the
cluster writes the password to its passwords file) answers a JWT, sent as ``Authorization: Bearer``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import requests

FINISHED_RUN_STATES = ("success", "failed")


class ApiError(RuntimeError):
    pass


@dataclass
class RunOutcome:
    """A finished DAG run: its state and its task instances (the latest try of each)."""

    dag_id: str
    run_id: str
    state: str
    task_instances: list[dict[str, Any]] = field(default_factory=list)

    def states(self) -> dict[str, str]:
        return {_ti_label(ti): str(ti["state"]) for ti in self.task_instances}

    def assert_success(self) -> None:
        assert self.state == "success", f"{self.dag_id} {self.run_id} ended {self.state}: {self.states()}"


def _ti_label(ti: dict[str, Any]) -> str:
    index = ti.get("map_index", -1)
    return ti["task_id"] if index is None or index < 0 else f"{ti['task_id']}[{index}]"


class AirflowApi:
    def __init__(self, base_url: str, username: str, password: str, *, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._credentials = {"username": username, "password": password}
        self._timeout = timeout
        self._session = requests.Session()

    def close(self) -> None:
        self._session.close()

    # --- transport ---------------------------------------------------------------------------------

    def login(self) -> None:
        response = self._session.post(
            f"{self.base_url}/auth/token", json=self._credentials, timeout=self._timeout
        )
        if response.status_code not in (200, 201):
            raise ApiError(f"login to {self.base_url} refused: {response.status_code} {response.text}")
        self._session.headers["Authorization"] = f"Bearer {response.json()['access_token']}"

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """One call to ``/api/v2{path}``; logs in first, and again once if the token was refused."""
        if "Authorization" not in self._session.headers:
            self.login()
        url = f"{self.base_url}/api/v2{path}"
        response = self._session.request(method, url, timeout=self._timeout, **kwargs)
        if response.status_code == 401:
            self.login()
            response = self._session.request(method, url, timeout=self._timeout, **kwargs)
        return response

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        if response.status_code >= 400:
            raise ApiError(f"{method} {path}: {response.status_code} {response.text[:500]}")
        return response.json() if response.content else None

    # --- health and DAGs ---------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """``/api/v2/monitor/health`` (needs no login): the metadata DB, scheduler, triggerer and DAG
        processor, each ``{"status": "healthy" | "unhealthy", ...}``."""
        response = self._session.get(f"{self.base_url}/api/v2/monitor/health", timeout=self._timeout)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def health_or_none(self) -> dict[str, Any] | None:
        """``health()``, or None while the api-server does not answer."""
        try:
            return self.health()
        except requests.RequestException:
            return None

    def logs_in(self) -> bool:
        """Whether the api-server takes this client's credentials (and it is now logged in)."""
        try:
            self.login()
        except (ApiError, requests.RequestException):
            return False
        return True

    def import_errors(self) -> list[dict[str, Any]]:
        return list(self.call("GET", "/importErrors", params={"limit": 100})["import_errors"])

    def wait_for_dags(self, dag_ids: Iterable[str], *, timeout: float = 120.0) -> None:
        """Wait until the DAG processor has parsed each DAG; fail at once on an import error."""
        missing = list(dag_ids)
        deadline = time.monotonic() + timeout
        while missing:
            missing = [dag_id for dag_id in missing if self.request("GET", _dag(dag_id)).status_code == 404]
            if not missing:
                return
            if errors := self.import_errors():
                details = "\n".join(f"{e['filename']}: {e['stack_trace']}" for e in errors)
                raise ApiError(f"DAG files failed to import:\n{details}")
            if time.monotonic() >= deadline:
                raise TimeoutError(f"DAGs not parsed within {timeout} s: {', '.join(missing)}")
            time.sleep(0.5)

    def unpause(self, dag_id: str) -> None:
        self.call("PATCH", _dag(dag_id), json={"is_paused": False})

    # --- DAG runs ----------------------------------------------------------------------------------

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None, *, run_id: str | None = None) -> str:
        """Start a run now (unpausing the DAG first: a paused DAG's runs never start); return its id."""
        self.unpause(dag_id)
        body = {
            "dag_run_id": run_id or f"cluster__{uuid.uuid4().hex[:12]}",
            "logical_date": None,
            "conf": conf or {},
        }
        return str(self.call("POST", f"{_dag(dag_id)}/dagRuns", json=body)["dag_run_id"])

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.call("GET", _run(dag_id, run_id))
        return result

    def wait_for_run(
        self, dag_id: str, run_id: str, *, timeout: float = 180.0, interval: float = 0.5
    ) -> RunOutcome:
        """Poll the run until it succeeds or fails; past ``timeout``, fail naming each task's state."""
        deadline = time.monotonic() + timeout
        while True:
            state = str(self.dag_run(dag_id, run_id)["state"])
            if state in FINISHED_RUN_STATES:
                return RunOutcome(dag_id, run_id, state, self.task_instances(dag_id, run_id))
            if time.monotonic() >= deadline:
                outcome = RunOutcome(dag_id, run_id, state, self.task_instances(dag_id, run_id))
                raise TimeoutError(f"{dag_id} {run_id} still {state} after {timeout} s: {outcome.states()}")
            time.sleep(interval)

    def run(self, dag_id: str, conf: dict[str, Any] | None = None, *, timeout: float = 180.0) -> RunOutcome:
        """Trigger a run and wait for its end."""
        return self.wait_for_run(dag_id, self.trigger(dag_id, conf), timeout=timeout)

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """Every task instance of the run, mapped ones included (the latest try of each)."""
        found: list[dict[str, Any]] = []
        while True:
            page = self.call(
                "GET", f"{_run(dag_id, run_id)}/taskInstances", params={"limit": 100, "offset": len(found)}
            )
            found.extend(page["task_instances"])
            if not page["task_instances"] or len(found) >= page["total_entries"]:
                return found

    def tries(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> list[dict[str, Any]]:
        """Every try of one task instance, oldest first (each with its ``hostname`` and ``state``)."""
        path = f"{_run(dag_id, run_id)}/taskInstances/{quote(task_id, safe='')}/{map_index}/tries"
        tries = self.call("GET", path)["task_instances"]
        return sorted(tries, key=lambda entry: entry["try_number"])

    def xcom(
        self, dag_id: str, run_id: str, task_id: str, *, key: str = "return_value", map_index: int = -1
    ) -> Any:
        """One XCom's value (a task's return value by default)."""
        path = f"{_run(dag_id, run_id)}/taskInstances/{quote(task_id, safe='')}/xcomEntries/{quote(key)}"
        return self.call("GET", path, params={"map_index": map_index, "deserialize": True})["value"]


def _dag(dag_id: str) -> str:
    return f"/dags/{quote(dag_id, safe='')}"


def _run(dag_id: str, run_id: str) -> str:
    return f"{_dag(dag_id)}/dagRuns/{quote(run_id, safe='')}"
