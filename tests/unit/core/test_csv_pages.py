"""The CSV reader gives the csv module's rows whichever parser reads a chunk, wherever the chunks are cut."""

from __future__ import annotations

import csv
import io
import random

import pytest

from airflow_provider_optimizely.core.csv_pages import pages_from_csv
from airflow_provider_optimizely.core.page import Unreadable
from airflow_provider_optimizely.core.sources import numbered


def csv_module_rows(text: str, delimiter: str = ",") -> list[tuple[int, object]]:
    """What the whole text gives when the csv module alone reads it (the behaviour to keep)."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = next(reader)
    header[0] = header[0].removeprefix("\ufeff")
    rows: list[tuple[int, object]] = []
    for number, fields in enumerate(filter(None, reader), start=1):
        if len(fields) > len(header):
            rows.append((number, Unreadable(f"{len(fields)} fields, but the header has {len(header)}")))
        else:
            rows.append((number, dict(zip(header, fields))))  # noqa: B905  # a short row is allowed
    return rows


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
}


@pytest.mark.parametrize("chunk_chars", [1, 2, 3, 5, 7, 11, 16, 64, 1 << 20])
@pytest.mark.parametrize("name", list(TEXTS))
def test_rows_are_the_csv_modules_wherever_the_chunks_are_cut(name, chunk_chars):
    text = TEXTS[name]
    pages = pages_from_csv(io.StringIO(text, newline=""), chunk_chars=chunk_chars, page_size=2)
    assert list(numbered(pages)) == csv_module_rows(text)


def test_tsv_rows_are_the_csv_modules():
    text = "id\tnote\n1\ta,b\n2\t\n3\tx\ty\n"
    pages = pages_from_csv(io.StringIO(text, newline=""), delimiter="\t", chunk_chars=4)
    assert list(numbered(pages)) == csv_module_rows(text, delimiter="\t")


def test_plain_text_is_read_by_arrow_in_pages_of_at_most_page_size():
    text = "id,name\n" + "".join(f"{i},n{i}\n" for i in range(10))
    pages = list(pages_from_csv(io.StringIO(text, newline=""), page_size=4))
    assert [len(page) for page in pages] == [4, 4, 2]
    assert all(page.table is not None and page.text_only for page in pages)
    assert pages[0].values == [("0", "n0"), ("1", "n1"), ("2", "n2"), ("3", "n3")]


def test_chunks_that_are_not_plain_are_read_by_the_csv_module_and_later_plain_ones_by_arrow_again():
    text = 'id,note\n1,"a, b"\n' + "".join(f"{i},x\n" for i in range(2, 200))
    pages = list(pages_from_csv(io.StringIO(text, newline=""), chunk_chars=64))
    assert pages[0].table is None and pages[0].values is not None
    assert pages[-1].table is not None


def test_a_chunk_ending_inside_a_quoted_cell_hands_the_rest_to_the_csv_module():
    text = 'id,note\n1,"' + "x\n" * 50 + '"\n2,y\n3,z\n'
    pages = list(pages_from_csv(io.StringIO(text, newline=""), chunk_chars=16))
    assert all(page.table is None for page in pages)
    assert list(numbered(pages)) == csv_module_rows(text)


def test_a_line_longer_than_a_chunk_is_read_whole():
    text = "id,note\n1," + "y" * 1000 + "\n2,z\n"
    pages = pages_from_csv(io.StringIO(text, newline=""), chunk_chars=8)
    assert list(numbered(pages)) == csv_module_rows(text)


def random_csv(rng: random.Random, tricky: bool) -> str:
    """Rows of mostly three cells (some short, long or blank lines); tricky cells hold what only the csv
    module reads: quotes (well formed or not), line breaks in quoted cells, tabs, backslashes, controls."""
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
    ]
    lines = []
    for _ in range(rng.randint(0, 12)):
        width = rng.choice([3, 3, 3, 3, 2, 4, 0])
        cells = [rng.choice(tricky_cells if tricky else plain_cells) for _ in range(width)]
        lines.append(",".join(cells) + rng.choice(["\n", "\r\n"]))
    return "id,name,city\n" + "".join(lines)


def test_random_texts_give_the_csv_modules_rows():
    """Seeded random texts, cut at many places: half plain (Arrow's to read, or to refuse when a row is
    short or long), half with what only the csv module reads."""
    rng = random.Random(20261122)
    read_by_arrow = 0
    for attempt in range(400):
        text = random_csv(rng, tricky=bool(attempt % 2))
        for chunk_chars in (1, 4, 9, 1 << 20):
            pages = list(pages_from_csv(io.StringIO(text, newline=""), chunk_chars=chunk_chars, page_size=3))
            read_by_arrow += any(page.table is not None for page in pages)
            assert list(numbered(pages)) == csv_module_rows(text), (text, chunk_chars)
    assert read_by_arrow > 200  # the fast path was exercised, not only the fallback
