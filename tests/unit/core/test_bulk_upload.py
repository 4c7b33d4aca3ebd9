"""The bulk upload's rules without Airflow: names, reuse, and what goes up after the check."""

from __future__ import annotations

import pytest

from airflow_provider_optimizely.core.bulk_upload import (
    UploadRefused,
    earlier_upload,
    name_prefix,
    parse_hash_columns,
    prepare_file,
    upload_name,
)
from airflow_provider_optimizely.core.csv_check import Attribute, CheckOptions
from airflow_provider_optimizely.core.report import RejectLimit

ATTRIBUTES = {"visits": Attribute("visits", "long"), "plan": Attribute("plan", "string")}


def test_file_names_are_safe_and_differ_by_run_and_mapped_index():
    first = name_prefix("dag", "upload", "manual__2026-01-01T00:00:00+00:00", -1)
    assert first == "dag.upload__manual__2026-01-01T00_00_00_00_00__"
    assert name_prefix("dag", "upload", "scheduled__2026-01-02T00:00:00+00:00", None) != first
    assert name_prefix("dag", "upload", "manual__2026-01-01T00:00:00+00:00", 3).startswith("dag.upload.3__")
    assert upload_name(first, 2, "ab" * 32, "csv") == first + "try2__" + "ab" * 8 + ".csv"


def test_an_earlier_try_s_upload_is_found_by_its_content_hash():
    keys = ["p/run__try1__" + "aa" * 8 + ".csv", "p/run__try2__" + "bb" * 8 + ".csv"]
    assert earlier_upload(keys, "bb" * 32, "csv") == keys[1]
    assert earlier_upload(keys, "cc" * 32, "csv") is None
    assert earlier_upload(keys, "bb" * 32, "tsv") is None


@pytest.mark.parametrize(
    ("value", "columns"),
    [(None, []), ("", []), ("email, phone", ["email", "phone"]), ("['email', 'phone']", ["email", "phone"])],
)
def test_hash_columns_are_read_one_way(value, columns):
    assert parse_hash_columns(value) == columns
    assert parse_hash_columns(columns) == columns


def prepare(tmp_path, text, max_rejected=0, extension="csv"):
    source = tmp_path / f"in.{extension}"
    source.write_text(text)
    work = tmp_path / "work"
    work.mkdir()
    return source, prepare_file(
        source, extension, CheckOptions(ATTRIBUTES), RejectLimit.parse(max_rejected), work
    )


def test_a_clean_file_goes_up_as_it_is(tmp_path):
    source, prepared = prepare(tmp_path, "customerId,visits\nc1,1\nc2,2\n")
    assert prepared.path == source and prepared.extension == "csv"
    assert (prepared.check.rows, prepared.check.rows_rejected) == (2, 0)


def test_bad_rows_within_max_rejected_are_left_out_of_a_rewritten_file(tmp_path):
    source, prepared = prepare(tmp_path, "customerId,visits\nc1,1\nc2,x\nc3,3\n", max_rejected=1)
    assert prepared.path != source
    assert prepared.path.read_text() == "customerId,visits\nc1,1\nc3,3\n"
    check = prepared.check
    assert (check.rows, check.rows_rejected, check.bytes) == (3, 1, len(prepared.path.read_bytes()))


def test_too_many_bad_rows_are_refused_and_named(tmp_path):
    with pytest.raises(UploadRefused, match=r"nothing was uploaded(.|\n)*row 3, column 'visits'"):
        prepare(tmp_path, "customerId,visits\nc1,1\nc2,x\nc3,y\n", max_rejected=1)


def test_only_csv_and_tsv_can_go_up(tmp_path):
    with pytest.raises(UploadRefused, match="CSV or TSV"):
        prepare(tmp_path, "{}\n", extension="jsonl")
