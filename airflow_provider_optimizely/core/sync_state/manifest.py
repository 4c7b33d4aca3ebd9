"""The manifest: which generation of files is a slice's committed state, under which signature.

Each commit writes a new manifest, ``manifests/<generation>.json`` (twelve digits), created only if no
file of that name exists (``Storage.create_exclusive``). The committed state is the manifest of the
highest generation. Two attempts that started from generation ``g`` both try to create ``g + 1``: one
wins, the other learns it lost (``StateConflictError``) instead of writing over the first. The
generation's files are all written before its manifest, so a reader that finds a manifest finds its
files; the files of the two newest generations are kept, so a reader that just read the previous
manifest can still read them.

A manifest may name, beside its generation's files (the *base*), an *overlay*: files of the same
columns holding, sorted by hash, one resolved entry per key answered since the base was written (a
tombstone for a deleted key). The committed state is the base with the overlay applied
(``generation.read_files``); a commit that answered a few keys writes a new overlay instead of a new base.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from airflow_provider_optimizely.core.sync_state.storage import Storage, encode_json

# Format 1: a base alone; format 2: a base and an overlay. A manifest without an overlay is written as
# format 1, so that a version that knows nothing of overlays still reads a compacted state, and refuses,
# saying why, one it would read wrong.
FORMAT = 1
OVERLAY_FORMAT = 2
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
class Overlay:
    """The overlay's folder (``generations/<generation>-<token>``) and its files, in hash order."""

    folder: str
    files: list[PartitionFile]

    @property
    def entries(self) -> int:
        return sum(entry.keys for entry in self.files)


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
    overlay: Overlay | None = None

    @property
    def ok(self) -> int:
        return self.keys - self.failed

    @property
    def base_keys(self) -> int:
        """The keys of the base's files (``keys`` counts them with the overlay applied)."""
        return sum(entry.keys for entry in self.files)

    @property
    def format(self) -> int:
        return FORMAT if self.overlay is None else OVERLAY_FORMAT

    def all_files(self) -> list[PartitionFile]:
        return self.files + (self.overlay.files if self.overlay else [])

    def folders(self) -> list[str]:
        """The folders this manifest's files are in: the base's, and the overlay's if any."""
        return [self.folder] + ([self.overlay.folder] if self.overlay else [])

    def as_dict(self) -> dict[str, Any]:
        value = asdict(self)
        if self.overlay is None:
            del value["overlay"]
        return {**value, "format": self.format}

    @classmethod
    def from_dict(cls, value: dict[str, Any]) -> Manifest:
        fields = dict(value)
        found = fields.pop("format", None)
        if found not in (FORMAT, OVERLAY_FORMAT):
            raise ValueError(f"sync state format {found!r} is not one this version reads")
        fields["files"] = [PartitionFile(**entry) for entry in value["files"]]
        if value.get("overlay"):
            overlay = value["overlay"]
            fields["overlay"] = Overlay(
                overlay["folder"], [PartitionFile(**entry) for entry in overlay["files"]]
            )
        return cls(**fields)


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
