"""Pages of a CSV/TSV text stream: Arrow's parser where the text is plain, the ``csv`` module elsewhere.

The stream is read in chunks of whole lines. A chunk is *plain* when it holds no quote, no backslash and
no control character but the delimiter and line breaks: then each line is a record and each delimiter
ends a field, and Arrow's parser reads it in C++, a column at a time, with no Python object per field
(about a fifth of the ``csv`` module's CPU). Every other chunk goes through the ``csv`` module, as the
whole file did before, so the rows are the same whichever reads them:

- a plain chunk Arrow refuses (a short or a long row) is read again by the ``csv`` module;
- a chunk with quotes is read by the ``csv`` module with ``strict=True``, which fails where the chunk
  ends inside a quoted field (a line break in a cell) or holds odd quoting; then the ``csv`` module reads
  the rest of the stream, from that chunk on, as it always did.

Arrow pages hold text only JSON carries as it is (see ``core.page``), which is what lets a writer build
its request bodies without escaping.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator
from itertools import chain, islice
from typing import TYPE_CHECKING, TextIO

from airflow_provider_optimizely.core.page import Page, SourceError

if TYPE_CHECKING:
    import pyarrow as pa

DEFAULT_PAGE_SIZE = 5000
# Big enough that Arrow's per-call cost vanishes, small enough that a few chunks in flight stay flat.
DEFAULT_CHUNK_CHARS = 1 << 20
_LONE_CARRIAGE_RETURN = re.compile(rb"\r(?!\n)")


def pages_from_csv(
    stream: TextIO,
    *,
    delimiter: str = ",",
    page_size: int = DEFAULT_PAGE_SIZE,
    chunk_chars: int = DEFAULT_CHUNK_CHARS,
) -> Iterator[Page]:
    """Pages of a CSV/TSV text stream with a header row (open it with ``newline=""``).

    A short row leaves its last columns out (missing, not empty); a row with more fields than the header
    is ``Unreadable``; a blank line is no record.
    """
    header = next(csv.reader(stream, delimiter=delimiter), None)
    if header is None:
        return
    if header and header[0].startswith("\ufeff"):
        header[0] = header[0][1:]  # a byte-order mark is not part of the first column's name
    if len(set(header)) != len(header) or any(not name for name in header):
        raise SourceError(f"the header row needs distinct, non-empty column names: {header[:20]}")
    chunks = _ChunkReader(header, delimiter, page_size)
    partial_line = ""
    while text := stream.read(chunk_chars):
        text = partial_line + text
        cut = text.rfind("\n") + 1
        if cut == 0 and len(text) < 16 * chunk_chars:
            partial_line = text  # a line longer than a chunk: read on
            continue
        chunk, partial_line = text[:cut], text[cut:]
        pages = chunks.pages(chunk) if chunk else None
        if pages is None:
            # The csv module reads the rest of the stream, from this chunk on (whole lines).
            remainder = io.StringIO(chunk + partial_line + stream.readline(), newline="")
            yield from _csv_pages(header, chain(remainder, stream), delimiter, page_size)
            return
        yield from pages
    if partial_line:  # the last line, without a line break
        pages = chunks.pages(partial_line)
        yield from (
            pages
            if pages is not None
            else _csv_pages(header, io.StringIO(partial_line, newline=""), delimiter, page_size)
        )


class _ChunkReader:
    """Pages of one chunk of whole lines, read by Arrow or by the csv module as the module doc says."""

    def __init__(self, header: list[str], delimiter: str, page_size: int) -> None:
        self.header = header
        self.delimiter = delimiter
        self.page_size = page_size
        refused = [chr(code) for code in range(32) if chr(code) not in ("\n", "\r", delimiter)]
        self._not_plain = "".join([*refused, '"', "\\"]).encode()
        self._arrow: _ArrowReader | None = None

    def pages(self, chunk: str) -> Iterable[Page] | None:
        """The chunk's pages, or None when only the csv module reading on past the chunk can tell."""
        data = self._plain_bytes(chunk)
        if data is not None:
            if self._arrow is None:
                self._arrow = _ArrowReader(self.header, self.delimiter)
            table = self._arrow.read(data)
            if table is not None:
                return _table_pages(self.header, table, self.page_size)
        lines = io.StringIO(chunk, newline="")
        if '"' not in chunk:  # every line break ends a record: the chunk reads alone
            return _csv_pages(self.header, lines, self.delimiter, self.page_size)
        try:
            records = list(filter(None, csv.reader(lines, delimiter=self.delimiter, strict=True)))
        except csv.Error:
            return None
        return _pages_of_records(self.header, records, self.page_size)

    def _plain_bytes(self, chunk: str) -> bytes | None:
        """The chunk's UTF-8, if it is plain."""
        try:
            data = chunk.encode()
        except UnicodeEncodeError:  # a lone surrogate (a str made in Python, not read from a file)
            return None
        if len(data.translate(None, self._not_plain)) != len(data):
            return None
        if b"\r" in data and _LONE_CARRIAGE_RETURN.search(data):
            return None  # a lone \r ends a record for the csv module, not for Arrow
        return data


class _ArrowReader:
    """Arrow's CSV parser set to read plain chunks: every column text, an empty cell ``""``."""

    def __init__(self, header: list[str], delimiter: str) -> None:
        import pyarrow as pa
        from pyarrow import csv as arrow_csv

        self._pa = pa
        self._arrow_csv = arrow_csv
        self._parse_options = arrow_csv.ParseOptions(
            delimiter=delimiter, quote_char=False, double_quote=False, escape_char=False
        )
        self._convert_options = arrow_csv.ConvertOptions(
            column_types=dict.fromkeys(header, pa.string()),
            strings_can_be_null=False,
            check_utf8=False,  # the chunk was a Python str: its UTF-8 is valid
        )
        self._header = header
        # malloc, not Arrow's jemalloc: jemalloc hands freed pages back to the system and faults them in
        # again, chunk after chunk (a third more CPU in the 1,000,000-row benchmark).
        self._pool = pa.system_memory_pool()

    def read(self, data: bytes) -> pa.Table | None:
        """The chunk's rows, or None if a row has another number of fields than the header."""
        # One block for the chunk: one array a column, which a writer slices without copying.
        read_options = self._arrow_csv.ReadOptions(
            column_names=self._header, use_threads=False, block_size=len(data) + 1
        )
        try:
            return self._arrow_csv.read_csv(
                self._pa.BufferReader(data),
                read_options=read_options,
                parse_options=self._parse_options,
                convert_options=self._convert_options,
                memory_pool=self._pool,
            )
        except self._pa.ArrowInvalid:
            return None


def _table_pages(header: list[str], table: pa.Table, page_size: int) -> Iterator[Page]:
    for start in range(0, table.num_rows, page_size):
        yield Page(header=header, table=table.slice(start, page_size), text_only=True)


def _csv_pages(header: list[str], lines: Iterable[str], delimiter: str, page_size: int) -> Iterator[Page]:
    records = filter(None, csv.reader(lines, delimiter=delimiter))  # a blank line reads as []: no record
    return _pages_of_records(header, records, page_size)


def _pages_of_records(header: list[str], records: Iterable[list[str]], page_size: int) -> Iterator[Page]:
    records = iter(records)
    # Tuples, not the reader's lists: the garbage collector stops tracking a tuple of text the first time
    # it sees it, while a page of 5000 lists kept alive made every collection longer (~2 µs a row more).
    while values := list(map(tuple, islice(records, page_size))):
        yield Page(header=header, values=values, text_only=True)
