"""Tests of the Optimove writer with a fake hook:
what it sends, what it rejects before sending, what the API refuses."""

from __future__ import annotations

import io
import logging
from datetime import date, datetime
from decimal import Decimal

import pytest

from airflow_provider_optimizely.core.errors import (
    BadRequestError,
)
from airflow_provider_optimizely.core.sources import Page, Unreadable
from airflow_provider_optimizely.core.sync import Item, SyncConfigError, run_sync
from airflow_provider_optimizely.core.writers.optimove import OptimoveWriter
from tests.unit.core.writers.helpers import assert_page_as_row_by_row, batch_of, numbered


class FakeOptimove:
    def __init__(self, refuse=None):
        self.calls: list[dict] = []
        self.refuse = refuse

    def upload_data(
        self, connection_uuid, records, *, ttl_seconds=None, batch_uuid=None, batch_completed=True
    ):
        self.calls.append(
            {
                "connection": connection_uuid,
                "records": [dict(r) for r in records],
                "batch_uuid": batch_uuid,
                "batch_completed": batch_completed,
                "ttl": ttl_seconds,
            }
        )
        if self.refuse:
            error = self.refuse(records)
            if error:
                raise error


def test_optimove_sends_whole_records_under_one_batch_uuid_completed_only_last():
    optimove = FakeOptimove()
    writer = OptimoveWriter(
        optimove, connection_uuid="dc-1", identifier_column="user_id", batch_size=2, ttl_seconds=60
    )
    rows = numbered([{"user_id": i, "value": Decimal("1.5"), "note": None} for i in range(5)])
    report = run_sync(rows, writer, max_concurrency=2)
    assert report.rows_succeeded == 5
    assert {c["batch_uuid"] for c in optimove.calls} == {writer.batch_uuid}
    assert [c["batch_completed"] for c in optimove.calls] == [False, False, True]
    assert optimove.calls[-1]["records"] == [{"user_id": 4, "value": 1.5, "note": None}]
    assert {c["ttl"] for c in optimove.calls} == {60}


def test_optimove_mapping_that_leaves_columns_out_needs_allow_partial_records(caplog):
    optimove = FakeOptimove()
    strict = OptimoveWriter(
        optimove, connection_uuid="dc", identifier_column="id", columns={"id": "id", "a": "A"}
    )
    assert strict.prepare(1, {"id": 1, "a": "x"}).body == {"id": 1, "A": "x"}
    with pytest.raises(SyncConfigError, match="allow_partial_records"):
        strict.prepare(2, {"id": 2, "a": "x", "b": "y"})
    with caplog.at_level(logging.WARNING):
        partial = OptimoveWriter(
            optimove,
            connection_uuid="dc",
            identifier_column="id",
            columns=["a"],
            allow_partial_records=True,
            logger=logging.getLogger("optimove-test"),
        )
        assert partial.prepare(3, {"id": 3, "a": "x", "b": "y"}).body == {"a": "x", "id": 3}
        partial.prepare(4, {"id": 4, "a": "x", "b": "y"})
    warnings = [m for m in caplog.messages if "removed" in m]
    assert len(warnings) == 2  # once at start, once naming the column left out (not once a row)
    assert "b" in warnings[1]


def test_optimove_primary_key_may_be_renamed():
    writer = OptimoveWriter(
        FakeOptimove(), connection_uuid="dc", identifier_column="uid", primary_key="user_id"
    )
    assert writer.prepare(1, {"uid": "7", "v": "x"}).body == {"v": "x", "user_id": "7"}
    with pytest.raises(SyncConfigError, match="primary key"):
        OptimoveWriter(
            FakeOptimove(),
            connection_uuid="dc",
            identifier_column="uid",
            primary_key="pk",
            columns={"uid": "x"},
        )


def test_optimove_400_naming_a_record_resends_the_others():
    def refuse(records):
        for index, record in enumerate(records):
            if record["user_id"] == "bad":
                return BadRequestError(400, f"record {index}: the primary key 'user_id' is missing or empty")
        return None

    optimove = FakeOptimove(refuse)
    writer = OptimoveWriter(optimove, connection_uuid="dc", identifier_column="user_id")
    result = writer.send(batch_of(Item(1, "a", {"user_id": "a"}), Item(2, "bad", {"user_id": "bad"})), True)
    assert result.succeeded == 1 and result.rejected[0].row == 2
    assert [len(c["records"]) for c in optimove.calls] == [2, 1]
    assert all(c["batch_completed"] for c in optimove.calls)


def test_optimove_text_pages_take_the_fast_way_and_broken_pages_the_careful_one():
    writer = OptimoveWriter(
        FakeOptimove(), connection_uuid="dc", identifier_column="uid", primary_key="user_id"
    )
    rows = [{"uid": "1", "v": "a"}, {"uid": "2", "v": "b"}]
    ready, rejected = writer.prepare_page(10, Page(rows, text_only=True))
    assert (ready.rows, ready.keys, rejected) == ([10, 11], ["1", "2"], [])
    assert ready.bodies == [{"v": "a", "user_id": "1"}, {"v": "b", "user_id": "2"}]
    ready, rejected = writer.prepare_page(
        1,
        Page(
            [{"uid": "3"}, {"uid": " "}, Unreadable("5 fields, but the header has 2"), {"v": "x"}],
            text_only=True,
        ),
    )
    assert ready.keys == ["3"]
    assert [(r.row, r.reason) for r in rejected] == [
        (2, "no identifier: the value is empty"),
        (3, "5 fields, but the header has 2"),
        (4, "no identifier: the row has no column 'uid'"),
    ]


def test_optimove_typed_pages_are_converted_a_column_at_a_time():
    writer = OptimoveWriter(FakeOptimove(), connection_uuid="dc", identifier_column="id")
    rows = [
        {"id": 1, "score": Decimal("2.5"), "seen": datetime(2026, 1, 2, 3, 4, 5), "n": 3},
        {"id": 2, "score": None, "seen": date(2026, 1, 3), "n": 4},
    ]
    ready, rejected = writer.prepare_page(1, Page(rows))
    assert (ready.keys, rejected) == (["1", "2"], [])
    assert ready.bodies == [
        {"id": 1, "score": 2.5, "seen": "2026-01-02T03:04:05Z", "n": 3},
        {"id": 2, "score": None, "seen": "2026-01-03", "n": 4},
    ]
    # Rows of differing columns (JSON Lines) and odd keys take the row-by-row path, with the same result.
    ready, rejected = writer.prepare_page(1, Page([{"id": 1.0, "a": Decimal(1)}, {"id": 2}]))
    assert ready.keys == ["1", "2"] and ready.bodies == [{"id": 1.0, "a": 1}, {"id": 2}]


def test_optimove_csv_pages_become_records_without_dicts_and_encode_as_the_rows_would():
    from airflow_provider_optimizely.core.json_body import encode_json
    from airflow_provider_optimizely.core.sources import pages_from_csv

    text = 'uid,first name,note\n1,Ann,"a, b"\n2,Bob,\n'
    writer = OptimoveWriter(
        FakeOptimove(), connection_uuid="dc", identifier_column="uid", primary_key="user_id"
    )
    [page] = pages_from_csv(io.BytesIO(text.encode()))
    ready, rejected = writer.prepare_page(1, page)
    assert (ready.rows, ready.keys, rejected) == ([1, 2], ["1", "2"], [])
    assert not any(isinstance(body, dict) for body in ready.bodies)
    assert encode_json(ready.bodies) == encode_json(
        [
            {"user_id": "1", "first name": "Ann", "note": "a, b"},
            {"user_id": "2", "first name": "Bob", "note": ""},
        ]
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("uid,v\n1,a\n2\n", (["1"], [{"uid": "1", "v": "a"}], [(2, "1 fields where the header has 2")])),
        ("uid,v\n1,a\n ,b\n", (["1"], [{"uid": "1", "v": "a"}], [(2, "no identifier: the value is empty")])),
        ("uid,v\n1,a\n2,b,c\n", (["1"], [{"uid": "1", "v": "a"}], [(2, "3 fields where the header has 2")])),
    ],
    ids=["short row", "empty key", "long row"],
)
def test_optimove_csv_pages_with_a_row_to_look_at_go_row_by_row(text, expected):
    from airflow_provider_optimizely.core.sources import pages_from_csv

    writer = OptimoveWriter(FakeOptimove(), connection_uuid="dc", identifier_column="uid")
    [page] = pages_from_csv(io.BytesIO(text.encode()))
    ready, rejected = writer.prepare_page(1, page)
    assert (ready.keys, ready.bodies, [(r.row, r.reason) for r in rejected]) == expected


def test_optimove_csv_page_with_a_column_named_as_the_primary_key_keeps_the_row_by_row_result():
    from airflow_provider_optimizely.core.sources import pages_from_csv

    writer = OptimoveWriter(FakeOptimove(), connection_uuid="dc", identifier_column="uid", primary_key="id")
    [page] = pages_from_csv(io.BytesIO(b"uid,id,v\n1,x,a\n"))
    ready, rejected = writer.prepare_page(1, page)
    assert (ready.keys, ready.bodies, rejected) == (["1"], [{"v": "a", "id": "1"}], [])


def test_a_value_with_no_json_form_rejects_its_row_by_column_and_the_page_still_goes():
    """A NaN used to go out as ``null``, which replaced the stored value with nothing."""
    writer = OptimoveWriter(FakeOptimove(), connection_uuid="dc", identifier_column="uid")
    rows = [{"uid": 1, "score": 1.5}, {"uid": 2, "score": float("nan")}, {"uid": 3, "score": Decimal("2.25")}]
    ready, rejected = writer.prepare_page(1, Page([dict(row) for row in rows]))
    assert ready.keys == ["1", "3"]
    [rejection] = rejected
    assert (rejection.row, rejection.column) == (2, "score") and "NaN" in rejection.reason


@pytest.mark.parametrize(
    "rows",
    [
        [{"id": i, "d": date(2026, 1, 1 + i % 28), "f": i / 3, "s": "x"} for i in range(40)],
        [{"id": 1, "d": date(2026, 1, 1), "f": None}, {"id": 2, "d": None, "f": 2.5}],
        [{"id": 1, "f": float("nan")}, {"id": 2, "f": 1.0}],  # refused by row
        [{"id": 1, "f": 1e308}, {"id": 2, "f": 1e308}],  # a sum that overflows, values that don't
        [
            {"id": 1, "d": datetime(2026, 1, 1, 12), "n": Decimal("1.50")},
            {"id": 2, "d": date(2026, 1, 2), "n": 3},
        ],
        [{"id": 1, "b": b"\x00\x01"}, {"id": 2, "b": object()}],  # no JSON form: refused by row
        [{"id": 1, "a": 1}, {"a": 2, "id": 2}],  # the same columns in another order
    ],
)
def test_optimove_records_converted_a_column_at_a_time_are_those_of_row_by_row(rows):
    writer = OptimoveWriter(FakeOptimove(), connection_uuid="dc", identifier_column="id")
    assert_page_as_row_by_row(writer, Page([dict(row) for row in rows]), Page([dict(row) for row in rows]))
