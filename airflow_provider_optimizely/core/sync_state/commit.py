"""Committing a slice: a new generation from the last one and acknowledged entries, then its manifest.

A commit that answered few keys (with the overlay they make, at most ``OVERLAY_FRACTION`` of the base's
keys) writes a new overlay and keeps the base's files; otherwise it compacts: a new base of the merged
state, no overlay. Order of writes: the new files (a base or an overlay), then the manifest, created only
if that generation is still free (``manifest.publish``); then the clean-up. A crash before the manifest
leaves the last state whole (its manifest still names the old files); a crash after it leaves only files
that the next commit's clean-up removes.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pyarrow as pa

from airflow_provider_optimizely.core.sync_state.generation import (
    DELETED,
    FAILED,
    Answers,
    CommittedKeys,
    lookup,
    overlaid,
    read_files,
    read_overlay,
    resolve,
    write_generation,
    write_overlay,
)
from airflow_provider_optimizely.core.sync_state.keyrange import KeyRange
from airflow_provider_optimizely.core.sync_state.manifest import (
    Manifest,
    Overlay,
    StateConflictError,
    latest_manifest,
    manifest_generations,
    manifest_name,
    publish,
)
from airflow_provider_optimizely.core.sync_state.storage import Storage, new_token

log = logging.getLogger(__name__)
_GENERATION_FOLDER = re.compile(r"^(\d{12})-[0-9a-f]{12}$")
# Manifests (and their files) kept after a commit: the new one, and the one a reader may be reading.
KEPT_GENERATIONS = 2
# The largest overlay, as a fraction of the base's keys, before a commit compacts. Every load reads the
# overlay whole and applies it to each base file, and every delta commit rewrites it (the old entries
# and the new): past an eighth, that costs a fair part of a compaction each time, for loads that keep
# getting slower.
OVERLAY_FRACTION = 1 / 8


class Slice:
    """The folder of one key range of one sync: ``manifests/``, ``generations/``, ``runs/``."""

    def __init__(self, storage: Storage, sync_id: str, path: str, key_range: KeyRange) -> None:
        self.storage = storage
        self.sync_id = sync_id
        self.path = path
        self.key_range = key_range

    def manifest(self) -> Manifest | None:
        return latest_manifest(self.storage, self.path)

    def files(self, manifest: Manifest, columns: list[str] | None = None) -> Iterator[pa.Table]:
        return read_files(self.storage, self.path, manifest, columns)


def commit(
    area: Slice,
    base: Manifest | None,
    answers: Answers,
    *,
    signature: dict[str, Any],
    run_key: str,
    last_run: dict[str, Any],
    committed: CommittedKeys | None = None,
) -> Manifest:
    """Commit ``answers`` (a run's checkpoint entries) over ``base``, the manifest the run began
    from; ``StateConflictError`` if another commit came first. A change of signature starts the state
    anew: the old keys belong to another target or mapping.

    ``committed`` (the state of ``base`` as the run loaded it) lets a commit of few answers write an
    overlay only (``delta``); without it, the commit compacts."""
    generation = base.generation if base else 0
    current = area.manifest()
    if (current.generation if current else 0) != generation:
        raise _conflict(area, generation, current)
    keeps_base = base is not None and base.signature == signature
    written: str | None = None  # the folder this commit writes, if any
    overlay: Overlay | None = None
    if keeps_base and not len(answers):
        assert base is not None
        folder, files, keys, failed, overlay = base.folder, base.files, base.keys, base.failed, base.overlay
    else:
        written = f"generations/{generation + 1:012d}-{new_token()}"
        found = None
        if keeps_base and base is not None and committed is not None:
            found = delta(area, base, answers, committed)
        if base is not None and found is not None:
            entries, keys, failed = found
            folder, files = base.folder, base.files
            overlay = Overlay(written, write_overlay(area.storage, f"{area.path}/{written}", entries))
        else:
            folder = written
            old: Iterator[pa.Table] = area.files(base) if keeps_base and base else iter(())
            files, keys, failed = write_generation(
                area.storage,
                f"{area.path}/{folder}",
                area.key_range,
                old,
                base.keys if keeps_base and base else 0,
                answers,
            )
    manifest = Manifest(
        sync_id=area.sync_id,
        key_range={"index": area.key_range.index, "count": area.key_range.count},
        generation=generation + 1,
        folder=folder,
        files=files,
        signature=signature,
        keys=keys,
        failed=failed,
        committed_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        run_key=run_key,
        last_run=last_run,
        overlay=overlay,
    )
    if not publish(area.storage, area.path, manifest):
        if written is not None:
            area.storage.remove_tree(f"{area.path}/{written}")
        raise _conflict(area, generation, area.manifest())
    clean_up(area, manifest)
    return manifest


def delta(
    area: Slice, base: Manifest, answers: Answers, committed: CommittedKeys
) -> tuple[pa.Table, int, int] | None:
    """The overlay of a delta commit (``base``'s overlay updated by ``answers``: the last entry of a key
    wins), and the key and failed counts of the state it makes; None when the commit compacts: the base
    is empty, or the overlay would hold more than ``OVERLAY_FRACTION`` of the base's keys."""
    limit = base.base_keys * OVERLAY_FRACTION
    entries = resolve(answers, committed.hashes, committed.fingerprints)
    if not base.base_keys or entries.num_rows > limit:
        return None
    # What changes against the committed state is this run's entries alone: the old overlay is in it.
    found, position = lookup(committed.hashes, entries.column("key_hash").to_numpy())
    outcomes = entries.column("outcome").to_numpy()
    live = outcomes != DELETED
    keys = len(committed) + int(np.count_nonzero(live & ~found)) - int(np.count_nonzero(~live & found))
    was_failed = int(np.count_nonzero(committed.outcomes[position[found]] == FAILED))
    failed = base.failed - was_failed + int(np.count_nonzero(outcomes == FAILED))
    if base.overlay is not None:
        entries = overlaid(read_overlay(area.storage, area.path, base.overlay), entries, keep_tombstones=True)
        if entries.num_rows > limit:
            return None
    return entries, keys, failed


def clean_up(area: Slice, manifest: Manifest) -> None:
    """Remove manifests and generation folders no reader needs any more. Never fails a commit."""
    try:
        generations = manifest_generations(area.storage, area.path)
        kept = [g for g in generations if g <= manifest.generation][-KEPT_GENERATIONS:]
        referenced = set(manifest.folders())
        for generation in kept:
            value = area.storage.read_json(f"{area.path}/manifests/{manifest_name(generation)}")
            if value:
                referenced.update(Manifest.from_dict(value).folders())
        old = [g for g in generations if g < min(kept)]
        area.storage.remove_files([f"{area.path}/manifests/{manifest_name(g)}" for g in old])
        for name in area.storage.list_names(f"{area.path}/generations"):
            match = _GENERATION_FOLDER.match(name)
            # A folder of a generation above this one is another attempt's, being written: left alone.
            if (
                match
                and int(match.group(1)) <= manifest.generation
                and f"generations/{name}" not in referenced
            ):
                area.storage.remove_tree(f"{area.path}/generations/{name}")
    except Exception:
        log.warning("could not clean up old sync state under %s", area.path, exc_info=True)


def _conflict(area: Slice, started_from: int, current: Manifest | None) -> StateConflictError:
    now = current.generation if current else 0
    by = f" by run {current.run_key!r}" if current and current.run_key else ""
    return StateConflictError(
        f"the sync state of {area.sync_id!r} ({area.key_range}) moved from generation {started_from} to "
        f"{now}{by} while this run was going: two runs of one sync ran at once. This run did not commit; "
        "its checkpoints are kept and the next run takes them in"
    )
