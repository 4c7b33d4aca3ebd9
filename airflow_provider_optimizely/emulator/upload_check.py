"""Checking and applying one bulk-upload file (API.md §4.4, §4.6), streamed: never the whole file in memory.

How the emulator reads the two sections together (§4.4 says one bad value "fails the file", §4.6 says a
``processed`` file may have refused rows):

- **The whole file fails** (``failed``, nothing applied, ``rows_failed = rows_total``) when the header is
  wrong (no ``customerId`` column in any case, an unregistered or archived attribute, a column twice, no
  header at all), when any value does not fit its attribute's datatype/format (``dcp_values``), when the
  text is not UTF-8, or when the object is 10 GB or more.
- **A row is refused** (the file is still ``processed``, ``rows_failed`` counts it) when it has a
  different number of fields than the header, or an empty ``customerId``.
- An empty cell means "no value for this attribute in this row". Blank lines are skipped and not counted.
- ``errors`` holds the first 100 problems as ``{row, column, message}``: ``row`` is the file's line
  number where the record ends (the header is line 1), ``column`` the header name or ``None``.
- Delimiter: tab for ``.tsv``, comma for ``.csv``, otherwise tab when the header line holds one. Values
  may be quoted, a ``"`` inside a quoted value is doubled, spaces after a delimiter are skipped, and the
  text is UTF-8 with or without a byte-order mark.

Two passes: the first checks every row and counts, the second (only when the file did not fail) applies
the good rows in batches, so a file that fails late has applied nothing.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from airflow_provider_optimizely.emulator.dcp_values import ValueRefused, from_text

MAX_ERRORS = 100
MAX_FILE_BYTES = 10 * 1024**3
APPLY_BATCH = 500

# Field sizes beyond csv's default 128 KiB are legal in a file up to 10 GB.
csv.field_size_limit(64 * 1024 * 1024)


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


def text_stream(binary: IO[bytes]) -> IO[str]:
    """UTF-8 text over a binary stream (an S3 body), BOM dropped, newlines left to the csv module."""
    raw: Any = binary
    buffered: Any = raw if isinstance(raw, io.BufferedIOBase) else io.BufferedReader(raw, 1 << 16)
    return io.TextIOWrapper(buffered, encoding="utf-8-sig", newline="")


def delimiter_for(file_name: str, header_line: str) -> str:
    lowered = file_name.lower()
    if lowered.endswith(".tsv"):
        return "\t"
    if lowered.endswith(".csv"):
        return ","
    return "\t" if "\t" in header_line else ","


class _Columns:
    """The header, resolved against the table's live attributes."""

    def __init__(self, header: list[str], attributes: dict[str, dict[str, Any]], report: FileReport) -> None:
        self.names = [name.strip() for name in header]
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


def _records(stream: IO[str], file_name: str) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) of each non-blank record, the header first."""
    first = stream.readline()
    delimiter = delimiter_for(file_name, first)
    lines = _chain_first(first, stream)
    reader = csv.reader(lines, delimiter=delimiter, skipinitialspace=True, strict=False)
    for fields in reader:
        if fields and any(f.strip() for f in fields):
            yield reader.line_num, fields


def _chain_first(first: str, rest: IO[str]) -> Iterator[str]:
    if first:
        yield first
    yield from rest


def check_file(
    open_stream: Callable[[], IO[str]],
    file_name: str,
    attributes: dict[str, dict[str, Any]],
    apply: Callable[[list[Row]], None],
    size: int = 0,
) -> FileReport:
    """Check the file (first pass) and, when it did not fail, apply its good rows (second pass)."""
    report = FileReport()
    if size >= MAX_FILE_BYTES:
        report.fail(0, None, "files must be under 10 GB")
        return report
    try:
        with open_stream() as stream:
            _first_pass(_records(stream, file_name), attributes, report)
        if report.failed:
            report.rows_failed, report.rows_processed = report.rows_total, 0
            return report
        with open_stream() as stream:
            _apply_pass(_records(stream, file_name), attributes, apply, report)
    except UnicodeDecodeError as exc:
        report.fail(0, None, f"the file is not UTF-8 text (byte {exc.start} of a chunk)")
        report.rows_failed, report.rows_processed = report.rows_total, 0
    except csv.Error as exc:
        report.fail(0, None, f"the file is not valid CSV: {exc}")
        report.rows_failed, report.rows_processed = report.rows_total, 0
    return report


def _first_pass(
    records: Iterator[tuple[int, list[str]]], attributes: dict[str, dict[str, Any]], report: FileReport
) -> None:
    header = next(records, None)
    if header is None:
        report.fail(1, None, "the file has no header row")
        return
    columns = _Columns(header[1], attributes, report)
    header_ok = not report.failed
    for line, fields in records:
        report.rows_total += 1
        if not header_ok:
            continue
        refusal = _row_refusal(fields, columns)
        if refusal is not None:
            report.rows_failed += 1
            report.error(line, *refusal)
            continue
        for value, name, attribute in zip(fields, columns.names, columns.attributes, strict=True):
            if attribute is None or value == "":
                continue
            try:
                from_text(value, attribute["datatype"], attribute["format"])
            except ValueRefused as exc:
                report.fail(line, name, str(exc))


def _row_refusal(fields: list[str], columns: _Columns) -> tuple[str | None, str] | None:
    if len(fields) != len(columns.names):
        return None, f"{len(fields)} fields where the header has {len(columns.names)}"
    if not fields[columns.key_index].strip():
        return columns.names[columns.key_index], "customerId is empty"
    return None


def _apply_pass(
    records: Iterator[tuple[int, list[str]]],
    attributes: dict[str, dict[str, Any]],
    apply: Callable[[list[Row]], None],
    report: FileReport,
) -> None:
    header = next(records)
    columns = _Columns(header[1], attributes, FileReport())
    batch: list[Row] = []
    for _line, fields in records:
        if _row_refusal(fields, columns) is not None:
            continue
        values = {
            attribute["id"]: from_text(value, attribute["datatype"], attribute["format"])
            for value, attribute in zip(fields, columns.attributes, strict=True)
            if attribute is not None and value != ""
        }
        batch.append((fields[columns.key_index], values))
        if len(batch) >= APPLY_BATCH:
            apply(batch)
            report.rows_processed += len(batch)
            batch = []
    if batch:
        apply(batch)
        report.rows_processed += len(batch)
