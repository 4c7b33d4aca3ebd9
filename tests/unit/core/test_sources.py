from __future__ import annotations

import io
import math
import sqlite3
from decimal import Decimal

import pytest

from airflow_provider_optimizely.core.sources import (
    SourceError,
    Unreadable,
    file_format_of,
    numbered,
    open_streaming_cursor,
    pages_from_csv,
    pages_from_cursor,
    pages_from_json_lines,
    pages_from_records,
)


def rows_from_csv(stream, **kwargs):
    if isinstance(stream, io.StringIO):
        stream = io.BytesIO(stream.getvalue().encode())
    return numbered(pages_from_csv(stream, **kwargs))


def rows_from_json_lines(stream):
    if isinstance(stream, io.StringIO):
        stream = io.BytesIO(stream.getvalue().encode())
    return numbered(pages_from_json_lines(stream))


def rows_from_records(records, **kwargs):
    return numbered(pages_from_records(records, **kwargs))


def rows_from_cursor(*args, **kwargs):
    return numbered(pages_from_cursor(*args, **kwargs))


def test_csv_rows_are_numbered_from_one_after_the_header_and_keep_text():
    stream = io.StringIO('id,name,score\n1,"Ann, B.",3.5\n\n2,Bob,\n', newline="")
    assert list(rows_from_csv(stream)) == [
        (1, {"id": "1", "name": "Ann, B.", "score": "3.5"}),
        (2, {"id": "2", "name": "Bob", "score": ""}),
    ]


def test_csv_row_with_too_many_fields_is_unreadable_and_the_next_row_still_comes():
    rows = list(rows_from_csv(io.StringIO("a,b\n1,2,3\n4,5\n")))
    assert rows[0] == (1, Unreadable("3 fields where the header has 2"))
    assert rows[1] == (2, {"a": "4", "b": "5"})


def test_csv_short_row_is_unreadable_never_a_row_with_missing_columns():
    assert list(rows_from_csv(io.StringIO("a,b,c\n1\n"))) == [
        (1, Unreadable("1 fields where the header has 3"))
    ]


def test_csv_quoted_newline_stays_in_its_cell():
    rows = list(rows_from_csv(io.StringIO('a,b\n"x\ny",2\n', newline="")))
    assert rows == [(1, {"a": "x\ny", "b": "2"})]


def test_tsv_and_bom():
    rows = list(rows_from_csv(io.StringIO("\ufeffid\tv\n7\tx\n"), delimiter="\t"))
    assert rows == [(1, {"id": "7", "v": "x"})]


def test_csv_header_must_have_distinct_names():
    with pytest.raises(SourceError, match="distinct column names"):
        list(rows_from_csv(io.StringIO("a,a\n1,2\n")))


def test_csv_pages_hold_text_and_skip_runs_of_blank_lines_longer_than_a_page():
    stream = io.BytesIO(b"a\n1\n" + b"\n" * 7 + b"2\n3\n")
    pages = list(pages_from_csv(stream, page_size=2))
    assert [page.rows for page in pages] == [[{"a": "1"}, {"a": "2"}], [{"a": "3"}]]
    assert all(page.text_only for page in pages)


def test_empty_csv_yields_nothing():
    assert list(rows_from_csv(io.StringIO(""))) == []
    assert list(rows_from_csv(io.StringIO("a,b\n"))) == []


def test_json_lines_skips_blank_lines_and_reports_broken_ones():
    stream = io.StringIO('{"id": 1, "tags": ["a"]}\n\nnot json\n[1, 2]\n{"id": 2}\n')
    rows = list(rows_from_json_lines(stream))
    assert rows[0] == (1, {"id": 1, "tags": ["a"]})
    assert rows[1][0] == 2 and isinstance(rows[1][1], Unreadable)
    assert "not valid JSON" in rows[1][1].reason
    assert rows[2] == (3, Unreadable("a line must hold a JSON object, not list"))
    assert rows[3] == (4, {"id": 2})


def test_json_lines_keep_every_digit_and_name_what_they_cannot_read():
    stream = io.BytesIO(
        b'\xef\xbb\xbf{"n": 0.1000000000000000000001, "f": 1.5, "i": 12345678901234567890}\n'
        b'{"city": "S\xe3o"}\n'
        b'{"x": NaN}\n'
        b'{"ok": true}\n'
    )
    rows = list(rows_from_json_lines(stream))
    assert rows[0] == (1, {"n": Decimal("0.1000000000000000000001"), "f": 1.5, "i": 12345678901234567890})
    assert type(rows[0][1]["f"]) is float  # a number a float holds exactly stays a float
    assert rows[1] == (2, Unreadable("the text is not UTF-8 (byte 12 of the line)"))
    assert rows[2] == (3, Unreadable("not valid JSON: NaN is not a JSON number"))
    assert rows[3] == (4, {"ok": True})


def test_records_copy_mappings_and_wrap_scalars_only_when_asked():
    source = [{"id": 1}]
    rows = list(rows_from_records(source))
    rows[0][1]["id"] = 99  # type: ignore[index]
    assert source == [{"id": 1}]
    assert list(rows_from_records(["p1", "p2"], single_column="id")) == [(1, {"id": "p1"}), (2, {"id": "p2"})]
    assert isinstance(next(iter(rows_from_records(["p1"])))[1], Unreadable)


@pytest.mark.parametrize(
    ("path", "explicit", "expected"),
    [
        ("s3://b/k/data.csv", None, "csv"),
        ("/tmp/x.TSV", None, "tsv"),
        ("file:///x/events.jsonl.gz", None, "jsonl"),
        ("/x/events.ndjson", None, "jsonl"),
        ("/x/export.txt", "csv", "csv"),
        ("/x/export.txt", "JSON_LINES", "jsonl"),
    ],
)
def test_file_format(path, explicit, expected):
    assert file_format_of(path, explicit) == expected


def test_file_format_unknown():
    with pytest.raises(SourceError, match="file_format"):
        file_format_of("/x/export.txt")
    with pytest.raises(SourceError, match="one of"):
        file_format_of("/x/a.csv", "parquet")


class CountingCursor:
    """A DB-API cursor over sqlite that records how many rows each fetch asked for."""

    def __init__(self, cursor):
        self.cursor = cursor
        self.fetches: list[int] = []

    def execute(self, *args):
        return self.cursor.execute(*args)

    @property
    def description(self):
        return self.cursor.description

    def fetchmany(self, size):
        self.fetches.append(size)
        return self.cursor.fetchmany(size)

    def fetchall(self):  # pragma: no cover - the source must never call it
        raise AssertionError("fetchall reads the whole result")


def test_cursor_rows_come_page_by_page_with_parameters():
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE t (id INTEGER, name TEXT)")
    db.executemany("INSERT INTO t VALUES (?, ?)", [(i, f"n{i}") for i in range(25)])
    cursor = CountingCursor(db.cursor())
    rows = list(
        rows_from_cursor(cursor, "SELECT id, name FROM t WHERE id >= ? ORDER BY id", (5,), fetch_size=10)
    )
    assert [number for number, _ in rows] == list(range(1, 21))
    assert rows[0] == (1, {"id": 5, "name": "n5"})
    assert cursor.fetches == [10, 10, 10]  # two full pages, then the empty one that ends the loop


def test_a_nan_or_infinite_number_from_sql_rejects_its_row_naming_the_column():
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE t (id INTEGER, score REAL, amount TEXT)")
    db.executemany(
        "INSERT INTO t VALUES (?, ?, ?)",
        [(1, 1.5, "x"), (2, math.inf, "y"), (3, 2.5, "z"), (4, -math.inf, "w")],
    )
    rows = list(rows_from_cursor(db.cursor(), "SELECT id, score, amount FROM t ORDER BY id"))
    assert rows == [
        (1, {"id": 1, "score": 1.5, "amount": "x"}),
        (2, Unreadable("column 'score': inf is not a finite number: JSON has no NaN or infinity")),
        (3, {"id": 3, "score": 2.5, "amount": "z"}),
        (4, Unreadable("column 'score': -inf is not a finite number: JSON has no NaN or infinity")),
    ]


def test_a_nan_in_a_list_of_records_is_refused_too():
    rows = list(rows_from_records([{"id": 1, "v": float("nan")}, {"id": 2, "v": Decimal("NaN")}, {"id": 3}]))
    assert [type(row) for _, row in rows] == [Unreadable, Unreadable, dict]
    assert rows[1][1] == Unreadable("column 'v': NaN is not a finite number: JSON has no NaN or infinity")


def test_cursor_source_refuses_a_statement_without_a_result_and_duplicate_columns():
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE t (id INTEGER)")
    with pytest.raises(SourceError, match="no result set"):
        list(rows_from_cursor(db.cursor(), "INSERT INTO t VALUES (1)"))
    with pytest.raises(SourceError, match="distinct names"):
        list(rows_from_cursor(db.cursor(), "SELECT id, id FROM t"))


def test_streaming_cursor_is_server_side_for_postgres_drivers():
    class FakePsycopgConnection:
        def cursor(self, name=None):
            self.name = name
            return type("C", (), {"name": name})()

    FakePsycopgConnection.__module__ = "psycopg2.extensions"
    conn = FakePsycopgConnection()
    cursor = open_streaming_cursor(conn, fetch_size=123)
    assert conn.name and conn.name.startswith("optimizely_sync_")
    assert cursor.itersize == 123
    sqlite_cursor = open_streaming_cursor(sqlite3.connect(":memory:"))
    assert isinstance(sqlite_cursor, sqlite3.Cursor)
