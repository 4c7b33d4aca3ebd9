"""Committing a slice: a new generation from the last one and acknowledged entries, then its manifest.

Order of writes: the generation's files, then the manifest, created only if that generation is still
free (``manifest.publish``); then the clean-up. A crash before the manifest leaves the last state whole
(its manifest still names the old files); a crash after it leaves only files that the next commit's
clean-up removes.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import pyarrow as pa

from airflow_provider_optimizely.core.sync_state.generation import (
    Answers,
    read_files,
    write_generation,
)
from airflow_provider_optimizely.core.sync_state.keyrange import KeyRange
from airflow_provider_optimizely.core.sync_state.manifest import (
    Manifest,
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
) -> Manifest:
    """Commit ``answers`` (a run's checkpoint entries) over ``base``, the manifest the run began
    from; ``StateConflictError`` if another commit came first. A change of signature starts the state
    anew: the old keys belong to another target or mapping."""
    generation = base.generation if base else 0
    current = area.manifest()
    if (current.generation if current else 0) != generation:
        raise _conflict(area, generation, current)
    keeps_base = base is not None and base.signature == signature
    if keeps_base and not len(answers):
        assert base is not None
        folder, files, keys, failed = base.folder, base.files, base.keys, base.failed
    else:
        folder = f"generations/{generation + 1:012d}-{new_token()}"
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
    )
    if not publish(area.storage, area.path, manifest):
        if base is None or folder != base.folder:
            area.storage.remove_tree(f"{area.path}/{folder}")
        raise _conflict(area, generation, area.manifest())
    clean_up(area, manifest)
    return manifest


def clean_up(area: Slice, manifest: Manifest) -> None:
    """Remove manifests and generation folders no reader needs any more. Never fails a commit."""
    try:
        generations = manifest_generations(area.storage, area.path)
        kept = [g for g in generations if g <= manifest.generation][-KEPT_GENERATIONS:]
        referenced = {manifest.folder}
        for generation in kept:
            value = area.storage.read_json(f"{area.path}/manifests/{manifest_name(generation)}")
            if value:
                referenced.add(value["folder"])
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
