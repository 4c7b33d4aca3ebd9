"""What a bulk-upload check is asked (``CheckOptions``) and what it finds (``CheckResult``, ``Problem``),
and the log that keeps the first problems and says when reading on would change nothing."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

MAX_FILE_BYTES = 10 * 1024**3
DEFAULT_MAX_PROBLEMS = 20
# Full personal-data tests on every text cell of the first rows; after them only the cheap email test.
PII_SAMPLE_ROWS = 10_000
_VALUE_SHOWN = 100  # characters of a bad value kept in a problem


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
    #: The file can't go up at all (header, personal data, encoding, quoting, size, no rows).
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


class StopValidation(Exception):
    """Enough problems to refuse the file: reading on would change nothing."""


class ProblemLog:
    """Counts problems into a ``CheckResult``, keeping the first ``max_problems``."""

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
            raise StopValidation
