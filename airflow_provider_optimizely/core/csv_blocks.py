"""A CSV/TSV byte stream as its header and blocks of whole records: the first half of the one CSV reader.

The sync (``core.csv_pages``) and the bulk-upload check (``core.csv_check``) both read files through this
module and ``core.csv_records``. Here the bytes are cut into blocks of about ``block_bytes``, each ending
where a record ends (once ``BlockReader.settle`` has looked): after a line break that is outside any
quoted value, so that a value holding line breaks is never split between two blocks, and the parser of a
block (Arrow's or the ``csv`` module) needs nothing from the next. A byte-order mark at the start is
dropped; the text is not decoded here, so a bad byte costs nothing until the block is parsed
(``Block.text``), where it is named by row and column.

Where a block's cut falls is decided the way Python's ``csv`` module reads quotes: a quote opens a quoted
value only at the start of a field; inside one, two quotes are a quote and one closes it. A block with few
quotes is walked quote by quote (``bytes.find``, a Python step per quote), which also notes where each
quoted value is (``Block.quoted_spans``) and whether every quote is well formed (``Block.well_quoted``);
a densely quoted block is vouched for by one regular expression over all of it.

A record may be as long as ``max_record_bytes`` (1 GiB by default): far beyond any API's body, so the APIs'
own limits decide, not the reader (the ``csv`` module's field limit is raised to match).
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

from airflow_provider_optimizely.core.page import SourceError

DEFAULT_BLOCK_BYTES = 1 << 20
MAX_RECORD_BYTES = 1 << 30
csv.field_size_limit(max(csv.field_size_limit(), MAX_RECORD_BYTES))

LONE_CARRIAGE_RETURN = re.compile(rb"\r(?!\n)")
_QUOTE = 0x22
_SPACE = 0x20
_LF = 0x0A
_CR = 0x0D


@dataclass(frozen=True)
class Dialect:
    """How a file is read. The default is Python's ``csv`` module's (``excel``); ``DCP`` is the bulk-upload
    file's: a space after a delimiter is skipped (seed 000's example writes ``"c1", "John Doe"``), and
    quoting is strict (text after a closing quote, or a quote never closed, makes the file unreadable)."""

    delimiter: str = ","
    skip_initial_space: bool = False
    strict: bool = False

    def csv_options(self) -> dict[str, object]:
        return {
            "delimiter": self.delimiter,
            "skipinitialspace": self.skip_initial_space,
            "strict": self.strict,
        }


class Block:
    """Whole records of a file: their bytes, and the line number (header = 1) of the block's first line."""

    __slots__ = ("_clean", "_text", "data", "first_line", "quoted_spans", "well_quoted")

    def __init__(self, data: bytes, first_line: int, well_quoted: bool | None) -> None:
        self.data = data
        self.first_line = first_line
        #: No quote, or every quote in a quoted value that starts a field, ends one, and doubles its quotes;
        #: None until ``BlockReader.settle`` has looked.
        self.well_quoted = well_quoted
        #: Where the quoted values are, ``(start, end)`` with their quotes, when they were found one by one.
        self.quoted_spans: list[tuple[int, int]] | None = None
        self._text: str | None = None
        self._clean = True

    def reset(self, data: bytes, well_quoted: bool, quoted_spans: list[tuple[int, int]] | None) -> None:
        self.data = data
        self.well_quoted = well_quoted
        self.quoted_spans = quoted_spans
        self._text = None
        self._clean = True

    @property
    def text(self) -> str:
        """The block decoded; each byte that is not UTF-8 becomes a lone surrogate (U+DC80-U+DCFF), which
        no valid UTF-8 decodes to, so a cell holding one is exactly a cell with a bad byte."""
        if self._text is None:
            try:
                self._text = self.data.decode("utf-8")
            except UnicodeDecodeError:
                self._text = self.data.decode("utf-8", "surrogateescape")
                self._clean = False
        return self._text

    @property
    def clean(self) -> bool:
        """The bytes are UTF-8 and hold no NUL."""
        return self.text is not None and self._clean and b"\x00" not in self.data

    @property
    def line_breaks(self) -> int:
        """Line breaks in the block (``\\n``, ``\\r\\n``, a lone ``\\r``), as the csv module counts them."""
        data = self.data
        breaks = data.count(b"\n")
        if b"\r" in data:
            breaks += len(LONE_CARRIAGE_RETURN.findall(data))
        return breaks

    @property
    def has_lone_carriage_return(self) -> bool:
        """A ``\\r`` not followed by ``\\n``: a line end to the ``csv`` module, not to Arrow."""
        return b"\r" in self.data and LONE_CARRIAGE_RETURN.search(self.data) is not None


class BlockReader:
    """The header record and then the blocks of a CSV/TSV byte stream (see the module doc)."""

    def __init__(
        self,
        source: IO[bytes] | io.RawIOBase,
        dialect: Dialect,
        *,
        block_bytes: int = DEFAULT_BLOCK_BYTES,
        max_record_bytes: int = MAX_RECORD_BYTES,
        count_lines: bool = True,
    ) -> None:
        """``count_lines=False`` leaves every block's ``first_line`` 0: counting line breaks costs a pass
        over the bytes, which a reader that numbers rows, not lines, can spare."""
        self.count_lines = count_lines
        self.source = source
        self.dialect = dialect
        self.block_bytes = block_bytes
        self.max_record_bytes = max_record_bytes
        self._scanner = _QuoteScanner(dialect)
        self._carry = b""
        self._at_end = False
        self._line = 1  # the line number the next block starts on
        self._started = False

    def header_bytes(self) -> bytes | None:
        """The first record's bytes (its line break left off), or None for an empty stream."""
        self._started = True
        data = self._fill(b"")
        while len(data) < len(codecs.BOM_UTF8) and not self._at_end:
            data = self._grow(data)
        if data.startswith(codecs.BOM_UTF8):
            data = data[len(codecs.BOM_UTF8) :]
        while True:
            end = self._scanner.first_record_end(data, self._at_end)
            if end or self._at_end:
                break
            data = self._grow(data)
        end = end or len(data)
        header, self._carry = data[:end], data[end:]
        self._line = 1 + Block(header, 1, True).line_breaks
        if not header and not self._carry:
            return None
        for line_break in (b"\r\n", b"\n", b"\r"):
            if header.endswith(line_break):
                return header[: -len(line_break)]
        return header

    def __iter__(self) -> Iterator[Block]:
        """Blocks cut after their last line break: where a record ends, unless that line break is in a
        quoted value. ``settle`` makes sure before a block is parsed; a consumer that can tell from the
        block itself (a pattern that allows no line break in a quoted value) may skip it."""
        if not self._started:
            self.header_bytes()
        while True:
            data = self._fill(self._carry)
            if not data:
                return
            while True:
                cut = len(data) if self._at_end else _last_line_end(data, 0, len(data))
                if cut:
                    break
                data = self._grow(data)
            block = Block(data[:cut], self._line if self.count_lines else 0, None)
            self._carry = data[cut:]
            yield block
            if self.count_lines:
                self._line += block.line_breaks  # once the consumer has settled the block, if it did

    def settle(self, block: Block) -> None:
        """Move the block's end to where a record ends (giving its tail back to the next block, or taking
        more of the stream for a quoted value longer than the block), and set ``well_quoted``."""
        if block.well_quoted is not None:
            return
        if self._carry.find(b'"') < 0 and block.data.find(b'"') < 0:
            block.reset(block.data, True, [])  # no quote: the cut after the last line break stands
            return
        data = block.data + self._carry
        while True:
            cut, well_quoted, spans = self._scanner.last_record_end(data, self._at_end)
            if cut or self._at_end:
                break
            data = self._grow(data)
        cut = cut or len(data)
        block.reset(data[:cut], well_quoted, spans)
        self._carry = data[cut:]

    def _fill(self, data: bytes) -> bytes:
        while not self._at_end and len(data) < self.block_bytes:
            more = self.source.read(self.block_bytes) or b""
            if not more:
                self._at_end = True
            data += more
        return data

    def _grow(self, data: bytes) -> bytes:
        """More of the stream, for a record longer than a block."""
        if len(data) >= self.max_record_bytes:
            where = f" starting on line {self._line}" if self.count_lines else ""
            raise SourceError(
                f"a record{where} runs past {self.max_record_bytes:,} bytes: is a quoted value never closed?"
            )
        more = self.source.read(max(self.block_bytes, len(data))) or b""
        if not more:
            self._at_end = True
        return data + more


class _QuoteScanner:
    """Where records end in a run of bytes, reading quotes as the ``csv`` module does."""

    def __init__(self, dialect: Dialect) -> None:
        sep = re.escape(dialect.delimiter.encode())
        self._sep = dialect.delimiter.encode()[0]
        self._ends_value = (b"", dialect.delimiter.encode(), b"\r", b"\n")
        self._skip_space = dialect.skip_initial_space
        # Dense quoting: one match over the whole run costs less than a Python step per quoted value.
        quoted = b'"[^"]*+(?:""[^"]*+)*+"'
        field = b"(?:" + quoted + b'|[^"' + sep + b"\\r\\n]*+)"
        line = field + b"(?:" + sep + field + b")*+"
        self._well_quoted_lines = re.compile(b"(?:" + line + b"\\r?\\n)*+(?:" + line + b")?")

    def last_record_end(self, data: bytes, at_end: bool) -> tuple[int, bool, list[tuple[int, int]] | None]:
        """The position just past the last record end in ``data`` (0 if none), whether every quote before
        it is well formed (see ``Block.well_quoted``), and where the quoted values before it are (None when
        they were not looked for one by one). At the end of the stream, the end of the data ends a
        record."""
        cut = len(data) if at_end else _last_line_end(data, 0, len(data))
        if data.find(b'"', 0, cut) < 0:
            return cut, True, []
        sample = min(cut, 1 << 16)
        dense = data.count(b'"', 0, sample) * 40 >= sample and not (self._skip_space and b' "' in data)
        if dense and self._well_quoted_lines.fullmatch(data, 0, cut) is not None:
            return cut, True, None
        return self._scan(data, at_end, first_only=False)

    def first_record_end(self, data: bytes, at_end: bool) -> int:
        return self._scan(data, at_end, first_only=True)[0]

    def _scan(
        self, data: bytes, at_end: bool, *, first_only: bool
    ) -> tuple[int, bool, list[tuple[int, int]] | None]:
        """The exact walk: a quote opens a value only where a field starts; inside, ``""`` is a quote.
        Returns the last (or first) record end, whether the quotes before it are well formed, and the
        spans of the quoted values before it."""
        size = len(data)
        position = last = 0
        well = well_at_last = True
        spans: list[tuple[int, int]] = []
        spans_at_last = 0
        while True:
            quote = data.find(b'"', position)
            stop = size if quote < 0 else quote
            end = (_first_line_end if first_only else _last_line_end)(data, position, stop, at_end)
            if end:
                if first_only:
                    return end, well, spans
                last, well_at_last, spans_at_last = end, well, len(spans)
            if quote < 0:
                if at_end and not first_only:
                    return size, well, spans
                return last, well_at_last, spans[:spans_at_last]
            if not self._starts_field(data, quote, position):
                well = False
                position = quote + 1  # a quote inside an unquoted value is text
                continue
            close = quote + 1
            while True:
                close = data.find(b'"', close)
                if close < 0 or (close + 1 == size and not at_end):
                    # The quoted value runs past the data read so far; at the end of the stream the csv
                    # module reads it to the end, as one record.
                    if at_end and not first_only:
                        return size, False, spans
                    return last, well_at_last, spans[:spans_at_last]
                if close + 1 < size and data[close + 1] == _QUOTE:
                    close += 2
                    continue
                break
            spans.append((quote, close + 1))
            if data[close + 1 : close + 2] not in self._ends_value:
                well = False  # text after the closing quote
            position = close + 1

    def _starts_field(self, data: bytes, quote: int, floor: int) -> bool:
        before = quote - 1
        if self._skip_space:
            while before >= floor and data[before] == _SPACE:
                before -= 1
        return before < 0 or data[before] in (self._sep, _LF, _CR)


def _last_line_end(data: bytes, start: int, stop: int, at_end: bool = False) -> int:
    """Just past the last line break in ``data[start:stop]`` (0 if none). A lone ``\\r`` ends a line too, but
    not as the last byte read (a ``\\n`` may follow it), unless the stream ends there."""
    newline = data.rfind(b"\n", start, stop)
    after = newline + 1 if newline >= 0 else start
    carriage = data.rfind(b"\r", after, stop)
    if carriage >= 0 and carriage + 1 == len(data) and not at_end:
        carriage = data.rfind(b"\r", after, carriage)
    if carriage >= 0:
        return carriage + 1  # after the last \n, so not followed by one: a lone \r
    return after if newline >= 0 else 0


def _first_line_end(data: bytes, start: int, stop: int, at_end: bool) -> int:
    newline = data.find(b"\n", start, stop)
    carriage = data.find(b"\r", start, stop if newline < 0 else newline)
    if carriage >= 0:
        if carriage + 1 < len(data):
            return carriage + (2 if data[carriage + 1] == _LF else 1)
        if at_end:
            return carriage + 1
        return 0
    return newline + 1 if newline >= 0 else 0
