"""Partitions by a hash of the key: every key in exactly one, the same function in PostgreSQL, and the
reports of the partitions adding up."""

from __future__ import annotations

import psycopg2
import pytest

from airflow_provider_optimizely.core.partitions import Partition, PartitionError, partition_of
from airflow_provider_optimizely.core.report import RunReport, summarize

KEYS = [f"user-{i}@example.com" for i in range(4000)] + [str(i) for i in range(500)] + ["é", ""]


def test_every_key_belongs_to_exactly_one_partition_and_they_are_about_even():
    partitions = [Partition(i, 8) for i in range(8)]
    owners = [[p.index for p in partitions if p.owns(key)] for key in KEYS]
    assert all(len(owner) == 1 for owner in owners)
    sizes = [sum(owner == [i] for owner in owners) for i in range(8)]
    assert min(sizes) > len(KEYS) / 8 * 0.8 and max(sizes) < len(KEYS) / 8 * 1.2


def test_a_row_with_no_key_is_reported_by_the_first_partition_only():
    assert [Partition(i, 4).owns(None) for i in range(4)] == [True, False, False, False]


@pytest.mark.parametrize("value", ["8/8", "-1/4", "a/b", "3", None])
def test_a_partition_is_i_of_n(value):
    with pytest.raises(PartitionError):
        Partition.parse(value)


def test_postgresql_computes_the_same_partition():
    with psycopg2.connect("host=127.0.0.1 port=5432 user=postgres dbname=test") as db, db.cursor() as cursor:
        for index in range(3):
            predicate = Partition(index, 3).sql_predicate("k")
            cursor.execute(f"SELECT k FROM unnest(%s::text[]) AS t(k) WHERE {predicate}", (KEYS,))
            assert sorted(row[0] for row in cursor.fetchall()) == sorted(
                k for k in KEYS if partition_of(k, 3) == index
            )


def test_the_reports_of_the_partitions_add_up():
    reports = []
    for index in range(3):
        report = RunReport(operation="upsert-profiles", api="ODP", target="customers", partition=f"{index}/3")
        report.rows_read, report.rows_sent, report.rows_succeeded = 10 + index, 9, 9
        report.requests = {
            "requests": 2,
            "retries": index,
            "maybe_applied_twice": 0,
            "throttled_seconds": 0.5,
        }
        report.details["batches_resent_without_invalids"] = 1
        report.duration_seconds = 1.0 + index
        reports.append(report.as_dict())
    summary = summarize(reports)
    assert (summary["partitions"], summary["rows_read"], summary["rows_sent"]) == (3, 33, 27)
    assert summary["requests"] == {
        "total": 6,
        "retried": 3,
        "maybe_applied_twice": 0,
        "throttled_seconds": 1.5,
    }
    assert summary["details"] == {"batches_resent_without_invalids": 3}
    assert summary["duration_seconds"] == 3.0 and summary["stopped"] == []
