"""The DCP bulk-upload operator's arguments and its guard on S3 endpoints, without Airflow running it or
any network (tests/integration/test_bulk_upload.py runs it against the emulator and moto's S3)."""

from __future__ import annotations

import json
import logging

import pytest

from airflow_provider_optimizely.core.rest import InsecureUrlError
from airflow_provider_optimizely.hooks.dcp import DcpS3Credentials
from airflow_provider_optimizely.operators._table_s3 import DcpTableS3Hook
from airflow_provider_optimizely.operators.dcp import OptimizelyDcpBulkUploadOperator


def operator(**kwargs):
    return OptimizelyDcpBulkUploadOperator(task_id="upload", **{"table_id": 1, **kwargs})


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


CREDENTIALS = DcpS3Credentials("optimizely-import", "dcp/1/2", "AKIA", "secret", None, "us-east-1")


def aws_connection(monkeypatch, extra):
    monkeypatch.setenv("AIRFLOW_CONN_AWS_S3", json.dumps({"conn_type": "aws", "extra": extra}))
    return DcpTableS3Hook(CREDENTIALS, aws_conn_id="aws_s3")


@pytest.mark.parametrize(
    "extra",
    [
        {"endpoint_url": "http://s3.example.com"},
        {"service_config": {"s3": {"endpoint_url": "http://s3.example.com"}}},
    ],
    ids=["endpoint_url", "service_config.s3.endpoint_url"],
)
def test_every_endpoint_the_upload_uses_must_be_https_unless_loopback(monkeypatch, extra):
    with pytest.raises(InsecureUrlError, match=r"s3\.example\.com"):
        aws_connection(monkeypatch, extra).conn_config  # noqa: B018
    loopback = json.loads(json.dumps(extra).replace("s3.example.com", "127.0.0.1:9000"))
    assert aws_connection(monkeypatch, loopback).conn_config is not None


def test_an_endpoint_from_the_environment_is_held_to_the_same_rule(monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://s3.example.com")
    with pytest.raises(InsecureUrlError):
        DcpTableS3Hook(CREDENTIALS).conn_config  # noqa: B018


def test_turned_off_certificate_checks_are_logged(monkeypatch, caplog):
    with caplog.at_level(logging.WARNING):
        aws_connection(monkeypatch, {"verify": False}).conn_config  # noqa: B018
    assert any("TLS certificate checks are turned off" in m for m in caplog.messages)
