"""Tests of the Profile Store writers (put and delete) with a fake hook:
what it sends, what it rejects before sending, what the API refuses."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from types import SimpleNamespace

import msgspec
import pytest

from airflow_provider_optimizely.core.errors import (
    ConflictError,
    RateLimitedError,
)
from airflow_provider_optimizely.core.json_body import encode_json
from airflow_provider_optimizely.core.page import Page
from airflow_provider_optimizely.core.sync import Item, RowRejected, SyncConfigError, run_sync
from airflow_provider_optimizely.core.writers.profile_store import (
    ProfileStoreDeleteWriter,
    ProfileStorePutWriter,
)
from tests.unit.core.writers.helpers import batch_of, numbered


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


def test_visits_are_never_cut_and_text_properties_keep_their_json_spelling():
    writer = ProfileStorePutWriter(FakeStore(), identifier_column="id")
    with pytest.raises(RowRejected, match="Visits is a whole number") as cut:
        writer.prepare(1, {"id": "p", "Visits": Decimal("3.5")})
    assert cut.value.column == "Visits"
    assert writer.prepare(2, {"id": "p", "Visits": Decimal("3")}).body["Visits"] == 3
    assert writer.prepare(3, {"id": "p", "Name": True}).body["Name"] == "true"


@pytest.mark.parametrize("profile_id", [".", ".."])
def test_an_id_that_would_change_the_route_is_rejected_with_its_row(profile_id):
    """Deleting profile ``..`` once sent ``DELETE /api/v1.0/profiles/default`` and counted it gone."""
    with pytest.raises(RowRejected, match="can't be sent as a URL path segment") as put:
        ProfileStorePutWriter(FakeStore(), identifier_column="id").prepare(1, {"id": profile_id, "Name": "x"})
    with pytest.raises(RowRejected, match="can't be sent as a URL path segment") as delete:
        ProfileStoreDeleteWriter(FakeStore()).prepare(2, {"id": profile_id})
    assert put.value.column == "id" and delete.value.column == "id"


def test_a_page_of_profiles_keeps_each_body_as_the_json_measured_against_the_limit():
    writer = ProfileStorePutWriter(
        FakeStore(), identifier_column="id", columns={"name": "Name", "n": "Visits"}
    )
    rows = [{"id": "p1", "name": "Ann", "n": "3"}, {"id": "p2", "name": "Bo", "n": "-1"}]
    ready, rejected = writer.prepare_page(5, Page([dict(row) for row in rows]))
    assert (ready.rows, ready.keys) == ([5], ["p1"])
    assert [(r.row, r.key, r.column) for r in rejected] == [(6, "p2", "n")]
    (body,) = ready.bodies
    assert isinstance(body, msgspec.Raw)  # written once: sent and fingerprinted as these bytes
    assert bytes(body) == encode_json(writer.prepare(5, dict(rows[0])).body) == encode_json(body)
