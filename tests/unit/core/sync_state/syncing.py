"""A sync loop as the operator will drive the state: pages in, items to send, batches acknowledged."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from airflow_provider_optimizely.core.sync_state import KeyRun, fingerprints, key_hashes

PAGE = 500
BATCH = 100


def source(count: int, *, version: int = 0, start: int = 0) -> dict[str, bytes]:
    """``count`` keys and their payloads (as the operator would encode them)."""
    return {f"user-{i}": f'{{"id":"user-{i}","v":{version}}}'.encode() for i in range(start, start + count)}


def change(
    rows: dict[str, bytes],
    fraction_changed: float,
    fraction_new: float,
    fraction_removed: float,
    seed: int = 7,
) -> tuple[dict[str, bytes], set[str], set[str], set[str]]:
    """The next day's source: some rows changed, some new, some removed (and which)."""
    rng = random.Random(seed)
    keys = sorted(rows)
    count = len(keys)
    removed = set(rng.sample(keys, int(count * fraction_removed)))
    kept = [k for k in keys if k not in removed]
    changed = set(rng.sample(kept, int(count * fraction_changed)))
    result = {k: (rows[k] + b" " if k in changed else rows[k]) for k in kept}
    new = {f"new-{i}" for i in range(int(count * fraction_new))}
    result.update({k: f'{{"id":"{k}"}}'.encode() for k in new})
    return result, changed, new, removed


@dataclass
class Sent:
    keys: list[str] = field(default_factory=list)


def pages(rows: dict[str, bytes], size: int = PAGE) -> Iterable[tuple[list[str], list[bytes]]]:
    keys = list(rows)
    for start in range(0, len(keys), size):
        chunk = keys[start : start + size]
        yield chunk, [rows[k] for k in chunk]


def run_sync(
    run: KeyRun,
    rows: dict[str, bytes],
    *,
    fails: Callable[[str], bool] = lambda key: False,
    stop_after_batches: int | None = None,
    sent: Sent | None = None,
) -> Sent:
    """Classify every page, send what is to be sent in batches, acknowledge each batch.

    ``stop_after_batches``: stop there without committing (a crash after that many acknowledged batches).
    """
    sent = sent or Sent()
    batches = 0
    waiting: list[tuple[int, str, int]] = []

    def send(batch: Sequence[tuple[int, str, int]]) -> None:
        hashes = np.array([h for h, _, _ in batch], dtype=np.uint64)
        keys = [k for _, k, _ in batch]
        prints = np.array([f for _, _, f in batch], dtype=np.uint64)
        sent.keys.extend(keys)
        run.acknowledge(hashes, keys, prints, [not fails(k) for k in keys])

    for keys, bodies in pages(rows):
        hashes, prints = key_hashes(keys), fingerprints(bodies)
        classes = run.classify(hashes, prints, keys=keys)
        for index in classes.indexes():
            waiting.append((int(hashes[index]), keys[index], int(prints[index])))
            if len(waiting) == BATCH:
                send(waiting)
                waiting = []
                batches += 1
                if stop_after_batches is not None and batches >= stop_after_batches:
                    return sent
    if waiting:
        send(waiting)
    return sent
