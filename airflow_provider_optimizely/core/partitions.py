"""Partitioned syncs: one sync split into ``n`` partitions by a hash of the key, run as ``n`` tasks.

A key belongs to partition ``md5(key)[:4] (big-endian) % n``: a function a warehouse can compute too, so
that a SQL source may read only its partition (``sql_predicate``) and a task never sends another
partition's keys (``Partition.split``, on every source, whatever the query did). The key is its text as
the sync sends it (an integer ``42`` is ``"42"``): partition on a text or integer column.

Each partition keeps its own sync state (its own progress, resumed on its own), and the run reports of
all partitions add up to one summary (``core.report.summarize``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from airflow_provider_optimizely.core.errors import TerminalError


class PartitionError(TerminalError, ValueError):
    """A partition that is not ``i/n`` with ``0 <= i < n``."""


# The first 4 bytes of the key's MD5 as an unsigned number, in each warehouse's SQL ({column} and {count}
# filled in). MOD(), never the % operator, which a driver's parameter style would take for a placeholder.
# Only PostgreSQL's is run by the tests; the others follow each warehouse's documented functions.
SQL_PARTITION_OF = {
    "postgres": "MOD(('x' || lpad(substr(md5(({column})::text), 1, 8), 16, '0'))::bit(64)::bigint, {count})",
    "mysql": "MOD(CONV(SUBSTR(MD5({column}), 1, 8), 16, 10), {count})",
    "snowflake": "MOD(TO_NUMBER(SUBSTR(MD5(TO_VARCHAR({column})), 1, 8), 'XXXXXXXX'), {count})",
    "bigquery": (
        "MOD(CAST(CONCAT('0x', SUBSTR(TO_HEX(MD5(CAST({column} AS STRING))), 1, 8)) AS INT64), {count})"
    ),
}


def partition_of(key: str, count: int) -> int:
    return int.from_bytes(hashlib.md5(key.encode("utf-8", "surrogatepass")).digest()[:4], "big") % count  # noqa: S324


@dataclass(frozen=True)
class Partition:
    index: int
    count: int

    @classmethod
    def parse(cls, value: Any) -> Partition:
        """``"i/n"`` (or a ``Partition``)."""
        if isinstance(value, Partition):
            return value
        try:
            index, count = (int(part) for part in str(value).split("/"))
        except ValueError:
            raise PartitionError(f"a partition is 'i/n' (e.g. '3/8'), not {value!r}") from None
        if not 0 <= index < count:
            raise PartitionError(f"partition {value!r}: i must lie in [0, n)")
        return cls(index, count)

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def owns(self, key: str | None) -> bool:
        """Whether this partition sends ``key``; a row with no key is the first partition's to report."""
        if key is None:
            return self.index == 0
        return partition_of(key, self.count) == self.index

    def sql_predicate(self, column: str, dialect: str = "postgres") -> str:
        """A WHERE condition that keeps this partition's rows (``column`` is an SQL expression)."""
        if dialect not in SQL_PARTITION_OF:
            raise PartitionError(
                f"no partition expression for {dialect!r}: one of {', '.join(SQL_PARTITION_OF)}"
            )
        return f"{SQL_PARTITION_OF[dialect].format(column=column, count=self.count)} = {self.index}"
