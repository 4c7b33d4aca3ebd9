"""Send-events under a real Airflow, over loopback to the emulator; PostgreSQL for the data interval."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import psycopg2
import pytest

from tests.integration.helpers import PG_CONN, PG_DSN, unique, write_json_lines

pytestmark = pytest.mark.integration


def test_events_from_json_lines_arrive_once_each(run_dag, emulator, emulator_connections, tmp_path):
    events = (
        {"type": "order", "action": "purchase", "identifiers": {"email": f"u{i % 50}@x.io"}, "data": {"n": i}}
        for i in range(1100)
    )
    path = write_json_lines(tmp_path / "events.jsonl", events)
    result = run_dag("sync_events_from_file", conf={"path": path})
    result.assert_success()
    report = result.xcoms["send_events"]
    assert (report["rows_read"], report["rows_succeeded"], report["requests"]["total"]) == (1100, 1100, 3)
    items = emulator.received("odp")["items"]["odp_events"]
    assert (items["total"], items["distinct"], items["duplicates"]) == (1100, 1100, 0)
    kept = emulator.state("odp")["events"]
    assert sorted(e["data"]["n"] for e in kept) == list(range(1100))
    assert (
        kept[0]["identifiers"] == {"email": kept[0]["identifiers"]["email"]}
        and kept[0]["action"] == "purchase"
    )


@pytest.fixture
def events_table(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", PG_CONN)
    name = unique("events")
    with psycopg2.connect(PG_DSN) as db, db.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE {name} (order_id TEXT, kind TEXT, action TEXT, email TEXT, total NUMERIC(10, 2), "
            "occurred_at TIMESTAMPTZ)"
        )
    yield name
    with psycopg2.connect(PG_DSN) as db, db.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {name}")


def data_interval(run_id: str) -> tuple[datetime, datetime]:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        run = session.query(DagRun).filter(DagRun.run_id == run_id).one()
        return run.data_interval_start, run.data_interval_end


def test_a_daily_run_sends_exactly_its_data_interval(run_dag, emulator, emulator_connections, events_table):
    start = datetime(2026, 3, 1, tzinfo=timezone.utc)
    # Every 3 hours over four days, the first of each day exactly at midnight (an interval's edge).
    moments = [start + timedelta(hours=3 * i) for i in range(32)]
    with psycopg2.connect(PG_DSN) as db, db.cursor() as cursor:
        cursor.executemany(
            f"INSERT INTO {events_table} VALUES (%s, 'order', 'purchase', %s, %s, %s)",
            [(f"o{i}", f"c{i % 5}@x.io", i + 0.5, moment) for i, moment in enumerate(moments)],
        )
    result = run_dag(
        "postgres_events_interval",
        conf={"events_table": events_table},
        logical_date=datetime(2026, 3, 3, tzinfo=timezone.utc),
    )
    result.assert_success()
    begin, end = data_interval(result.run_id)
    assert end - begin == timedelta(days=1)
    expected = {f"o{i}" for i, moment in enumerate(moments) if begin <= moment < end}
    assert len(expected) == 8  # one whole day: the midnight at its start in, the one at its end out
    sent = emulator.state("odp")["events"]
    assert {e["data"]["order_id"] for e in sent} == expected
    assert result.xcoms["send_events"]["rows_succeeded"] == 8
    first = min(sent, key=lambda e: e["data"]["occurred_at"])
    assert first["type"] == "order" and first["data"]["occurred_at"] == begin.isoformat().replace(
        "+00:00", "Z"
    )
    assert isinstance(first["data"]["total"], float)
