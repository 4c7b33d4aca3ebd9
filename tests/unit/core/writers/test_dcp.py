"""Tests of the DCP writer with a fake hook:
what it sends, what it rejects before sending, what the API refuses."""

from __future__ import annotations

from datetime import date
from types import SimpleNamespace

import pytest

from airflow_provider_optimizely.core.errors import (
    BadRequestError,
    NotFoundError,
)
from airflow_provider_optimizely.core.page import Page
from airflow_provider_optimizely.core.sync import Item, RowRejected, SyncConfigError
from airflow_provider_optimizely.core.writers.dcp import DcpProfileWriter
from tests.unit.core.writers.helpers import assert_page_as_row_by_row, batch_of


class FakeDcp:
    def __init__(self):
        self.writes: list[tuple[int, str, dict]] = []

    def list_attributes(self, table_id):
        return [
            SimpleNamespace(name="plan", datatype="string", format=None, archived=False),
            SimpleNamespace(name="visits", datatype="long", format=None, archived=False),
            SimpleNamespace(name="since", datatype="datetime", format="yyyy-mm-dd", archived=False),
            SimpleNamespace(name="old", datatype="string", format=None, archived=True),
        ]

    def upsert_profile(self, table_id, customer_id, data):
        if customer_id == "refused":
            raise BadRequestError(400, "attribute 'plan' is archived")
        if customer_id == "gone":
            raise NotFoundError(404, "no table")
        self.writes.append((table_id, customer_id, data))


def test_dcp_values_are_validated_and_only_present_attributes_written():
    dcp = FakeDcp()
    writer = DcpProfileWriter(dcp, table_id="7", identifier_column="customerId")
    item = writer.prepare(1, {"customerId": "c1", "plan": "gold", "visits": "", "since": date(2026, 1, 2)})
    assert item.body == {"plan": "gold", "since": "2026-01-02"}
    with pytest.raises(RowRejected, match="not a long") as bad:
        writer.prepare(2, {"customerId": "c2", "visits": "12x"})
    assert bad.value.column == "visits"
    with pytest.raises(RowRejected, match="not a registered attribute"):
        writer.prepare(3, {"customerId": "c3", "old": "x"})  # archived: can't be written
    with pytest.raises(RowRejected, match="no attribute value"):
        writer.prepare(4, {"customerId": "c4", "visits": ""})
    with pytest.raises(SyncConfigError, match="registered: plan, since, visits"):
        DcpProfileWriter(dcp, table_id=7, identifier_column="id", columns={"x": "nope"})


def test_dcp_refusals_are_rejects_and_other_errors_end_the_run():
    dcp = FakeDcp()
    writer = DcpProfileWriter(dcp, table_id=7, identifier_column="id")
    result = writer.send(batch_of(Item(1, "refused", {"plan": "x"})), False)
    assert result.rejected[0].reason == "refused by DCP: attribute 'plan' is archived"
    assert writer.send(batch_of(Item(2, "ok", {"plan": "x"})), False).succeeded == 1
    assert dcp.writes == [(7, "ok", {"plan": "x"})]
    with pytest.raises(NotFoundError):
        writer.send(batch_of(Item(3, "gone", {"plan": "x"})), False)


def test_a_customer_id_that_would_change_the_route_is_rejected_with_its_row():
    writer = DcpProfileWriter(FakeDcp(), table_id=7, identifier_column="id")
    with pytest.raises(RowRejected, match="can't be sent as a URL path segment") as rejected:
        writer.prepare(1, {"id": "..", "plan": "gold"})
    assert rejected.value.column == "id"


@pytest.mark.parametrize(
    "rows",
    [
        [{"customerId": f"c{i}", "plan": "gold", "visits": i, "since": date(2026, 1, 2)} for i in range(30)],
        [{"customerId": 1, "plan": None, "visits": "5"}, {"customerId": 2, "plan": "x", "visits": ""}],
        [{"customerId": "c1", "plan": None, "visits": None}, {"customerId": "c2", "plan": "x", "visits": 1}],
        [{"customerId": "..", "plan": "x"}, {"customerId": "c2", "plan": "y"}],  # no path segment
        [{"customerId": "\ud800", "plan": "x"}],  # a lone surrogate
        [{"customerId": "c1", "visits": 1.5}, {"customerId": "c2", "visits": 2}],  # not a long
        [{"customerId": "c1", "old": "x"}],  # archived: not an attribute
        [{"customerId": "c1", "plan": "x"}, {"plan": "y", "customerId": "c2"}],  # another column order
    ],
)
def test_dcp_profiles_of_a_page_at_once_are_those_of_row_by_row(rows):
    writer = DcpProfileWriter(FakeDcp(), table_id=7, identifier_column="customerId")
    assert_page_as_row_by_row(writer, Page([dict(row) for row in rows]), Page([dict(row) for row in rows]))
    header = list(rows[0])
    if all(list(row) == header for row in rows) and all(type(v) is str for row in rows for v in row.values()):
        values = [tuple(row.values()) for row in rows]
        assert_page_as_row_by_row(
            writer, Page(header=header, values=values), Page(header=header, values=values)
        )
