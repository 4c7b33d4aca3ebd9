"""A page of source rows, the unit the sync works on, and what a source says of a row it can't read.

A page holds its rows in one of four forms, and builds the others only when a writer asks:

- ``rows``: dicts of column -> value (lists, a SQL page with a row to refuse);
- ``values``: a CSV or SQL page's rows as read, a tuple of fields a row under one ``header``;
- ``table``: a CSV page parsed by Arrow (a ``pyarrow.Table`` of text columns named by ``header``), every
  row as wide as the header, so that a writer can write its JSON a column at a time
  (``core.json_records``), with no Python object per row;
- ``lines``: a JSON Lines page's lines as the file holds them, each read into a dict only when the rows
  are asked for: change detection reads a line's key alone, and the lines it skips are never read whole.

A row of ``values`` with another number of fields than the header is ``Unreadable`` in ``rows``: a short
row is never a row with missing columns.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from airflow_provider_optimizely.core.errors import TerminalError
from airflow_provider_optimizely.core.values import loads_exact

if TYPE_CHECKING:
    import pyarrow as pa


@dataclass(frozen=True)
class Unreadable:
    """A record the source could not turn into a row, with the reason."""

    reason: str


Row = dict[str, Any]


class SourceError(TerminalError, ValueError):
    """The source as a whole can't be read (no header, an unknown format): nothing was sent."""


class Page:
    """Consecutive rows of a source. ``text_only``: every value is a ``str`` (a CSV page), which lets a
    writer skip converting values for JSON. ``types``: what the source says each column holds (a SQL
    result's type codes), which a column's values keep from page to page. ``lines``: each row's line as
    the file holds it (JSON Lines)."""

    __slots__ = ("_rows", "_values", "header", "lines", "table", "text_only", "types")

    def __init__(
        self,
        rows: list[Row | Unreadable] | None = None,
        text_only: bool = False,
        *,
        header: list[str] | None = None,
        values: list[tuple[Any, ...]] | None = None,
        table: pa.Table | None = None,
        types: tuple[Any, ...] | None = None,
        lines: list[bytes] | None = None,
    ) -> None:
        forms = sum(form is not None for form in (rows, values, table))
        if forms > 1 or (forms == 0 and lines is None):
            raise ValueError("a page holds either rows, or a header and values or a table, or lines")
        if (values is not None or table is not None) and header is None:
            raise ValueError("a page of values or of a table needs its header")
        self._rows = rows
        self._values = values
        self.table = table
        self.text_only = text_only
        self.header = header
        self.types = types
        self.lines = lines

    @property
    def values(self) -> list[tuple[Any, ...]] | None:
        """The rows as tuples of fields (a CSV page, a SQL one), or None for a page of dicts."""
        if self._values is None and self.table is not None:
            columns = [column.to_pylist() for column in self.table.columns]
            self._values = list(zip(*columns, strict=True))
        return self._values

    @property
    def rows(self) -> list[Row | Unreadable]:
        if self._rows is None:
            if self.header is None:
                assert self.lines is not None
                self._rows = [row_of_line(line) for line in self.lines]
            else:
                self._rows = _rows_of(self.header, self.values or [])
        return self._rows

    @property
    def rows_read(self) -> bool:
        """Whether the rows are held as dicts already (else they are made when asked for)."""
        return self._rows is not None

    def __len__(self) -> int:
        if self._rows is not None:
            return len(self._rows)
        if self.table is not None:
            return int(self.table.num_rows)
        if self._values is not None:
            return len(self._values)
        return len(self.lines or ())

    def __repr__(self) -> str:
        return f"Page({self.rows!r}, text_only={self.text_only!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Page):
            return NotImplemented
        return (self.rows, self.text_only) == (other.rows, other.text_only)

    __hash__ = None  # type: ignore[assignment]  # mutable, like the dataclass it replaced


def row_of_line(line: bytes) -> Row | Unreadable:
    """A JSON Lines line as a row: a JSON object, its numbers kept exact (``loads_exact``)."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Unreadable(f"the text is not UTF-8 (byte {exc.start + 1} of the line)")
    try:
        value = loads_exact(text)
    except json.JSONDecodeError as exc:
        return Unreadable(f"not valid JSON: {exc.msg} at column {exc.colno}")
    except ValueError as exc:  # NaN or Infinity, or a number too long to read
        return Unreadable(f"not valid JSON: {exc}")
    if isinstance(value, dict):
        return value
    return Unreadable(f"a line must hold a JSON object, not {type(value).__name__}")


def _rows_of(header: list[str], values: list[tuple[Any, ...]]) -> list[Row | Unreadable]:
    """Dicts of the rows; a row of another width than the header is ``Unreadable``."""
    width = len(header)

    def misfit(fields: tuple[str, ...]) -> Unreadable:
        return Unreadable(f"{len(fields)} fields where the header has {width}")

    # zip's strict= keyword is left out on purpose: parsing a keyword a row costs a fifth of the page's
    # time, and the length check beside it already does its work.
    return [
        dict(zip(header, fields)) if len(fields) == width else misfit(fields)  # noqa: B905
        for fields in values
    ]


def page_columns(page: Page) -> dict[str, list[Any]] | None:
    """The page's values a column at a time (name -> values, in the rows' order of columns), when every
    row is readable and has the same columns in the same order; else None (a writer then goes row by row,
    which names the bad row). An Arrow page's columns come from Arrow, a CSV page's from its tuples: no
    dict a row either way."""
    if page.header is not None and len(set(page.header)) != len(page.header):
        return None  # two columns of one name: the row-by-row path decides
    if page.table is not None:
        assert page.header is not None
        return dict(zip(page.header, (column.to_pylist() for column in page.table.columns), strict=True))
    if page.header is not None and page._rows is None:
        values = page.values or []
        width = len(page.header)
        if set(map(len, values)) != {width}:
            return None
        return {name: list(map(itemgetter(index), values)) for index, name in enumerate(page.header)}
    rows: list[Any] = page.rows
    if not rows or set(map(type, rows)) != {dict}:
        return None
    # The same names in the same order: a column at a time must give each row's fields in its own order.
    orders = set(map(tuple, rows))
    if len(orders) != 1:
        return None
    return {name: list(map(itemgetter(name), rows)) for name in orders.pop()}
