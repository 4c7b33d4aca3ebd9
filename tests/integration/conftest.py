"""A real Airflow for integration tests: a migrated metadata DB and a way to run a DAG with dag.test()."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import EXAMPLE_DAGS, TEST_DAGS


@pytest.fixture(scope="session")
def airflow_db() -> str:
    """Migrate the metadata DB of this session's AIRFLOW_HOME once (SQLite)."""
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        check=True,
        env=os.environ.copy(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        timeout=300,
    )
    return os.environ["AIRFLOW_HOME"]


@dataclass
class DagRunResult:
    dag_id: str
    run_id: str
    state: str
    task_states: dict[str, str]
    task_tries: dict[str, int]
    xcoms: dict[str, Any]

    def assert_success(self) -> None:
        assert self.state == "success", f"{self.dag_id} ended {self.state}: {self.task_states}"


def _load_dag(dag_id: str):
    from airflow.dag_processing.dagbag import DagBag

    for folder in (EXAMPLE_DAGS, TEST_DAGS):
        bag = DagBag(dag_folder=str(folder))
        if dag_id in bag.dags:
            return bag.dags[dag_id]
        assert not bag.import_errors, bag.import_errors
    raise LookupError(f"no DAG {dag_id} in {EXAMPLE_DAGS} or {TEST_DAGS}")


def _return_values(run) -> dict[str, Any]:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.scalars(
            XComModel.get_many(run_id=run.run_id, dag_ids=run.dag_id, key="return_value")
        ).all()
        return {row.task_id: XComModel.deserialize_value(row) for row in rows}


@pytest.fixture
def run_dag(airflow_db: str) -> Callable[..., DagRunResult]:
    """Run one DAG of ``example_dags/`` or ``tests/integration/dags/`` in this process with ``dag.test()``."""

    def run(
        dag_id: str, *, conf: dict[str, Any] | None = None, logical_date=None, manual: bool = False
    ) -> DagRunResult:
        """``manual``: a run triggered by hand without a logical date (so without a data interval)."""
        dag = _load_dag(dag_id)
        kwargs: dict[str, Any] = {"run_conf": conf}
        if manual:
            kwargs["logical_date"] = None
        elif logical_date is not None:
            # The run id is made of run_after: the same date gives the same run (a retry of it).
            kwargs["logical_date"] = kwargs["run_after"] = logical_date
        run = dag.test(**kwargs)
        tis = run.get_task_instances()
        return DagRunResult(
            dag_id=dag_id,
            run_id=run.run_id,
            state=str(run.state.value if hasattr(run.state, "value") else run.state),
            task_states={ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in tis},
            task_tries={ti.task_id: ti.try_number for ti in tis},
            xcoms=_return_values(run),
        )

    return run


__all__ = ["DagRunResult", "Path"]
