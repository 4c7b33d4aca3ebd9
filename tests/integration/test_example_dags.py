"""Every example DAG runs green under a real Airflow against the emulator, and does what it says.

The warehouse is PostgreSQL (a ``postgres`` connection named ``warehouse``); each test creates its own
uniquely named tables and drops them. Effects are checked in the emulator's state, not in the reports.
"""

from __future__ import annotations

import datetime
from decimal import Decimal

import psycopg2
import pytest
import requests

from tests.integration.helpers import PG_CONN, PG_DSN, unique

pytestmark = pytest.mark.integration

UTC = datetime.timezone.utc


@pytest.fixture
def warehouse(monkeypatch):
    """A cursor on the test database; ``warehouse`` points Airflow at it; tables made here are dropped."""
    conn = psycopg2.connect(PG_DSN)
    conn.autocommit = True
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", PG_CONN)
    made: list[str] = []

    class Warehouse:
        def create(self, prefix: str, columns: str, rows: list[tuple]) -> str:
            name = unique(prefix)
            made.append(name)
            with conn.cursor() as cursor:
                cursor.execute(f"CREATE TABLE {name} ({columns})")
                if rows:
                    marks = ", ".join(["%s"] * len(rows[0]))
                    cursor.executemany(f"INSERT INTO {name} VALUES ({marks})", rows)
            return name

        def query(self, sql: str) -> list[tuple]:
            with conn.cursor() as cursor:
                cursor.execute(sql)
                return cursor.fetchall()

    yield Warehouse()
    with conn.cursor() as cursor:
        for name in made:
            cursor.execute(f"DROP TABLE IF EXISTS {name}")
    conn.close()


# -- example_dcp_profile_sync ---------------------------------------------------------------------------


def customers(count: int) -> list[tuple]:
    return [
        (
            f"c{n:03d}",
            ["free", "pro"][n % 2],
            n * 3,
            Decimal(f"{n}.25"),
            n % 5 == 0,
            datetime.date(2025, 1, 1) + datetime.timedelta(days=n),
            datetime.datetime(2026, 1, 1, 8, 30, tzinfo=UTC) + datetime.timedelta(hours=n),
        )
        for n in range(1, count + 1)
    ]


def expected_profile(row: tuple) -> dict:
    _, plan, visits, value, vip, signed_up, last_seen = row
    return {
        "plan": plan,
        "visits": visits,
        "lifetime_value": float(value),
        "vip": vip,
        "signed_up": signed_up.isoformat(),
        "last_seen": last_seen.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def dcp_profiles(emulator, table_id: int) -> dict[str, dict]:
    state = emulator.state("dcp")
    names = {str(a["id"]): a["name"] for a in state["attributes"] if a["dcp_datasource_id"] == table_id}
    return {
        p["customer_id"]: {names[k]: v for k, v in p["values"].items()}
        for p in state["profiles"]
        if p["table_id"] == table_id
    }


def test_example_dcp_profile_sync(run_dag, emulator, emulator_connections, warehouse):
    rows = customers(40)
    source = warehouse.create(
        "customers",
        "customer_id TEXT PRIMARY KEY, plan TEXT, visits INTEGER, lifetime_value NUMERIC(10, 2), "
        "vip BOOLEAN, signed_up DATE, last_seen TIMESTAMP WITH TIME ZONE",
        rows,
    )
    table_name = unique("profiles")
    conf = {"table_name": table_name, "source_table": source, "identifier_column": "customer_id"}

    result = run_dag("example_dcp_profile_sync", conf=conf)
    result.assert_success()
    table_id = result.xcoms["create_table"]
    tables = [t for t in emulator.state("dcp")["tables"] if t["name"] == table_name]
    assert [t["id"] for t in tables] == [table_id]
    assert dcp_profiles(emulator, table_id) == {row[0]: expected_profile(row) for row in rows}
    report = result.xcoms["sync_profiles"]
    assert (report["rows_read"], report["rows_succeeded"], report["rows_rejected"]) == (40, 40, 0)

    # A rerun finds the table and its attributes and rewrites the same profiles.
    again = run_dag("example_dcp_profile_sync", conf=conf)
    again.assert_success()
    assert again.xcoms["create_table"] == table_id
    assert again.xcoms["register_attributes"]["created"] == []
    assert len(again.xcoms["register_attributes"]["existing"]) == 6
    assert len([t for t in emulator.state("dcp")["tables"] if t["name"] == table_name]) == 1
    assert dcp_profiles(emulator, table_id) == {row[0]: expected_profile(row) for row in rows}


# -- example_odp_daily_events ---------------------------------------------------------------------------


def data_interval(result) -> tuple[datetime.datetime, datetime.datetime]:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        run = session.scalar(
            select(DagRun).where(DagRun.dag_id == result.dag_id, DagRun.run_id == result.run_id)
        )
        return run.data_interval_start, run.data_interval_end


def test_example_odp_daily_events_sends_its_day_once(run_dag, emulator, emulator_connections, warehouse):
    first_of_march = datetime.datetime(2026, 3, 1, tzinfo=UTC)
    rows = []
    # Days from March 1st, midnight: both ends of two whole days, and inside them.
    for n, offset in enumerate((-0.5, 0, 0.25, 0.999, 1, 1.5, 1.999, 2, 2.5)):
        rows.append(
            (
                "order",
                "purchase" if n % 2 else "refund",
                f"cust{n}",
                f"cust{n}@example.com",
                f"sku-{n}",
                n + 1,
                Decimal(f"{n}.50"),
                first_of_march + datetime.timedelta(days=offset),
            )
        )
    events = warehouse.create(
        "events",
        "event_type TEXT, action TEXT, customer_id TEXT, email TEXT, product_id TEXT, quantity INTEGER, "
        "price NUMERIC(8, 2), occurred_at TIMESTAMP WITH TIME ZONE",
        rows,
    )

    logical_date = datetime.datetime(2026, 3, 2, tzinfo=UTC)
    result = run_dag("example_odp_daily_events", conf={"events_table": events}, logical_date=logical_date)
    result.assert_success()

    # A manual run covers the last whole day before its logical date, a scheduled one the day it names:
    # either way one whole day, and exactly that day's events.
    start, end = data_interval(result)
    assert end - start == datetime.timedelta(days=1) and start.hour == 0
    assert start <= logical_date <= end
    in_day = [r for r in rows if start <= r[7] < end]
    assert len(in_day) == 3
    received = emulator.received("odp")["items"]["odp_events"]
    assert (received["total"], received["duplicates"]) == (3, 0)
    sent = emulator.state("odp")["events"]
    assert sorted(
        (e["identifiers"]["customer_id"], e["action"], e["data"]["product_id"]) for e in sent
    ) == sorted((r[2], r[1], r[4]) for r in in_day)
    one = next(e for e in sent if e["identifiers"]["customer_id"] == in_day[0][2])
    assert one["type"] == "order"
    assert one["identifiers"] == {"customer_id": in_day[0][2], "email": in_day[0][3]}
    assert one["data"]["quantity"] == in_day[0][5] and float(one["data"]["price"]) == float(in_day[0][6])
    report = result.xcoms["send_events"]
    assert (report["rows_read"], report["rows_succeeded"]) == (3, 3)


def test_example_odp_daily_events_runs_when_triggered_by_hand_without_a_logical_date(
    run_dag, emulator, emulator_connections, warehouse
):
    """Such a run has no data interval: it sends the last whole day before it ran, keeping no state."""
    now = datetime.datetime.now(UTC)
    yesterday = (now - datetime.timedelta(days=1)).replace(hour=12, minute=0, second=0, microsecond=0)
    rows = [
        ("order", "buy", f"c{n}", f"c{n}@x.io", "sku", 1, Decimal("1.00"), moment)
        for n, moment in enumerate([yesterday, now - datetime.timedelta(days=3)])
    ]
    events = warehouse.create(
        "events",
        "event_type TEXT, action TEXT, customer_id TEXT, email TEXT, product_id TEXT, quantity INTEGER, "
        "price NUMERIC(8, 2), occurred_at TIMESTAMP WITH TIME ZONE",
        rows,
    )
    result = run_dag("example_odp_daily_events", conf={"events_table": events}, manual=True)
    result.assert_success()
    assert [e["identifiers"]["customer_id"] for e in emulator.state("odp")["events"]] == ["c0"]
    assert result.xcoms["send_events"]["sync_state"] is None


# -- example_profile_store_deletions --------------------------------------------------------------------


def test_example_profile_store_deletions(run_dag, emulator, emulator_connections, warehouse):
    store = emulator.urls["profile_store"] + "/api/v1.0/profiles"
    headers = {"Authorization": f"epi-single {emulator.keys['profile_store_key']}"}
    for n in range(1, 7):
        answer = requests.put(
            f"{store}/p{n}",
            json={"Name": f"Profile {n}", "DeviceIds": [f"device-{n}"], "Scope": "default"},
            headers=headers,
            timeout=10,
        )
        assert answer.status_code in (200, 201), answer.text
    day = datetime.datetime(2026, 3, 2, tzinfo=UTC)
    # Before the end of the run's interval, whether a manual run's ([1st, 2nd)) or a scheduled one's.
    before_end = datetime.datetime(2026, 3, 1, 18, tzinfo=UTC)
    requests_table = warehouse.create(
        "deletion_requests",
        "profile_id TEXT, requested_at TIMESTAMP WITH TIME ZONE, processed_at TIMESTAMP WITH TIME ZONE",
        [
            ("p1", before_end, None),
            ("p2", before_end - datetime.timedelta(days=3), None),  # missed earlier: still pending
            ("p2", before_end, None),  # asked twice
            ("gone", before_end, None),  # no such profile: already deleted
            ("p3", before_end, before_end),  # done earlier
            ("p4", day + datetime.timedelta(days=1, hours=1), None),  # after the run's interval
        ],
    )

    result = run_dag(
        "example_profile_store_deletions", conf={"requests_table": requests_table}, logical_date=day
    )
    result.assert_success()

    remaining = sorted(p["ProfileId"] for p in emulator.state("profile_store")["profiles"])
    assert remaining == ["p3", "p4", "p5", "p6"]
    pending = warehouse.query(f"SELECT profile_id FROM {requests_table} WHERE processed_at IS NULL")
    assert pending == [("p4",)]
    report = result.xcoms["delete_profiles"]
    assert report["rows_read"] == 3 and report["rows_rejected"] == 0
