"""DCP bulk upload (docs/api-contract.md §4.4-4.6): a real boto3 upload to moto's S3, then Upload History
over HTTP."""

from __future__ import annotations

import io
from typing import Any

import pytest

from airflow_provider_optimizely.emulator.common import EmulatorSettings
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
    dcp.emulator.set_processing_delay(10**6)  # held pending until the test lets it go
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


def test_rows_update_profiles_and_an_empty_string_cell_writes_an_empty_string(dcp: Dcp, crm: Table):
    """Seed 000: "Each row is treated as an update request"; ``customerId`` "(case-insensitive)". An empty
    cell of a string column is the empty string (strict reading, docs/emulator-fidelity.md)."""
    dcp.profiles(
        "POST", f"customer_profile/{crm.service_id}/{crm.id}/c1", json={"data": {"segment": "a", "orders": 1}}
    )
    upload(dcp, crm, "f.csv", b"CUSTOMERID,orders,segment\nc1,7,\n")
    finished(dcp, crm)
    assert profile(dcp, crm, "c1") == {"segment": "", "orders": 7}


def test_an_empty_cell_is_not_a_long_and_fails_the_file(dcp: Dcp, crm: Table):
    """docs/api-contract.md §3a: "whether an empty cell is a valid long" - not by default;
    ``empty_cells="no_value"``
    reads it as "leave the stored value alone"."""
    write = {"data": {"segment": "a", "orders": 1}}
    dcp.profiles("POST", f"customer_profile/{crm.service_id}/{crm.id}/c1", json=write)
    upload(dcp, crm, "f.csv", b"customerId,orders,segment\nc1,,b\n")
    [entry] = finished(dcp, crm)
    assert entry["status"] == "failed"
    assert [(e["row"], e["column"]) for e in entry["errors"]] == [(2, "orders")]
    dcp.emulator.configure(empty_cells="no_value")
    upload(dcp, crm, "g.csv", b"customerId,orders,segment\nc1,,\n")
    assert finished(dcp, crm, count=2)[0]["status"] == "processed"
    assert profile(dcp, crm, "c1") == {"segment": "a", "orders": 1}


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


@pytest.mark.parametrize("name", ["export", "export.txt", "export.json"])
def test_a_file_that_is_not_named_csv_or_tsv_fails(dcp: Dcp, crm: Table, name: str):
    """Seed 000: "You can upload a CSV (or TSV) file": the name says which (``.csv``/``.tsv``, any case)."""
    upload(dcp, crm, name, b"customerId\torders\nc1\t9\n")
    [entry] = finished(dcp, crm)
    assert entry["status"] == "failed" and ".csv or .tsv" in entry["errors"][0]["message"]
    upload(dcp, crm, "EXPORT.TSV", b"customerId\torders\nc1\t9\n")
    finished(dcp, crm, count=2)
    assert profile(dcp, crm, "c1") == {"orders": 9}


def test_text_that_is_not_utf8_fails(dcp: Dcp, crm: Table):
    upload(dcp, crm, "latin1.csv", "customerId,segment\nc1,caf\u00e9\n".encode("latin-1"))
    [entry] = finished(dcp, crm)
    assert entry["status"] == "failed"
    assert "UTF-8" in entry["errors"][-1]["message"]


def test_same_name_twice_is_processed_twice_in_upload_order(dcp: Dcp, crm: Table):
    """docs/api-contract.md §4.5: each new object is processed in upload order (when the first was processed
    before the
    second arrived, or reordering is off)."""
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
    s3 = dcp.emulator.s3_admin_client()
    s3.put_object(Bucket=BUCKET, Key="dcp/elsewhere.csv", Body=b"customerId\n")
    upload(dcp, crm, "real.csv", b"customerId,orders\nc1,1\n")
    [entry] = finished(dcp, crm)
    assert entry["file_name"] == "real.csv"


def test_reset_empties_the_bucket(dcp: Dcp, crm: Table):
    upload(dcp, crm, "x.csv", b"customerId\nc1\n")
    finished(dcp, crm)
    dcp.emulator.reset()
    s3 = dcp.emulator.s3_admin_client()
    assert s3.list_object_versions(Bucket=BUCKET).get("Versions", []) == []
    assert dcp.emulator.state("dcp")["uploads"] == []


# --- CSV rules of seed 000, read strictly -------------------------------------------------------------


def test_an_unescaped_quote_inside_a_value_fails_the_file(dcp: Dcp, crm: Table):
    """Seed 000: "double quotation marks that are part of the attribute are escaped with another
    quotation mark" - a bare one is not a value DCP can read, and the upload fails."""
    upload(dcp, crm, "q.csv", b"customerId,segment\nc0,fine\nc1,6'1\" tall\n")
    [entry] = finished(dcp, crm)
    assert entry["status"] == "failed" and entry["rows_processed"] == 0
    assert entry["errors"][-1]["row"] == 3 and "doubling" in entry["errors"][-1]["message"]
    assert profile(dcp, crm, "c0") is None and profile(dcp, crm, "c1") is None


@pytest.mark.parametrize("row", [b'c1,"6\'1" tall"', b'c1,"open', b'c1, "x" '])
def test_a_quoted_value_must_close_and_end_at_a_delimiter(dcp: Dcp, crm: Table, row: bytes):
    upload(dcp, crm, "q.csv", b"customerId,segment\n" + row + b"\n")
    [entry] = finished(dcp, crm)
    assert entry["status"] == "failed"


@pytest.mark.parametrize("header", [b"customerId, segment", b"customerId,segment ", b" customerId,segment"])
def test_header_names_are_matched_exactly(dcp: Dcp, crm: Table, header: bytes):
    """Seed 000: "Each column in the header row must be a registered attribute name" - as written, with
    no trimming (``customerId`` alone is matched in any case)."""
    upload(dcp, crm, "h.csv", header + b"\nc1,gold\n")
    [entry] = finished(dcp, crm)
    assert entry["status"] == "failed" and entry["errors"][0]["row"] == 1


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("vip", "TRUE"),
        ("vip", "True"),
        ("vip", " true"),
        ("orders", "1_000"),
        ("orders", " 5"),
        ("orders", "5 "),
        ("orders", "+5"),
        ("orders", "\u0663"),  # an Arabic-Indic digit: int() takes it
        ("orders", "5.0"),
        ("ltv", " 2.5 "),
        ("ltv", "1_0.5"),
        ("ltv", "nan"),
        ("ltv", "inf"),
        ("ltv", "5."),
        ("ltv", ".5"),
        ("birthday", "2020-1-01"),
        ("birthday", " 2020-01-01"),
        ("last_seen", "2020-01-01T00:00:00+00:00"),
        ("signup", "1.7e12"),
    ],
)
def test_values_only_python_would_read_fail_the_file(dcp: Dcp, crm: Table, column: str, value: str):
    """Seed 000: "If an attribute value doesn't respect the attribute's datatype/format, the upload will
    fail" - read strictly (dcp_values): nothing is trimmed, true/false in lower case, plain digits."""
    upload(dcp, crm, "v.csv", f"customerId,{column}\nc1,{value}\n".encode())
    [entry] = finished(dcp, crm)
    assert entry["status"] == "failed", value
    assert (entry["errors"][0]["row"], entry["errors"][0]["column"]) == (2, column)


def test_permissive_value_syntax_is_a_setting(dcp: Dcp, crm: Table):
    dcp.emulator.configure(value_syntax="permissive")
    upload(dcp, crm, "p.csv", b"customerId,vip,orders,ltv\nc1,TRUE,+5,.5\n")
    [entry] = finished(dcp, crm)
    assert entry["status"] == "processed"
    assert profile(dcp, crm, "c1") == {"vip": True, "orders": 5, "ltv": 0.5}


def test_a_customer_id_of_spaces_refuses_the_row(dcp: Dcp, crm: Table):
    """Seed 000: "All rows must also contain a valid value for this column"."""
    upload(dcp, crm, "s.csv", b"customerId,orders\n   ,1\nc2,2\n")
    [entry] = finished(dcp, crm)
    assert (entry["status"], entry["rows_processed"], entry["rows_failed"]) == ("processed", 1, 1)


def test_files_of_10_gb_or_more_fail_read_as_10_times_10_to_the_9(dcp: Dcp):
    """Seed 000: "must be under 10GB"; docs/api-contract.md §3a: 10*10**9 bytes (``binary_units``:
    10*2**30)."""
    from airflow_provider_optimizely.emulator.upload_check import FileRules, check_file

    def check(size: int, max_bytes: int) -> bool:
        report = check_file(
            lambda: io.StringIO("customerId\nc1\n"),
            "f.csv",
            {},
            lambda rows: None,
            size,
            FileRules(max_bytes),
        )
        return report.failed

    decimal, binary = (
        EmulatorSettings().dcp_max_file_bytes,
        EmulatorSettings(binary_units=True).dcp_max_file_bytes,
    )
    assert (decimal, binary) == (10 * 10**9, 10 * 2**30)
    assert not check(10 * 10**9 - 1, decimal) and check(10 * 10**9, decimal)
    assert not check(10 * 10**9, binary)


# --- same-name uploads out of order --------------------------------------------------------------------


def test_pending_same_name_uploads_go_newest_first_while_dcp_misbehaves(dcp: Dcp, crm: Table):
    """Seed 000: "Uploading multiple files with the same name to the same S3 path can cause the files to be
    processed out of order" - on by default while DCP has faults set, so a client that reuses the name of
    a file not yet processed loses its update in a test."""
    dcp.emulator.set_faults("dcp", route="GET /nowhere", next=["500"])  # fault mode, harmless here
    dcp.emulator.set_processing_delay(10**6)
    upload(dcp, crm, "daily.csv", b"customerId,orders\nc1,1\n")
    upload(dcp, crm, "daily.csv", b"customerId,orders\nc1,2\n")
    wait_until(lambda: len(history(dcp, crm)) == 2, timeout=10, what="both uploads pending")
    dcp.emulator.set_processing_delay(0)
    entries = finished(dcp, crm, count=2)
    assert profile(dcp, crm, "c1") == {"orders": 1}  # the older content landed last
    newer, older = entries  # newest first in Upload History
    assert newer["processed_at"] < older["processed_at"]


@pytest.mark.parametrize(
    ("mode", "faults", "orders"), [("never", True, 2), ("always", False, 1), ("fault_mode", False, 2)]
)
def test_reordering_same_name_uploads_is_a_setting(
    dcp: Dcp, crm: Table, mode: str, faults: bool, orders: int
):
    dcp.emulator.configure(reorder_same_name_uploads=mode)
    if faults:
        dcp.emulator.set_faults("dcp", route="GET /nowhere", next=["500"])
    dcp.emulator.set_processing_delay(10**6)
    upload(dcp, crm, "daily.csv", b"customerId,orders\nc1,1\n")
    upload(dcp, crm, "daily.csv", b"customerId,orders\nc1,2\n")
    wait_until(lambda: len(history(dcp, crm)) == 2, timeout=10, what="both uploads pending")
    dcp.emulator.set_processing_delay(0)
    finished(dcp, crm, count=2)
    assert profile(dcp, crm, "c1") == {"orders": orders}


def test_a_row_refusal_fault_refuses_the_same_customers_in_every_file(dcp: Dcp, crm: Table):
    """``row_refusal_rate`` on the import route: DCP refusing rows for reasons of its own (§4.6)."""
    dcp.emulator.set_faults("dcp", "IMPORT /upload", row_refusal_rate=0.2, seed=3)
    body = "customerId,orders\n" + "".join(f"c{i},{i}\n" for i in range(200))
    upload(dcp, crm, "a.csv", body.encode())
    [entry] = finished(dcp, crm)
    refused = {error["row"] for error in entry["errors"]}
    assert entry["status"] == "processed" and 20 <= entry["rows_failed"] <= 60
    assert entry["rows_processed"] == 200 - entry["rows_failed"] and len(refused) == entry["rows_failed"]
    assert {error["message"] for error in entry["errors"]} == {
        "refused by an emulator fault (row_refusal_rate)"
    }
    for line in (2, 3, 4, 5, 6, 7, 8, 9, 10):
        assert (profile(dcp, crm, f"c{line - 2}") is None) == (line in refused)
    upload(dcp, crm, "b.csv", body.encode())
    entries = finished(dcp, crm, count=2)
    assert {error["row"] for error in entries[0]["errors"]} == refused
    dcp.emulator.clear_faults()
