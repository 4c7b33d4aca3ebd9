"""The sync's CSV reader gives the csv module's rows whichever parser reads a block, wherever blocks are
cut; a record that can't be a row is an ``Unreadable`` row naming it, and the rows after it still come."""

from __future__ import annotations

import csv
import io
import json
import logging
import random

import pytest

from airflow_provider_optimizely.core.csv_pages import pages_from_csv
from airflow_provider_optimizely.core.page import Page, SourceError, Unreadable
from airflow_provider_optimizely.core.sources import numbered


def csv_module_rows(text: str, delimiter: str = ",") -> list[tuple[int, object]]:
    """What the whole text gives when the csv module alone reads it, every record of another width than
    the header an ``Unreadable`` (the behaviour to keep)."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = next(reader)
    header[0] = header[0].removeprefix("\ufeff")
    rows: list[tuple[int, object]] = []
    for number, fields in enumerate(filter(None, reader), start=1):
        if len(fields) != len(header):
            rows.append((number, Unreadable(f"{len(fields)} fields where the header has {len(header)}")))
        elif any("\x00" in value for value in fields):
            column = next(name for name, value in zip(header, fields, strict=True) if "\x00" in value)
            rows.append((number, Unreadable(f"column {column!r}: the value holds a NUL byte")))
        else:
            rows.append((number, dict(zip(header, fields, strict=True))))
    return rows


def read(data: bytes | str, **options) -> list[Page]:
    raw = data.encode() if isinstance(data, str) else data
    return list(pages_from_csv(io.BytesIO(raw), **options))


TEXTS = {
    "plain": "id,name,city\n1,Ann,Oslo\n2,Bób,Rome\n3,,Paris\n",
    "crlf": "id,name\r\n1,a\r\n2,b\r\n",
    "no final line break": "id,name\n1,a\n2,b",
    "blank lines": "id,name\n\n1,a\n\r\n\n2,b\n\n",
    "short and long rows": "id,name,city\n1,a,x\n2,b\n3,c,z,extra\n4,d,w\n",
    "quoted cells": 'id,note\n1,"a, b"\n2,"say ""hi"""\n3,plain\n',
    "line break in a quoted cell": 'id,note\n1,"first\nsecond"\n2,x\n3,"a\r\nb"\n4,y\n',
    "stray quote in a cell": 'id,note\n1,a"b\n2,"c\n3,d\n',
    "quote after a closing quote": 'id,note\n1,"a"b\n2,c\n',
    "backslash, tab and control characters": "id,note\n1,C:\\dir\n2,a\tb\n3,bell\x07\n4,ok\n",
    "lone carriage return": "id,note\n1,a\r2,b\n3,c\n",
    "byte-order mark": "\ufeffid,name\n1,a\n",
    "whitespace-only line": "id,name\n1,a\n \n2,b\n",
    "quoted header": '"id","a ""b"""\n1,2\n',
    "NUL byte": "id,note\n1,a\x00b\n2,c\n",
    "space before a quote": 'id,note\n1, "a"\n2,b\n',
}


@pytest.mark.parametrize("block_bytes", [1, 2, 3, 5, 7, 11, 16, 64, 1 << 20])
@pytest.mark.parametrize("name", list(TEXTS))
def test_rows_are_the_csv_modules_wherever_the_blocks_are_cut(name, block_bytes):
    text = TEXTS[name]
    pages = read(text, block_bytes=block_bytes, page_size=2)
    assert list(numbered(pages)) == csv_module_rows(text)


def test_tsv_rows_are_the_csv_modules():
    text = "id\tnote\n1\ta,b\n2\t\n3\tx\ty\n"
    assert list(numbered(read(text, delimiter="\t", block_bytes=4))) == csv_module_rows(text, delimiter="\t")


def test_plain_text_is_read_by_arrow_in_pages_of_at_most_page_size():
    text = "id,name\n" + "".join(f"{i},n{i}\n" for i in range(10))
    pages = read(text, page_size=4)
    assert [len(page) for page in pages] == [4, 4, 2]
    assert all(page.table is not None and page.text_only for page in pages)
    assert pages[0].values == [("0", "n0"), ("1", "n1"), ("2", "n2"), ("3", "n3")]


def test_quoted_text_is_read_by_arrow_too():
    """Issue 12: one quoted cell in 1,000 rows sent the chunk through the csv module."""
    rows = [f'{i},"a, b ""{i}""",x\n' if i % 1000 == 0 else f"{i},plain,x\n" for i in range(3000)]
    text = "id,note,other\n" + "".join(rows)
    pages = read(text)
    assert all(page.table is not None for page in pages)
    assert list(numbered(pages)) == csv_module_rows(text)
    multi_line = 'id,note\n1,"two\nlines"\n2,"x"\n'
    assert all(page.table is not None for page in read(multi_line))
    assert list(numbered(read(multi_line))) == csv_module_rows(multi_line)


def test_densely_quoted_text_is_read_by_arrow():
    rows = "".join(f'"{i}","name {i}","a ""q"" b"\n' for i in range(500))
    text = '"id","name","note"\n' + rows
    pages = read(text, block_bytes=4096)
    assert all(page.table is not None for page in pages)
    assert list(numbered(pages)) == csv_module_rows(text)


@pytest.mark.parametrize("block_bytes", [16, 1 << 20])
def test_a_short_or_long_row_is_rejected_by_number_and_the_others_still_come(block_bytes):
    """Issue 10 #2: ``q1,Paris`` under ``customer_id,city,plan`` was sent without ``plan``."""
    text = "customer_id,city,plan\nq0,Oslo,gold\nq1,Paris\nq2,Rome,free,extra\nq3,Lima,free\n"
    rows = list(numbered(read(text, block_bytes=block_bytes)))
    assert rows == [
        (1, {"customer_id": "q0", "city": "Oslo", "plan": "gold"}),
        (2, Unreadable("2 fields where the header has 3")),
        (3, Unreadable("4 fields where the header has 3")),
        (4, {"customer_id": "q3", "city": "Lima", "plan": "free"}),
    ]


def test_a_page_of_values_never_gives_a_short_row_as_a_dict():
    page = Page(header=["a", "b", "c"], values=[("1", "2", "3"), ("1", "2")], text_only=True)
    assert page.rows == [{"a": "1", "b": "2", "c": "3"}, Unreadable("2 fields where the header has 3")]


@pytest.mark.parametrize("block_bytes", [8, 1 << 20])
def test_a_byte_that_is_not_utf8_rejects_its_row_naming_the_column(block_bytes):
    """Issue 10 #4: a latin-1 byte ended the run with UnicodeDecodeError and 0 rows sent."""
    data = b"id,city\n1,Oslo\n2,S\xe3o Paulo\n3,Rome\n"
    rows = list(numbered(read(data, block_bytes=block_bytes)))
    assert rows == [
        (1, {"id": "1", "city": "Oslo"}),
        (2, Unreadable("column 'city': the text is not UTF-8")),
        (3, {"id": "3", "city": "Rome"}),
    ]


def test_a_nul_byte_rejects_its_row_naming_the_column():
    rows = list(numbered(read("id,note\n1,a\x00b\n2,ok\n")))
    assert rows == [
        (1, Unreadable("column 'note': the value holds a NUL byte")),
        (2, {"id": "2", "note": "ok"}),
    ]


@pytest.mark.parametrize("quoted", [False, True])
def test_a_cell_larger_than_the_csv_modules_default_limit_is_read(quoted):
    """Issue 10 #4: a cell over 128 KiB ended the run with ``field larger than field limit (131072)``."""
    big = "x" * 300_000 + ("\n" + "y" * 300_000 if quoted else "")
    cell = f'"{big}"' if quoted else big
    text = f'id,blob\n1,{cell}\n2,"a"",b"\n3,\x07\n'
    rows = list(numbered(read(text, block_bytes=1024)))
    assert rows == [
        (1, {"id": "1", "blob": big}),
        (2, {"id": "2", "blob": 'a",b'}),
        (3, {"id": "3", "blob": "\x07"}),
    ]


def test_a_quote_never_closed_stops_at_the_record_limit_naming_its_line():
    from airflow_provider_optimizely.core import csv_blocks

    data = b'id,note\n1,a\n2,"never closed\n' + b"x,y\n" * 200
    reader = csv_blocks.BlockReader(
        io.BytesIO(data), csv_blocks.Dialect(), block_bytes=64, max_record_bytes=256
    )
    reader.header_bytes()
    with pytest.raises(SourceError, match="starting on line 3 runs past 256 bytes"):
        for block in reader:
            reader.settle(block)


@pytest.mark.parametrize("header", [" \n1\n", "\t\n1\n", "a, \n1,2\n", "a,,b\n1,2,3\n", "a,a\n1,2\n"])
def test_a_header_with_an_empty_blank_or_repeated_name_is_refused(header):
    with pytest.raises(SourceError, match="distinct column names, none empty or only spaces"):
        read(header)


def test_a_header_that_is_not_utf8_is_refused():
    with pytest.raises(SourceError, match="column 2 is not readable: the text is not UTF-8"):
        read(b"id,caf\xe9\n1,2\n")


def test_an_empty_file_and_a_header_only_file_give_no_rows_and_say_so(caplog):
    caplog.set_level(logging.WARNING)
    assert read("") == []
    assert "The file is empty" in caplog.text
    caplog.clear()
    assert read("email,city\n") == [] and read("email,city") == []
    assert "has a header (email, city) and no rows: nothing to send" in caplog.text


def test_a_line_longer_than_a_block_is_read_whole():
    text = "id,note\n1," + "y" * 1000 + "\n2,z\n"
    assert list(numbered(read(text, block_bytes=8))) == csv_module_rows(text)


def random_csv(rng: random.Random, tricky: bool) -> str:
    """Rows of mostly three cells (some short, long or blank lines); tricky cells hold what only the csv
    module read before: quotes (well formed or not), line breaks in quoted cells, tabs, backslashes,
    control characters."""
    plain_cells = ["a", "é", "", " ", "12", "x y"]
    tricky_cells = [
        *plain_cells,
        '"q, q"',
        '"a\nb"',
        '"say ""hi"""',
        'a"b',
        '"open',
        "\t",
        "\\",
        "\x01",
        "\r",
        '""',
        ' "x"',
        '"a"b',
    ]
    lines = []
    for _ in range(rng.randint(0, 12)):
        width = rng.choice([3, 3, 3, 3, 2, 4, 0])
        cells = [rng.choice(tricky_cells if tricky else plain_cells) for _ in range(width)]
        lines.append(",".join(cells) + rng.choice(["\n", "\r\n"]))
    return "id,name,city\n" + "".join(lines)


def test_random_texts_give_the_csv_modules_rows():
    """Seeded random texts, cut at many places: half plain, half with quotes and the like, which Arrow
    reads where it can (well-formed quoting) and the csv module elsewhere."""
    rng = random.Random(20261122)
    read_by_arrow = quoted_by_arrow = 0
    for attempt in range(600):
        text = random_csv(rng, tricky=bool(attempt % 2))
        for block_bytes in (1, 4, 9, 1 << 20):
            pages = read(text, block_bytes=block_bytes, page_size=3)
            by_arrow = any(page.table is not None for page in pages)
            read_by_arrow += by_arrow
            quoted_by_arrow += by_arrow and '"' in text
            assert list(numbered(pages)) == csv_module_rows(text), (text, block_bytes)
    assert read_by_arrow > 300  # the fast path was exercised, not only the fallback
    assert quoted_by_arrow > 50  # quoted text too


class RecordingOptimove:
    """Keeps the JSON of every ``upload_data`` request, as the REST client would send it."""

    def __init__(self) -> None:
        self.records: list[dict] = []

    def upload_data(
        self, connection_uuid, records, *, ttl_seconds=None, batch_uuid=None, batch_completed=True
    ):
        from airflow_provider_optimizely.core.json_body import encode_json

        self.records += json.loads(encode_json(records))


@pytest.mark.parametrize("block_bytes", [32, 1 << 20])
def test_a_short_row_never_reaches_optimove_where_it_would_erase_a_stored_value(block_bytes):
    """Issue 10 #2: ``q1,Paris`` under ``customer_id,city,plan`` was stored without ``plan`` even with
    ``max_rejected=0``; Optimove replaces a record whole, so the stored plan was erased."""
    from airflow_provider_optimizely.core.report import TooManyRejectedRows
    from airflow_provider_optimizely.core.sync import run_sync
    from airflow_provider_optimizely.core.writers.optimove import OptimoveWriter

    data = b'customer_id,city,plan\nq0,Oslo,gold\nq1,Paris\nq2,"Rome, IT",free\nq3,S\xe3o Paulo,gold\n'
    api = RecordingOptimove()
    writer = OptimoveWriter(api, connection_uuid="dc", identifier_column="customer_id")
    with pytest.raises(TooManyRejectedRows) as caught:
        run_sync(pages_from_csv(io.BytesIO(data), block_bytes=block_bytes), writer, max_rejected=0)
    assert api.records == [
        {"customer_id": "q0", "city": "Oslo", "plan": "gold"},
        {"customer_id": "q2", "city": "Rome, IT", "plan": "free"},
    ]
    report = caught.value.report
    assert (report.rows_read, report.rows_succeeded, report.rows_rejected) == (4, 2, 2)
    assert [(r.row, r.reason) for r in report.rejected_rows] == [
        (2, "2 fields where the header has 3"),
        (4, "column 'city': the text is not UTF-8"),
    ]
