"""The bulk-upload operator's own logic, without Airflow running it or any network."""

from __future__ import annotations

from contextlib import ExitStack
from types import SimpleNamespace

import pytest
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_optimizely.core.csv_check import Attribute
from airflow_provider_optimizely.core.report import RejectLimit
from airflow_provider_optimizely.operators import OptimizelyBulkUploadOperator

ATTRIBUTES = {"visits": Attribute("visits", "long"), "plan": Attribute("plan", "string")}


def operator(**kwargs):
    return OptimizelyBulkUploadOperator(task_id="upload", **{"table_id": 1, **kwargs})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "exactly one of path or sql"),
        ({"path": "a.csv", "sql": "SELECT 1", "sql_conn_id": "w"}, "exactly one of path or sql"),
        ({"sql": "SELECT 1"}, "sql needs sql_conn_id"),
        ({"path": "a.csv", "hash_columns": ["email"]}, "needs a salt"),
        ({"path": "a.csv", "max_rejected": 1.5}, "max_rejected"),
    ],
)
def test_bad_arguments_fail_when_the_dag_is_parsed(kwargs, message):
    with pytest.raises(ValueError, match=message):
        operator(**kwargs)


def test_construction_reads_no_connection_and_templates_what_authors_template():
    task = operator(
        path="a.csv", conn_id="no_such_connection", hash_columns="email, phone", hash_salt_variable="s"
    )
    assert "hook" not in task.__dict__
    assert task.hash_columns == ["email", "phone"]
    for field in ("table_id", "path", "sql", "parameters", "hash_columns", "max_rejected", "conn_id"):
        assert field in task.template_fields


def ti(run_id, try_number=1, map_index=-1):
    return SimpleNamespace(
        dag_id="dag", task_id="upload", run_id=run_id, try_number=try_number, map_index=map_index
    )


def test_file_names_are_safe_and_differ_by_run_and_mapped_index():
    task = operator(path="a.csv")
    first = task._name_prefix({"ti": ti("manual__2026-01-01T00:00:00+00:00")})
    assert first == "dag.upload__manual__2026-01-01T00_00_00_00_00__"
    assert task._name_prefix({"ti": ti("scheduled__2026-01-02T00:00:00+00:00")}) != first
    assert task._name_prefix({"ti": ti("manual__2026-01-01T00:00:00+00:00", map_index=3)}).startswith(
        "dag.upload.3__"
    )


def prepare(tmp_path, text, max_rejected=0):
    source = tmp_path / "in.csv"
    source.write_text(text)
    task = operator(path=str(source))
    work = tmp_path / "work"
    work.mkdir()
    with ExitStack() as stack:
        return source, task._prepare(ATTRIBUTES, RejectLimit.parse(max_rejected), work, stack)


def test_a_clean_file_goes_up_as_it_is(tmp_path):
    source, (path, check, extension) = prepare(tmp_path, "customerId,visits\nc1,1\nc2,2\n")
    assert path == source and extension == "csv"
    assert (check.rows, check.rows_rejected) == (2, 0)


def test_bad_rows_within_max_rejected_are_left_out_of_a_rewritten_file(tmp_path):
    source, (path, check, _) = prepare(tmp_path, "customerId,visits\nc1,1\nc2,x\nc3,3\n", max_rejected=1)
    assert path != source
    assert path.read_text() == "customerId,visits\nc1,1\nc3,3\n"
    assert (check.rows, check.rows_rejected, check.bytes) == (3, 1, len(path.read_bytes()))


def test_too_many_bad_rows_fail_without_retry_and_name_them(tmp_path):
    with pytest.raises(AirflowFailException, match=r"nothing was uploaded(.|\n)*row 3, column 'visits'"):
        prepare(tmp_path, "customerId,visits\nc1,1\nc2,x\nc3,y\n", max_rejected=1)


def test_only_csv_and_tsv_can_go_up(tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text("{}\n")
    with ExitStack() as stack, pytest.raises(AirflowFailException, match="CSV or TSV"):
        operator(path=str(source))._prepare(ATTRIBUTES, RejectLimit.parse(0), tmp_path, stack)
