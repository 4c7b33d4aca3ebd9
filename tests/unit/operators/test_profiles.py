"""The upsert-profiles operator over fake hooks: its arguments, its dispatch per API, its sources, its
report and how rejects end the task (the network is faked; tests/integration runs the emulator)."""

from __future__ import annotations

import json
import sqlite3
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_optimizely.core.errors import BadRequestError
from airflow_provider_optimizely.core.rest import RequestStats
from airflow_provider_optimizely.core.writers.dcp import DcpProfileWriter
from airflow_provider_optimizely.core.writers.odp import OdpProfileWriter
from airflow_provider_optimizely.core.writers.optimove import OptimoveWriter
from airflow_provider_optimizely.core.writers.profile_store import ProfileStorePutWriter
from airflow_provider_optimizely.hooks.dcp import OptimizelyDcpHook
from airflow_provider_optimizely.hooks.odp import OptimizelyOdpHook
from airflow_provider_optimizely.hooks.optimove import OptimoveHook
from airflow_provider_optimizely.hooks.profile_store import OptimizelyProfileStoreHook
from airflow_provider_optimizely.operators import OptimizelyUpsertProfilesOperator
from airflow_provider_optimizely.operators._data import REPORT_XCOM_KEY


class FakeClient:
    def __init__(self) -> None:
        self.stats = RequestStats()


def fake(hook_class: type, extras: dict[str, Any] | None = None) -> Any:
    hook = hook_class("fake")
    hook.__dict__["_client"] = FakeClient()
    hook._connection = SimpleNamespace(extra_dejson=extras or {}, host=None, password="x")
    return hook


class FakeOdp(OptimizelyOdpHook):
    def __init__(self, conn_id: str) -> None:
        super().__init__(conn_id)
        self.posts: list[list[dict]] = []

    def get_schema_object(self, object_type):
        return SimpleNamespace(
            fields=[SimpleNamespace(name="email", type="string"), SimpleNamespace(name="age", type="number")]
        )

    def upsert_profiles(self, profiles):
        self.client.stats.add(requests=1)
        self.posts.append(list(profiles))
        bad = [i for i, p in enumerate(profiles) if p["identifiers"]["email"].startswith("refused")]
        if bad:
            raise BadRequestError(400, "invalid", invalids=[{"profile": i, "reason": "nope"} for i in bad])
        return {}


class Ti:
    def __init__(self) -> None:
        self.pushed: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = json.loads(json.dumps(value))  # what XCom would store: JSON


def run(op: OptimizelyUpsertProfilesOperator, hook: Any) -> tuple[dict, Ti]:
    op.__dict__["hook"] = hook
    ti = Ti()
    return op.execute({"ti": ti}), ti  # type: ignore[arg-type]


def test_init_reads_no_connection_and_checks_its_arguments():
    # The connection does not exist: __init__ (run at every DAG parse) must not look it up.
    op = OptimizelyUpsertProfilesOperator(
        task_id="t", conn_id="does_not_exist", identifier_column="email", rows=[{"email": "a"}]
    )
    assert op.conn_id == "does_not_exist"
    with pytest.raises(ValueError, match="exactly one of sql, path or rows"):
        OptimizelyUpsertProfilesOperator(task_id="t", identifier_column="id")
    with pytest.raises(ValueError, match="exactly one of sql, path or rows"):
        OptimizelyUpsertProfilesOperator(task_id="t", identifier_column="id", rows=[], path="/x.csv")
    with pytest.raises(ValueError, match="sql needs sql_conn_id"):
        OptimizelyUpsertProfilesOperator(task_id="t", identifier_column="id", sql="SELECT 1")
    with pytest.raises(ValueError, match="max_rejected"):
        OptimizelyUpsertProfilesOperator(task_id="t", identifier_column="id", rows=[], max_rejected=2.5)
    # A templated limit is checked once rendered.
    OptimizelyUpsertProfilesOperator(task_id="t", identifier_column="id", rows=[], max_rejected="{{ p }}")


def test_a_dag_author_can_template_the_source_the_mapping_and_the_target():
    fields = set(OptimizelyUpsertProfilesOperator.template_fields)
    assert {
        "sql",
        "parameters",
        "path",
        "rows",
        "table",
        "column_mapping",
        "identifier_column",
        "conn_id",
    } <= fields
    assert ".sql" in OptimizelyUpsertProfilesOperator.template_ext


@pytest.mark.parametrize(
    ("hook_class", "writer_class", "table"),
    [
        (OptimizelyOdpHook, OdpProfileWriter, None),
        (OptimizelyProfileStoreHook, ProfileStorePutWriter, None),
        (OptimoveHook, OptimoveWriter, "dc-uuid"),
        (OptimizelyDcpHook, DcpProfileWriter, "12"),
    ],
)
def test_the_connection_type_picks_the_writer(hook_class, writer_class, table, monkeypatch):
    hook = fake(hook_class)
    monkeypatch.setattr(hook, "list_attributes", lambda table_id: [], raising=False)
    monkeypatch.setattr(
        hook,
        "get_schema_object",
        lambda name: SimpleNamespace(fields=[SimpleNamespace(name="email", type="string")]),
        raising=False,
    )
    op = OptimizelyUpsertProfilesOperator(task_id="t", identifier_column="email", rows=[], table=table)
    writer = op.build_writer(hook)
    assert isinstance(writer, writer_class)
    if table == "12":
        assert writer.table_id == 12  # a templated table id arrives as text


def test_dcp_and_optimove_need_a_table():
    op = OptimizelyUpsertProfilesOperator(task_id="t", identifier_column="id", rows=[{"id": 1}])
    with pytest.raises(AirflowFailException, match="Optimove data connection uuid"):
        run(op, fake(OptimoveHook))


def test_rows_in_report_out_and_the_pool_fits_the_concurrency():
    hook = fake(FakeOdp)
    op = OptimizelyUpsertProfilesOperator(
        task_id="t",
        identifier_column="email",
        rows=[{"email": f"u{i}@x.io", "age": i} for i in range(1200)],
        max_concurrency=12,
    )
    report, _ = run(op, hook)
    assert [len(p) for p in hook.posts] == [500, 500, 200] or sorted(len(p) for p in hook.posts) == [
        200,
        500,
        500,
    ]
    assert report["rows_read"] == report["rows_succeeded"] == 1200
    assert report["requests"] == 3
    assert report["api"] == "ODP" and report["operation"] == "upsert-profiles"
    assert hook.pool_size >= 12
    json.dumps(report)


def test_csv_file_source(tmp_path):
    path = tmp_path / "profiles.csv"
    path.write_text("email,age\na@x.io,31\nb@x.io,\n", encoding="utf-8")
    hook = fake(FakeOdp)
    op = OptimizelyUpsertProfilesOperator(task_id="t", identifier_column="email", path=str(path))
    report, _ = run(op, hook)
    assert report["rows_succeeded"] == 2
    assert hook.posts[0] == [
        {"identifiers": {"email": "a@x.io"}, "attributes": {"age": 31}},
        {"identifiers": {"email": "b@x.io"}, "attributes": {}},
    ]


@pytest.mark.parametrize(
    "where",
    ["local", "file://", "gzip"],
    ids=["plain local file (open())", "object storage", "compressed local file (object storage)"],
)
def test_a_file_reads_the_same_from_local_disk_and_object_storage(tmp_path, where):
    import gzip

    text = '\ufeffemail,age\na@x.io,31\n"b@x.io","3\n2"\n'  # a BOM, a line break quoted in a cell
    if where == "local":
        path = tmp_path / "profiles.csv"
        path.write_text(text, encoding="utf-8")
    elif where == "gzip":
        path = tmp_path / "profiles.csv.gz"
        path.write_bytes(gzip.compress(text.encode()))
    else:  # a URL: read through ObjectStoragePath like s3://
        (tmp_path / "profiles.csv").write_text(text, encoding="utf-8")
        path = f"file://{tmp_path}/profiles.csv"
    hook = fake(FakeOdp)
    op = OptimizelyUpsertProfilesOperator(
        task_id="t", identifier_column="email", path=str(path), max_rejected=1
    )
    report, _ = run(op, hook)
    assert report["rows_read"] == 2
    assert [body["identifiers"]["email"] for body in hook.posts[0]] == ["a@x.io"]
    assert report["rejected_rows"][0]["row"] == 2 and "age" in report["rejected_rows"][0]["column"]


def test_sql_source_through_an_airflow_sql_connection(tmp_path, monkeypatch):
    db_path = tmp_path / "warehouse.db"
    with sqlite3.connect(db_path) as db:
        db.execute("CREATE TABLE people (email TEXT, age INTEGER)")
        db.executemany("INSERT INTO people VALUES (?, ?)", [(f"p{i}@x.io", i) for i in range(30)])
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", json.dumps({"conn_type": "sqlite", "host": str(db_path)}))
    hook = fake(FakeOdp)
    op = OptimizelyUpsertProfilesOperator(
        task_id="t",
        identifier_column="email",
        sql="SELECT email, age FROM people WHERE age < :limit",
        parameters={"limit": 10},
        sql_conn_id="warehouse",
        fetch_size=4,
    )
    report, _ = run(op, hook)
    assert report["rows_succeeded"] == 10
    assert hook.posts[0][9] == {"identifiers": {"email": "p9@x.io"}, "attributes": {"age": 9}}


def test_a_connection_that_is_not_sql_is_refused(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_NOT_SQL", json.dumps({"conn_type": "http", "host": "https://x.io"}))
    op = OptimizelyUpsertProfilesOperator(
        task_id="t", identifier_column="email", sql="SELECT 1", sql_conn_id="not_sql"
    )
    with pytest.raises(AirflowFailException, match="not a SQL connection"):
        run(op, fake(FakeOdp))


def test_rejects_over_the_limit_fail_the_task_after_the_good_rows_and_leave_the_report():
    hook = fake(FakeOdp)
    rows = [{"email": "a@x.io", "age": 1}, {"email": "b@x.io", "age": "old"}, {"email": "refused@x.io"}]
    op = OptimizelyUpsertProfilesOperator(task_id="t", identifier_column="email", rows=rows)
    with pytest.raises(AirflowFailException, match="2 of 3 row\\(s\\) rejected") as failed:
        run(op, hook)
    assert "row 2 (key 'b@x.io'), column 'age': not a number: 'old'" in str(failed.value)
    assert [p["identifiers"]["email"] for p in hook.posts[-1]] == ["a@x.io"]


def test_the_failed_run_s_report_is_pushed_to_xcom():
    hook = fake(FakeOdp)
    op = OptimizelyUpsertProfilesOperator(
        task_id="t", identifier_column="email", rows=[{"email": ""}, {"email": "a@x.io"}]
    )
    op.__dict__["hook"] = hook
    ti = Ti()
    with pytest.raises(AirflowFailException):
        op.execute({"ti": ti})  # type: ignore[arg-type]
    report = ti.pushed[REPORT_XCOM_KEY]
    assert report["rows_succeeded"] == 1 and report["rejected_rows"][0]["reason"].startswith("no identifier")


def test_max_rejected_lets_it_succeed():
    op = OptimizelyUpsertProfilesOperator(
        task_id="t", identifier_column="email", rows=[{"email": ""}, {"email": "a@x.io"}], max_rejected="50%"
    )
    report, _ = run(op, fake(FakeOdp))
    assert report["rows_rejected"] == 1 and report["rows_succeeded"] == 1


def test_a_mapping_to_an_unknown_attribute_fails_before_anything_is_sent():
    hook = fake(FakeOdp)
    op = OptimizelyUpsertProfilesOperator(
        task_id="t", identifier_column="email", rows=[{"email": "a@x.io"}], column_mapping={"x": "shoe"}
    )
    with pytest.raises(AirflowFailException, match="'shoe'"):
        run(op, hook)
    assert hook.posts == []
