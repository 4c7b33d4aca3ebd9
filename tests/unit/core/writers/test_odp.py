"""Tests of ODP writers (profiles and events) with a fake hook:
what it sends, what it rejects before sending, what the API refuses."""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal
from types import SimpleNamespace

import pyarrow as pa
import pytest

from airflow_provider_optimizely.core.errors import (
    BadRequestError,
)
from airflow_provider_optimizely.core.page import Page
from airflow_provider_optimizely.core.report import TooManyRejectedRows
from airflow_provider_optimizely.core.sync import RowRejected, SyncConfigError, run_sync
from airflow_provider_optimizely.core.writers.odp import OdpEventWriter, OdpProfileWriter
from tests.unit.core.writers.helpers import assert_page_as_row_by_row, batch_of, numbered


class FakeOdp:
    def __init__(self, refuse=None):
        self.posts: list[list[dict]] = []
        self.refuse = refuse or (lambda items: None)

    def get_schema_object(self, object_type):
        fields = [("email", "string"), ("customer_id", "string"), ("age", "number"), ("vip", "boolean")]
        return SimpleNamespace(fields=[SimpleNamespace(name=n, type=t) for n, t in fields])

    def _post(self, items):
        self.posts.append(list(items))
        error = self.refuse(items)
        if error is not None:
            raise error

    upsert_profiles = _post
    send_events = _post


def test_odp_profiles_are_validated_against_customers_fields():
    odp = FakeOdp()
    writer = OdpProfileWriter(odp, identifier_column="email")
    item = writer.prepare(1, {"email": "a@x.io", "age": "42", "vip": "true", "customer_id": None})
    assert item.body == {"identifiers": {"email": "a@x.io"}, "attributes": {"age": 42, "vip": True}}
    with pytest.raises(RowRejected) as bad_type:
        writer.prepare(2, {"email": "b@x.io", "age": "forty"})
    assert (bad_type.value.column, bad_type.value.key) == ("age", "b@x.io")
    assert "not a number" in bad_type.value.reason
    with pytest.raises(RowRejected, match="not a field of ODP customers") as unknown:
        writer.prepare(3, {"email": "c@x.io", "shoe_size": 9})
    assert unknown.value.column == "shoe_size"
    with pytest.raises(RowRejected, match="no identifier"):
        writer.prepare(4, {"email": " ", "age": 1})


def test_odp_profile_mapping_and_identifier_name_are_checked_before_any_row():
    odp = FakeOdp()
    writer = OdpProfileWriter(
        odp, identifier_column="user", identifier_name="customer_id", columns={"years": "age"}
    )
    assert writer.prepare(1, {"user": 17, "years": 30, "ignored": "x"}).body == {
        "identifiers": {"customer_id": "17"},
        "attributes": {"age": 30},
    }
    with pytest.raises(SyncConfigError, match="shoe_size"):
        OdpProfileWriter(odp, identifier_column="email", columns={"s": "shoe_size"})
    with pytest.raises(SyncConfigError, match="identifier 'user_ref'"):
        OdpProfileWriter(odp, identifier_column="user_ref")
    with pytest.raises(SyncConfigError, match="1 to 500"):
        OdpProfileWriter(odp, identifier_column="email", batch_size=501)


def test_odp_invalids_are_rejected_by_row_and_the_rest_of_the_batch_is_resent():
    def refuse(items):
        bad = [
            (i, "email: not an email address")
            for i, p in enumerate(items)
            if "@" not in p["identifiers"]["email"]
        ]
        if bad:
            return BadRequestError(
                400,
                "invalid request",
                invalids=[{"profile": i, "field": "email", "reason": r} for i, r in bad],
            )
        return None

    odp = FakeOdp(refuse)
    writer = OdpProfileWriter(odp, identifier_column="email")
    rows = numbered([{"email": "a@x.io"}, {"email": "nope"}, {"email": "c@x.io"}])
    with pytest.raises(TooManyRejectedRows) as raised:
        run_sync(rows, writer)
    report = raised.value.report
    assert [len(p) for p in odp.posts] == [3, 2]
    assert [p["identifiers"]["email"] for p in odp.posts[1]] == ["a@x.io", "c@x.io"]
    assert (report.rows_sent, report.rows_succeeded, report.rows_rejected) == (3, 2, 1)
    rejection = report.rejected_rows[0]
    assert (rejection.row, rejection.key, rejection.column) == (2, "nope", "email")
    assert "not an email address" in rejection.reason
    assert report.details["batches_resent_without_invalids"] == 1


def test_a_400_that_names_no_item_refuses_the_whole_batch():
    odp = FakeOdp(lambda items: BadRequestError(400, "at most 500 events per request"))
    writer = OdpEventWriter(odp, event_type="t", action="a", identifier_columns=["email"])
    result = writer.send(
        batch_of(writer.prepare(1, {"email": "a"}), writer.prepare(2, {"email": "b"})), False
    )
    assert result.succeeded == 0
    assert [r.row for r in result.rejected] == [1, 2]
    assert "at most 500" in result.rejected[0].reason


def test_events_from_columns():
    writer = OdpEventWriter(FakeOdp(), identifier_columns={"email": "mail"})
    event = writer.prepare(
        1,
        {
            "type": "order",
            "action": "purchase",
            "mail": "a@x.io",
            "total": Decimal("9.50"),
            "at": datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc),
            "day": date(2026, 1, 2),
            "empty": None,
        },
    )
    assert event.key == "a@x.io"
    assert event.body == {
        "type": "order",
        "action": "purchase",
        "identifiers": {"email": "a@x.io"},
        "data": {"total": 9.5, "at": "2026-01-02T03:04:05Z", "day": "2026-01-02"},
    }


def test_events_from_identifiers_and_data_objects_as_json_text():
    writer = OdpEventWriter(FakeOdp(), event_type="pageview", action="view")
    event = writer.prepare(1, {"identifiers": '{"vuid": "v1"}', "data": '{"page": "/"}', "type": "ignored"})
    assert event.body == {
        "type": "pageview",
        "action": "view",
        "identifiers": {"vuid": "v1"},
        "data": {"page": "/"},
    }


def test_an_event_without_type_or_identifier_is_rejected():
    writer = OdpEventWriter(FakeOdp(), identifier_columns=["email"])
    with pytest.raises(RowRejected, match="no type") as no_type:
        writer.prepare(1, {"email": "a@x.io", "type": ""})
    assert (no_type.value.column, no_type.value.key) == ("type", "a@x.io")
    with pytest.raises(RowRejected, match="no identifier"):
        writer.prepare(2, {"type": "t", "email": ""})
    with pytest.raises(RowRejected, match="not a JSON object"):
        OdpEventWriter(FakeOdp()).prepare(3, {"type": "t", "identifiers": "{broken"})
    with pytest.raises(RowRejected, match="no action") as no_action:
        writer.prepare(4, {"type": "t", "email": "a@x.io", "action": " "})
    assert (no_action.value.column, no_action.value.key) == ("action", "a@x.io")


def test_events_check_their_columns_before_any_row():
    with pytest.raises(SyncConfigError, match="no column 'action'"):
        OdpEventWriter(FakeOdp(), identifier_columns=["email"]).check_columns(["type", "email"])
    with pytest.raises(SyncConfigError, match="no column 'kind'"):
        OdpEventWriter(FakeOdp(), type_column="kind", action="a").check_columns(["identifiers"])
    OdpEventWriter(FakeOdp(), event_type="t", action="a").check_columns(["identifiers"])


@pytest.mark.parametrize(
    "rows",
    [
        [
            {"email": f"u{i}@x.io", "age": i * 1.5, "vip": i % 2 == 0, "customer_id": f"c{i}"}
            for i in range(50)
        ],
        [{"email": f"u{i}@x.io", "age": i, "customer_id": None} for i in range(20)],  # None: left out
        [{"email": "a@x.io", "age": "42"}, {"email": "b@x.io", "age": ""}],  # text: checked, "" left out
        [{"email": "a@x.io", "age": float("nan")}, {"email": "b@x.io", "age": 2}],  # rejected by row
        [{"email": "a@x.io", "age": 1e308}, {"email": "b@x.io", "age": 1e308}],  # a sum that overflows
        [{"email": "a@x.io", "age": 10**400}, {"email": "b@x.io", "age": 3}],  # no double holds it
        [{"email": "a@x.io", "age": True}],  # a bool is no number
        [{"email": " ", "age": 1}, {"email": "b@x.io", "age": 1}],  # an empty key
        [{"email": 7, "age": Decimal("1.50")}, {"email": 8, "age": Decimal("2")}],  # int keys, decimals
        [{"email": "a@x.io", "age": 1}, {"age": 2, "email": "b@x.io"}],  # columns in another order
        [{"email": "a@x.io", "shoe_size": 9}],  # not a field
        [{"email": "a@x.io"}, {"email": "b@x.io", "age": 1}],  # differing columns
        [{"email": "a@x.io"}],  # nothing but the key
    ],
)
def test_odp_profiles_of_a_page_at_once_are_those_of_row_by_row(rows):
    writer = OdpProfileWriter(FakeOdp(), identifier_column="email")
    assert_page_as_row_by_row(writer, Page([dict(row) for row in rows]), Page([dict(row) for row in rows]))
    mapped = OdpProfileWriter(FakeOdp(), identifier_column="email", columns={"age": "age", "email": "email"})
    assert_page_as_row_by_row(mapped, Page([dict(row) for row in rows]), Page([dict(row) for row in rows]))


def test_odp_profiles_of_csv_pages_at_once_are_those_of_row_by_row():
    header = ["email", "age", "vip"]
    values = [("u@x.io", "7", "true"), ("", "1", "false"), ("v@x.io", "x", "true"), ("w@x.io", "1")]
    writer = OdpProfileWriter(FakeOdp(), identifier_column="email")
    for chunk in (values[:1], values[:2], values[2:3], values[3:], values):
        page = Page(header=header, values=list(chunk), text_only=True)
        assert_page_as_row_by_row(writer, page, Page(header=header, values=list(chunk)))
    table = pa.table({"email": ["a@x.io", "b@x.io"], "age": ["1.50", ""], "vip": ["true", "false"]})
    page = Page(header=header, table=table, text_only=True)
    ready = assert_page_as_row_by_row(writer, page, Page(header=header, table=table))
    assert ready.bodies[1] == {"identifiers": {"email": "b@x.io"}, "attributes": {"vip": False}}
