"""What every row-sync operator shares (``operators._row_sync``), through the ODP upsert operator over a
fake hook: its arguments, its sources, its report on every way out, and how rejects end the task (the
network is faked; tests/integration runs the emulator)."""

from __future__ import annotations

import json
import sqlite3
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_optimizely.core.errors import AuthError, BadRequestError, ServerError
from airflow_provider_optimizely.core.rest import RequestStats
from airflow_provider_optimizely.hooks.odp import OptimizelyOdpHook
from airflow_provider_optimizely.operators._row_sync import REPORT_XCOM_KEY
from airflow_provider_optimizely.operators.odp import OptimizelyOdpUpsertProfilesOperator
from tests.unit.operators.fakes import Ti, on_the_wire


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
        profiles = on_the_wire(profiles)
        self.posts.append(list(profiles))
        bad = [i for i, p in enumerate(profiles) if p["identifiers"]["email"].startswith("refused")]
        if bad:
            raise BadRequestError(400, "invalid", invalids=[{"profile": i, "reason": "nope"} for i in bad])
        return {}


def run(op: Any, hook: Any) -> tuple[dict, Ti]:
    op.__dict__["hook"] = hook
    ti = Ti()
    return op.execute({"ti": ti}), ti  # type: ignore[arg-type]


def test_init_reads_no_connection_and_checks_its_arguments():
    # The connection does not exist: __init__ (run at every DAG parse) must not look it up.
    op = OptimizelyOdpUpsertProfilesOperator(
        task_id="t", conn_id="does_not_exist", identifier_column="email", rows=[{"email": "a"}]
    )
    assert op.conn_id == "does_not_exist"
    with pytest.raises(ValueError, match="exactly one of sql, path or rows"):
        OptimizelyOdpUpsertProfilesOperator(task_id="t", identifier_column="id")
    with pytest.raises(ValueError, match="exactly one of sql, path or rows"):
        OptimizelyOdpUpsertProfilesOperator(task_id="t", identifier_column="id", rows=[], path="/x.csv")
    with pytest.raises(ValueError, match="sql needs sql_conn_id"):
        OptimizelyOdpUpsertProfilesOperator(task_id="t", identifier_column="id", sql="SELECT 1")
    with pytest.raises(ValueError, match="max_rejected"):
        OptimizelyOdpUpsertProfilesOperator(task_id="t", identifier_column="id", rows=[], max_rejected=2.5)
    # A templated limit is checked once rendered.
    OptimizelyOdpUpsertProfilesOperator(task_id="t", identifier_column="id", rows=[], max_rejected="{{ p }}")


def test_a_dag_author_can_template_the_source_the_mapping_and_the_target():
    fields = set(OptimizelyOdpUpsertProfilesOperator.template_fields)
    assert {
        "sql",
        "parameters",
        "path",
        "rows",
        "column_mapping",
        "identifier_column",
        "conn_id",
    } <= fields
    assert ".sql" in OptimizelyOdpUpsertProfilesOperator.template_ext


def test_rows_in_report_out_and_the_pool_fits_the_concurrency():
    hook = fake(FakeOdp)
    op = OptimizelyOdpUpsertProfilesOperator(
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
    assert report["requests"] == {
        "total": 3,
        "retried": 0,
        "maybe_applied_twice": 0,
        "throttled_seconds": 0.0,
    }
    assert report["api"] == "ODP" and report["operation"] == "upsert-profiles"
    assert report["stopped"] is None
    assert hook.pool_size >= 12
    json.dumps(report)


def test_csv_file_source(tmp_path):
    path = tmp_path / "profiles.csv"
    path.write_text("email,age\na@x.io,31\nb@x.io,\n", encoding="utf-8")
    hook = fake(FakeOdp)
    op = OptimizelyOdpUpsertProfilesOperator(task_id="t", identifier_column="email", path=str(path))
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
    op = OptimizelyOdpUpsertProfilesOperator(
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
    op = OptimizelyOdpUpsertProfilesOperator(
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
    op = OptimizelyOdpUpsertProfilesOperator(
        task_id="t", identifier_column="email", sql="SELECT 1", sql_conn_id="not_sql"
    )
    with pytest.raises(AirflowFailException, match="not a SQL connection"):
        run(op, fake(FakeOdp))


def test_rejects_over_the_limit_fail_the_task_after_the_good_rows_and_leave_the_report():
    hook = fake(FakeOdp)
    rows = [{"email": "a@x.io", "age": 1}, {"email": "b@x.io", "age": "old"}, {"email": "refused@x.io"}]
    op = OptimizelyOdpUpsertProfilesOperator(task_id="t", identifier_column="email", rows=rows)
    with pytest.raises(AirflowFailException, match="2 of 3 row\\(s\\) rejected") as failed:
        run(op, hook)
    assert "row 2 (key 'b@x.io'), column 'age': not a number: 'old'" in str(failed.value)
    assert [p["identifiers"]["email"] for p in hook.posts[-1]] == ["a@x.io"]


def test_the_failed_run_s_report_is_pushed_to_xcom():
    hook = fake(FakeOdp)
    op = OptimizelyOdpUpsertProfilesOperator(
        task_id="t", identifier_column="email", rows=[{"email": ""}, {"email": "a@x.io"}]
    )
    op.__dict__["hook"] = hook
    ti = Ti()
    with pytest.raises(AirflowFailException):
        op.execute({"ti": ti})  # type: ignore[arg-type]
    report = ti.pushed[REPORT_XCOM_KEY]
    assert report["rows_succeeded"] == 1 and report["rejected_rows"][0]["reason"].startswith("no identifier")


def test_max_rejected_lets_it_succeed():
    op = OptimizelyOdpUpsertProfilesOperator(
        task_id="t", identifier_column="email", rows=[{"email": ""}, {"email": "a@x.io"}], max_rejected="50%"
    )
    report, _ = run(op, fake(FakeOdp))
    assert report["rows_rejected"] == 1 and report["rows_succeeded"] == 1


def test_a_mapping_to_an_unknown_attribute_fails_before_anything_is_sent():
    hook = fake(FakeOdp)
    op = OptimizelyOdpUpsertProfilesOperator(
        task_id="t", identifier_column="email", rows=[{"email": "a@x.io"}], column_mapping={"x": "shoe"}
    )
    with pytest.raises(AirflowFailException, match="'shoe'"):
        run(op, hook)
    assert hook.posts == []


class FailingOdp(FakeOdp):
    """Answers the schema, then fails every write the way ``failure`` says."""

    def __init__(self, conn_id: str, failure: Exception) -> None:
        super().__init__(conn_id)
        self.failure = failure

    def upsert_profiles(self, profiles):
        self.client.stats.add(requests=1)
        raise self.failure


@pytest.mark.parametrize(
    ("failure", "raised"),
    [
        # Terminal: another try would meet the same answer, so the task fails without its retries.
        (AuthError(401, "wrong key", method="POST", path="profiles", api="ODP"), AirflowFailException),
        # Transient: the error goes to Airflow as it is, which retries the task.
        (ServerError(503, "busy", method="POST", path="profiles", api="ODP"), ServerError),
        (ConnectionError("network down"), ConnectionError),
    ],
    ids=["401", "5xx storm", "network error"],
)
def test_every_failure_leaves_the_run_report_and_its_last_lines_state_it(failure, raised, capsys):
    hook = FailingOdp("fake", failure)
    hook.__dict__["_client"] = FakeClient()
    hook._connection = SimpleNamespace(extra_dejson={}, host=None, password="x")
    op = OptimizelyOdpUpsertProfilesOperator(
        task_id="t", identifier_column="email", rows=[{"email": f"u{i}@x.io"} for i in range(700)]
    )
    op.__dict__["hook"] = hook
    ti = Ti()
    with pytest.raises(raised):
        op.execute({"ti": ti})  # type: ignore[arg-type]
    report = ti.pushed[REPORT_XCOM_KEY]
    assert report["rows_read"] == 700 and report["rows_succeeded"] == 0
    assert report["requests"]["total"] >= 1
    assert report["stopped"]["reason"].startswith(type(failure).__name__)
    assert str(failure) in report["stopped"]["reason"]
    # Airflow's task logger writes to stdout: the report's table, then its line, come last.
    log = capsys.readouterr().out.strip()
    table, last = log.rsplit("\n", 1)
    assert "upsert-profiles on ODP (customers): 700 row(s) read, 0 sent, " in last
    assert "request(s)" in last and "maybe applied twice" in last and "STOPPED after row 700" in last
    assert "| rows read | 700 |" in table


def test_a_failure_before_the_first_row_still_leaves_a_report():
    hook = fake(OptimizelyOdpHook)
    hook.get_schema_object = lambda name: None  # no customers object: a setting error, not retried
    op = OptimizelyOdpUpsertProfilesOperator(task_id="t", identifier_column="email", rows=[{"email": "a"}])
    op.__dict__["hook"] = hook
    ti = Ti()
    with pytest.raises(AirflowFailException, match="no 'customers' schema object"):
        op.execute({"ti": ti})  # type: ignore[arg-type]
    report = ti.pushed[REPORT_XCOM_KEY]
    assert report["rows_read"] == 0 and "customers" in report["stopped"]["reason"]


def test_a_success_also_leaves_the_report_under_its_key():
    op = OptimizelyOdpUpsertProfilesOperator(
        task_id="t", identifier_column="email", rows=[{"email": "a@x.io"}]
    )
    report, ti = run(op, fake(FakeOdp))
    assert ti.pushed[REPORT_XCOM_KEY] == json.loads(json.dumps(report))


def test_auto_concurrency_adapts_within_the_cap_and_the_pool_fits_the_cap():
    hook = fake(FakeOdp, extras={"max_concurrency_cap": 24})
    op = OptimizelyOdpUpsertProfilesOperator(
        task_id="t",
        identifier_column="email",
        rows=[{"email": f"u{i}@x.io"} for i in range(1200)],
        max_concurrency="auto",
    )
    report, _ = run(op, hook)
    assert report["rows_succeeded"] == 1200
    adaptive = hook.client.concurrency
    assert adaptive.cap == 24 and adaptive.history[0] == 4
    assert hook.pool_size >= 24
    # The operator's argument wins over the connection's extra.
    hook = fake(FakeOdp, extras={"max_concurrency_cap": 24})
    op = OptimizelyOdpUpsertProfilesOperator(
        task_id="t2",
        identifier_column="email",
        rows=[{"email": "a@x.io"}],
        max_concurrency="auto",
        max_concurrency_cap=6,
    )
    run(op, hook)
    assert hook.client.concurrency.cap == 6


def test_dcp_and_optimove_adapt_by_default_the_others_send_four_at_once():
    from airflow_provider_optimizely.operators.dcp import OptimizelyDcpUpsertProfilesOperator
    from airflow_provider_optimizely.operators.optimove import OptimoveUploadRecordsOperator

    dcp = OptimizelyDcpUpsertProfilesOperator(task_id="d", table_id=1, identifier_column="id", rows=[])
    optimove = OptimoveUploadRecordsOperator(
        task_id="o", data_connection_uuid="u", identifier_column="id", rows=[]
    )
    odp = OptimizelyOdpUpsertProfilesOperator(task_id="p", identifier_column="email", rows=[])
    assert (dcp.max_concurrency, optimove.max_concurrency, odp.max_concurrency) == ("auto", "auto", 4)
    with pytest.raises(ValueError, match="at least 1"):
        OptimizelyOdpUpsertProfilesOperator(
            task_id="x", identifier_column="email", rows=[], max_concurrency="auto", max_concurrency_cap=0
        )
