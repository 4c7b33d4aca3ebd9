"""Change detection on a CSV page's text, before any of its rows is prepared.

An incremental sync of a text source (CSV, TSV: every value a ``str``) fingerprints each row by the text
of the columns its writer reads, joined by NUL (no value that reaches a writer holds one: the CSV reader
refuses it), seeded by those columns' names. What a writer makes of a row depends only on that text and
on what the sync's signature holds (the mapping, the target and its attributes, the provider's version),
so a row whose text and signature are unchanged would make the very payload that the API already
acknowledged: it is classified unchanged and never prepared, validated or encoded. Only the rows to send
are prepared, a few a page on a change run.

A row this step can't key (a row the source could not read, a blank key) goes to the writer, which
rejects it, naming it; a row of another text source keeps the same fingerprint whichever way the CSV
reader read its block (Arrow, or the ``csv`` module).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from operator import itemgetter
from typing import TYPE_CHECKING, Any

import numpy as np

from airflow_provider_optimizely.core.batch import Batch
from airflow_provider_optimizely.core.page import Page, Unreadable
from airflow_provider_optimizely.core.partitions import Partition
from airflow_provider_optimizely.core.report import Rejection
from airflow_provider_optimizely.core.sync_state import KeyRun
from airflow_provider_optimizely.core.sync_state.hashing import (
    fingerprints,
    key_hash,
    key_hashes,
    utf8_key_hashes,
)

if TYPE_CHECKING:
    import pyarrow as pa

SEPARATOR = "\x00"


def fingerprinted_columns(
    header: Sequence[str], key_column: str, mapping: Mapping[str, str] | None
) -> list[str]:
    """The columns whose text makes a row's fingerprint: those the writer reads, in the header's order."""
    if mapping is None:
        return list(header)
    return [name for name in header if name in mapping or name == key_column]


@dataclass
class TextRows:
    """A text page's rows as change detection sees them: each row's key as the page holds it (the
    UTF-8 bytes of an Arrow page's, the text of another's; None: the writer must look at the row) and
    fingerprint (valid where the key is not None)."""

    keys: list[Any]
    all_keyed: bool
    prints: np.ndarray

    @classmethod
    def of(cls, page: Page, columns: Sequence[str], key_column: str) -> TextRows:
        seed = np.uint64(key_hash(SEPARATOR.join(columns)))
        keys: _Keys
        if page.table is not None:
            keys, prints = _table_rows(page, columns, key_column)
        elif page.header is not None and page.values is not None:
            keys, prints = _value_rows(page.header, page.values, columns, key_column)
        else:
            keys, prints = _dict_rows(page.rows, columns, key_column)
        return cls(*keys, prints ^ seed)

    def keyed(self) -> np.ndarray:
        if self.all_keyed:
            return np.ones(len(self.keys), bool)
        return np.fromiter((key is not None for key in self.keys), bool, len(self.keys))

    def texts(self, indexes: np.ndarray) -> Sequence[str]:
        """The keys at ``indexes`` as text (None stays None), each decoded only when looked at."""
        return _Texts(self.keys, indexes)

    def hashes(self, indexes: np.ndarray) -> np.ndarray:
        """The key hashes of the rows at ``indexes`` (keyed rows): ``key_hashes`` of their text."""
        keys = self.keys
        chosen = keys if len(indexes) == len(keys) else [keys[i] for i in indexes.tolist()]
        if chosen and type(chosen[0]) is bytes:
            return utf8_key_hashes(chosen)
        return key_hashes(chosen)


class _Texts(Sequence[str]):
    """The keys at some indexes, as text: decoded from UTF-8 bytes only when one is looked at (a dry
    run's samples)."""

    def __init__(self, keys: list[Any], indexes: np.ndarray) -> None:
        self._keys = keys
        self._indexes = indexes

    def __len__(self) -> int:
        return len(self._indexes)

    def __getitem__(self, index: Any) -> Any:
        key = self._keys[self._indexes[index]]
        return key.decode() if type(key) is bytes else key


# A page's keys (None where the writer must look), and whether every row has one.
_Keys = tuple[list[Any], bool]


def _usable(keys: list[Any], strip: Any = str.strip) -> _Keys:
    """The keys the writer takes as they are: a blank one (which it rejects) becomes None. Bytes are
    stripped of ASCII spaces only: a key blank in Unicode's sense only still goes to the writer, which
    rejects it."""
    if all(map(strip, keys)):
        return keys, True
    return [key if strip(key) else None for key in keys], False


def _table_rows(page: Page, columns: Sequence[str], key_column: str) -> tuple[_Keys, np.ndarray]:
    import pyarrow as pa
    import pyarrow.compute as pc

    table: pa.Table = page.table
    header = page.header
    assert header is not None
    chosen = [table.column(header.index(name)) for name in columns]
    joined = pc.binary_join_element_wise(*chosen, SEPARATOR, memory_pool=pa.system_memory_pool())
    # Bytes, not text: no UTF-8 decoding a key, and hashed as they are.
    keys = table.column(header.index(key_column)).cast(pa.binary()).to_pylist()
    return _usable(keys, bytes.strip), fingerprints(joined)


def _value_rows(
    header: list[str], values: list[tuple[str, ...]], columns: Sequence[str], key_column: str
) -> tuple[_Keys, np.ndarray]:
    keys = _usable(list(map(itemgetter(header.index(key_column)), values)))
    texts: Iterable[str]
    if list(columns) == header:
        texts = map(SEPARATOR.join, values)
    else:
        pick = itemgetter(*(header.index(name) for name in columns))
        texts = (SEPARATOR.join(fields) for fields in map(_as_tuple(pick, len(columns)), values))
    return keys, fingerprints([_utf8(text) for text in texts])


def _dict_rows(rows: list[Any], columns: Sequence[str], key_column: str) -> tuple[_Keys, np.ndarray]:
    keys: list[str | None] = []
    texts: list[bytes] = []
    for row in rows:
        if type(row) is Unreadable or key_column not in row or not all(name in row for name in columns):
            keys.append(None)
            texts.append(b"")
            continue
        key = row[key_column]
        keys.append(key if key.strip() else None)
        texts.append(_utf8(SEPARATOR.join(row[name] for name in columns)))
    return (keys, None not in keys), fingerprints(texts)


def _as_tuple(pick: itemgetter[Any], count: int) -> Any:
    return pick if count > 1 else (lambda fields: (pick(fields),))


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


@dataclass
class Preselection:
    """The rows of a page that change detection kept for the writer (``page``), where each lies in the
    source page (``positions``), and their fingerprints; ``rows_read``: the rows of the page this run
    counts (a partition's own)."""

    page: Page
    positions: np.ndarray
    keys: list[str | None]
    prints: np.ndarray
    rows_read: int

    def attach(
        self, first_row: int, ready: Batch, rejected: list[Rejection]
    ) -> tuple[Batch, list[Rejection]]:
        """The writer's items for ``page`` (numbered from 0) as the source's rows, each with its key
        hash and fingerprint; its rejections numbered as the source's rows too."""
        numbers = (self.positions + first_row).tolist()
        rejected = [
            replace(rejection, row=None if rejection.row is None else numbers[rejection.row])
            for rejection in rejected
        ]
        at = np.asarray(ready.rows, dtype=np.intp)
        if any(self.keys[i] != key for i, key in zip(at.tolist(), ready.keys, strict=True)):
            raise AssertionError("a writer keyed a row otherwise than its text: change detection can't")
        rows = [numbers[i] for i in at.tolist()]
        return Batch(rows, ready.keys, ready.bodies, key_hashes(ready.keys), self.prints[at]), rejected


def preselect(
    run: KeyRun, rows: TextRows, page: Page, partition: Partition | None, *, dry_run: bool
) -> Preselection:
    """Classify the keyed rows of ``page`` (``partition``'s) by their text; keep for the writer those to
    send (none in a dry run) and those it must look at."""
    keyed = rows.keyed()
    owned = owned_rows(rows, partition)
    if owned is not None:
        keyed &= owned
    tracked = np.flatnonzero(keyed)
    classes = run.classify(rows.hashes(tracked), rows.prints[tracked], keys=rows.texts(tracked))
    wanted = tracked[:0] if dry_run else tracked[classes.send]
    untracked = np.flatnonzero(~keyed if owned is None else ~keyed & owned)
    positions = np.sort(np.concatenate([wanted, untracked])) if len(untracked) else wanted
    return Preselection(
        page=subpage(page, positions),
        positions=positions,
        keys=[
            None if rows.keys[i] is None else text
            for i, text in zip(positions.tolist(), rows.texts(positions), strict=True)
        ],
        prints=rows.prints[positions],
        rows_read=len(rows.keys) if owned is None else int(np.count_nonzero(owned)),
    )


def subpage(page: Page, positions: np.ndarray) -> Page:
    """The rows of ``page`` at ``positions``, in the same form."""
    if page.table is not None:
        return Page(header=page.header, table=page.table.take(positions), text_only=True)
    if page.header is not None and page.values is not None:
        values = page.values
        return Page(header=page.header, values=[values[i] for i in positions.tolist()], text_only=True)
    rows = page.rows
    return Page([rows[i] for i in positions.tolist()], text_only=True)


def owned_rows(rows: TextRows, partition: Partition | None) -> np.ndarray | None:
    """Which rows ``partition`` sends (None: all); a row with no key is the first partition's."""
    if partition is None:
        return None
    texts = rows.texts(np.arange(len(rows.keys)))
    return np.fromiter((partition.owns(texts[i]) for i in range(len(texts))), bool, len(texts))
