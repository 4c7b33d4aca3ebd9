"""Streaming validation of a DCP bulk-upload file (API.md §4.4), in one pass and flat memory.

One pass over the file checks everything DCP would refuse, so that nothing is uploaded that DCP would fail:

- the header: every column a live registered attribute, plus ``customerId`` (any case), no column twice;
- every row: as many fields as the header, ``customerId`` filled, every value of its attribute's
  datatype/format (``core.validation``; an empty cell means "no value" for that attribute);
- the text: UTF-8 (a byte-order mark is fine), quoting well formed (a ``"`` inside a value doubled, and
  the value quoted), under 10 GB;
- personal data (``core.pii``): a column whose name or values look like names, email addresses, phone
  numbers or social security numbers is refused, unless it is named for hashing.

The same pass counts rows and bytes and computes the SHA-256 of the content that will be uploaded: the
original bytes when the file goes up unchanged, or the bytes of the rewritten file when columns are
hashed, bad rows dropped, or rows come from a SQL query. Problems carry the file's line number where the
record ends (the header is line 1, as DCP's Upload History counts) or, for SQL rows, the result row
number; the first ``max_problems`` are kept with column and value.

Problems that concern the file as a whole (header, personal data, encoding, quoting, size) always refuse
it; problems of single rows refuse it too, unless ``skip_bad_rows`` drops those rows from the rewrite.

Speed: the file is read, hashed and decoded in blocks of whole lines. Past the personal-data sample, a
block without ``@`` is checked by one regular expression built from the header (every value of its
column's datatype, every quote well placed, customerId filled), with no per-row Python at all; a block it
does not vouch for is split into rows and checked column by column, and only where that fails too is a
cell or line looked at by itself, to name the problem. So every path reports the same problems.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from typing import IO, Any

from airflow_provider_optimizely.core.content_hash import FileTooLargeError, HashingReader, HashingWriter
from airflow_provider_optimizely.core.pii import pii_kind_of_column, pii_kind_of_value, redact
from airflow_provider_optimizely.core.validation import (
    Validator,
    csv_text,
    dcp_batch_check,
    dcp_text_check,
    dcp_text_pattern,
    dcp_validator,
)

MAX_FILE_BYTES = 10 * 1024**3
DEFAULT_MAX_PROBLEMS = 20
_WRITE_BUFFER = 1 << 20
# Full personal-data tests on every text cell of the first rows; after them only the cheap email test.
PII_SAMPLE_ROWS = 10_000
_CUSTOMER_ID = "customerid"
_VALUE_SHOWN = 100  # characters of a bad value kept in a problem
_BARE_QUOTE = 'a " inside a value must be doubled, and the value quoted'
_NOT_UTF8 = "the text is not UTF-8"


@dataclass(frozen=True)
class Attribute:
    """A live registered attribute of the DCP table."""

    name: str
    datatype: str
    format: str | None = None


@dataclass(frozen=True)
class Problem:
    row: int
    column: str | None
    value: str | None
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row, "column": self.column, "value": self.value, "message": self.message}

    def __str__(self) -> str:
        where = f"row {self.row}" + (f", column {self.column!r}" if self.column is not None else "")
        return f"{where}: {self.message}"


@dataclass(frozen=True)
class CheckOptions:
    attributes: Mapping[str, Attribute]
    #: Column name -> function that hashes one text value (``pii.SaltedHasher``).
    hash_columns: Mapping[str, Callable[[str], str]] = field(default_factory=dict)
    skip_bad_rows: bool = False
    max_problems: int = DEFAULT_MAX_PROBLEMS
    max_bytes: int = MAX_FILE_BYTES
    pii_sample_rows: int = PII_SAMPLE_ROWS

    @property
    def rewrites(self) -> bool:
        """Whether the uploaded content differs from the source file (so it must be written out)."""
        return bool(self.hash_columns) or self.skip_bad_rows


@dataclass
class CheckResult:
    columns: list[str] = field(default_factory=list)
    rows: int = 0
    rows_rejected: int = 0
    bytes: int = 0
    content_hash: str = ""
    problems: list[Problem] = field(default_factory=list)
    problem_count: int = 0
    #: The file can't go up at all (header, personal data, encoding, quoting, size).
    file_refused: bool = False
    #: Validation stopped early: the file was refused and further problems would not change that.
    stopped_early: bool = False

    @property
    def rows_accepted(self) -> int:
        return self.rows - self.rows_rejected

    def uploadable(self, skip_bad_rows: bool) -> bool:
        if self.file_refused:
            return False
        return self.rows_rejected == 0 or (skip_bad_rows and self.rows_accepted > 0)

    def describe_problems(self) -> str:
        lines = [
            str(problem) + (f" (value {problem.value!r})" if problem.value else "")
            for problem in self.problems
        ]
        more = self.problem_count - len(self.problems)
        if self.stopped_early:
            lines.append(
                f"(validation stopped early, after {self.problem_count} problems in {self.rows} rows)"
            )
        elif more > 0:
            lines.append(f"... and {more} more problem(s)")
        return "\n".join(lines)

    def summary(self) -> dict[str, Any]:
        """Small and JSON-serialisable: for XCom and reports."""
        return {
            "rows": self.rows,
            "rows_accepted": self.rows_accepted,
            "rows_rejected": self.rows_rejected,
            "bytes": self.bytes,
            "content_hash": self.content_hash,
            "problem_count": self.problem_count,
            "problems": [problem.as_dict() for problem in self.problems],
        }


class _StopValidation(Exception):
    """Enough problems to refuse the file: reading on would change nothing."""


# --- UTF-8 errors: counted by a codec error handler, pinned to a row by its replacement character -------


class _DecodeErrors:
    """The codec error handler of one validation run: counts bad byte sequences, puts U+FFFD there."""

    def __init__(self) -> None:
        self.count = 0
        self.name = f"optimizely-dcp-csv-{id(self)}"
        codecs.register_error(self.name, self)

    def __call__(self, error: UnicodeError) -> tuple[str, int]:
        if not isinstance(error, UnicodeDecodeError):
            raise error
        self.count += 1
        return "\ufffd", error.end


def _replacement_column(fields: Sequence[str]) -> int | None:
    for index, value in enumerate(fields):
        if "\ufffd" in value:
            return index
    return None


# --- the problems kept ----------------------------------------------------------------------------------


class _Report:
    def __init__(self, options: CheckOptions, result: CheckResult) -> None:
        self.options = options
        self.result = result
        self.pii_columns_reported: set[int] = set()

    def _add(self, row: int, column: str | None, value: str | None, message: str) -> None:
        result = self.result
        result.problem_count += 1
        if len(result.problems) < self.options.max_problems:
            shown = value if value is None or len(value) <= _VALUE_SHOWN else value[:_VALUE_SHOWN] + "..."
            result.problems.append(Problem(row, column, shown, message))

    def refuse(self, row: int, column: str | None, value: str | None, message: str) -> None:
        """A problem of the whole file: nothing of it may be uploaded."""
        self.result.file_refused = True
        self._add(row, column, value, message)

    def reject(self, row: int, column: str | None, value: str | None, message: str) -> None:
        """One bad cell or row; the caller counts the row once however many cells are bad."""
        self._add(row, column, value, message)

    def stop_if_hopeless(self) -> None:
        """All-or-nothing, or a refused file: once the report is full, reading on changes nothing."""
        result = self.result
        hopeless = result.file_refused or not self.options.skip_bad_rows
        if hopeless and result.problem_count >= self.options.max_problems:
            result.stopped_early = True
            raise _StopValidation


# --- the header --------------------------------------------------------------------------------------------


@dataclass
class _Columns:
    names: list[str]
    key_index: int = -1
    #: Per column: the validator of its attribute (None for customerId and unknown columns).
    validators: list[Validator | None] = field(default_factory=list)
    #: (index, text check, batch check) of typed columns (not strings, not hashed columns).
    typed: list[tuple[int, Callable[[str], None], Callable[[Sequence[str]], bool] | None]] = field(
        default_factory=list
    )
    hashed: list[tuple[int, Callable[[str], str]]] = field(default_factory=list)
    #: Text columns (customerId, string attributes) whose values are tested for personal data.
    text: list[int] = field(default_factory=list)


def _resolve_header(header: Sequence[str], options: CheckOptions, report: _Report) -> _Columns:
    columns = _Columns(names=[str(name).strip() for name in header])
    seen: set[str] = set()
    for index, name in enumerate(columns.names):
        hasher = options.hash_columns.get(name)
        attribute: Attribute | None = None
        if name.lower() == _CUSTOMER_ID:
            if columns.key_index >= 0:
                report.refuse(1, name, None, "customerId appears twice in the header")
            columns.key_index = index
        elif name in seen:
            report.refuse(1, name, None, f"column {name!r} appears twice in the header")
        elif name not in options.attributes:
            report.refuse(1, name, None, f"{name!r} is not a registered attribute of this table")
        else:
            attribute = options.attributes[name]
            if hasher is not None and attribute.datatype != "string":
                message = f"a hashed column must be a string attribute; {name!r} is {attribute.datatype}"
                report.refuse(1, name, None, message)
        seen.add(name)
        kind = pii_kind_of_column(name)
        if kind is not None and hasher is None:
            report.refuse(1, name, None, _pii_message(name, kind, "name"))
        text_check = None
        if attribute is not None:
            columns.validators.append(dcp_validator(attribute.datatype, attribute.format))
            text_check = dcp_text_check(attribute.datatype, attribute.format)
        else:
            columns.validators.append(None)
        if hasher is not None:
            columns.hashed.append((index, hasher))
        elif attribute is not None and text_check is not None:
            columns.typed.append((index, text_check, dcp_batch_check(attribute.datatype, attribute.format)))
        else:
            columns.text.append(index)
    if columns.key_index < 0:
        report.refuse(1, None, None, "the header has no customerId column")
    for name in options.hash_columns:
        if name not in seen:
            report.refuse(1, name, None, f"column {name!r} is named for hashing but is not in the header")
    return columns


def _pii_message(column: str, kind: str, because: str) -> str:
    return (
        f"column {column!r} looks like {kind} (by its {because}); the DCP terms forbid personal data: "
        "name it in hash_columns to upload it hashed"
    )


def _shape_problem(fields: Sequence[Any], columns: _Columns) -> tuple[str | None, str] | None:
    if len(fields) != len(columns.names):
        return None, f"{len(fields)} fields where the header has {len(columns.names)}"
    key = fields[columns.key_index]
    if key is None or (isinstance(key, str) and (not key or key.isspace())):
        return columns.names[columns.key_index], "customerId is empty"
    return None


def _check_pii_values(fields: Sequence[Any], line: int, columns: _Columns, report: _Report) -> None:
    for index in columns.text:
        value = fields[index]
        if isinstance(value, str) and index not in report.pii_columns_reported:
            kind = pii_kind_of_value(value)
            if kind is not None:
                report.pii_columns_reported.add(index)
                name = columns.names[index]
                report.refuse(line, name, redact(value), _pii_message(name, kind, "values"))


def _bare_quote_column(raw: str, fields: Sequence[str]) -> int | None:
    """The first value holding a ``"`` that the raw record does not carry quoted, with the quote doubled."""
    for index, value in enumerate(fields):
        if '"' in value and '"' + value.replace('"', '""') + '"' not in raw:
            return index
    return None


# --- files ----------------------------------------------------------------------------------------------

# Blocks of the file are read, hashed and decoded whole, cut after a line end so that no UTF-8 sequence
# and no CRLF is split between two of them.
_BLOCK_BYTES = 1 << 18
_BOM = codecs.BOM_UTF8


class _Block:
    """The text of a run of whole lines, and whether its bytes were valid UTF-8 as they are."""

    __slots__ = ("clean", "text")

    def __init__(self, text: str, clean: bool) -> None:
        self.text = text
        self.clean = clean


def _blocks(raw: HashingReader, decode_errors: _DecodeErrors) -> Iterator[_Block]:
    carry = b""
    at_start = True
    while True:
        data = raw.read(_BLOCK_BYTES)
        at_end = not data
        data = carry + data if carry else data
        if at_start:
            if len(data) < len(_BOM) and not at_end and _BOM.startswith(data):
                carry = data
                continue
            at_start = False
            if data.startswith(_BOM):
                data = data[len(_BOM) :]
        cut = len(data) if at_end else data.rfind(b"\n") + 1
        if cut == 0:  # no LF: lines end with a lone CR, or one line is longer than a block
            cut = data.rfind(b"\r", 0, len(data) - 1) + 1
        if cut == 0 and not at_end:
            carry = data
            continue
        block, carry = data[:cut], data[cut:]
        if block:
            try:
                yield _Block(block.decode("utf-8"), True)
            except UnicodeDecodeError:
                yield _Block(block.decode("utf-8", decode_errors.name), False)
        if at_end:
            return


class _Lines:
    """The file's lines, numbered, and a CSV record read from them, raw text included.

    Lines come from the blocks; the block being read line by line is ``pending``. Most lines hold no quote
    and no space after a delimiter: for those, ``str.split`` gives exactly what ``csv.reader`` would,
    several times faster. A line with a quote (or a space the reader would skip) is parsed by one
    ``csv.reader`` fed line by line, which may pull more lines (from later blocks too) for a value
    spanning them; the raw text of the record is kept for the bare-quote check.
    """

    def __init__(self, blocks: Iterator[_Block], delimiter: str) -> None:
        self._blocks = blocks
        self.delimiter = delimiter
        self.number = 0  # the line number of the last line read
        self.pending = io.StringIO("", newline="")
        self.pending_clean = True
        self._next: str | None = None
        self._consumed: list[str] = []
        self._reader = csv.reader(self._feed(), delimiter=delimiter, skipinitialspace=True, strict=True)

    def next_line(self) -> str | None:
        line = self.pending.readline()
        while not line:
            block = next(self._blocks, None)
            if block is None:
                return None
            self.read_by_line(block.text, block.clean)
            line = self.pending.readline()
        return line

    def read_by_line(self, text: str, clean: bool) -> None:
        self.pending = io.StringIO(text, newline="")
        self.pending_clean = clean

    def next_text(self) -> _Block | None:
        """The rest of the pending block if any is left, else the next block."""
        rest = self.pending.read()
        if rest:
            return _Block(rest, self.pending_clean)
        return next(self._blocks, None)

    def parse(self, line: str) -> tuple[list[str], str]:
        """The fields of the record starting at ``line`` and its raw text; raises ``csv.Error``."""
        self._next = line
        self._consumed = [line]
        try:
            fields = next(self._reader, [])
        finally:
            self.number += len(self._consumed) - 1
        return fields, "".join(self._consumed)

    def _feed(self) -> Iterator[str]:
        # The reader asks for a line either to start the record given to ``parse`` or to continue one
        # whose quoted value spans lines; ``_next`` tells which.
        while True:
            if self._next is not None:
                line, self._next = self._next, None
                yield line
                continue
            more = self.next_line()
            if more is None:
                return  # inside a quoted value at the end of the file: the reader reports it
            self._consumed.append(more)
            yield more


def check_csv(
    source: IO[bytes],
    options: CheckOptions,
    *,
    delimiter: str = ",",
    output: IO[bytes] | None = None,
) -> CheckResult:
    """Validate a CSV/TSV byte stream; with ``output``, also write the content to upload there.

    ``output`` is required when ``options.rewrites``; the hash and byte count are then those of the
    output. Otherwise they are those of ``source`` itself, which is uploaded as it is.
    """
    if options.rewrites and output is None:
        raise ValueError("hashing columns or skipping bad rows rewrites the file: pass an output stream")
    result = CheckResult()
    report = _Report(options, result)
    decode_errors = _DecodeErrors()
    reader_bytes = HashingReader(source, options.max_bytes)
    blocks = _blocks(reader_bytes, decode_errors)
    writer_bytes = HashingWriter(output, options.max_bytes) if output is not None else None
    out_text = _text_writer(writer_bytes) if writer_bytes is not None else None
    try:
        _check_records(blocks, delimiter, options, report, decode_errors, out_text)
    except _StopValidation:
        pass
    except FileTooLargeError as exc:
        report.refuse(0, None, None, str(exc))
    finally:
        if out_text is not None:
            out_text.flush()
            out_text.detach().flush()
    counted = writer_bytes if writer_bytes is not None else reader_bytes
    result.bytes, result.content_hash = counted.count, counted.sha256.hexdigest()
    return result


def _text_writer(target: HashingWriter) -> io.TextIOWrapper:
    return io.TextIOWrapper(io.BufferedWriter(target, _WRITE_BUFFER), encoding="utf-8", newline="")


def _check_records(
    blocks: Iterator[_Block],
    delimiter: str,
    options: CheckOptions,
    report: _Report,
    decode_errors: _DecodeErrors,
    out_text: IO[str] | None,
) -> None:
    lines = _Lines(blocks, delimiter)
    writer = csv.writer(out_text, delimiter=delimiter, lineterminator="\n") if out_text is not None else None
    try:
        first = lines.next_line()
        lines.number = 1
        if first is None:
            report.refuse(1, None, None, "the file is empty: it needs a header row")
            return
        header, raw = lines.parse(first)
        columns = _resolve_header(header, options, report)
        report.result.columns = columns.names
        if decode_errors.count and (found := _replacement_column(header)) is not None:
            report.refuse(1, columns.names[found], None, _NOT_UTF8)
        if (found := _bare_quote_column(raw, header)) is not None:
            report.refuse(1, columns.names[found], None, _BARE_QUOTE)
        report.stop_if_hopeless()
        if writer is not None:
            writer.writerow(columns.names)
        batch = _Batch(columns, options, report, writer)
        decode_errors_seen = sum(name.count("\ufffd") for name in header) if decode_errors.count else 0
        whole_blocks = _WholeBlocks(columns, options, delimiter, writer is not None)
        while (block := lines.next_text()) is not None:
            if block.clean and whole_blocks.read(block.text, lines, batch):
                continue
            lines.read_by_line(block.text, block.clean)
            decode_errors_seen = _check_rows_of(lines, columns, batch, decode_errors, decode_errors_seen)
        batch.flush()
    except csv.Error as exc:
        report.refuse(lines.number, None, None, f"the file is not well-formed CSV: {exc}")


def _check_rows_of(
    lines: _Lines, columns: _Columns, batch: _Batch, decode_errors: _DecodeErrors, decode_errors_seen: int
) -> int:
    """The pending block line by line: per row only what needs the raw record (shape, quotes, bad bytes);
    the rest is ``_Batch``'s. Returns how many bad byte sequences are pinned to rows so far."""
    width = len(columns.names)
    names = columns.names
    delimiter = lines.delimiter
    skipped_space = delimiter + " "
    rows, numbers, size = batch.rows, batch.lines, batch.SIZE
    number = lines.number
    for line in lines.pending:
        number += 1
        if '"' in line or skipped_space in line or line[0] == " ":  # what str.split can't read as csv does
            lines.number = number
            fields, raw = lines.parse(line)
            number = lines.number
            # A value holding a quote must have come quoted, with its quote doubled.
            found = _bare_quote_column(raw, fields)
            if found is not None:
                batch.add_bad(number, names[found], _BARE_QUOTE)
                continue
        else:
            fields = line.rstrip("\r\n").split(delimiter)
        if len(fields) != width:  # (an empty customerId is found per batch, in _Batch.flush)
            if not fields or not any(value.strip() for value in fields):
                continue  # a blank line: DCP skips it
            shape = _shape_problem(fields, columns)
            if shape is not None:
                batch.add_bad(number, shape[0], shape[1])
                continue
        if decode_errors.count != decode_errors_seen:
            # Text is decoded ahead of the parser, so the bad bytes are in this row or a later one; each
            # bad sequence became one U+FFFD, matched to rows one by one.
            found = _replacement_column(fields)
            if found is not None:
                replaced = sum(value.count("\ufffd") for value in fields)
                decode_errors_seen = min(decode_errors_seen + replaced, decode_errors.count)
                batch.add_bad(number, names[found], _NOT_UTF8)
                continue
        rows.append(fields)
        numbers.append(number)
        if len(rows) >= size:
            batch.flush()
            rows, numbers = batch.rows, batch.lines
    lines.number = number
    return decode_errors_seen


class _WholeBlocks:
    """Reads a block of lines at C speed when nothing in it needs the line-by-line path.

    ``str.split`` reads every line at once; lines with a quote or a skipped space go through one
    ``csv.reader`` together, after one regex has proved every quote in them sits in a quoted value with
    its quotes doubled (so no value is bare-quoted) and no quoted value spans lines. Anything else — bad
    bytes, a lone CR, a quote the regex does not vouch for, a record the reader refuses — sends the block
    down the line-by-line path, which finds and words the problem; nothing is kept from the attempt.
    """

    def __init__(self, columns: _Columns, options: CheckOptions, delimiter: str, rewrites: bool) -> None:
        self.columns = columns
        self.width = len(columns.names)
        self.delimiter = delimiter
        self.skipped_space = delimiter + " "
        sep = re.escape(delimiter)
        quoted = '"[^"\\n]*(?:""[^"\\n]*)*"'
        field = f'(?: *{quoted}|[^"{sep}\\n]*)'
        line = f"{field}(?:{sep}{field})*"
        self.well_quoted = re.compile(f"{line}(?:\\n{line})*")
        self.sample_rows = options.pii_sample_rows
        # Past the personal-data sample, a block with no "@" whose every line matches this needs nothing
        # more: no value of it is bad, none looks like an email, none is bare-quoted, no customerId empty.
        self.all_good: re.Pattern[str] | None = None
        if not rewrites:
            cells = []
            for index, name in enumerate(columns.names):
                attribute = options.attributes.get(name)
                pattern = dcp_text_pattern(attribute.datatype, attribute.format) if attribute else None
                if index == columns.key_index:
                    cells.append(f'[^"{sep}\\s][^"{sep}\\n]*')
                elif pattern is not None:
                    cells.append(f"(?:{pattern})?")
                else:
                    cells.append(f'(?:{quoted}|[^"{sep}\\n]*)')
            self.all_good = re.compile(f"(?:{sep.join(cells)}\\n)*+")

    def read(self, text: str, lines: _Lines, batch: _Batch) -> bool:
        """Adds the block's rows to ``batch``; False (nothing added) when it needs the line-by-line path."""
        if "\r" in text:
            if text.count("\r") != text.count("\r\n"):
                return False
            text = text.replace("\r\n", "\n")
        if self._all_good(text, lines, batch):
            return True
        records = text.split("\n")
        if not records[-1]:
            records.pop()  # after the last line end
        delimiter = self.delimiter
        rows = list(map(str.split, records, repeat(delimiter)))
        if '"' in text or self.skipped_space in text or "\n " in text or text[:1] == " ":
            skipped_space = self.skipped_space
            positions = [
                position
                for position, record in enumerate(records)
                if '"' in record or skipped_space in record or record[:1] == " "
            ]
            quoted = [records[position] for position in positions]
            if self.well_quoted.fullmatch("\n".join(quoted)) is None:
                return False
            try:
                parsed = list(csv.reader(quoted, delimiter=delimiter, skipinitialspace=True, strict=True))
            except csv.Error:
                return False
            if len(parsed) != len(quoted):
                return False
            for position, fields in zip(positions, parsed, strict=True):
                rows[position] = fields
        first = lines.number + 1
        lines.number += len(records)
        if set(map(len, rows)) == {self.width}:
            batch.rows += rows
            batch.lines += range(first, first + len(rows))
        else:
            self._add_shaped(rows, first, batch)
        if len(batch.rows) >= batch.SIZE:
            batch.flush()
        return True

    def _all_good(self, text: str, lines: _Lines, batch: _Batch) -> bool:
        result = batch.report.result
        if self.all_good is None or "@" in text or result.rows + len(batch.rows) < self.sample_rows:
            return False
        whole = text if text.endswith("\n") else text + "\n"
        if self.all_good.fullmatch(whole) is None:
            return False
        count = whole.count("\n")
        lines.number += count
        result.rows += count
        return True

    def _add_shaped(self, rows: list[list[str]], first: int, batch: _Batch) -> None:
        for number, fields in enumerate(rows, start=first):
            if len(fields) == self.width:
                batch.rows.append(fields)
                batch.lines.append(number)
            elif fields and any(value.strip() for value in fields):  # else a blank line: DCP skips it
                shape = _shape_problem(fields, self.columns)
                if shape is not None:
                    batch.add_bad(number, shape[0], shape[1])


class _Batch:
    """Rows that passed the per-row checks: checked column by column (mostly in C), then written in order.

    Rows refused by the per-row checks come in as ``add_bad`` and are counted and reported in file order
    with the rest of their batch.
    """

    SIZE = 4096

    def __init__(self, columns: _Columns, options: CheckOptions, report: _Report, writer: Any) -> None:
        self.columns = columns
        self.report = report
        self.writer = writer
        self.sample_rows = options.pii_sample_rows
        self.rows: list[list[str]] = []
        self.lines: list[int] = []
        self.bad: list[Problem] = []

    def add_bad(self, line: int, column: str | None, message: str) -> None:
        self.bad.append(Problem(line, column, None, message))

    def flush(self) -> None:
        rows, lines, bad = self.rows, self.lines, self.bad
        self.rows, self.lines, self.bad = [], [], []
        result = self.report.result
        problems: list[tuple[int, int, Problem]] = [(problem.row, -1, problem) for problem in bad]
        bad_positions: set[int] = set()
        blank_positions: set[int] = set()
        if rows:
            cells_by_column = list(zip(*rows, strict=True))
            keys = cells_by_column[self.columns.key_index]
            if not all(map(str.strip, keys)):
                key_name = self.columns.names[self.columns.key_index]
                for position, key in enumerate(keys):
                    if key.strip():
                        continue
                    if not any(map(str.strip, rows[position])):
                        blank_positions.add(position)  # a line of empty fields: DCP skips it
                    else:
                        line = lines[position]
                        problems.append((line, -1, Problem(line, key_name, None, "customerId is empty")))
                        bad_positions.add(position)
            for index, check, batch_check in self.columns.typed:
                cells = cells_by_column[index]
                if batch_check is not None and batch_check(cells):
                    continue
                name = self.columns.names[index]
                for position, value in enumerate(cells):
                    if value:
                        try:
                            check(value)
                        except ValueError as exc:
                            line = lines[position]
                            problems.append((line, index, Problem(line, name, value, str(exc))))
                            bad_positions.add(position)
            self._personal_data(cells_by_column, lines, result.rows)
        result.rows += len(rows) - len(blank_positions) + len(bad)
        result.rows_rejected += len(bad_positions) + len(bad)
        problems.sort(key=lambda item: (item[0], item[1]))
        for _, _, problem in problems:
            self.report.reject(problem.row, problem.column, problem.value, problem.message)
        if self.writer is not None and not result.file_refused:
            self._write(rows, bad_positions | blank_positions)
        self.report.stop_if_hopeless()

    def _personal_data(self, cells_by_column: list[tuple[str, ...]], lines: list[int], done: int) -> None:
        """Full tests on every text cell of the first rows of the file; after them only the email test."""
        sampled = max(0, min(len(lines), self.sample_rows - done))
        for index in self.columns.text:
            cells = cells_by_column[index]
            positions: Iterable[int] = range(sampled)
            if sampled < len(cells) and "@" in "\n".join(cells[sampled:]):
                positions = range(len(cells))
            for position in positions:
                if index in self.report.pii_columns_reported:
                    break
                value = cells[position]
                if position >= sampled and "@" not in value:
                    continue
                kind = pii_kind_of_value(value)
                if kind is not None:
                    self.report.pii_columns_reported.add(index)
                    name = self.columns.names[index]
                    self.report.refuse(
                        lines[position], name, redact(value), _pii_message(name, kind, "values")
                    )

    def _write(self, rows: list[list[str]], bad_positions: set[int]) -> None:
        if bad_positions:
            rows = [row for position, row in enumerate(rows) if position not in bad_positions]
        for index, hasher in self.columns.hashed:
            for row in rows:
                row[index] = hasher(row[index])
        self.writer.writerows(rows)


# --- SQL rows ---------------------------------------------------------------------------------------------


def check_rows(
    column_names: Sequence[str],
    rows: Iterable[Sequence[Any]],
    options: CheckOptions,
    output: IO[bytes],
    *,
    delimiter: str = ",",
) -> CheckResult:
    """Validate typed rows (from a SQL cursor) and write them to ``output`` as the CSV to upload.

    Problems name the row of the result (the first row is 1) and the column.
    """
    result = CheckResult()
    report = _Report(options, result)
    writer_bytes = HashingWriter(output, options.max_bytes)
    out_text = _text_writer(writer_bytes)
    writer = csv.writer(out_text, delimiter=delimiter, lineterminator="\n")
    columns = _resolve_header(column_names, options, report)
    result.columns = columns.names
    try:
        report.stop_if_hopeless()
        writer.writerow(columns.names)
        for number, row in enumerate(rows, start=1):
            result.rows += 1
            fields = _row_as_text(row, number, columns, report)
            if fields is None:
                result.rows_rejected += 1
                report.stop_if_hopeless()
                continue
            if number <= options.pii_sample_rows or any("@" in fields[index] for index in columns.text):
                _check_pii_values(fields, number, columns, report)
            for index, hasher in columns.hashed:
                fields[index] = hasher(fields[index])
            writer.writerow(fields)
    except _StopValidation:
        pass
    except FileTooLargeError as exc:
        report.refuse(0, None, None, str(exc))
    finally:
        out_text.flush()
        out_text.detach().flush()
    result.bytes, result.content_hash = writer_bytes.count, writer_bytes.sha256.hexdigest()
    return result


def _row_as_text(row: Sequence[Any], number: int, columns: _Columns, report: _Report) -> list[str] | None:
    """The row's cells as the CSV text DCP reads back as the same values, or None when it is bad."""
    shape = _shape_problem(row, columns)
    if shape is not None:
        report.reject(number, shape[0], None, shape[1])
        return None
    fields: list[str] = []
    good = True
    for index, (value, validator) in enumerate(zip(row, columns.validators, strict=True)):
        try:
            fields.append(csv_text(validator(value) if validator is not None else value))
        except ValueError as exc:
            shown = value if isinstance(value, str) else repr(value)
            report.reject(number, columns.names[index], shown, str(exc))
            good = False
    return fields if good else None
