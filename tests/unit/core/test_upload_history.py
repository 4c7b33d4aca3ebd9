from __future__ import annotations

import json

from airflow_provider_optimizely.core.upload_history import (
    DONE,
    FAILED,
    WAITING,
    find_entries,
    upload_verdict,
)

KEY = "dcp/1/2/run1__try1__abc.csv"


def entry(status, name="run1__try1__abc.csv", key=KEY, **fields):
    return {"file_name": name, "s3_key": key, "status": status, **fields}


def test_the_newest_entry_naming_a_file_wins_and_the_history_is_read_only_as_far_as_needed():
    read = []

    def history():
        for item in [
            entry("processing"),
            entry("processed"),
            {"file_name": "other.csv", "status": "processed"},
        ]:
            read.append(item)
            yield item

    found = find_entries(history(), [KEY])
    assert found[KEY]["status"] == "processing"
    assert len(read) == 1


def test_a_file_is_found_by_bare_name_too_and_missing_ones_are_none():
    found = find_entries([entry("processed", key=None)], ["run1__try1__abc.csv", "dcp/1/2/absent.csv"])
    assert found["run1__try1__abc.csv"]["status"] == "processed"
    assert found["dcp/1/2/absent.csv"] is None


def test_the_search_stops_after_max_scanned():
    history = [{"file_name": f"f{i}.csv", "status": "processed"} for i in range(50)] + [entry("processed")]
    assert find_entries(history, [KEY], max_scanned=50)[KEY] is None


def test_not_listed_pending_and_processing_mean_waiting():
    for found in ({KEY: None}, {KEY: entry("pending")}, {KEY: entry("processing")}):
        verdict = upload_verdict(found)
        assert verdict.state == WAITING
        assert KEY in verdict.message


def test_processed_without_refused_rows_is_done_and_serialisable():
    verdict = upload_verdict({KEY: entry("processed", rows_total=3, rows_processed=3, rows_failed=0)})
    assert verdict.state == DONE
    assert "3 of 3 row(s) applied" in verdict.message
    assert json.loads(json.dumps(verdict.as_dict()))["files"][KEY]["rows_total"] == 3


def test_a_failed_file_fails_with_its_row_and_column_errors():
    errors = [{"row": 3, "column": "ltv", "message": "'ten' is not a double"}]
    verdict = upload_verdict({KEY: entry("failed", rows_total=5, rows_failed=5, errors=errors)})
    assert verdict.state == FAILED
    assert "row 3, column 'ltv': 'ten' is not a double" in verdict.message


def test_refused_rows_follow_max_rejected():
    found = {KEY: entry("processed", rows_total=100, rows_processed=98, rows_failed=2, errors=[{"row": 7}])}
    assert upload_verdict(found, max_rejected=0).state == FAILED
    assert "row 7" in upload_verdict(found, max_rejected=1).message
    assert upload_verdict(found, max_rejected=2).state == DONE
    assert upload_verdict(found, max_rejected=0.05).state == DONE
    assert upload_verdict(found, max_rejected=0.01).state == FAILED
