"""The rows of a bulk-upload file checked a batch at a time, column by column, and written in order.

Rows come in from the file's blocks as records: each already told apart by the reader when it can't be a
row (another width than the header, a NUL, a byte that is not UTF-8), or, where the block's quoting was
not vouched for, when it holds a ``"`` outside a quoted value. The others are checked a column at a time
at C speed where the DCP rule's pattern vouches for a whole column (``TextRule.column_fits``), cell by cell
only where it does not, so that every problem is named by row, column and value. A line of empty fields
is skipped, as DCP skips it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from airflow_provider_optimizely.core.csv_check.header import Columns, pii_message
from airflow_provider_optimizely.core.csv_check.report import CheckOptions, Problem, ProblemLog
from airflow_provider_optimizely.core.csv_records import Records
from airflow_provider_optimizely.core.pii import pii_kind_of_value, redact

BARE_QUOTE = 'a " inside a value must be doubled, and the value quoted'


def bare_quote_column(raw: str, fields: Sequence[str]) -> int | None:
    """The first value holding a ``"`` that the raw record does not carry quoted, with the quote doubled."""
    for index, value in enumerate(fields):
        if '"' in value and '"' + value.replace('"', '""') + '"' not in raw:
            return index
    return None


def shape_problem(fields: Sequence[Any], columns: Columns) -> tuple[str | None, str] | None:
    if len(fields) != len(columns.names):
        return None, f"{len(fields)} fields where the header has {len(columns.names)}"
    key = fields[columns.key_index]
    if key is None or (isinstance(key, str) and (not key or key.isspace())):
        return columns.key_name, "customerId is empty"
    return None


class RowChecks:
    """Rows gathered into batches, checked column by column, written (hashed, bad rows dropped) in order.

    Rows refused before the column checks come in as ``add_bad`` and are counted and reported in file
    order with the rest of their batch.
    """

    SIZE = 4096

    def __init__(self, columns: Columns, options: CheckOptions, log: ProblemLog, writer: Any) -> None:
        self.columns = columns
        self.log = log
        self.writer = writer
        self.sample_rows = options.pii_sample_rows
        self.rows: list[Sequence[str]] = []
        self.lines: list[int] = []
        self.bad: list[Problem] = []

    def add_bad(self, line: int, column: str | None, message: str) -> None:
        self.bad.append(Problem(line, column, None, message))

    def add_rows(self, rows: list[Sequence[str]], first_line: int) -> None:
        """Rows of one line each, the first on ``first_line``, every one as wide as the header."""
        self.rows += rows
        self.lines += range(first_line, first_line + len(rows))
        if len(self.rows) >= self.SIZE:
            self.flush()

    def add_records(self, records: Records, well_quoted: bool) -> None:
        """Records the ``csv`` module read line by line (``ends`` and ``raws`` set)."""
        assert records.values is not None and records.ends is not None and records.raws is not None
        problems = {problem.position: problem for problem in records.problems}
        names = self.columns.names
        for position, (fields, line, raw) in enumerate(
            zip(records.values, records.ends, records.raws, strict=True)
        ):
            if not any(value.strip() for value in fields):
                continue  # a line of empty fields: DCP skips it
            problem = problems.get(position)
            if problem is not None:
                self.add_bad(line, None if problem.column is None else names[problem.column], problem.reason)
                continue
            if not well_quoted and (found := bare_quote_column(raw, fields)) is not None:
                self.add_bad(line, names[found], BARE_QUOTE)
                continue
            self.rows.append(fields)
            self.lines.append(line)
            if len(self.rows) >= self.SIZE:
                self.flush()

    def flush(self) -> None:
        rows, lines, bad = self.rows, self.lines, self.bad
        self.rows, self.lines, self.bad = [], [], []
        result = self.log.result
        problems: list[tuple[int, int, Problem]] = [(problem.row, -1, problem) for problem in bad]
        bad_positions: set[int] = set()
        blank_positions: set[int] = set()
        if rows:
            cells_by_column = list(zip(*rows, strict=True))
            keys = cells_by_column[self.columns.key_index]
            if not all(map(str.strip, keys)):
                for position, key in enumerate(keys):
                    if key.strip():
                        continue
                    if not any(map(str.strip, rows[position])):
                        blank_positions.add(position)  # a line of empty fields: DCP skips it
                    else:
                        line = lines[position]
                        problem = Problem(line, self.columns.key_name, None, "customerId is empty")
                        problems.append((line, -1, problem))
                        bad_positions.add(position)
            for index, rule in self.columns.typed:
                cells = cells_by_column[index]
                if rule.column_fits(cells):
                    continue
                name = self.columns.names[index]
                for position, value in enumerate(cells):
                    if position in blank_positions:
                        continue
                    try:
                        if not value:
                            raise ValueError(rule.empty_cell_reason())
                        rule.check(value)
                    except ValueError as exc:
                        line = lines[position]
                        problems.append((line, index, Problem(line, name, value or None, str(exc))))
                        bad_positions.add(position)
            self._personal_data(cells_by_column, lines, result.rows)
        result.rows += len(rows) - len(blank_positions) + len(bad)
        result.rows_rejected += len(bad_positions) + len(bad)
        problems.sort(key=lambda item: (item[0], item[1]))
        for _, _, problem in problems:
            self.log.reject(problem.row, problem.column, problem.value, problem.message)
        if self.writer is not None and not result.file_refused:
            self._write(rows, bad_positions | blank_positions)
        self.log.stop_if_hopeless()

    def _personal_data(self, cells_by_column: list[tuple[str, ...]], lines: list[int], done: int) -> None:
        """Full tests on every text cell of the first rows of the file; after them only the email test."""
        sampled = max(0, min(len(lines), self.sample_rows - done))
        for index in self.columns.text:
            cells = cells_by_column[index]
            positions: Iterable[int] = range(sampled)
            if sampled < len(cells) and "@" in "\n".join(cells[sampled:]):
                positions = range(len(cells))
            for position in positions:
                if index in self.log.pii_columns_reported:
                    break
                value = cells[position]
                if position >= sampled and "@" not in value:
                    continue
                kind = pii_kind_of_value(value)
                if kind is not None:
                    self.log.pii_columns_reported.add(index)
                    name = self.columns.names[index]
                    self.log.refuse(lines[position], name, redact(value), pii_message(name, kind, "values"))

    def _write(self, rows: list[Sequence[str]], bad_positions: set[int]) -> None:
        if bad_positions:
            rows = [row for position, row in enumerate(rows) if position not in bad_positions]
        if self.columns.hashed:
            rows = [list(row) for row in rows]
            for index, hasher in self.columns.hashed:
                for row in rows:
                    row[index] = hasher(row[index])  # type: ignore[index]
        self.writer.writerows(rows)
