"""Byte streams that hash and count what passes through them, so one read of a file also names it.

A bulk-upload file is named after the SHA-256 of the bytes uploaded (docs/api-contract.md §4.4: a new
upload never reuses a name). Reading or writing it through these wrappers computes that hash in the same
pass as validation, and stops a file at the size limit before it grows further.
"""

from __future__ import annotations

import hashlib
import io
from typing import IO, Any

CHUNK = 1 << 20


class FileTooLargeError(ValueError):
    """The content reached the size limit (DCP takes files under 10 GB)."""


def _too_large(count: int, limit: int) -> FileTooLargeError:
    return FileTooLargeError(f"the file reaches {count:,} bytes; DCP takes files under {limit:,} bytes")


class HashingReader(io.RawIOBase):
    """Reads ``source``; ``sha256`` and ``count`` cover every byte read so far."""

    def __init__(self, source: IO[bytes], limit: int) -> None:
        self._source = source
        self._limit = limit
        self.sha256 = hashlib.sha256()
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._source.read(len(buffer))
        size = len(data)
        buffer[:size] = data
        self.sha256.update(data)
        self.count += size
        if self.count >= self._limit:
            raise _too_large(self.count, self._limit)
        return size


class HashingWriter(io.RawIOBase):
    """Writes to ``target``; ``sha256`` and ``count`` cover every byte written so far."""

    def __init__(self, target: IO[bytes], limit: int) -> None:
        self._target = target
        self._limit = limit
        self.sha256 = hashlib.sha256()
        self.count = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self._target.write(data)
        self.sha256.update(data)
        self.count += len(data)
        if self.count >= self._limit:
            raise _too_large(self.count, self._limit)
        return len(data)


def sha256_of(stream: IO[bytes], chunk_size: int = CHUNK) -> str:
    """The SHA-256 hex digest of a byte stream, read in chunks."""
    digest = hashlib.sha256()
    for chunk in iter(lambda: stream.read(chunk_size), b""):
        digest.update(chunk)
    return digest.hexdigest()
