"""A CSV/TSV byte stream as its header and blocks of whole records: the first half of the one CSV reader.

The sync (``core.csv_pages``) and the bulk-upload check (``core.csv_check``) both read files through this
module and ``core.csv_records``. Here the bytes are cut into blocks of about ``block_bytes``, each ending
where a record ends: after a line break that is outside any quoted value, so that a value holding line
breaks is never split between two blocks, and the parser of a block (Arrow's or the ``csv`` module) needs
nothing from the next. A byte-order mark at the start is dropped; the text is not decoded here, so a bad
byte costs nothing until the block is parsed (``Block.text``), where it is named by row and column.

Where a block's cut falls is decided the way Python's ``csv`` module reads quotes: a quote opens a quoted
value only at the start of a field; inside one, two quotes are a quote and one closes it. Most blocks are
settled by one C-speed regular expression (every quote in a well-formed quoted value: ``well_quoted``);
the others by a scan of their quotes in Python, which also handles a stray quote in an unquoted value.

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

    __slots__ = ("_clean", "_text", "data", "first_line", "well_quoted")

    def __init__(self, data: bytes, first_line: int, well_quoted: bool) -> None:
        self.data = data
        self.first_line = first_line
        #: No quote, or every quote in a quoted value that starts a field, ends one, and doubles its quotes.
        self.well_quoted = well_quoted
        self._text: str | None = None
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
        return data.count(b"\n") + data.count(b"\r") - data.count(b"\r\n")


class BlockReader:
    """The header record and then the blocks of a CSV/TSV byte stream (see the module doc)."""

    def __init__(
        self,
        source: IO[bytes] | io.RawIOBase,
        dialect: Dialect,
        *,
        block_bytes: int = DEFAULT_BLOCK_BYTES,
        max_record_bytes: int = MAX_RECORD_BYTES,
    ) -> None:
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
        if not self._started:
            self.header_bytes()
        while True:
            data = self._fill(self._carry)
            if not data:
                return
            while True:
                cut, well_quoted = self._scanner.last_record_end(data, self._at_end)
                if cut or self._at_end:
                    break
                data = self._grow(data)
            cut = cut or len(data)
            block = Block(data[:cut], self._line, well_quoted)
            self._carry = data[cut:]
            self._line += block.line_breaks
            yield block

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
            raise SourceError(
                f"a record starting on line {self._line} runs past {self.max_record_bytes:,} bytes: "
                "is a quoted value never closed?"
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
        self._skip_space = dialect.skip_initial_space
        quoted = b'"[^"]*+(?:""[^"]*+)*+"'
        # Sparse quoting: remove each well-formed quoted value (one that starts and ends a field); any quote
        # left means a closer look.
        self._quoted_values = re.compile(
            b'"(?<![^' + sep + b'\\n]")[^"]*+(?:""[^"]*+)*+"(?![^' + sep + b"\\r\\n])"
        )
        # Dense quoting: one match over the whole run is cheaper than one substitution per value.
        field = b"(?:" + quoted + b'|[^"' + sep + b"\\r\\n]*+)"
        line = field + b"(?:" + sep + field + b")*+"
        self._well_quoted_lines = re.compile(b"(?:" + line + b"\\r?\\n)*+(?:" + line + b")?")

    def last_record_end(self, data: bytes, at_end: bool) -> tuple[int, bool]:
        """The position just past the last record end in ``data`` (0 if none), and whether every quote
        before it is well formed (see ``Block.well_quoted``). At the end of the stream, the end of the data
        ends a record."""
        cut = len(data) if at_end else _last_line_end(data, 0, len(data))
        if _QUOTE not in data[:cut]:
            return cut, True
        if self._well_formed(data[:cut]):
            return cut, True
        return self._scan(data, at_end, first_only=False), False

    def first_record_end(self, data: bytes, at_end: bool) -> int:
        return self._scan(data, at_end, first_only=True)

    def _well_formed(self, run: bytes) -> bool:
        if self._skip_space and b' "' in run:
            return False  # a quote after skipped spaces: the scan reads it
        if run.count(b'"') * 40 < len(run):
            return b'"' not in self._quoted_values.sub(b"", run)
        return self._well_quoted_lines.fullmatch(run) is not None

    def _scan(self, data: bytes, at_end: bool, *, first_only: bool) -> int:
        """The exact walk: a quote opens a value only where a field starts; inside, ``""`` is a quote."""
        size = len(data)
        position = last = 0
        while True:
            quote = data.find(b'"', position)
            stop = size if quote < 0 else quote
            if first_only:
                end = _first_line_end(data, position, stop, at_end)
                if end:
                    return end
            else:
                last = _last_line_end(data, position, stop, at_end) or last
            if quote < 0:
                return size if at_end and not first_only else last
            if not self._starts_field(data, quote, position):
                position = quote + 1  # a quote inside an unquoted value is text
                continue
            close = quote + 1
            while True:
                close = data.find(b'"', close)
                if close < 0 or (close + 1 == size and not at_end):
                    # The quoted value runs past the data read so far; at the end of the stream the csv
                    # module reads it to the end, as one record.
                    return size if at_end and not first_only else last
                if close + 1 < size and data[close + 1] == _QUOTE:
                    close += 2
                    continue
                break
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
