"""The state store's files, on any fsspec filesystem: names, atomic writes, exclusive creation.

Two writes carry the guarantees of the whole package:

- ``write_atomic``: a reader sees the whole file or none of it. Locally: a temporary file in the same
  folder, then ``os.replace``. On an object store a single PUT is atomic already.
- ``create_exclusive``: write a file only if no file of that name exists; False when one did. Locally:
  a temporary file, then ``os.link`` (atomic, and fails if the name is taken). On S3: a conditional
  PUT (``If-None-Match: *``, which AWS S3, MinIO and moto honour), through fsspec's ``mode="create"``.
  A filesystem whose ``pipe_file`` has no atomic create falls back to fsspec's check-then-write, which
  leaves a window of one request between the check and the write.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import tempfile
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

import xxhash

log = logging.getLogger(__name__)
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_NAME = 80
# How many files are read or written in one concurrent call (s3fs sends them at once).
IO_GROUP = 8


def safe_name(text: str) -> str:
    """A file or folder name for ``text`` that every object store and filesystem takes.

    Readable where it can be (``scheduled__2026-01-01T00_00_00_00_00``); when anything was replaced or
    cut, a short hash of the exact text follows, so that two texts never share a name.
    """
    cleaned = _UNSAFE.sub("_", text).strip(".")[:_MAX_NAME]
    if cleaned == text and cleaned:
        return cleaned
    return f"{cleaned}~{xxhash.xxh3_64_hexdigest(text.encode('utf-8', 'surrogatepass'))[:12]}"


def new_token() -> str:
    return uuid.uuid4().hex[:12]


class Storage:
    """An fsspec filesystem and the root folder of the state under it."""

    def __init__(self, fs: Any, root: str) -> None:
        self.fs = fs
        # The filesystem's own form of the path ("bucket/prefix" for s3://bucket/prefix): batch reads
        # answer under that form.
        self.root = str(fs._strip_protocol(root)).rstrip("/") or "/"
        self.local = "file" in _protocols(fs)

    def path(self, *parts: str) -> str:
        return "/".join([self.root, *parts])

    # -- reading -------------------------------------------------------------------------------------

    def list_names(self, folder: str) -> list[str]:
        """The names (not paths) of the files and folders directly under ``folder``; [] if it is absent.

        The listing is always asked afresh: s3fs caches listings, and a stale one would hide another
        worker's commit. Names that start with a dot (a temporary file being written) are left out.
        """
        self.fs.invalidate_cache(folder)
        try:
            entries = self.fs.ls(folder, detail=False)
        except FileNotFoundError:
            return []
        names = (entry.rstrip("/").rsplit("/", 1)[-1] for entry in entries)
        return sorted(name for name in names if name and not name.startswith("."))

    def read_bytes(self, path: str) -> bytes:
        data: bytes = self.fs.cat_file(path)
        return data

    def read_many(self, paths: list[str]) -> Iterable[tuple[str, bytes]]:
        """The bytes of ``paths``, in order, fetched a few at a time (concurrently on an object store)."""
        for start in range(0, len(paths), IO_GROUP):
            group = paths[start : start + IO_GROUP]
            if self.local or len(group) == 1:
                yield from ((path, self.read_bytes(path)) for path in group)
                continue
            found = self.fs.cat(group, on_error="raise")
            yield from ((path, found[path]) for path in group)

    def read_json(self, path: str) -> dict[str, Any] | None:
        try:
            data = self.read_bytes(path)
        except FileNotFoundError:
            return None
        value: dict[str, Any] = json.loads(data)
        return value

    # -- writing -------------------------------------------------------------------------------------

    def write_atomic(self, path: str, data: bytes) -> None:
        if not self.local:
            self.fs.pipe_file(path, data)
            return
        folder, name = os.path.split(self._local_path(path))
        os.makedirs(folder, exist_ok=True)
        temporary = self._local_temporary(folder, name, data)
        os.replace(temporary, os.path.join(folder, name))

    @property
    def appends(self) -> bool:
        """Whether ``append`` works here: a local filesystem's files take appends, an object's don't."""
        return self.local

    def append(self, path: str, data: bytes) -> None:
        """Add ``data`` at the end of a local file (made if absent) in one ``write``: whole when the
        process dies at any moment, not synced to disk. Object stores have no appends."""
        if not self.appends:
            raise NotImplementedError(f"{type(self.fs).__name__} can't append to a file")
        path = self._local_path(path)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            written = os.write(descriptor, data)
        finally:
            os.close(descriptor)
        if written != len(data):
            raise OSError(f"wrote {written} of {len(data)} bytes to {path}")

    def write_many(self, files: Mapping[str, bytes]) -> None:
        """Write each file atomically, a few at a time (concurrently on an object store)."""
        items = list(files.items())
        for start in range(0, len(items), IO_GROUP):
            group = dict(items[start : start + IO_GROUP])
            if self.local or len(group) == 1:
                for path, data in group.items():
                    self.write_atomic(path, data)
            else:
                self.fs.pipe(group)

    def create_exclusive(self, path: str, data: bytes) -> bool:
        """Write ``path`` whole if no file of that name exists; False if one does."""
        if not self.local:
            try:
                self.fs.pipe_file(path, data, mode="create")
            except FileExistsError:
                return False
            return True
        folder, name = os.path.split(self._local_path(path))
        os.makedirs(folder, exist_ok=True)
        temporary = self._local_temporary(folder, name, data)
        try:
            os.link(temporary, os.path.join(folder, name))
        except FileExistsError:
            return False
        finally:
            os.unlink(temporary)
        return True

    def write_json(self, path: str, value: Mapping[str, Any]) -> None:
        self.write_atomic(path, encode_json(value))

    # -- removing ------------------------------------------------------------------------------------

    def remove_files(self, paths: list[str]) -> None:
        """Remove these files (not a folder's whole contents: another writer may be adding to it)."""
        if not paths:
            return
        try:
            self.fs.rm(paths)
        except FileNotFoundError:
            for path in paths:
                with contextlib.suppress(FileNotFoundError):
                    self.fs.rm_file(path)
        if self.local:
            for folder in sorted({p.rsplit("/", 1)[0] for p in paths}, reverse=True):
                with contextlib.suppress(OSError):
                    os.rmdir(self._local_path(folder))  # only if it is empty now

    def remove_tree(self, path: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm(path, recursive=True)

    def _local_path(self, path: str) -> str:
        stripped: str = self.fs._strip_protocol(path)
        return stripped

    @staticmethod
    def _local_temporary(folder: str, name: str, data: bytes) -> str:
        # The temporary file starts with a dot: listings of state files skip it.
        descriptor, temporary = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
        try:
            with os.fdopen(descriptor, "wb") as stream:
                stream.write(data)
                stream.flush()
                os.fsync(stream.fileno())
        except BaseException:
            os.unlink(temporary)
            raise
        return temporary


def encode_json(value: Mapping[str, Any]) -> bytes:
    return json.dumps(value, indent=1, sort_keys=True, default=str).encode()


def _protocols(fs: Any) -> set[str]:
    protocol = fs.protocol
    return {protocol} if isinstance(protocol, str) else set(protocol)
