"""``check_rows``: typed rows of a SQL query checked against the table's attributes and written as the
bulk-upload CSV, each value as the text DCP reads back as the same value (``cell_text``)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import IO, Any

from airflow_provider_optimizely.core.content_hash import FileTooLargeError
from airflow_provider_optimizely.core.csv_check.header import Columns, pii_message, resolve_header
from airflow_provider_optimizely.core.csv_check.output import UploadCsvWriter
from airflow_provider_optimizely.core.csv_check.report import (
    CheckOptions,
    CheckResult,
    ProblemLog,
    StopValidation,
)
from airflow_provider_optimizely.core.csv_check.rows import shape_problem
from airflow_provider_optimizely.core.dcp_datatypes import cell_text
from airflow_provider_optimizely.core.pii import pii_kind_of_value, redact
from airflow_provider_optimizely.core.values import text_of


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
    log = ProblemLog(options, result)
    writer = UploadCsvWriter(output, delimiter=delimiter, max_bytes=options.max_bytes)
    columns = resolve_header(column_names, options, log)
    result.columns = columns.names
    try:
        log.stop_if_hopeless()
        writer.writerow(columns.names)
        for number, row in enumerate(rows, start=1):
            result.rows += 1
            fields = _row_as_text(row, number, columns, log)
            if fields is None:
                result.rows_rejected += 1
                log.stop_if_hopeless()
                continue
            if number <= options.pii_sample_rows or any("@" in fields[index] for index in columns.text):
                _check_pii_values(fields, number, columns, log)
            for index, hasher in columns.hashed:
                fields[index] = hasher(fields[index])
            writer.writerow(fields)
        if result.rows == 0:
            log.refuse(1, None, None, "the query returned no rows: there is nothing to upload")
    except StopValidation:
        pass
    except FileTooLargeError as exc:
        log.refuse(0, None, None, str(exc))
    finally:
        writer.close()
    result.bytes, result.content_hash = writer.bytes, writer.content_hash
    return result


def _row_as_text(row: Sequence[Any], number: int, columns: Columns, log: ProblemLog) -> list[str] | None:
    """The row's cells as the CSV text DCP reads back as the same values, or None when it is bad."""
    shape = shape_problem(row, columns)
    if shape is not None:
        log.reject(number, shape[0], None, shape[1])
        return None
    rules = dict(columns.typed)
    fields: list[str] = []
    good = True
    for index, (value, validator) in enumerate(zip(row, columns.validators, strict=True)):
        try:
            if validator is not None:
                cell = cell_text(validator(value))
            else:
                cell = "" if value is None else text_of(value)
            if not cell and index in rules:
                raise ValueError(rules[index].empty_cell_reason())
            if "\x00" in cell:
                raise ValueError("the value holds a NUL byte")
            fields.append(cell)
        except ValueError as exc:
            shown = value if isinstance(value, str) else repr(value)
            log.reject(number, columns.names[index], shown, str(exc))
            good = False
    return fields if good else None


def _check_pii_values(fields: Sequence[str], row: int, columns: Columns, log: ProblemLog) -> None:
    for index in columns.text:
        value = fields[index]
        if index not in log.pii_columns_reported:
            kind = pii_kind_of_value(value)
            if kind is not None:
                log.pii_columns_reported.add(index)
                name = columns.names[index]
                log.refuse(row, name, redact(value), pii_message(name, kind, "values"))
