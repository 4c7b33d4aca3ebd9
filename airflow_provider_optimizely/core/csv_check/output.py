"""The bulk-upload CSV as written (docs/api-contract.md §4.4): one encoder for every file the provider
uploads, so that a query's rows (``check_rows``) and a sync's change set (``core.dcp_channel``) are
written by the same rules.

UTF-8 without a byte-order mark, ``\\n`` after each record, the ``csv`` module's minimal quoting: a value
holding the delimiter, a ``"`` or a line break is quoted, and a ``"`` inside it doubled (the only escape
DCP reads). The bytes are counted and hashed as they are written (the content hash names the upload).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from typing import IO

from airflow_provider_optimizely.core.content_hash import HashingWriter
from airflow_provider_optimizely.core.csv_check.files import text_writer
from airflow_provider_optimizely.core.csv_check.report import MAX_FILE_BYTES

# Where a reader of text in universal-newline mode (DCP's, the emulator's) starts a new line.
_LINE_BREAK = re.compile("\r\n|\r|\n")


class UploadCsvWriter:
    """Records written to ``output`` as an upload file; ``bytes``/``content_hash`` once ``close``d."""

    def __init__(self, output: IO[bytes], *, delimiter: str = ",", max_bytes: int = MAX_FILE_BYTES) -> None:
        self._counted = HashingWriter(output, max_bytes)
        self._text = text_writer(self._counted)
        self._writer = csv.writer(self._text, delimiter=delimiter, lineterminator="\n")
        self.writerow = self._writer.writerow
        self._closed = False

    def close(self) -> None:
        """Write out what is buffered (the target stays open: it is the caller's)."""
        if not self._closed:
            self._closed = True
            self._text.flush()
            self._text.detach().flush()

    @property
    def bytes(self) -> int:
        return self._counted.count

    @property
    def content_hash(self) -> str:
        return self._counted.sha256.hexdigest()


def lines_of_record(fields: Sequence[str]) -> int:
    """How many lines of the file a record takes: one, plus each line break inside a (quoted) value.
    Upload History names a refused row by the line where its record ends (the header is line 1)."""
    return 1 + sum(len(_LINE_BREAK.findall(field)) for field in fields if "\n" in field or "\r" in field)
