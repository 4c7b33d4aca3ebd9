"""Row sources: a SQL cursor read with ``fetchmany``, CSV/TSV and JSON Lines byte streams, in-memory lists.

Every source is a generator of ``Page``s: a few thousand rows at a time, so nothing ever holds more than
one ``fetchmany`` page or one page of lines, and the sync works on whole pages (list comprehensions,
not a Python call a row). Rows are numbered from 1 in source order (a file's header and blank lines
excluded) by their position in the stream of pages. A row is a dict of column -> value, or an
``Unreadable`` when the record itself can't be sent (a line that is not JSON or not UTF-8, a CSV row of
another width than the header, a number JSON has no form for): the sync reports it by number and goes on.

Values are what the source holds: Python-typed from SQL, text from CSV (an empty cell is ``""``), JSON
types from JSON Lines (a number a float can't hold exactly is a ``Decimal``). The per-API checks turn them
into wire values. A NaN or an infinity, which no JSON body can carry, makes its row ``Unreadable`` here,
naming the column. ``Page`` is in ``core.page``; CSV and TSV reading in ``core.csv_pages``.
"""

from __future__ import annotations

import codecs
import math
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from itertools import islice
from operator import itemgetter
from typing import IO, Any, Literal

from airflow_provider_optimizely.core.csv_pages import CSV_PAGE_SIZE, DEFAULT_PAGE_SIZE, pages_from_csv
from airflow_provider_optimizely.core.page import Page, Row, SourceError, Unreadable
from airflow_provider_optimizely.core.values import not_finite, refusal_of_number

DEFAULT_FETCH_SIZE = 5000
FileFormat = Literal["csv", "tsv", "jsonl"]
FILE_FORMATS: tuple[str, ...] = ("csv", "tsv", "jsonl")
_SUFFIXES: dict[str, FileFormat] = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
}


def numbered(pages: Iterable[Page]) -> Iterator[tuple[int, Row | Unreadable]]:
    """``(row number, row)`` pairs of a stream of pages (for tests and simple consumers)."""
    number = 0
    for page in pages:
        for row in page.rows:
            number += 1
            yield number, row


# -- in-memory --------------------------------------------------------------------------------------------


def pages_from_records(
    records: Iterable[Any], *, single_column: str | None = None, page_size: int = DEFAULT_PAGE_SIZE
) -> Iterator[Page]:
    """Pages of mappings (copied: the sync may change a row). With ``single_column``, a scalar item
    becomes ``{single_column: item}`` (a list of ids for a delete)."""

    def row_of(record: Any) -> Row | Unreadable:
        if isinstance(record, Mapping):
            return _finite_row(dict(record))
        if single_column is not None and not isinstance(record, (list, tuple, set)):
            return {single_column: record}
        return Unreadable(f"expected a mapping of column to value, got {type(record).__name__}")

    iterator = iter(records)
    while chunk := list(islice(iterator, page_size)):
        yield Page([row_of(record) for record in chunk])


# -- files ------------------------------------------------------------------------------------------------


def file_format_of(path: str, explicit: str | None = None) -> FileFormat:
    """The format named, or the one the file's suffix says (``.csv``, ``.tsv``, ``.jsonl``, ``.ndjson``)."""
    if explicit:
        fmt = explicit.lower().replace("json_lines", "jsonl").replace("ndjson", "jsonl")
        if fmt not in FILE_FORMATS:
            raise SourceError(f"file_format must be one of {', '.join(FILE_FORMATS)}, not {explicit!r}")
        return fmt  # type: ignore[return-value]
    name = path.rsplit("/", 1)[-1].lower()
    for suffix in (".gz", ".bz2", ".xz", ".zst"):
        name = name.removesuffix(suffix)
    for suffix, fmt in _SUFFIXES.items():
        if name.endswith(suffix):
            return fmt
    raise SourceError(f"can't tell the format of {path!r} from its name: set file_format (csv, tsv or jsonl)")


def pages_from_json_lines(stream: IO[bytes], *, page_size: int = DEFAULT_PAGE_SIZE) -> Iterator[Page]:
    """Pages of a JSON Lines byte stream: one JSON object a line; blank lines are skipped."""
    lines = (line for line in _without_bom(stream) if line.strip())
    while chunk := list(islice(lines, page_size)):
        yield Page(lines=chunk)


def _without_bom(stream: IO[bytes]) -> Iterator[bytes]:
    lines = iter(stream)
    first = next(lines, None)
    if first is not None:
        yield first.removeprefix(codecs.BOM_UTF8)
        yield from lines


def pages_from_file(
    stream: IO[bytes], file_format: FileFormat, *, page_size: int | None = None
) -> Iterator[Page]:
    """Pages of a file: ``page_size`` rows at most (by default, a CSV's pages follow its blocks)."""
    delimiter = "\t" if file_format == "tsv" else ","
    if file_format == "jsonl":
        return pages_from_json_lines(stream, page_size=page_size or DEFAULT_PAGE_SIZE)
    return pages_from_csv(stream, delimiter=delimiter, page_size=page_size or CSV_PAGE_SIZE)


# -- SQL --------------------------------------------------------------------------------------------------

# Drivers whose default cursor reads the whole result on execute(); a named (server-side) cursor streams.
_NAMED_CURSOR_DRIVERS = ("psycopg2", "psycopg")
_SERVER_SIDE_CURSOR_CLASSES = {"MySQLdb": "SSCursor", "pymysql": "SSCursor"}


def open_streaming_cursor(connection: Any, *, fetch_size: int = DEFAULT_FETCH_SIZE) -> Any:
    """A cursor that fetches rows from the server page by page rather than all at ``execute()``.

    PostgreSQL (psycopg2/psycopg) gets a named cursor, MySQL drivers their unbuffered cursor class;
    other DB-API drivers (SQLite, most others) stream ``fetchmany`` with their ordinary cursor.
    """
    driver = type(connection).__module__.split(".", 1)[0]
    if driver in _NAMED_CURSOR_DRIVERS:
        cursor = connection.cursor(name=f"optimizely_sync_{uuid.uuid4().hex}")
        cursor.itersize = fetch_size
        return cursor
    if driver in _SERVER_SIDE_CURSOR_CLASSES:
        module = __import__(f"{driver}.cursors", fromlist=[_SERVER_SIDE_CURSOR_CLASSES[driver]])
        return connection.cursor(getattr(module, _SERVER_SIDE_CURSOR_CLASSES[driver]))
    return connection.cursor()


def reads_from_any_thread(cursor: Any) -> bool:
    """Whether another thread than the one that opened the connection may read ``cursor``: the
    PostgreSQL drivers allow it (DB-API ``threadsafety`` 2); SQLite, for one, refuses."""
    return type(cursor).__module__.split(".", 1)[0] in _NAMED_CURSOR_DRIVERS


def pages_from_cursor(
    cursor: Any,
    sql: str,
    parameters: Mapping[str, Any] | Sequence[Any] | None = None,
    *,
    fetch_size: int = DEFAULT_FETCH_SIZE,
) -> Iterator[Page]:
    """Run ``sql`` and yield its rows as dicts keyed by column name, one ``fetchmany`` page at a time."""
    if parameters is None:
        cursor.execute(sql)
    else:
        cursor.execute(sql, parameters)
    # A server-side cursor describes its columns only once the first page is fetched.
    page = cursor.fetchmany(fetch_size) if cursor.description is not None or _is_named(cursor) else None
    if cursor.description is None:
        raise SourceError("the SQL returned no result set: it must be a query (SELECT ...)")
    columns = [column[0] for column in cursor.description]
    if len(set(columns)) != len(columns):
        raise SourceError(f"the query's columns must have distinct names (alias them): {columns}")
    # Type codes tell a text column from a number one whose values read alike (core.source_fingerprints).
    types = tuple(column[1] for column in cursor.description)
    while page:
        refused = _non_finite(page, columns)
        if not refused:
            yield Page(header=columns, values=page, types=types)
        else:
            # Every row of a result has every column: zip needs no strict= check (a keyword a row costs).
            rows = [refused.get(at) or dict(zip(columns, values)) for at, values in enumerate(page)]  # noqa: B905
            yield Page(rows, types=types)
        page = cursor.fetchmany(fetch_size)


def _is_named(cursor: Any) -> bool:
    return bool(getattr(cursor, "name", None))


def _non_finite(page: Sequence[Sequence[Any]], columns: list[str]) -> dict[int, Unreadable]:
    """The rows holding a NaN or infinite number, each as ``Unreadable``. A column at a time: its types
    are looked at in C, and only a column of floats whose sum is not finite, or of decimals, cell by
    cell."""
    refused: dict[int, Unreadable] = {}
    for index, column in enumerate(columns):
        cells = list(map(itemgetter(index), page))
        kinds = set(map(type, cells))
        suspect = float in kinds and not math.isfinite(sum(cell for cell in cells if type(cell) is float))
        if not suspect and not any(issubclass(kind, Decimal) for kind in kinds):
            continue
        for position, cell in enumerate(cells):
            if not_finite(cell) and position not in refused:
                refused[position] = Unreadable(f"column {column!r}: {refusal_of_number(cell)}")
    return refused


def _finite_row(row: Row) -> Row | Unreadable:
    for column, value in row.items():
        if not_finite(value):
            return Unreadable(f"column {column!r}: {refusal_of_number(value)}")
    return row
