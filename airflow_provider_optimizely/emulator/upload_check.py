"""Checking and applying one bulk-upload file (docs/api-contract.md §4.4, §4.6), streamed: never the whole
file in memory.

How the emulator reads seed 000's "CSV Formatting Requirements" and docs/api-contract.md §4.4-4.6 together
(§4.4 says
one bad value "fails the file", §4.6 says a ``processed`` file may have refused rows):

- **The whole file fails** (``failed``, nothing applied, ``rows_failed = rows_total``) when:
  the name does not end in ``.csv`` or ``.tsv`` (any case; "a CSV (or TSV) file"); the object is not under
  10 GB (``settings.dcp_max_file_bytes``); the text is not UTF-8; the header is wrong (no ``customerId``
  column in any case, a column that is not exactly the name of a live registered attribute, a column
  twice, no header at all); a ``"`` appears in a value that is not quoted, or a quoted value is not closed
  or is followed by anything but a delimiter ("double quotation marks that are part of the attribute are
  escaped with another quotation mark"); or any value does not fit its attribute's datatype/format
  (``dcp_values``), an empty cell of a non-string column included unless ``empty_cells="no_value"``.
- **A row is refused** (the file is still ``processed``, ``rows_failed`` counts it) when it has a
  different number of fields than the header, or a ``customerId`` that is empty or only spaces ("All rows
  must also contain a valid value for this column").
- Names and values are taken exactly as written: nothing is trimmed. The only spaces the emulator skips
  are those before an opening quote, as in seed 000's own example row, where a space follows each comma
  (``"CustomerId1", "John Doe", ...``).
- A row whose customerId ``FileRules.refuse_row`` names is refused too (a fault set on purpose, see
  ``faults.IMPORT_ROUTE``).
- An empty line is skipped and not counted; a line of only delimiters is a row (with an empty customerId).
- An empty cell of a ``string`` column writes ``""``; under ``empty_cells="no_value"`` every empty cell
  leaves the stored value alone.
- ``errors`` holds the first 100 problems as ``{row, column, message}``: ``row`` is the file's line
  number where the record ends (the header is line 1), ``column`` the header name or ``None``.
- Delimiter: comma for ``.csv``, tab for ``.tsv``. A byte-order mark before the header is dropped.

Two passes: the first checks every row and counts, the second (only when the file did not fail) applies
the good rows in batches, so a file that fails late has applied nothing.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from airflow_provider_optimizely.emulator.dcp_values import ValueRefused, describe, from_text
from airflow_provider_optimizely.emulator.faults import ROW_REFUSAL_MESSAGE

MAX_ERRORS = 100
APPLY_BATCH = 500
_QUOTE = '"'


@dataclass(frozen=True)
class FileRules:
    """The settings a file is checked under (``EmulatorSettings``: readings of docs/api-contract.md §3a)."""

    max_bytes: int = 10 * 10**9
    empty_cells: str = "invalid"
    value_syntax: str = "strict"
    #: A fault: True for the customerId of a row to refuse (``faults.FaultBoard.row_refusal``).
    refuse_row: Callable[[str], bool] | None = None


@dataclass
class FileReport:
    rows_total: int = 0
    rows_processed: int = 0
    rows_failed: int = 0
    failed: bool = False
    errors: list[dict[str, Any]] = field(default_factory=list)

    def error(self, row: int, column: str | None, message: str) -> None:
        if len(self.errors) < MAX_ERRORS:
            self.errors.append({"row": row, "column": column, "message": message})

    def fail(self, row: int, column: str | None, message: str) -> None:
        self.failed = True
        self.error(row, column, message)

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows_total": self.rows_total,
            "rows_processed": self.rows_processed,
            "rows_failed": self.rows_failed,
            "errors": self.errors,
        }


Row = tuple[str, dict[int, Any]]  # customer id, attribute id -> stored value


class FileRefused(Exception):
    """The text can't be read as CSV/TSV at all: the file fails at ``line``."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line


def text_stream(binary: IO[bytes]) -> IO[str]:
    """UTF-8 text over a binary stream (an S3 body), BOM dropped, line endings kept as they are."""
    raw: Any = binary
    buffered: Any = raw if isinstance(raw, io.BufferedIOBase) else io.BufferedReader(raw, 1 << 16)
    return io.TextIOWrapper(buffered, encoding="utf-8-sig", newline="")


def delimiter_for(file_name: str) -> str | None:
    lowered = file_name.lower()
    if lowered.endswith(".tsv"):
        return "\t"
    if lowered.endswith(".csv"):
        return ","
    return None


def _without_line_end(line: str) -> str:
    if line.endswith("\r\n"):
        return line[:-2]
    return line[:-1] if line.endswith(("\n", "\r")) else line


def records(lines: Iterator[str], delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """(line number where the record ends, fields) of each record; empty lines skipped.

    A line without a quote is split as it is (the fast path); a line with one is read field by field,
    across line ends inside a quoted value (kept in the value as written). ``FileRefused`` for a quote out
    of place.
    """
    number = 0
    for line in lines:
        number += 1
        if _QUOTE not in line:
            text = _without_line_end(line)
            if text:
                yield number, text.split(delimiter)
            continue
        fields, number = _quoted_record(line, lines, number, delimiter)
        yield number, fields


def _quoted_record(line: str, lines: Iterator[str], number: int, delimiter: str) -> tuple[list[str], int]:
    text, fields, position = line, [], 0
    while True:
        body_end = len(_without_line_end(text))
        start = position
        while position < body_end and text[position] == " ":
            position += 1
        if position < body_end and text[position] == _QUOTE:
            value, text, position, number = _quoted_value(text, position + 1, lines, number)
            body_end = len(_without_line_end(text))
            if position < body_end and text[position] != delimiter:
                raise FileRefused(number, "a quoted value must be followed by a delimiter or the line end")
        else:
            end = text.find(delimiter, start, body_end)
            position = body_end if end < 0 else end
            value = text[start:position]
            if _QUOTE in value:
                raise FileRefused(
                    number, 'a " inside a value must be escaped by doubling it, in a quoted value'
                )
        fields.append(value)
        if position >= body_end:
            return fields, number
        position += 1  # past the delimiter


def _quoted_value(text: str, position: int, lines: Iterator[str], number: int) -> tuple[str, str, int, int]:
    """The value of a quoted field from just after its opening quote, reading further lines while it is
    open: (value, the line it ends on, the position after its closing quote, that line's number)."""
    parts: list[str] = []
    while True:
        quote = text.find(_QUOTE, position)
        if quote < 0:
            parts.append(text[position:])
            following = next(lines, None)
            if following is None:
                raise FileRefused(number, "a quoted value is not closed at the end of the file")
            text, position, number = following, 0, number + 1
            continue
        parts.append(text[position:quote])
        if text[quote + 1 : quote + 2] == _QUOTE:
            parts.append(_QUOTE)
            position = quote + 2
            continue
        return "".join(parts), text, quote + 1, number


class _Columns:
    """The header, resolved against the table's live attributes (names exactly as written)."""

    def __init__(self, header: list[str], attributes: dict[str, dict[str, Any]], report: FileReport) -> None:
        self.names = header
        self.key_index = -1
        self.attributes: list[dict[str, Any] | None] = []
        seen: set[str] = set()
        for name in self.names:
            attribute = None
            if name.lower() == "customerid":
                if self.key_index >= 0:
                    report.fail(1, name, "customerId appears twice in the header")
                self.key_index = len(self.attributes)
            elif name in seen:
                report.fail(1, name, f"column {name!r} appears twice in the header")
            elif name not in attributes:
                report.fail(1, name, f"{name!r} is not a registered attribute of this table")
            else:
                attribute = attributes[name]
            seen.add(name)
            self.attributes.append(attribute)
        if self.key_index < 0:
            report.fail(1, None, "the header has no customerId column")


def check_file(
    open_stream: Callable[[], IO[str]],
    file_name: str,
    attributes: dict[str, dict[str, Any]],
    apply: Callable[[list[Row]], None],
    size: int = 0,
    rules: FileRules | None = None,
) -> FileReport:
    """Check the file (first pass) and, when it did not fail, apply its good rows (second pass)."""
    rules = rules or FileRules()
    report = FileReport()
    delimiter = delimiter_for(file_name)
    if delimiter is None:
        report.fail(0, None, "a bulk upload is a .csv or .tsv file")
        return report
    if size >= rules.max_bytes:
        report.fail(0, None, f"files must be under 10 GB ({rules.max_bytes} bytes)")
        return report
    try:
        with open_stream() as stream:
            _first_pass(records(iter(stream), delimiter), attributes, report, rules)
        if not report.failed:
            with open_stream() as stream:
                _apply_pass(records(iter(stream), delimiter), attributes, apply, report, rules)
    except UnicodeDecodeError as exc:
        report.fail(0, None, f"the file is not UTF-8 text (byte {exc.start} of a chunk)")
    except FileRefused as exc:
        report.fail(exc.line, None, f"the file is not valid CSV: {exc}")
    if report.failed:
        report.rows_failed, report.rows_processed = report.rows_total, 0
    return report


def _cell_value(value: str, attribute: dict[str, Any], rules: FileRules) -> tuple[bool, Any]:
    """(has a value, stored value) of one cell; ``ValueRefused`` when it fits no reading in force."""
    if value == "":
        if rules.empty_cells == "no_value":
            return False, None
        if attribute["datatype"] != "string":
            kind = describe(attribute["datatype"], attribute["format"])
            raise ValueRefused(f"an empty cell is not a {kind}")
    return True, from_text(value, attribute["datatype"], attribute["format"], rules.value_syntax)


def _first_pass(
    rows: Iterator[tuple[int, list[str]]],
    attributes: dict[str, dict[str, Any]],
    report: FileReport,
    rules: FileRules,
) -> None:
    header = next(rows, None)
    if header is None:
        report.fail(1, None, "the file has no header row")
        return
    columns = _Columns(header[1], attributes, report)
    header_ok = not report.failed
    for line, fields in rows:
        report.rows_total += 1
        if not header_ok:
            continue
        refusal = _row_refusal(fields, columns, rules)
        if refusal is not None:
            report.rows_failed += 1
            report.error(line, *refusal)
            continue
        for value, name, attribute in zip(fields, columns.names, columns.attributes, strict=True):
            if attribute is None:
                continue
            try:
                _cell_value(value, attribute, rules)
            except ValueRefused as exc:
                report.fail(line, name, str(exc))


def _row_refusal(fields: list[str], columns: _Columns, rules: FileRules) -> tuple[str | None, str] | None:
    if len(fields) != len(columns.names):
        return None, f"{len(fields)} fields where the header has {len(columns.names)}"
    if not fields[columns.key_index].strip():
        return columns.names[columns.key_index], "customerId is empty"
    if rules.refuse_row is not None and rules.refuse_row(fields[columns.key_index]):
        return columns.names[columns.key_index], ROW_REFUSAL_MESSAGE
    return None


def _apply_pass(
    rows: Iterator[tuple[int, list[str]]],
    attributes: dict[str, dict[str, Any]],
    apply: Callable[[list[Row]], None],
    report: FileReport,
    rules: FileRules,
) -> None:
    header = next(rows)
    columns = _Columns(header[1], attributes, FileReport())
    batch: list[Row] = []
    for _line, fields in rows:
        if _row_refusal(fields, columns, rules) is not None:
            continue
        values: dict[int, Any] = {}
        for value, attribute in zip(fields, columns.attributes, strict=True):
            if attribute is not None:
                present, stored = _cell_value(value, attribute, rules)
                if present:
                    values[attribute["id"]] = stored
        batch.append((fields[columns.key_index], values))
        if len(batch) >= APPLY_BATCH:
            apply(batch)
            report.rows_processed += len(batch)
            batch = []
    if batch:
        apply(batch)
        report.rows_processed += len(batch)
