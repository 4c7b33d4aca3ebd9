"""Pages of a CSV/TSV byte stream for the sync, read by the one CSV reader (``core.csv_blocks`` and
``core.csv_records``): Arrow's parser where it reads as Python's ``csv`` module would, the ``csv`` module
elsewhere, with the same rows either way.

Every record becomes a row, numbered in source order (the header and blank lines are not rows). A record
that can't be a row is an ``Unreadable`` row naming what is wrong, and the rows after it still come:
another number of fields than the header (a short row would otherwise send its last columns as missing,
which on Optimove erases stored values), a NUL byte, or bytes that are not UTF-8. A value may be as large
as the reader allows (``core.csv_blocks``): each API's writer checks its own body limit.

The header must hold distinct names, none empty or only spaces (``SourceError``). A file that is empty, or
holds a header and no row, gives no page, with a warning in the log.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import IO

from airflow_provider_optimizely.core.csv_blocks import DEFAULT_BLOCK_BYTES, BlockReader, Dialect
from airflow_provider_optimizely.core.csv_records import RecordParser, Records, bad_column, parse_header
from airflow_provider_optimizely.core.page import Page, Row, SourceError, Unreadable

DEFAULT_PAGE_SIZE = 5000
# A CSV page is at most a block's records (about 17,000 rows of a few short columns in a block of 1 MiB):
# the block is in memory already, and each page costs a few calls whatever its size.
CSV_PAGE_SIZE = 100_000
log = logging.getLogger(__name__)


def pages_from_csv(
    stream: IO[bytes],
    *,
    delimiter: str = ",",
    page_size: int = CSV_PAGE_SIZE,
    block_bytes: int = DEFAULT_BLOCK_BYTES,
) -> Iterator[Page]:
    """Pages of a CSV/TSV byte stream with a header row (see the module doc)."""
    dialect = Dialect(delimiter)
    reader = BlockReader(stream, dialect, block_bytes=block_bytes, count_lines=False)
    header_bytes = reader.header_bytes()
    if header_bytes is None:
        log.warning("The file is empty (no header, no rows): nothing to send")
        return
    header = parse_header(header_bytes, dialect)
    check_header(header)
    parser = RecordParser(header, dialect)
    rows = 0
    for block in reader:
        reader.settle(block)
        records = parser.parse(block)
        rows += len(records)
        yield from _pages(header, records, page_size)
    if rows == 0:
        log.warning("The file has a header (%s) and no rows: nothing to send", ", ".join(header[:20]))


def check_header(header: list[str]) -> None:
    """``SourceError`` unless the header names its columns once each, none empty or only spaces."""
    found = bad_column(tuple(header))
    if found is not None:
        raise SourceError(f"the header's column {found[0] + 1} is not readable: {found[1]}")
    if any(not name.strip() for name in header) or len(set(header)) != len(header):
        shown = ", ".join(repr(name) for name in header[:20])
        raise SourceError(f"the header row needs distinct column names, none empty or only spaces: {shown}")


def _pages(header: list[str], records: Records, page_size: int) -> Iterator[Page]:
    if records.table is not None:
        table = records.table
        for start in range(0, table.num_rows, page_size):
            yield Page(header=header, table=table.slice(start, page_size), text_only=True)
        return
    values = records.values or []
    problems = {problem.position: problem for problem in records.problems}
    for start in range(0, len(values), page_size):
        chunk = values[start : start + page_size]
        if not any(start <= position < start + len(chunk) for position in problems):
            yield Page(header=header, values=chunk, text_only=True)
            continue
        rows: list[Row | Unreadable] = []
        for position, fields in enumerate(chunk, start=start):
            problem = problems.get(position)
            if problem is None:
                rows.append(dict(zip(header, fields, strict=True)))
            elif problem.column is None:
                rows.append(Unreadable(problem.reason))
            else:
                rows.append(Unreadable(f"column {header[problem.column]!r}: {problem.reason}"))
        yield Page(rows, text_only=True)
