"""The manifest: which generation of files is a slice's committed state, under which signature.

Each commit writes a new manifest, ``manifests/<generation>.json`` (twelve digits), created only if no
file of that name exists (``Storage.create_exclusive``). The committed state is the manifest of the
highest generation. Two attempts that started from generation ``g`` both try to create ``g + 1``: one
wins, the other learns it lost (``StateConflictError``) instead of writing over the first. The
generation's files are all written before its manifest, so a reader that finds a manifest finds its
files; the files of the two newest generations are kept, so a reader that just read the previous
manifest can still read them.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from airflow_provider_optimizely.core.sync_state.storage import Storage, encode_json

FORMAT = 1
_MANIFEST = re.compile(r"^(\d{12})\.json$")


class StateConflictError(RuntimeError):
    """Another attempt committed this sync's state since this one began: nothing of this one is lost
    (its checkpoints stay, and the next run takes them in), but it did not commit."""


@dataclass
class PartitionFile:
    name: str
    keys: int
    bytes: int = 0


@dataclass
class Manifest:
    sync_id: str
    key_range: dict[str, int]
    generation: int
    folder: str
    files: list[PartitionFile]
    signature: dict[str, Any]
    keys: int = 0
    failed: int = 0
    committed_at: str = ""
    run_key: str | None = None
    last_run: dict[str, Any] = field(default_factory=dict)
    format: int = FORMAT

    @property
    def ok(self) -> int:
        return self.keys - self.failed

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, value: dict[str, Any]) -> Manifest:
        if value.get("format") != FORMAT:
            raise ValueError(f"sync state format {value.get('format')!r} is not one this version reads")
        files = [PartitionFile(**entry) for entry in value["files"]]
        return cls(**{**value, "files": files})


def manifest_name(generation: int) -> str:
    return f"{generation:012d}.json"


def manifest_generations(storage: Storage, slice_path: str) -> list[int]:
    """The generations that have a manifest, oldest first."""
    names = storage.list_names(f"{slice_path}/manifests")
    return sorted(int(match.group(1)) for name in names if (match := _MANIFEST.match(name)))


def latest_manifest(storage: Storage, slice_path: str) -> Manifest | None:
    generations = manifest_generations(storage, slice_path)
    for generation in reversed(generations):
        value = storage.read_json(f"{slice_path}/manifests/{manifest_name(generation)}")
        if value is not None:  # None: removed by a cleanup between the listing and the read
            return Manifest.from_dict(value)
    return None


def publish(storage: Storage, slice_path: str, manifest: Manifest) -> bool:
    """Create the manifest of ``manifest.generation``; False if that generation exists already."""
    path = f"{slice_path}/manifests/{manifest_name(manifest.generation)}"
    return storage.create_exclusive(path, encode_json(manifest.as_dict()))
