"""``check_csv``: a bulk-upload CSV/TSV file checked in one streaming pass, read by the one CSV reader.

The file is read in blocks of whole records (``core.csv_blocks``), hashed and counted as it is read. Each
block is vouched for whole where it can be (``whole_blocks``), else parsed (``core.csv_records``: Arrow
where it reads as the ``csv`` module would, the ``csv`` module elsewhere) and checked row by row
(``rows``). Problems name the file's line where the record ends (the header is line 1, as DCP's Upload
History counts).
"""

from __future__ import annotations

import csv
import io
from typing import IO

from airflow_provider_optimizely.core.content_hash import FileTooLargeError, HashingReader, HashingWriter
from airflow_provider_optimizely.core.csv_blocks import Block, BlockReader, Dialect
from airflow_provider_optimizely.core.csv_check.header import resolve_header
from airflow_provider_optimizely.core.csv_check.report import (
    CheckOptions,
    CheckResult,
    ProblemLog,
    StopValidation,
)
from airflow_provider_optimizely.core.csv_check.rows import BARE_QUOTE, RowChecks, bare_quote_column
from airflow_provider_optimizely.core.csv_check.whole_blocks import WholeBlocks
from airflow_provider_optimizely.core.csv_records import MalformedCsv, RecordParser, parse_header
from airflow_provider_optimizely.core.page import SourceError

BLOCK_BYTES = 1 << 18
_WRITE_BUFFER = 1 << 20


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
    log = ProblemLog(options, result)
    reader_bytes = HashingReader(source, options.max_bytes)
    writer_bytes = HashingWriter(output, options.max_bytes) if output is not None else None
    out_text = text_writer(writer_bytes) if writer_bytes is not None else None
    try:
        _check(reader_bytes, delimiter, options, log, out_text)
    except StopValidation:
        pass
    except FileTooLargeError as exc:
        log.refuse(0, None, None, str(exc))
    except MalformedCsv as exc:
        log.refuse(exc.line, None, None, f"the file is not well-formed CSV: {exc.message}")
    except SourceError as exc:
        log.refuse(0, None, None, str(exc))
    finally:
        if out_text is not None:
            out_text.flush()
            out_text.detach().flush()
    counted = writer_bytes if writer_bytes is not None else reader_bytes
    result.bytes, result.content_hash = counted.count, counted.sha256.hexdigest()
    return result


def text_writer(target: HashingWriter) -> io.TextIOWrapper:
    return io.TextIOWrapper(io.BufferedWriter(target, _WRITE_BUFFER), encoding="utf-8", newline="")


def _check(
    source: HashingReader, delimiter: str, options: CheckOptions, log: ProblemLog, out_text: IO[str] | None
) -> None:
    dialect = Dialect(delimiter, skip_initial_space=True, strict=True)
    blocks = BlockReader(source, dialect, block_bytes=BLOCK_BYTES)
    header_bytes = blocks.header_bytes()
    if header_bytes is None:
        log.refuse(1, None, None, "the file is empty: it needs a header row")
        return
    header = parse_header(header_bytes, dialect)
    columns = resolve_header(header, options, log)
    log.result.columns = columns.names
    if (found := bare_quote_column(header_bytes.decode("utf-8", "replace"), header)) is not None:
        log.refuse(1, columns.names[found], None, BARE_QUOTE)
    log.stop_if_hopeless()
    writer = csv.writer(out_text, delimiter=delimiter, lineterminator="\n") if out_text is not None else None
    if writer is not None:
        writer.writerow(columns.names)
    checks = RowChecks(columns, options, log, writer)
    parser = RecordParser(header, dialect)
    whole = WholeBlocks(columns, options, delimiter)
    for block in blocks:
        if whole.vouch(block, log.result):
            continue  # its pattern allows no line break in a quoted value: it ends where a record does
        blocks.settle(block)
        records = parser.parse(block, by_line=True)
        if records.table is not None and _one_line_a_record(block, len(records)):
            rows = list(zip(*(column.to_pylist() for column in records.table.columns), strict=True))
            checks.add_rows(rows, block.first_line)  # type: ignore[arg-type]
        else:
            if records.table is not None:  # a record over several lines: find where each ends
                records = parser.parse_by_line(block)
            checks.add_records(records, bool(block.well_quoted))
    checks.flush()
    if log.result.rows == 0:
        log.refuse(1, None, None, "the file has a header and no rows: there is nothing to upload")


def _one_line_a_record(block: Block, records: int) -> bool:
    """Whether record ``i`` of the block is on line ``first_line + i``: no blank line, no line break in a
    value (Arrow's table does not say where each record ended)."""
    data = block.data
    if data[:1] in (b"\n", b"\r") or b"\n\n" in data or b"\n\r\n" in data:
        return False
    breaks = block.line_breaks
    return breaks == records or (breaks == records - 1 and not data.endswith((b"\n", b"\r")))
