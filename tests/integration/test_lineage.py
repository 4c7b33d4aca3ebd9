"""Lineage under a real Airflow: the OpenLineage events a sync emits (file transport), and a downstream
DAG scheduled on a sync's asset event.

OpenLineage: the DAG runs with ``dag.test()`` in a process of its own, configured through
``AIRFLOW__OPENLINEAGE__TRANSPORT`` as a deployment would be (the provider reads its settings once per
process), with the OpenLineage provider's own listener sending to a file.

Assets: the sync runs with ``dag.test()``, whose task runner reports success through Airflow's execution
API, which records the asset event and queues the consumer (``AssetDagRunQueue``) exactly as for a
scheduled run. The consumer's run is then made by the scheduler's own step, ``_create_dagruns_for_dags``
(what each scheduler loop calls), on the same metadata DB: the one part of a scheduler that turns queued
asset events into runs, without a scheduler's loop, executor and heartbeats (tests/cluster runs the whole
scheduler, at minutes a test).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg2
import pytest

from airflow_provider_optimizely.hooks.dcp import OptimizelyDcpHook
from tests.conftest import REPO_ROOT, TEST_DAGS
from tests.integration.helpers import PG_CONN, PG_DSN, unique, write_csv
from tests.waiting import wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def people(monkeypatch) -> Iterator[str]:
    """A PostgreSQL table of 25 people behind the ``warehouse`` connection."""
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", PG_CONN)
    name = unique("people")
    with psycopg2.connect(PG_DSN) as db, db.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE {name} (user_id INTEGER PRIMARY KEY, email TEXT, first_name TEXT, "
            "last_name TEXT, tier TEXT, secret_note TEXT)"
        )
        cursor.executemany(
            f"INSERT INTO {name} VALUES (%s, %s, %s, %s, %s, 'not sent')",
            [
                (i, f"p{i}@example.com", f"First{i}", f"Last{i}", "gold" if i % 2 else "free")
                for i in range(25)
            ],
        )
    yield name
    with psycopg2.connect(PG_DSN) as db, db.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {name}")


def dcp_table(*attributes: str) -> int:
    dcp = OptimizelyDcpHook()
    if not any(True for _ in dcp.list_services()):
        dcp.create_service("svc")
    table = dcp.create_table(unique("lineage"))
    for name in attributes:
        dcp.create_attribute(table.id, name, "string")
    return table.id


def run_in_own_process(dag_id: str, conf: dict[str, Any], env: dict[str, str]) -> None:
    logical_date = datetime.now(timezone.utc).isoformat()
    completed = subprocess.run(
        [sys.executable, "-m", "tests.integration.dag_process", dag_id, json.dumps(conf), logical_date],
        cwd=REPO_ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]


def events_of(log_file: Path, job: str, event_type: str) -> list[dict[str, Any]]:
    if not log_file.exists():
        return []
    events = [json.loads(line) for line in log_file.read_text().splitlines() if line.strip()]
    return [e for e in events if e["job"]["name"] == job and e["eventType"] == event_type]


def test_a_sync_from_postgres_emits_its_input_table_and_vendor_output_with_facets(
    airflow_db, emulator, emulator_connections, people, tmp_path
):
    table_id = dcp_table("email", "name", "tier")
    log_file = tmp_path / "openlineage.jsonl"
    transport = {"type": "file", "log_file_path": str(log_file), "append": True}
    run_in_own_process(
        "lineage_dcp_from_postgres",
        {"table_id": table_id, "source_table": people},
        {
            "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(transport),
            "AIRFLOW__OPENLINEAGE__NAMESPACE": "tests",
        },
    )
    job = "lineage_dcp_from_postgres.upsert"
    # The listener emits from a process of its own: wait for its event, not for a time.
    complete = wait_until(lambda: events_of(log_file, job, "COMPLETE"), timeout=60, what="COMPLETE event")[0]
    assert events_of(log_file, job, "START"), "no START event"

    (source,) = complete["inputs"]
    assert source["namespace"] == "postgres://127.0.0.1:5432"
    assert source["name"] == f"test.public.{people}"
    assert {f["name"] for f in source["facets"]["schema"]["fields"]} >= {"user_id", "email", "tier"}

    (target,) = complete["outputs"]
    dcp_host = urlsplit(emulator.connection("optimizely_default")["host"]).netloc
    assert (target["namespace"], target["name"]) == (f"optimizely-dcp://{dcp_host}", str(table_id))
    assert [f["name"] for f in target["facets"]["schema"]["fields"]] == [
        "customerId",
        "email",
        "name",
        "tier",
    ]
    statistics = target["outputFacets"]["outputStatistics"]
    assert statistics["rowCount"] == 25
    assert statistics["size"] > 25 * len('{"data":{}}')
    lineage = target["facets"]["columnLineage"]["fields"]
    source_columns = {
        field: sorted((i["name"], i["field"]) for i in spec["inputFields"]) for field, spec in lineage.items()
    }
    table_name = f"test.public.{people}"
    assert source_columns == {
        "customerId": [(table_name, "user_id")],
        "email": [(table_name, "email")],
        "name": [(table_name, "first_name"), (table_name, "last_name")],
        "tier": [(table_name, "tier")],
    }
    assert "SELECT p.user_id" in complete["job"]["facets"]["sql"]["query"]


# -- assets -----------------------------------------------------------------------------------------------


@pytest.fixture
def consumer(airflow_db, monkeypatch) -> Iterator[Any]:
    """Make the test DAGs known to the metadata DB, as the DAG processor would, and unpause a consumer:
    Airflow queues runs only for unpaused DAGs. Paused again after the test."""
    # Airflow keeps a DAG's serialization if it was written less than 30 s ago: a consumer whose schedule
    # a test sets (the DCP table's id) must be written again even when an earlier test parsed it.
    monkeypatch.setenv("AIRFLOW__CORE__MIN_SERIALIZED_DAG_UPDATE_INTERVAL", "0")
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import BundleDagBag, sync_bag_to_db
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session

    unpaused: list[str] = []

    def unpause(dag_id: str) -> None:
        # What dag.test() does before a run, for the bundle of the test DAGs.
        manager = DagBundlesManager()
        with create_session() as session:
            manager.sync_bundles_to_db(session=session)
        bag = BundleDagBag(
            dag_folder=str(TEST_DAGS), bundle_path=TEST_DAGS, bundle_name="optimizely_test_dags"
        )
        assert not bag.import_errors, bag.import_errors
        sync_bag_to_db(bag, "optimizely_test_dags", None)
        with create_session() as session:
            session.get(DagModel, dag_id).is_paused = False
        unpaused.append(dag_id)

    yield unpause
    with create_session() as session:
        for dag_id in unpaused:
            session.get(DagModel, dag_id).is_paused = True


def scheduler_creates_runs() -> None:
    """One pass of the scheduler's step that turns queued asset events (and due schedules) into runs."""
    from airflow.jobs.job import Job
    from airflow.jobs.scheduler_job_runner import SchedulerJobRunner
    from airflow.utils.session import create_session
    from airflow.utils.sqlalchemy import prohibit_commit

    runner = SchedulerJobRunner(job=Job(), executors=[])
    with create_session() as session, prohibit_commit(session) as guard:
        runner._create_dagruns_for_dags(guard, session)


def asset_triggered_runs(dag_id: str) -> list[dict[str, Any]]:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from airflow.utils.types import DagRunType

    with create_session() as session:
        runs = session.query(DagRun).filter(DagRun.dag_id == dag_id).all()
        return [
            {
                "run_type": run.run_type,
                "state": str(run.state),
                "events": sorted(
                    (e.asset.uri, e.source_dag_id, e.source_task_id, e.source_map_index)
                    for e in run.consumed_asset_events
                ),
            }
            for run in runs
            if run.run_type == DagRunType.ASSET_TRIGGERED
        ]


def asset_events(uri: str) -> list[tuple[str, str, int]]:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    with create_session() as session:
        asset_id = session.query(AssetModel.id).filter(AssetModel.uri == uri).scalar()
        events = session.query(AssetEvent).filter(AssetEvent.asset_id == asset_id).all()
        return sorted((e.source_dag_id, e.source_task_id, e.source_map_index) for e in events)


def xcom_of(dag_id: str, run_id: str, key: str) -> Any:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.scalars(XComModel.get_many(run_id=run_id, dag_ids=dag_id, key=key)).first()
        return None if row is None else XComModel.deserialize_value(row)


def test_an_odp_sync_starts_the_dag_scheduled_on_its_asset_and_links_to_the_object(
    run_dag, consumer, emulator, emulator_connections, tmp_path
):
    consumer("assets_odp_consumer")
    path = write_csv(tmp_path / "p.csv", ["email", "city"], [("a@x.io", "Oslo"), ("b@x.io", "Rome")])
    assert asset_triggered_runs("assets_odp_consumer") == []

    result = run_dag("assets_odp_sync", conf={"path": path})
    result.assert_success()
    scheduler_creates_runs()

    (run,) = asset_triggered_runs("assets_odp_consumer")
    assert run["state"] == "queued"
    # Queued by this sync's event (the consumer was paused before, so earlier ODP syncs of this session
    # queued nothing); it also consumes those earlier events of the asset, as Airflow does.
    uri = "optimizely-odp://optimizely_odp_default/customers"
    assert (uri, "assets_odp_sync", "upsert", -1) in run["events"]
    assert {event[0] for event in run["events"]} == {uri}
    # The link the UI shows: stored by the worker under the link's own key when the task ended.
    assert xcom_of("assets_odp_sync", result.run_id, "_link_OdpObjectLink") == (
        "https://app.zaius.com/app#/objects/customers"
    )


def test_mapped_syncs_of_a_templated_table_each_record_an_event_and_start_one_downstream_run(
    run_dag, consumer, emulator, emulator_connections, tmp_path, monkeypatch
):
    table_id = dcp_table("city")
    monkeypatch.setenv("LINEAGE_TEST_DCP_TABLE_ID", str(table_id))  # the consumer's schedule, when parsed
    consumer("assets_dcp_consumer")
    rows = [(f"c{i}", f"City {i}") for i in range(40)]
    path = write_csv(tmp_path / "dcp.csv", ["id", "city"], rows)

    result = run_dag("assets_dcp_mapped_sync", conf={"table_id": table_id, "path": path})
    result.assert_success()
    scheduler_creates_runs()

    uri = f"optimizely-dcp://optimizely_default/{table_id}"
    assert asset_events(uri) == [
        ("assets_dcp_mapped_sync", "upsert", 0),
        ("assets_dcp_mapped_sync", "upsert", 1),
    ]
    # One downstream run. It consumes the events up to when it was queued: the mapped task that finished
    # first queued it (dag.test runs them one after the other, in no set order of map index).
    (run,) = asset_triggered_runs("assets_dcp_consumer")
    assert run["state"] == "queued"
    assert run["events"][0] in [(uri, "assets_dcp_mapped_sync", "upsert", index) for index in (0, 1)]
    # Every row went out, each by one of the two partitions.
    assert emulator.received("dcp")["items"]["dcp_profiles"]["distinct"] == 40
