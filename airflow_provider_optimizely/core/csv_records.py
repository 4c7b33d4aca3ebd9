"""A block of whole CSV records parsed: the second half of the one CSV reader (``core.csv_blocks`` is the
first).

Arrow's C++ reader parses a block when it reads it exactly as Python's ``csv`` module would, which is
when the block holds no NUL byte, no lone ``\\r`` (a line end to the ``csv`` module, not to Arrow), no
quote outside a well-formed quoted value (``Block.well_quoted``), no space the dialect would skip, only
UTF-8, and no record of another width than the header. Quoted values, doubled quotes and line breaks
inside quotes are Arrow's to read: the two agree on them (``tests/unit/core/test_csv_pages.py`` holds the
reader to the ``csv`` module on random and tricky texts cut at every place). Any other block is parsed by
the ``csv`` module, which also says what is wrong with each record that can't be a row:

- another number of fields than the header;
- a NUL byte (no API takes one, and the ``csv`` module's own readers differ on it);
- bytes that are not UTF-8.

Each names the record by its position in the block and, where it can, the column.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

from airflow_provider_optimizely.core.csv_blocks import Block, Dialect

if TYPE_CHECKING:
    import pyarrow as pa

NOT_UTF8 = "the text is not UTF-8"
HOLDS_NUL = "the value holds a NUL byte"


def wrong_width(fields: int, width: int) -> str:
    return f"{fields} fields where the header has {width}"


class MalformedCsv(ValueError):
    """Strict quoting broken (text after a closing quote, a quote never closed); ``line`` is where."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line
        self.message = message


class Problem(NamedTuple):
    """Why the record at ``position`` in its block can't be a row; ``column`` is the header index."""

    position: int
    column: int | None
    reason: str


@dataclass
class Records:
    """A block's records: an Arrow ``table`` of text columns (every record a row), or ``values`` read by
    the ``csv`` module (every record, bad ones too, with their ``problems``)."""

    table: pa.Table | None = None
    values: list[tuple[str, ...]] | None = None
    #: With ``values`` read line by line: the line number where each record ends, and its text.
    ends: list[int] | None = None
    raws: list[str] | None = None
    problems: list[Problem] = field(default_factory=list)

    def __len__(self) -> int:
        if self.table is not None:
            return int(self.table.num_rows)
        return len(self.values or ())


def parse_header(data: bytes, dialect: Dialect) -> list[str]:
    """The header record's names; a byte that is not UTF-8 is kept as a lone surrogate for the caller to
    name (see ``Block.text``)."""
    text = data.decode("utf-8", "surrogateescape")
    try:
        return next(csv.reader(io.StringIO(text, newline=""), **dialect.csv_options()), [])  # type: ignore[arg-type]
    except csv.Error as exc:
        raise MalformedCsv(1, str(exc)) from None


def bad_column(fields: tuple[str, ...]) -> tuple[int, str] | None:
    """The first field holding a NUL or a byte that is not UTF-8, and which."""
    for index, value in enumerate(fields):
        if "\x00" in value:
            return index, HOLDS_NUL
        try:
            value.encode()
        except UnicodeEncodeError:
            return index, NOT_UTF8
    return None


class RecordParser:
    """Parses blocks of one file (see the module doc); ``arrow=False`` keeps to the ``csv`` module."""

    def __init__(self, header: list[str], dialect: Dialect, *, arrow: bool = True) -> None:
        self.header = header
        self.width = len(header)
        self.dialect = dialect
        self._csv_options = dialect.csv_options()
        sep = dialect.delimiter.encode()
        self._skipped_spaces = (sep + b" ", b"\n ", b"\r ") if dialect.skip_initial_space else ()
        self._arrow = _ArrowParser(header, dialect.delimiter) if arrow else None

    def parse(self, block: Block, *, by_line: bool = False) -> Records:
        """The block's records, by Arrow where it reads them as the ``csv`` module would; elsewhere by the
        ``csv`` module, line by line (``parse_by_line``) when ``by_line`` asks for it."""
        if self._arrow is not None and self._arrow_reads(block):
            table = self._arrow.read(block)
            if table is not None:
                return Records(table=table)
        return self.parse_by_line(block) if by_line else self._parse_whole(block)

    def parse_by_line(self, block: Block) -> Records:
        """The block's records by the ``csv`` module, each with the line it ends on and its text."""
        text = block.text
        consumed: list[str] = []

        def lines() -> Iterator[str]:
            for line in io.StringIO(text, newline=""):
                consumed.append(line)
                yield line

        reader = csv.reader(lines(), **self._csv_options)  # type: ignore[arg-type]
        values: list[tuple[str, ...]] = []
        ends: list[int] = []
        raws: list[str] = []
        first = block.first_line - 1
        try:
            for fields in reader:
                if fields:
                    values.append(tuple(fields))
                    ends.append(first + reader.line_num)
                    raws.append("".join(consumed))
                consumed.clear()
        except csv.Error as exc:
            raise MalformedCsv(first + reader.line_num, str(exc)) from None
        records = Records(values=values, ends=ends, raws=raws)
        records.problems = self._problems(values, block)
        return records

    def _arrow_reads(self, block: Block) -> bool:
        data = block.data
        if not block.well_quoted or b"\x00" in data:
            return False
        if block.has_lone_carriage_return:
            return False
        return not self._skipped_spaces or not self._skips_a_space(block)

    def _skips_a_space(self, block: Block) -> bool:
        """A space the dialect would skip, after a delimiter or at a line's start, outside a quoted value
        (a quoted ``"a, b"`` holds one that is text)."""
        data = block.data
        if data[:1] == b" ":
            return True
        if not any(space in data for space in self._skipped_spaces):
            return False
        spans = block.quoted_spans
        if spans is None:
            return True
        ends = [0, *(end for _, end in spans)]
        starts = [*(start for start, _ in spans), len(data)]
        outside = b"".join(data[end:start] for end, start in zip(ends, starts, strict=True))
        return any(space in outside for space in self._skipped_spaces)

    def _parse_whole(self, block: Block) -> Records:
        reader = csv.reader(io.StringIO(block.text, newline=""), **self._csv_options)  # type: ignore[arg-type]
        try:
            # Tuples, not the reader's lists: the garbage collector stops tracking a tuple of text the first
            # time it sees it, while a page of lists kept alive makes every collection longer.
            values = list(map(tuple, filter(None, reader)))  # a blank line reads as []: no record
        except csv.Error:
            return self.parse_by_line(block)  # strict quoting: find the line
        return Records(values=values, problems=self._problems(values, block))

    def _problems(self, values: list[tuple[str, ...]], block: Block) -> list[Problem]:
        problems: list[Problem] = []
        unclean = not block.clean
        if not unclean and set(map(len, values)) <= {self.width}:
            return problems
        for position, fields in enumerate(values):
            if len(fields) != self.width:
                problems.append(Problem(position, None, wrong_width(len(fields), self.width)))
            elif unclean and (found := bad_column(fields)) is not None:
                problems.append(Problem(position, found[0], found[1]))
        return problems


# Where each column of an Arrow-read block needs JSON escaping, told by a field's metadata so that
# ``core.json_records`` skips looking: the characters to escape (none: ``b""``). No metadata: look.
JSON_ESCAPES = b"json_escapes"
# Quoting denser than this is not worth a Python step per quoted value: every column is looked at.
_QUOTED_VALUES_TOLD = 64


class _EscapeHints:
    """Which columns of a block hold a character JSON must escape, from the block's bytes."""

    def __init__(self, delimiter: str) -> None:
        self._sep = delimiter.encode()
        line_breaks = {ord("\n"), ord("\r"), ord(delimiter)}
        # Outside a quoted value, a value can hold none of these but a backslash or a control character.
        self._unsafe = bytes(code for code in range(32) if code not in line_breaks) + b"\\"
        self._in_quotes = (b'"', b"\n", b"\r", self._sep) if delimiter == "\t" else (b'"', b"\n", b"\r")

    def of(self, block: Block, width: int) -> dict[int, bytes] | None:
        """Column index -> the characters to escape in it; None when any column may need anything."""
        data = block.data
        if len(data.translate(None, self._unsafe)) != len(data):
            return None
        spans = block.quoted_spans
        if b'"' not in data:
            return {}
        if spans is None or len(spans) > _QUOTED_VALUES_TOLD:
            return None
        hints: dict[int, bytes] = {}
        column = position = 0
        for start, end in spans:
            line_start = data.rfind(b"\n", position, start)
            if line_start >= 0:
                column = data.count(self._sep, line_start + 1, start)
            else:
                column += data.count(self._sep, position, start)
            inner = data[start + 1 : end - 1]
            found = b"".join(char for char in self._in_quotes if char in inner)
            if found and column < width:
                hints[column] = bytes(set(hints.get(column, b"") + found))
            position = end
        return hints


class _ArrowParser:
    """Arrow's CSV parser set to read as the ``csv`` module does: every column text, an empty cell ``""``."""

    def __init__(self, header: list[str], delimiter: str) -> None:
        import pyarrow as pa
        from pyarrow import csv as arrow_csv

        self._pa = pa
        self._arrow_csv = arrow_csv
        self._plain = arrow_csv.ParseOptions(
            delimiter=delimiter, quote_char=False, double_quote=False, escape_char=False
        )
        self._quoted = arrow_csv.ParseOptions(
            delimiter=delimiter, quote_char='"', double_quote=True, escape_char=False, newlines_in_values=True
        )
        self._convert = arrow_csv.ConvertOptions(
            column_types=dict.fromkeys(header, pa.string()),
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
            check_utf8=True,
        )
        self._header = header
        self._hints = _EscapeHints(delimiter)
        # malloc, not Arrow's jemalloc: jemalloc hands freed pages back to the system and faults them in
        # again, block after block (a third more CPU in the upsert benchmark).
        self._pool = pa.system_memory_pool()

    def read(self, block: Block) -> pa.Table | None:
        """The block's rows, or None if a record has another width than the header, or a bad byte."""
        data = block.data
        # One Arrow block for the whole of ours: one array a column, which a writer slices without copying.
        read_options = self._arrow_csv.ReadOptions(
            column_names=self._header, use_threads=False, block_size=len(data) + 1
        )
        try:
            table = self._arrow_csv.read_csv(
                self._pa.BufferReader(data),
                read_options=read_options,
                parse_options=self._quoted if b'"' in data else self._plain,
                convert_options=self._convert,
                memory_pool=self._pool,
            )
        except self._pa.ArrowInvalid:
            return None
        hints = self._hints.of(block, len(self._header))
        if hints is None:
            return table
        pa = self._pa
        fields = [
            pa.field(name, pa.string(), metadata={JSON_ESCAPES: hints.get(index, b"")})
            for index, name in enumerate(self._header)
        ]
        return pa.Table.from_arrays(table.columns, schema=pa.schema(fields))
