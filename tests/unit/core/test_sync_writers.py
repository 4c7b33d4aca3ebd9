"""Each API's writer with a fake hook: what it sends, what it rejects before sending, what the API refuses."""

from __future__ import annotations

import io
import logging
from datetime import date, datetime, timezone
from decimal import Decimal
from types import SimpleNamespace

import pytest

from airflow_provider_optimizely.core.errors import (
    BadRequestError,
    ConflictError,
    NotFoundError,
    RateLimitedError,
)
from airflow_provider_optimizely.core.report import TooManyRejectedRows
from airflow_provider_optimizely.core.sources import Page, Unreadable
from airflow_provider_optimizely.core.sync import Batch, Item, RowRejected, SyncConfigError, run_sync
from airflow_provider_optimizely.core.writers.dcp import DcpProfileWriter
from airflow_provider_optimizely.core.writers.odp import OdpEventWriter, OdpProfileWriter
from airflow_provider_optimizely.core.writers.optimove import OptimoveWriter
from airflow_provider_optimizely.core.writers.profile_store import (
    ProfileStoreDeleteWriter,
    ProfileStorePutWriter,
)


def numbered(rows, text_only=False):
    return [Page(rows, text_only=text_only)]


def batch_of(*items):
    batch = Batch()
    for item in items:
        batch.append(item)
    return batch


def invalid(indexes_reasons, kind="event"):
    return BadRequestError(
        400,
        "invalid request",
        invalids=[{kind: i, "message": reason} for i, reason in indexes_reasons],
    )


# -- ODP ------------------------------------------------------------------------------------------------


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
    writer = OdpEventWriter(odp, event_type="t", identifier_columns=["email"])
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
    writer = OdpEventWriter(FakeOdp(), event_type="pageview", action_column=None)
    event = writer.prepare(1, {"identifiers": '{"vuid": "v1"}', "data": '{"page": "/"}', "type": "ignored"})
    assert event.body == {"type": "pageview", "identifiers": {"vuid": "v1"}, "data": {"page": "/"}}


def test_an_event_without_type_or_identifier_is_rejected():
    writer = OdpEventWriter(FakeOdp(), identifier_columns=["email"])
    with pytest.raises(RowRejected, match="no type") as no_type:
        writer.prepare(1, {"email": "a@x.io", "type": ""})
    assert (no_type.value.column, no_type.value.key) == ("type", "a@x.io")
    with pytest.raises(RowRejected, match="no identifier"):
        writer.prepare(2, {"type": "t", "email": ""})
    with pytest.raises(RowRejected, match="not a JSON object"):
        OdpEventWriter(FakeOdp()).prepare(3, {"type": "t", "identifiers": "{broken"})


# -- DCP ------------------------------------------------------------------------------------------------


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


# -- Profile Store --------------------------------------------------------------------------------------


class FakeStore:
    def __init__(self):
        self.puts: dict[str, dict] = {}
        self.deletes: list[tuple[str, str | None]] = []
        self.delete_answers: list[object] = []

    def put_profile(self, profile_id, profile):
        if profile.get("Info", {}).get("Email") == "taken@x.io":
            raise ConflictError(409, "a profile with this Info.Email already exists")
        created = profile_id not in self.puts
        self.puts[profile_id] = profile
        return SimpleNamespace(created=created)

    def delete_profile(self, profile_id, scope=None):
        self.deletes.append((profile_id, scope))
        answer = self.delete_answers.pop(0) if self.delete_answers else True
        if isinstance(answer, Exception):
            raise answer
        return answer


def test_profile_store_body_from_columns():
    writer = ProfileStorePutWriter(
        FakeStore(),
        identifier_column="id",
        columns={
            "name": "Name",
            "devices": "DeviceIds",
            "visits": "Visits",
            "first": "FirstSeen",
            "last": "LastSeen",
            "email": "Info.Email",
            "tier": "Payload.tier",
        },
        scope="site",
    )
    item = writer.prepare(
        1,
        {
            "id": "p1",
            "name": "Ann",
            "devices": "d1, d2",
            "visits": "3",
            "first": datetime(2026, 1, 1),
            "last": "2026-02-01T00:00:00Z",
            "email": "ann@x.io",
            "tier": "gold",
        },
    )
    assert item.body == {
        "Name": "Ann",
        "DeviceIds": ["d1", "d2"],
        "Visits": 3,
        "FirstSeen": "2026-01-01T00:00:00Z",
        "LastSeen": "2026-02-01T00:00:00Z",
        "Info": {"Email": "ann@x.io"},
        "Payload": {"tier": "gold"},
        "Scope": "site",
    }


def test_profile_store_rules_are_checked_before_sending():
    writer = ProfileStorePutWriter(FakeStore(), identifier_column="id")
    with pytest.raises(RowRejected, match="Visits must be 0 or more") as negative:
        writer.prepare(1, {"id": "p1", "Visits": -1})
    assert (negative.value.key, negative.value.column) == ("p1", "Visits")
    with pytest.raises(RowRejected, match="FirstSeen is after LastSeen"):
        writer.prepare(
            2, {"id": "p2", "FirstSeen": "2026-02-01T00:00:00Z", "LastSeen": "2026-01-01T00:00:00Z"}
        )
    with pytest.raises(RowRejected, match="not a Profile Store profile property") as unknown:
        writer.prepare(3, {"id": "p3", "Shoe": 9})
    assert unknown.value.column == "Shoe"
    with pytest.raises(RowRejected, match="over Profile Store's 256 KB limit") as big:
        writer.prepare(4, {"id": "p4", "Payload": {"blob": "x" * (256 * 1024)}})
    assert big.value.key == "p4"
    just_under = writer.prepare(5, {"id": "p5", "Payload": {"blob": "x" * (256 * 1024 - 100)}})
    assert just_under.key == "p5"
    with pytest.raises(SyncConfigError, match=r"Info\.<name>"):
        ProfileStorePutWriter(FakeStore(), identifier_column="id", columns={"a": "Shoe"})


def test_profile_store_conflicts_are_rejects_and_created_vs_replaced_is_counted():
    store = FakeStore()
    writer = ProfileStorePutWriter(store, identifier_column="id")
    items = [
        writer.prepare(1, {"id": "p1", "Name": "a"}),
        writer.prepare(2, {"id": "p1", "Name": "b"}),
        writer.prepare(3, {"id": "p2", "Info": '{"Email": "taken@x.io"}'}),
    ]
    result = writer.send(batch_of(*items), False)
    assert result.succeeded == 2
    assert result.details == {"created": 1, "replaced": 1}
    assert result.rejected[0].row == 3 and "same DeviceIds or Info.Email" in result.rejected[0].reason


def test_delete_counts_404_as_already_deleted_and_waits_out_429():
    store = FakeStore()
    store.delete_answers = [
        True,
        False,
        RateLimitedError(429, "too many events deleted", retry_after=30),
        True,
    ]
    slept: list[float] = []
    writer = ProfileStoreDeleteWriter(store, scope="default", sleep=slept.append, clock=lambda: 0.0)
    report = run_sync(numbered([{"id": "a"}, {"id": "b"}, {"id": "c"}]), writer, max_concurrency=1)
    assert report.rows_succeeded == 3
    assert report.details == {"deleted": 2, "already_deleted": 1, "rate_limit_waits": 1}
    assert slept == [30]
    assert store.deletes == [("a", "default"), ("b", "default"), ("c", "default"), ("c", "default")]


def test_delete_gives_up_once_the_wait_would_pass_its_patience():
    store = FakeStore()
    store.delete_answers = [RateLimitedError(429, "later", retry_after=7200)]
    writer = ProfileStoreDeleteWriter(store, rate_limit_patience=3600, sleep=lambda s: None)
    with pytest.raises(RateLimitedError):
        writer.send(batch_of(Item(1, "a", None)), False)


def test_delete_takes_the_one_column_of_a_query_whatever_its_name():
    writer = ProfileStoreDeleteWriter(FakeStore())
    assert writer.prepare(1, {"profile_id": "p9"}).key == "p9"
    with pytest.raises(RowRejected, match="no identifier"):
        writer.prepare(2, {"a": 1, "b": 2})


# -- Optimove -------------------------------------------------------------------------------------------


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
