"""DCP bulk upload (API.md §4.4-4.6): a real boto3 upload to moto's S3, then Upload History over HTTP."""

from __future__ import annotations

from typing import Any

import pytest

from tests.emulator.conftest import Dcp, Table
from tests.waiting import wait_until

BUCKET = "optimizely-import"


def upload(dcp: Dcp, crm: Table, name: str, body: bytes) -> str:
    """Put ``body`` under the table's s3_path with the table's own keys, as a customer would."""
    s3 = dcp.emulator.s3_client(crm.table["aws_access_key"], crm.table["aws_secret_key"])
    key = f"{crm.table['s3_path']}/{name}"
    s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    return key


def history(dcp: Dcp, crm: Table, **params: Any) -> list[dict[str, Any]]:
    return dcp.ok("GET", f"dcp_datasources/{crm.id}/upload_history", 200, params=params)


def finished(dcp: Dcp, crm: Table, count: int = 1) -> list[dict[str, Any]]:
    def done() -> list[dict[str, Any]] | None:
        entries = history(dcp, crm)
        return (
            entries
            if len(entries) == count and all(e["status"] in ("processed", "failed") for e in entries)
            else None
        )

    return wait_until(done, timeout=15, what=f"{count} file(s) processed")


def profile(dcp: Dcp, crm: Table, customer: str) -> dict[str, Any] | None:
    response = dcp.profiles("GET", f"customer_profile/{crm.service_id}/{crm.id}/{customer}")
    return response.json()["data"] if response.status_code == 200 else None


def test_pending_then_processed_and_applied(dcp: Dcp, crm: Table):
    dcp.emulator.set_processing_delay(60)  # held pending until the test lets it go
    key = upload(dcp, crm, "day1.csv", b"customerId,segment,orders,vip\nc1,gold,3,true\nc2,silver,1,false\n")
    pending = wait_until(lambda: history(dcp, crm), timeout=10, what="the upload to be seen")
    assert pending[0]["status"] == "pending"
    assert (pending[0]["file_name"], pending[0]["s3_key"], pending[0]["processed_at"]) == (
        "day1.csv",
        key,
        None,
    )
    assert profile(dcp, crm, "c1") is None

    dcp.emulator.set_processing_delay(0)
    [entry] = finished(dcp, crm)
    assert entry["status"] == "processed"
    assert (entry["rows_total"], entry["rows_processed"], entry["rows_failed"], entry["errors"]) == (
        2,
        2,
        0,
        [],
    )
    assert entry["uploaded_at"] <= entry["processed_at"]
    assert profile(dcp, crm, "c1") == {"segment": "gold", "orders": 3, "vip": True}
    assert profile(dcp, crm, "c2") == {"segment": "silver", "orders": 1, "vip": False}


def test_rows_update_profiles_and_empty_cells_leave_values(dcp: Dcp, crm: Table):
    dcp.profiles(
        "POST", f"customer_profile/{crm.service_id}/{crm.id}/c1", json={"data": {"segment": "a", "orders": 1}}
    )
    upload(dcp, crm, "f.csv", b"CUSTOMERID,orders,segment\nc1,7,\n")
    finished(dcp, crm)
    assert profile(dcp, crm, "c1") == {"segment": "a", "orders": 7}


def test_unregistered_column_fails_the_whole_file(dcp: Dcp, crm: Table):
    upload(dcp, crm, "bad.csv", b"customerId,segment,shoe_size\nc1,gold,42\n")
    [entry] = finished(dcp, crm)
    assert entry["status"] == "failed"
    assert (entry["rows_total"], entry["rows_processed"], entry["rows_failed"]) == (1, 0, 1)
    assert entry["errors"] == [{"row": 1, "column": "shoe_size", "message": entry["errors"][0]["message"]}]
    assert "shoe_size" in entry["errors"][0]["message"]
    assert profile(dcp, crm, "c1") is None


@pytest.mark.parametrize("header", [b"segment,orders", b"customerId,segment,segment", b""])
def test_header_errors_fail_the_file(dcp: Dcp, crm: Table, header):
    upload(dcp, crm, "h.csv", header + b"\nc1,gold\n" if header else b"")
    [entry] = finished(dcp, crm)
    assert entry["status"] == "failed"
    assert entry["errors"][0]["row"] == 1


def test_one_wrong_value_fails_the_file_and_applies_nothing(dcp: Dcp, crm: Table):
    upload(
        dcp,
        crm,
        "types.csv",
        b"customerId,orders,birthday\nc1,1,2020-01-01\nc2,two,2020-01-01\nc3,3,2020-13-01\n",
    )
    [entry] = finished(dcp, crm)
    assert entry["status"] == "failed"
    assert [(e["row"], e["column"]) for e in entry["errors"]] == [(3, "orders"), (4, "birthday")]
    assert (entry["rows_total"], entry["rows_processed"], entry["rows_failed"]) == (3, 0, 3)
    assert profile(dcp, crm, "c1") is None


def test_refused_rows_leave_the_file_processed(dcp: Dcp, crm: Table):
    upload(dcp, crm, "rows.csv", b"customerId,orders\nc1,1\n,2\nc3\nc4,4,extra\n\nc5,5\n")
    [entry] = finished(dcp, crm)
    assert entry["status"] == "processed"
    assert (entry["rows_total"], entry["rows_processed"], entry["rows_failed"]) == (5, 2, 3)
    assert [(e["row"], e["column"]) for e in entry["errors"]] == [(3, "customerId"), (4, None), (5, None)]
    assert profile(dcp, crm, "c1") == {"orders": 1}
    assert profile(dcp, crm, "c5") == {"orders": 5}


def test_only_the_first_100_errors_are_kept(dcp: Dcp, crm: Table):
    upload(dcp, crm, "many.csv", b"customerId,orders\n" + b",1\n" * 150 + b"ok,1\n")
    [entry] = finished(dcp, crm)
    assert (entry["status"], entry["rows_failed"], len(entry["errors"])) == ("processed", 150, 100)


def test_tsv_quotes_doubled_quotes_and_a_bom(dcp: Dcp, crm: Table):
    upload(dcp, crm, "a.tsv", "\ufeffcustomerId\tsegment\nc1\tHeight: 6'1\n".encode())
    upload(
        dcp,
        crm,
        "b.csv",
        b'"customerId", "segment"\n"c2", "Height: 6\'1"""\n"c3","multi\nline, with comma"\n',
    )
    entries = finished(dcp, crm, count=2)
    assert {e["status"] for e in entries} == {"processed"}
    assert profile(dcp, crm, "c1") == {"segment": "Height: 6'1"}
    assert profile(dcp, crm, "c2") == {"segment": "Height: 6'1\""}
    assert profile(dcp, crm, "c3") == {"segment": "multi\nline, with comma"}


def test_a_tab_in_the_header_makes_an_unnamed_file_tsv(dcp: Dcp, crm: Table):
    upload(dcp, crm, "export", b"customerId\torders\nc1\t9\n")
    finished(dcp, crm)
    assert profile(dcp, crm, "c1") == {"orders": 9}


def test_text_that_is_not_utf8_fails(dcp: Dcp, crm: Table):
    upload(dcp, crm, "latin1.csv", "customerId,segment\nc1,caf\u00e9\n".encode("latin-1"))
    [entry] = finished(dcp, crm)
    assert entry["status"] == "failed"
    assert "UTF-8" in entry["errors"][-1]["message"]


def test_same_name_twice_is_processed_twice_in_upload_order(dcp: Dcp, crm: Table):
    key = upload(dcp, crm, "daily.csv", b"customerId,orders\nc1,1\n")
    finished(dcp, crm)
    upload(dcp, crm, "daily.csv", b"customerId,orders\nc1,2\n")
    entries = finished(dcp, crm, count=2)
    assert [e["s3_key"] for e in entries] == [key, key]
    assert profile(dcp, crm, "c1") == {"orders": 2}
    uploads = dcp.emulator.received("dcp")["items"]["dcp_uploads"]
    assert (uploads["total"], uploads["distinct"], uploads["duplicates"]) == (2, 1, 1)


def test_history_is_paginated_newest_first(dcp: Dcp, crm: Table):
    for index in range(3):
        upload(dcp, crm, f"f{index}.csv", b"customerId,orders\nc1,1\n")
        finished(dcp, crm, count=index + 1)
    assert [e["file_name"] for e in history(dcp, crm)] == ["f2.csv", "f1.csv", "f0.csv"]
    response = dcp.rest("GET", f"dcp_datasources/{crm.id}/upload_history", params={"per_page": 2})
    assert [e["file_name"] for e in response.json()] == ["f2.csv", "f1.csv"]
    assert "page=2" in response.links["next"]["url"]


def test_objects_outside_table_paths_are_ignored(dcp: Dcp, crm: Table):
    upload(dcp, crm, "sub/../x.csv", b"customerId\n")  # a deeper path is not the table's path
    s3 = dcp.emulator.s3_client("x", "x")
    s3.put_object(Bucket=BUCKET, Key="dcp/elsewhere.csv", Body=b"customerId\n")
    upload(dcp, crm, "real.csv", b"customerId,orders\nc1,1\n")
    [entry] = finished(dcp, crm)
    assert entry["file_name"] == "real.csv"


def test_reset_empties_the_bucket(dcp: Dcp, crm: Table):
    upload(dcp, crm, "x.csv", b"customerId\nc1\n")
    finished(dcp, crm)
    dcp.emulator.reset()
    s3 = dcp.emulator.s3_client("x", "x")
    assert s3.list_object_versions(Bucket=BUCKET).get("Versions", []) == []
    assert dcp.emulator.state("dcp")["uploads"] == []
