"""The check of a DCP bulk-upload file (docs/api-contract.md §4.4), streamed in one pass at flat memory.

One pass checks everything DCP would refuse, so that nothing is uploaded that DCP would fail:

- the header: every column a live registered attribute, plus ``customerId`` (any case), no column twice
  (``header``);
- every row: as many fields as the header, ``customerId`` filled, every value of its attribute's
  datatype and format by the rules of ``core.dcp_datatypes`` (an empty cell only in a ``string`` column)
  (``rows``);
- the text: UTF-8 (a byte-order mark is fine), no NUL byte, quoting well formed (a ``"`` inside a value
  doubled, and the value quoted), under 10 GB, and at least one row;
- personal data (``core.pii``): a column whose name or values look like names, email addresses, phone
  numbers or social security numbers is refused, unless it is named for hashing.

The same pass counts rows and bytes and computes the SHA-256 of the content that will be uploaded: the
original bytes when the file goes up unchanged, or those of the rewritten file when columns are hashed,
bad rows dropped, or rows come from a SQL query. Problems carry the file's line number where the record
ends (the header is line 1, as DCP's Upload History counts) or, for SQL rows, the result row number; the
first ``max_problems`` are kept with column and value. Problems of the whole file (header, personal
data, encoding, quoting, size, no rows) always refuse it; problems of single rows refuse it too, unless
``skip_bad_rows`` drops those rows from the rewrite.

Files are read by the one CSV reader the sync uses too (``core.csv_blocks``, ``core.csv_records``), in
the DCP dialect: a space after a delimiter is skipped, and broken quoting makes the file unreadable.
"""

from airflow_provider_optimizely.core.csv_check.files import check_csv
from airflow_provider_optimizely.core.csv_check.report import (
    DEFAULT_MAX_PROBLEMS,
    MAX_FILE_BYTES,
    PII_SAMPLE_ROWS,
    Attribute,
    CheckOptions,
    CheckResult,
    Problem,
)
from airflow_provider_optimizely.core.csv_check.sql_rows import check_rows

__all__ = [
    "DEFAULT_MAX_PROBLEMS",
    "MAX_FILE_BYTES",
    "PII_SAMPLE_ROWS",
    "Attribute",
    "CheckOptions",
    "CheckResult",
    "Problem",
    "check_csv",
    "check_rows",
]
