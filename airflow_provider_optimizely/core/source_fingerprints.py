"""Change detection on a page's rows as the source holds them, before any of them is prepared.

An incremental sync fingerprints each row of a CSV (every value a ``str``) or of a SQL result (values
typed by the database) by the values of the columns its writer reads: a CSV row's text joined by NUL (no
value that reaches a writer holds one: the CSV reader refuses it), a SQL row's values as MessagePack
(which tells ``1`` from ``"1"`` and ``None``), seeded by those columns' names and, for SQL, their types
(a ``numeric`` and a ``text`` column can hold values that encode alike). A JSON Lines row is
fingerprinted by its line: all of it, so a change to a field the writer leaves out sends the row too.
What a writer makes of a row depends only on those values and on what the sync's signature holds (the
mapping, the target and its attributes, the provider's version), so a row whose values and signature are
unchanged would make the very payload that the API already acknowledged: it is classified unchanged and
never prepared, validated or encoded. Only the rows to send are prepared, a few a page on a change run.

A row this step can't key (a row the source could not read, an empty or odd key) goes to the writer,
which rejects it, naming it. A CSV row keeps its fingerprint whichever way the reader read its block
(Arrow, or the ``csv`` module), a SQL row whether or not its page held a row to refuse. Rows given as a
list are fingerprinted by the payload their writer makes (``core.incremental``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from operator import itemgetter
from typing import TYPE_CHECKING, Any

import msgspec
import numpy as np

from airflow_provider_optimizely.core.batch import Batch
from airflow_provider_optimizely.core.mapping import key_of, keys_of_column
from airflow_provider_optimizely.core.page import Page, Unreadable, row_of_line
from airflow_provider_optimizely.core.partitions import Partition
from airflow_provider_optimizely.core.report import Rejection
from airflow_provider_optimizely.core.sync import RowRejected, columns_of
from airflow_provider_optimizely.core.sync_state import KeyRun
from airflow_provider_optimizely.core.sync_state.hashing import (
    fingerprints,
    key_hash,
    key_hashes,
    utf8_key_hashes,
)
from airflow_provider_optimizely.core.values import exact_number

if TYPE_CHECKING:
    import pyarrow as pa

SEPARATOR = "\x00"


def fingerprinted_columns(
    header: Sequence[str], key_column: str, mapping: Mapping[str, str] | None
) -> list[str]:
    """The columns whose values make a row's fingerprint: those the writer reads, in the header's order."""
    if mapping is None:
        return list(header)
    return [name for name in header if name in mapping or name == key_column]


def fingerprinted(page: Page) -> bool:
    """Whether ``page``'s rows are fingerprinted as the source holds them (a CSV's, a SQL result's, a
    JSON Lines file's)."""
    return page.text_only or page.types is not None or page.lines is not None


@dataclass
class SourceRows:
    """A page's rows as change detection sees them: each row's key as the page holds it (the UTF-8
    bytes of an Arrow page's, the text of another's; None: the writer must look at the row) and
    fingerprint (valid where the key is not None)."""

    keys: list[Any]
    all_keyed: bool
    prints: np.ndarray

    @classmethod
    def of(cls, page: Page, columns: Sequence[str], key_column: str, *, all_sent: bool = False) -> SourceRows:
        """``all_sent``: every row will be sent (a full run), so a JSON Lines line is read whole at once
        rather than its key first."""
        names = SEPARATOR.join(columns)
        keys: _Keys
        if page.lines is not None:
            seed = key_hash("json lines")
            keys, prints = _line_rows(page, key_column, whole=all_sent)
        elif page.text_only:
            seed = key_hash(names)
            if page.table is not None:
                keys, prints = _table_rows(page, columns, key_column)
            elif page.header is not None and page.values is not None:
                keys, prints = _text_value_rows(page.header, page.values, columns, key_column)
            else:
                keys, prints = _text_dict_rows(page.rows, columns, key_column)
        else:
            assert page.types is not None, "a page of typed values says its columns' types"
            header = columns_of(page)
            types = [repr(page.types[header.index(name)]) for name in columns]
            seed = key_hash(f"{names}{SEPARATOR}{SEPARATOR.join(types)}")
            if page.values is not None:
                keys, prints = _typed_value_rows(header, page.values, columns, key_column)
            else:
                keys, prints = _typed_dict_rows(page.rows, columns, key_column)
        return cls(*keys, prints ^ np.uint64(seed))

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


def _text_value_rows(
    header: list[str], values: list[tuple[str, ...]], columns: Sequence[str], key_column: str
) -> tuple[_Keys, np.ndarray]:
    keys = _usable(list(map(itemgetter(header.index(key_column)), values)))
    texts: Iterable[str] = map(SEPARATOR.join, _picked(header, values, columns))
    return keys, fingerprints([_utf8(text) for text in texts])


def _text_dict_rows(rows: list[Any], columns: Sequence[str], key_column: str) -> tuple[_Keys, np.ndarray]:
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


def _encode_other(value: Any) -> str:
    """A value MessagePack has no form for (a driver's own type), by its type and text: the writer
    rejects or converts it, and the same value gives the same text."""
    return f"{type(value).__qualname__}:{value!r}"


_ENCODE = msgspec.msgpack.Encoder(enc_hook=_encode_other).encode


def _typed_keys(values: list[Any]) -> _Keys:
    """``key_of`` of each value, at once when all are plain (``keys_of_column``); None where it refuses."""
    plain = keys_of_column(values)
    if plain is not None:
        return plain, True
    keys = [_key_or_none(value) for value in values]
    return keys, None not in keys


def _key_or_none(value: Any) -> str | None:
    try:
        return key_of({"key": value}, "key")
    except RowRejected:
        return None


def _typed_value_rows(
    header: list[str], values: list[tuple[Any, ...]], columns: Sequence[str], key_column: str
) -> tuple[_Keys, np.ndarray]:
    keys = _typed_keys(list(map(itemgetter(header.index(key_column)), values)))
    return keys, fingerprints(list(map(_ENCODE, _picked(header, values, columns))))


def _typed_dict_rows(rows: list[Any], columns: Sequence[str], key_column: str) -> tuple[_Keys, np.ndarray]:
    keys: list[str | None] = []
    encoded: list[bytes] = []
    for row in rows:
        if type(row) is Unreadable:
            keys.append(None)
            encoded.append(b"")
            continue
        keys.append(_key_or_none(row.get(key_column)))
        encoded.append(_ENCODE(tuple(row[name] for name in columns)))
    return (keys, None not in keys), fingerprints(encoded)


def _line_rows(page: Page, key_column: str, *, whole: bool) -> tuple[_Keys, np.ndarray]:
    """JSON Lines: each row's key, and the fingerprint of its line as the file holds it (whatever the
    line ends with): every field of it, the writer's or not, and each value's JSON type. Unless ``whole``
    or read whole already, a line has its key read alone (``LineKeys``)."""
    lines = page.lines or []
    if whole or page.rows_read:
        values = [row.get(key_column) if type(row) is dict else None for row in page.rows]
    else:
        values = list(map(_line_keys(key_column).read, lines))
    return _typed_keys(values), fingerprints([line.rstrip(b"\r\n") for line in lines])


class LineKeys:
    """Reads the key of a JSON Lines line without reading the rest into Python objects, since change
    detection reads every line and the writer only those it sends: the ``key_column`` of the row that
    ``row_of_line`` gives, or None where that is no dict. (A line whose other fields hold bytes that are
    not UTF-8 still has its key read: it is sent as new or changed, never having been acknowledged, and
    the writer refuses it, naming it.)"""

    def __init__(self, key_column: str) -> None:
        self.key_column = key_column
        fields = msgspec.defstruct("LineKey", [("key", Any, None)], rename={"key": key_column})
        self._decode = msgspec.json.Decoder(fields, float_hook=exact_number).decode

    def read(self, line: bytes) -> Any:
        try:
            return self._decode(line).key  # type: ignore[attr-defined]
        except (msgspec.DecodeError, msgspec.ValidationError):
            # Not JSON, not an object, or what only the whole line's reading decides (a lone surrogate
            # escape, which the standard library takes): as the writer will read it.
            row = row_of_line(line)
            return row.get(self.key_column) if type(row) is dict else None


@lru_cache(maxsize=8)
def _line_keys(key_column: str) -> LineKeys:
    return LineKeys(key_column)


def _picked(header: list[str], values: list[tuple[Any, ...]], columns: Sequence[str]) -> Iterable[Any]:
    """Each row's values of ``columns``, as a tuple."""
    if list(columns) == header:
        return values
    pick = itemgetter(*(header.index(name) for name in columns))
    return map(pick, values) if len(columns) > 1 else ((pick(fields),) for fields in values)


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
            raise AssertionError("a writer keyed a row otherwise than the source: change detection can't")
        rows = [numbers[i] for i in at.tolist()]
        return Batch(rows, ready.keys, ready.bodies, key_hashes(ready.keys), self.prints[at]), rejected


def preselect(
    run: KeyRun, rows: SourceRows, page: Page, partition: Partition | None, *, dry_run: bool
) -> Preselection:
    """Classify the keyed rows of ``page`` (``partition``'s) by their fingerprints; keep for the writer
    those to send (none in a dry run) and those it must look at."""
    keyed = rows.keyed()
    mine = owned_rows(rows, partition)
    tracked = np.flatnonzero(keyed & mine)
    untracked = np.flatnonzero(~keyed & mine)
    classes = run.classify(rows.hashes(tracked), rows.prints[tracked], keys=rows.texts(tracked))
    wanted = tracked[:0] if dry_run else tracked[classes.send]
    positions = np.sort(np.concatenate([wanted, untracked])) if len(untracked) else wanted
    return Preselection(
        page=subpage(page, positions),
        positions=positions,
        keys=list(rows.texts(positions)),
        prints=rows.prints[positions],
        rows_read=int(np.count_nonzero(mine)),
    )


def subpage(page: Page, positions: np.ndarray) -> Page:
    """The rows of ``page`` at ``positions``, in the same form."""
    text_only, types, at = page.text_only, page.types, positions.tolist()
    if page.table is not None:
        return Page(header=page.header, table=page.table.take(positions), text_only=text_only, types=types)
    if page.header is not None and page.values is not None:
        values = [page.values[i] for i in at]
        return Page(header=page.header, values=values, text_only=text_only, types=types)
    lines = page.lines
    chosen = None if lines is None else [lines[i] for i in at]
    if chosen is not None and not page.rows_read:
        return Page(lines=chosen, text_only=text_only, types=types)  # read whole when the writer asks
    rows = page.rows
    return Page([rows[i] for i in at], text_only=text_only, types=types, lines=chosen)


def owned_rows(rows: SourceRows, partition: Partition | None) -> np.ndarray:
    """Which rows ``partition`` sends (all without one); a row with no key is the first partition's."""
    if partition is None:
        return np.ones(len(rows.keys), bool)
    texts = rows.texts(np.arange(len(rows.keys)))
    return np.fromiter((partition.owns(texts[i]) for i in range(len(texts))), bool, len(texts))
