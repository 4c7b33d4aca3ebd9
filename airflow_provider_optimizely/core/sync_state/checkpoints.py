"""Checkpoints: what one run had acknowledged, durable batch by batch, so that a retry resumes.

A run (a ``run_key``) has a folder ``runs/<run key>/``. Each attempt of it writes:

- ``attempt-<started>-<token>.json``: the run key, the signature, when it started, and the caller's
  ``metadata`` (an Optimove ``batch_uuid``...), rewritten when the metadata changes;
- ``acks-<started>-<token>-<sequence>-<entries>-<key bytes>.arrow``: one Arrow IPC file a flush, the
  acknowledged entries in order (``key_hash``, ``fingerprint``, ``outcome``, ``key``; see
  ``generation``). The sizes in the name let a commit allocate its arrays once, before reading.
- the marks of items sent with no answer yet (``DISPATCHED``), one write before each request: on a
  local store appended to ``dispatched-<started>-<token>.u64`` (their key hashes, 8 bytes each, little
  endian), because a request of one DCP or Profile Store profile would otherwise cost a file of its own,
  which costs more CPU than the request; on an object store (no appends) a flush of their own.

Names sort in time: attempts by their start, a flush after the ones before it. A kill -9 loses only the
entries not yet flushed; nothing half-written is ever read (``Storage.write_atomic``). A mark appended
is one ``write`` call, whole when the process dies at any moment; only a crash of the host itself can
lose the last marks (they are not synced to disk): the retry then sends those items again without
counting them resent.
"""

from __future__ import annotations

import copy
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from airflow_provider_optimizely.core.sync_state.generation import DISPATCHED, NUMERIC, SCHEMA, Answers
from airflow_provider_optimizely.core.sync_state.storage import Storage, encode_json, new_token, safe_name

_STAMP = "%Y%m%dT%H%M%S%fZ"
_ATTEMPT = re.compile(r"^attempt-(\d{8}T\d{12}Z-[0-9a-f]{12})\.json$")
_ACKS = re.compile(r"^acks-(\d{8}T\d{12}Z-[0-9a-f]{12})-(\d{8})-(\d+)-(\d+)\.arrow$")
_DISPATCH_LOG = re.compile(r"^dispatched-(\d{8}T\d{12}Z-[0-9a-f]{12})\.u64$")
_HASH = np.dtype("<u8")


@dataclass
class Attempt:
    """One attempt of a run, as its attempt file says."""

    name: str
    run_key: str
    signature: dict[str, Any]
    started_at: str
    metadata: dict[str, Any] = field(default_factory=dict)


class RunFolder:
    """The checkpoint files of one run key under a slice (or an interval) folder."""

    def __init__(self, storage: Storage, parent: str, run_key: str) -> None:
        self.storage = storage
        self.path = f"{parent}/runs/{safe_name(run_key)}"

    @classmethod
    def named(cls, storage: Storage, parent: str, name: str) -> RunFolder:
        """The folder ``runs/<name>`` (a name as listed; the run key is in its attempt files)."""
        folder = cls.__new__(cls)
        folder.storage = storage
        folder.path = f"{parent}/runs/{name}"
        return folder

    def attempts(self) -> list[Attempt]:
        found = []
        for name in self.storage.list_names(self.path):
            if _ATTEMPT.match(name) and (value := self.storage.read_json(f"{self.path}/{name}")):
                found.append(Attempt(**value))
        return found

    def ack_files(self) -> list[str]:
        return [name for name in self.storage.list_names(self.path) if _ACKS.match(name)]

    def dispatch_logs(self) -> list[str]:
        return [name for name in self.storage.list_names(self.path) if _DISPATCH_LOG.match(name)]

    def all_files(self) -> list[str]:
        return [
            name
            for name in self.storage.list_names(self.path)
            if _ACKS.match(name) or _ATTEMPT.match(name) or _DISPATCH_LOG.match(name)
        ]

    def read_acks(self, names: list[str]) -> Iterator[pa.Table]:
        """The entries of each of ``names``, in order, a table a file."""
        paths = [f"{self.path}/{name}" for name in names]
        for _, data in self.storage.read_many(paths):
            yield pa.ipc.open_file(pa.BufferReader(data)).read_all()

    def read_answers(self, names: list[str]) -> Answers:
        """The answered entries of ``names`` (see ``Answers``), sized from the names before reading."""
        sizes = [_ACKS.match(name) for name in names]
        rows = sum(int(match.group(3)) for match in sizes if match)
        key_bytes = sum(int(match.group(4)) for match in sizes if match)
        return Answers.of(self.read_acks(names), rows, key_bytes)

    def read_numbers(self, names: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``key_hash``, ``fingerprint`` and ``outcome`` of every entry of ``names``, in order (what a
        resumed attempt needs: 17 bytes an entry, the keys left out)."""
        columns: tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]] = ([], [], [])
        for table in self.read_acks(names):
            for found, name in zip(columns, NUMERIC, strict=True):
                found.append(table.column(name).to_numpy().copy())
        hashes, fingerprints, outcomes = (
            np.concatenate(found) if found else np.empty(0, dtype)
            for found, dtype in zip(columns, (np.uint64, np.uint64, np.uint8), strict=True)
        )
        return hashes, fingerprints, outcomes

    def read_checkpoints(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``read_numbers`` of every checkpoint of the run: the ack files' entries, then the marks of the
        dispatch logs as ``DISPATCHED`` entries (whose order among the others nothing depends on)."""
        hashes, fingerprints, outcomes = self.read_numbers(self.ack_files())
        paths = [f"{self.path}/{name}" for name in self.dispatch_logs()]
        # A log cut inside a mark (the host crashed during its write) keeps its whole marks only.
        marks = [np.frombuffer(data, _HASH, len(data) // 8) for _, data in self.storage.read_many(paths)]
        if not marks:
            return hashes, fingerprints, outcomes
        dispatched = np.concatenate(marks).astype(np.uint64)
        return (
            np.concatenate([hashes, dispatched]),
            np.concatenate([fingerprints, np.zeros(len(dispatched), np.uint64)]),
            np.concatenate([outcomes, np.full(len(dispatched), DISPATCHED, np.uint8)]),
        )

    def remove(self, names: list[str]) -> None:
        self.storage.remove_files([f"{self.path}/{name}" for name in names])


def attempt_name() -> str:
    stamp = datetime.now(timezone.utc).strftime(_STAMP)
    return f"{stamp}-{new_token()}"


def started(attempt_name: str) -> datetime:
    return datetime.strptime(attempt_name.split("-", 1)[0], _STAMP).replace(tzinfo=timezone.utc)


class Checkpointer:
    """Buffers one attempt's acknowledged entries and writes them out as the policy says.

    A flush happens when ``every_items`` entries wait (1: every call), or when the oldest waiting entry
    is ``every_seconds`` old (looked at on each call), and on ``flush()``. Thread-safe: senders may
    acknowledge from their own threads.
    """

    def __init__(
        self,
        folder: RunFolder,
        attempt: Attempt,
        *,
        every_items: int = 1,
        every_seconds: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if every_items < 1:
            raise ValueError("checkpoint_every_items must be at least 1")
        self.folder = folder
        self.attempt = attempt
        self.every_items = every_items
        self.every_seconds = every_seconds
        self._clock = clock
        self._lock = threading.Lock()
        # Entries waiting to be written, as the callers gave their columns: one table is made a flush,
        # not one a call (a call a request of one profile).
        self._waiting: list[tuple[Any, Any, Any, Any]] = []
        self._waiting_rows = 0
        self._oldest = 0.0
        self._sequence = 0
        # The metadata as last written (the only part of an attempt that changes): compared, not the
        # whole attempt encoded, before each write, as there is one a request.
        self._metadata_written: dict[str, Any] | None = None
        self.written: list[str] = []
        self.rows_written = 0

    def add(self, hashes: Any, keys: Any, fingerprints: Any, outcomes: Any) -> None:
        """Entries to write (parallel columns, as ``entries`` takes them), when the policy says."""
        with self._lock:
            self._wait(hashes, keys, fingerprints, outcomes)
            aged = self.every_seconds is not None and self._clock() - self._oldest >= self.every_seconds
            if self._waiting_rows >= self.every_items or aged:
                self._flush()

    def flush(self) -> None:
        with self._lock:
            self._flush()

    def dispatch(self, hashes: np.ndarray) -> None:
        """Record, before their request goes out, that these items are sent with no answer yet:
        durable when this returns (see the module's docstring for what a local store keeps)."""
        with self._lock:
            if not self.folder.storage.appends:
                count = len(hashes)
                self._wait(
                    hashes, [None] * count, np.zeros(count, np.uint64), np.full(count, DISPATCHED, np.uint8)
                )
                self._flush()
                return
            self._write_attempt()
            name = f"dispatched-{self.attempt.name}.u64"
            self.folder.storage.append(f"{self.folder.path}/{name}", hashes.astype(_HASH).tobytes())

    def _wait(self, hashes: Any, keys: Any, fingerprints: Any, outcomes: Any) -> None:
        if not self._waiting:
            self._oldest = self._clock()
        self._waiting.append((hashes, keys, fingerprints, outcomes))
        self._waiting_rows += len(hashes)

    @property
    def waiting(self) -> int:
        return self._waiting_rows

    def _write_attempt(self) -> None:
        if self._metadata_written is not None and self.attempt.metadata == self._metadata_written:
            return
        attempt = encode_json(self.attempt.__dict__)
        self.folder.storage.write_atomic(f"{self.folder.path}/attempt-{self.attempt.name}.json", attempt)
        self._metadata_written = copy.deepcopy(self.attempt.metadata)

    def _flush(self) -> None:
        self._write_attempt()
        if not self._waiting:
            return
        table = _waiting_table(self._waiting)
        sink = pa.BufferOutputStream()
        with pa.ipc.new_file(sink, SCHEMA) as writer:
            writer.write_table(table)
        key_bytes = int(pc.sum(pc.binary_length(table.column("key"))).as_py() or 0)
        name = f"acks-{self.attempt.name}-{self._sequence:08d}-{table.num_rows}-{key_bytes}.arrow"
        self.folder.storage.write_atomic(f"{self.folder.path}/{name}", sink.getvalue().to_pybytes())
        self._sequence += 1
        self.written.append(name)
        self.rows_written += table.num_rows
        self._waiting, self._waiting_rows = [], 0


def entries(hashes: Any, keys: Any, fingerprints: Any, outcomes: Any) -> pa.Table:
    """A checkpoint table from parallel columns (numpy arrays, lists, Arrow arrays)."""
    return pa.table(
        {
            "key_hash": pa.array(hashes, pa.uint64()),
            "fingerprint": pa.array(fingerprints, pa.uint64()),
            "outcome": pa.array(outcomes, pa.uint8()),
            "key": _key_array(keys),
        },
        schema=SCHEMA,
    )


def _waiting_table(waiting: list[tuple[Any, Any, Any, Any]]) -> pa.Table:
    """One checkpoint table of the columns of several calls: each column joined, then made once."""
    if len(waiting) == 1 or not all(isinstance(columns[1], list) for columns in waiting):
        return pa.concat_tables([entries(*columns) for columns in waiting])
    return entries(
        np.concatenate([np.asarray(columns[0], np.uint64) for columns in waiting]),
        [key for columns in waiting for key in columns[1]],
        np.concatenate([np.asarray(columns[2], np.uint64) for columns in waiting]),
        np.concatenate([np.asarray(columns[3], np.uint8) for columns in waiting]),
    )


def _key_array(keys: Any) -> pa.Array:
    if isinstance(keys, pa.Array | pa.ChunkedArray):
        return keys.cast(pa.string())
    try:
        return pa.array(keys, pa.string())
    except (UnicodeEncodeError, pa.ArrowInvalid):
        # A key that is not valid Unicode (a lone surrogate): kept with the surrogate escaped.
        return pa.array([None if k is None else k.encode("utf-8", "backslashreplace").decode() for k in keys])
