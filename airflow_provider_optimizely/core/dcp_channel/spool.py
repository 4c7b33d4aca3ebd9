"""The change set of a DCP sync on disk, never in memory: what the channel choice waits for.

While the source is read, every item to send (after change detection) is appended to two files in a
private folder:

- ``changes.arrow``: an Arrow IPC stream of the prepared items (source row, key, the JSON payload the
  profile API would receive, key hash, fingerprint, and the line where the item's record ends in the
  CSV, 0 when it is not in it), read back a record batch at a time for the profile API or to record
  Upload History's answer;
- ``changes.csv``: the bulk-upload file, written by the one upload encoder
  (``core.csv_check.output``), each value as the cell DCP reads back as the same value
  (``core.dcp_datatypes.cell_text``).

A file has one header for all its rows, and an empty cell is not "no value" in it (it writes ``""`` to a
string, or fails the file for another datatype: docs/api-contract.md §4.4, §3a). So only an item that
writes every attribute of the file's header goes in the file; one that leaves an attribute out (an
empty cell, a JSON Lines row without the field) goes through the profile API, which writes only what
it is given, as an incremental sync always did.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pyarrow as pa

from airflow_provider_optimizely.core.csv_check.output import UploadCsvWriter, lines_of_record
from airflow_provider_optimizely.core.dcp_datatypes import cell_text
from airflow_provider_optimizely.core.json_body import encode_json
from airflow_provider_optimizely.core.sync import Batch

#: The key column of a bulk-upload file (any case, docs/api-contract.md §4.4).
CUSTOMER_ID = "customerId"
_SCHEMA = pa.schema(
    [
        ("row", pa.int64()),
        ("key", pa.string()),
        ("payload", pa.binary()),
        ("key_hash", pa.uint64()),
        ("fingerprint", pa.uint64()),
        ("line", pa.int64()),
    ]
)


class ChangeSpool:
    """Appends a sync's change set to ``folder`` (see the module doc); ``close()`` before reading back."""

    def __init__(self, folder: Path) -> None:
        self.items_path = folder / "changes.arrow"
        self.csv_path = folder / "changes.csv"
        self._items_sink = pa.OSFile(str(self.items_path), "wb")
        self._items = pa.ipc.new_stream(self._items_sink, _SCHEMA)
        self._csv_file = self.csv_path.open("wb")
        self._csv = UploadCsvWriter(self._csv_file)
        self.columns: list[str] | None = None
        self.items = 0
        self.in_file = 0
        self._line = 1  # the header's
        self.content_hash = ""
        self.file_bytes = 0

    def set_columns(self, attributes: Sequence[str]) -> None:
        """The attributes of the file's header (those the source's columns write), before any item. An
        attribute named ``customerId`` (any case) would be the key column twice: then no row fits."""
        self.columns = list(dict.fromkeys(attributes))
        if any(name.lower() == CUSTOMER_ID.lower() for name in self.columns):
            self.columns = []
        self._csv.writerow([CUSTOMER_ID, *self.columns])

    def add(self, batch: Batch, bodies: Sequence[Mapping[str, Any]]) -> None:
        """Items to send (``batch``: payloads encoded, key hashes and fingerprints when kept) with the
        attribute values of each (``bodies``, as the writer prepared them)."""
        if not len(batch):
            return
        lines = np.zeros(len(batch), np.int64)
        columns = self.columns
        if columns:
            wanted = len(columns)
            for index, (key, body) in enumerate(zip(batch.keys, bodies, strict=True)):
                if len(body) == wanted and all(name in body for name in columns):
                    fields = [key, *(cell_text(body[name]) for name in columns)]
                    self._csv.writerow(fields)
                    self._line += lines_of_record(fields)
                    lines[index] = self._line
        in_file = int(np.count_nonzero(lines))
        self.in_file += in_file
        self.items += len(batch)
        zeros = np.zeros(len(batch), np.uint64)
        self._items.write_batch(
            pa.record_batch(
                [
                    pa.array(batch.rows, pa.int64()),
                    pa.array(batch.keys, pa.string()),
                    pa.array([_payload(body) for body in batch.bodies], pa.binary()),
                    pa.array(zeros if batch.hashes is None else batch.hashes, pa.uint64()),
                    pa.array(zeros if batch.prints is None else batch.prints, pa.uint64()),
                    pa.array(lines, pa.int64()),
                ],
                schema=_SCHEMA,
            )
        )

    def close(self) -> None:
        """Finish both files (the CSV's content hash and size are known from here on)."""
        if self._items_sink.closed:
            return
        self._items.close()
        self._items_sink.close()
        self._csv.close()
        self._csv_file.close()
        self.content_hash, self.file_bytes = self._csv.content_hash, self._csv.bytes

    def read(self, *, in_file: bool | None = None) -> Iterator[tuple[Batch, np.ndarray]]:
        """The items back, a record batch at a time, as ``(batch of encoded bodies, their lines)``: those
        of the file (``in_file=True``), those not in it (``False``), or all (``None``)."""
        with pa.OSFile(str(self.items_path), "rb") as source, pa.ipc.open_stream(source) as reader:
            for record in reader:
                lines = record.column("line").to_numpy()
                if in_file is not None:
                    mask = lines > 0 if in_file else lines == 0
                    if not mask.any():
                        continue
                    record, lines = record.filter(pa.array(mask)), lines[mask]
                yield _batch_of(record), lines


def _payload(body: Any) -> bytes:
    if isinstance(body, msgspec.Raw):
        return bytes(memoryview(body))
    return encode_json(body)


def _batch_of(record: pa.RecordBatch) -> Batch:
    return Batch(
        record.column("row").to_pylist(),
        record.column("key").to_pylist(),
        [msgspec.Raw(payload) for payload in record.column("payload").to_pylist()],
        record.column("key_hash").to_numpy().astype(np.uint64),
        record.column("fingerprint").to_numpy().astype(np.uint64),
    )
