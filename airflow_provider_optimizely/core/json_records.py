"""JSON records written by Arrow a column at a time: request bodies with no Python object per record.

``records_of(table, names)`` turns a page of text columns (a ``core.page`` Arrow page) into one JSON
object a row, ``{"name":"value",...}``, in a handful of C++ passes; a column holding a character JSON
escapes (``"``, ``\\``, a control character) is escaped first, in C++ too.
``EncodedRecords`` holds them as slices of Arrow's buffers: it can be cut into batches and joined
without copying, and goes into a request body as one ``msgspec.Raw`` array (``as_msgspec_raw``, which
``core.json_body.encode_json`` calls). Indexing or iterating gives one ``msgspec.Raw`` a record, for the rare
batch that must be resent without some of its records.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, overload

import msgspec

if TYPE_CHECKING:
    import pyarrow as pa

# Each record is written with a trailing comma, so that the records of a batch, laid end to end in
# Arrow's buffer, are already the inside of a JSON array but for the last comma.
_SEPARATOR = b","


def records_of(table: pa.Table, names: Sequence[str]) -> EncodedRecords:
    """One JSON object a row of ``table``: its columns, in order, under ``names``, every value a string.

    Arrow allocates from ``malloc``, as in ``core.csv_records``.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if len(names) != table.num_columns or not names:
        raise ValueError("records_of needs one name a column")
    pieces: list[object] = []
    for index, (name, column) in enumerate(zip(names, table.columns, strict=True)):
        opening = "{" if index == 0 else '",'
        escapes = (table.schema.field(index).metadata or {}).get(_JSON_ESCAPES)
        column = _json_escaped(column) if escapes is None else _escaped(column, escapes)
        pieces += [pa.scalar(f'{opening}{msgspec.json.encode(name).decode()}:"'), column]
    pieces.append(pa.scalar('"},'))
    joined = pc.binary_join_element_wise(*pieces, "", memory_pool=pa.system_memory_pool())
    if isinstance(joined, pa.ChunkedArray):
        chunks = [chunk for chunk in joined.chunks if len(chunk)]
    else:
        chunks = [joined] if len(joined) else []
    return EncodedRecords(chunks)


# How JSON writes each character it must escape (RFC 8259 §7), backslash first so none is escaped twice.
_QUOTE_ESCAPES = (("\\", "\\\\"), ('"', '\\"'))
# The field metadata ``core.csv_records`` sets on the columns of a page Arrow read (see JSON_ESCAPES there).
_JSON_ESCAPES = b"json_escapes"
_CONTROL_ESCAPES = [
    (chr(code), {8: "\\b", 9: "\\t", 10: "\\n", 12: "\\f", 13: "\\r"}.get(code, f"\\u{code:04x}"))
    for code in range(32)
]


def _escaped(column: pa.ChunkedArray | pa.Array, chars: bytes) -> pa.ChunkedArray | pa.Array:
    """``column`` with the characters named (by the reader, which knows them) escaped for JSON."""
    import pyarrow.compute as pc

    for char, escaped in (*_QUOTE_ESCAPES, *_CONTROL_ESCAPES):
        if char.encode() in chars:
            column = pc.replace_substring(column, char, escaped)
    return column


def _json_escaped(column: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """The text of ``column`` as it goes between the quotes of a JSON string: a pass to find out whether
    anything needs escaping, and one per kind of character that does."""
    import pyarrow.compute as pc

    def holds(pattern: str) -> bool:
        return bool(pc.any(pc.match_substring_regex(column, pattern)).as_py())

    if not holds(r'["\\\x00-\x1f]'):
        return column
    for char, escaped in _QUOTE_ESCAPES:
        column = pc.replace_substring(column, char, escaped)
    if holds(r"[\x00-\x1f]"):
        for char, escaped in _CONTROL_ESCAPES:
            if holds(f"\\x{ord(char):02x}"):
                column = pc.replace_substring(column, char, escaped)
    return column


class EncodedRecords(Sequence[msgspec.Raw]):
    """A batch's records, already JSON, as slices of Arrow string arrays (each item ends with ``,``)."""

    __slots__ = ("_arrays", "_length")

    def __init__(self, arrays: Sequence[pa.Array]) -> None:
        self._arrays = list(arrays)
        self._length = sum(len(array) for array in self._arrays)

    def __len__(self) -> int:
        return self._length

    @overload
    def __getitem__(self, index: int) -> msgspec.Raw: ...

    @overload
    def __getitem__(self, index: slice) -> EncodedRecords: ...

    def __getitem__(self, index: int | slice) -> msgspec.Raw | EncodedRecords:
        if isinstance(index, slice):
            start, stop, step = index.indices(self._length)
            if step != 1:
                raise ValueError("EncodedRecords slices take no step")
            return self._slice(start, max(start, stop))
        if index < 0:
            index += self._length
        if not 0 <= index < self._length:
            raise IndexError("record index out of range")
        for array in self._arrays:
            if index < len(array):
                return msgspec.Raw(array[index].as_buffer().to_pybytes()[: -len(_SEPARATOR)])
            index -= len(array)
        raise AssertionError("unreachable")

    def __iter__(self) -> Iterator[msgspec.Raw]:
        return (self[index] for index in range(self._length))

    def __add__(self, other: EncodedRecords) -> EncodedRecords:
        if not isinstance(other, EncodedRecords):
            return NotImplemented
        return EncodedRecords([*self._arrays, *other._arrays])

    def __repr__(self) -> str:
        return f"EncodedRecords({self._length} records)"

    def as_msgspec_raw(self) -> msgspec.Raw:
        """The records as one JSON array, copied once from Arrow's buffers."""
        body = bytearray(b"[")
        for array in self._arrays:
            offsets = memoryview(array.buffers()[1]).cast("i")
            start, stop = offsets[array.offset], offsets[array.offset + len(array)]
            body += memoryview(array.buffers()[2])[start:stop]
        if self._length:
            body[-1:] = b"]"  # the last record's trailing comma
        else:
            body += b"]"
        return msgspec.Raw(body)

    def payloads(self) -> list[bytes]:
        """Each record's JSON (without the separator), as ``msgspec.Raw`` of it would hold."""
        import pyarrow as pa
        import pyarrow.compute as pc

        records: list[bytes] = []
        for array in self._arrays:
            records += pc.binary_slice(array.cast(pa.binary()), 0, -len(_SEPARATOR)).to_pylist()
        return records

    def _slice(self, start: int, stop: int) -> EncodedRecords:
        arrays = []
        for array in self._arrays:
            size = len(array)
            if start < size and stop > 0:
                arrays.append(array.slice(max(start, 0), min(stop, size) - max(start, 0)))
            start, stop = start - size, stop - size
        return EncodedRecords(arrays)
