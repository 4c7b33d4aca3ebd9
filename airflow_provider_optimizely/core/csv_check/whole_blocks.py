"""A block of a bulk-upload file vouched for whole, by one regular expression built from its header.

Past the personal-data sample, a block with no ``@`` (no email can hide in it) whose every line matches
needs nothing more: every typed value is one its DCP rule's ``fast`` pattern accepts (never empty),
``customerId`` is filled, every ``"`` sits in a quoted value with its quotes doubled, and every line has
as many fields as the header. No Python code runs per row there. A block the expression does not vouch
for is parsed and checked row by row (``core.csv_check.rows``), which finds and words each problem, so
both ways report the same.
"""

from __future__ import annotations

import re

from airflow_provider_optimizely.core.csv_blocks import Block
from airflow_provider_optimizely.core.csv_check.header import Columns
from airflow_provider_optimizely.core.csv_check.report import CheckOptions, CheckResult


class WholeBlocks:
    def __init__(self, columns: Columns, options: CheckOptions, delimiter: str) -> None:
        self.sample_rows = options.pii_sample_rows
        # A rewrite needs every row in hand, so nothing is vouched for whole then.
        self.pattern: re.Pattern[str] | None = None
        if options.rewrites or columns.key_index < 0:
            return
        sep = re.escape(delimiter)
        quoted = '"[^"\\n]*(?:""[^"\\n]*)*"'
        typed = dict(columns.typed)
        cells = []
        for index in range(len(columns.names)):
            if index == columns.key_index:
                cells.append(f'[^"{sep}\\s][^"{sep}\\n]*')
            elif index in typed:
                cells.append(f"(?:{typed[index].fast})")
            else:
                cells.append(f'(?:{quoted}|[^"{sep}\\n]*)')
        self.pattern = re.compile(f"(?:{sep.join(cells)}\\n)*+")

    def vouch(self, block: Block, result: CheckResult) -> bool:
        """True (and the block's rows counted) when the block needs no closer look."""
        if self.pattern is None or result.rows < self.sample_rows or not block.clean:
            return False
        text = block.text
        if "@" in text:
            return False
        if "\r" in text:
            if text.count("\r") != text.count("\r\n"):
                return False
            text = text.replace("\r\n", "\n")
        whole = text if text.endswith("\n") else text + "\n"
        if self.pattern.fullmatch(whole) is None:
            return False
        result.rows += whole.count("\n")
        return True
