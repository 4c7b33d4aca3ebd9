"""Change detection with the sync state against a plain dict of key -> fingerprint, measured in one run.

    .venv/bin/python benchmarks/bench_sync_state.py                      # 1,000,000 and 10,000,000 keys
    .venv/bin/python benchmarks/bench_sync_state.py --keys 1000000

For each size, a first run commits the state of N keys (``core.sync_state``, as the operator will: pages
of 5000 classified, every key acknowledged, committed). Then the next day's source (1% of the rows
changed, 0.1% new, 0.1% removed) is read in pages of 5000 by two approaches, each in a fresh Python
process over its own copy of that state:

- **state**: ``begin_run`` (loads the committed hashes), per page ``key_hashes`` + ``fingerprints`` +
  ``classify``, the keys to send acknowledged in batches of 5000 (each batch a checkpoint file),
  ``unseen_count`` (the removed keys), ``commit``; then, apart from the total and in a process of its
  own, the next run's load of the state that commit made (the base and the overlay of a delta commit).
- **dict**: the plainest good code doing the same: the previous state's Parquet (key, fingerprint) read
  into a Python dict, per page an XXH3 fingerprint and a dict look-up per row, a set of the keys seen,
  the removed keys as the dict's keys not seen, then the dict updated and written back as one Parquet
  file. No checkpoints, no resume, no key ranges: the least work that finds the same rows.

Both must find the same changed, new and removed counts. Figures per process: seconds to load the
state, to hash (keys and payloads; the dict approach hashes payloads only, inside its loop), to
classify all pages, to commit; the peak RSS (``VmHWM``) and its growth over the interpreter and imports;
the state's size on disk. Making the source's rows (Python strings, as a reader would hand them over) is
timed apart: both pay it alike.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DATA_DIR = HERE / ".data"
PAGE = 5000
BATCH = 5000
SIGNATURE = {"target": "bench", "mapping": None}


# -- the source ----------------------------------------------------------------------------------------


def day_one_numbers(keys: int) -> Iterator[list[int]]:
    """Row numbers of the first day, a page at a time (never a list of them all: that alone would be
    36 bytes a row of the process's memory)."""
    for start in range(0, keys, PAGE):
        yield list(range(start, min(start + PAGE, keys)))


def day_two_numbers(keys: int) -> Iterator[list[int]]:
    """Row numbers of the next day: 0.1% removed (every 1000th), the rest, then 0.1% new ones."""
    pending: list[int] = []
    for page in day_one_numbers(keys):
        pending += [i for i in page if i % 1000 != 999]
        if len(pending) >= PAGE:
            yield pending[:PAGE]
            pending = pending[PAGE:]
    pending += range(keys, keys + keys // 1000)
    while pending:
        yield pending[:PAGE]
        pending = pending[PAGE:]


def page_of(numbers: list[int], day: int) -> tuple[list[str], list[bytes]]:
    """Keys and JSON payloads of ``numbers``; on day 2, 1% of the old rows (i % 100 == 7) changed."""
    keys = [f"user-{i}" for i in numbers]
    payloads = [
        f'{{"user_id":"user-{i}","email":"user{i}@example.com","plan":"p{i % 7}","v":'
        f"{day if i % 100 == 7 else 1}}}".encode()
        for i in numbers
    ]
    return keys, payloads


def pages(
    numbers: Iterator[list[int]], day: int, clock: dict[str, float]
) -> Iterator[tuple[list[str], list[bytes]]]:
    while True:
        began = time.perf_counter()
        page_numbers = next(numbers, None)
        if page_numbers is None:
            return
        page = page_of(page_numbers, day)
        clock["source"] += time.perf_counter() - began
        yield page


# -- measuring ------------------------------------------------------------------------------------------


def memory_kib(field: str) -> int:
    """``VmRSS`` (now) or ``VmHWM`` (peak) of this process (not ``ru_maxrss``, which a child inherits)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def state_bytes(folder: Path) -> int:
    """The size of the committed generation's files (the previous one is kept too, for readers)."""
    from airflow_provider_optimizely.core.sync_state import StateStore

    return int(StateStore.from_uri(str(folder)).sync("bench").describe()["bytes"])


# -- the approaches (each in its own process) -----------------------------------------------------------


def run_setup(keys: int, folder: Path) -> dict[str, Any]:
    """The first run: every key new, all acknowledged, committed."""
    from airflow_provider_optimizely.core.sync_state import StateStore, fingerprints, key_hashes

    clock = {"source": 0.0}
    run = StateStore.from_uri(str(folder)).sync("bench").begin_run("day-1", SIGNATURE)
    started = time.perf_counter()
    for page_keys, payloads in pages(day_one_numbers(keys), 1, clock):
        hashes, prints = key_hashes(page_keys), fingerprints(payloads)
        run.classify(hashes, prints)
        run.acknowledge(hashes, page_keys, prints, True)
    classified = time.perf_counter() - started - clock["source"]
    began = time.perf_counter()
    manifest = run.commit()
    return {
        "keys": manifest.keys,
        "classify_and_checkpoint_seconds": classified,
        "commit_seconds": time.perf_counter() - began,
        "peak_rss_mib": memory_kib("VmHWM") / 1024,
    }


def run_state(keys: int, folder: Path) -> dict[str, Any]:
    from airflow_provider_optimizely.core.sync_state import StateStore, fingerprints, key_hashes

    baseline = memory_kib("VmRSS")
    clock = {"source": 0.0, "hash": 0.0, "classify": 0.0, "acknowledge": 0.0}
    began = time.perf_counter()
    run = StateStore.from_uri(str(folder)).sync("bench").begin_run("day-2", SIGNATURE)
    load = time.perf_counter() - began
    waiting: list[tuple[Any, list[str], Any]] = []
    waiting_count = 0

    def acknowledge() -> None:
        nonlocal waiting, waiting_count
        began = time.perf_counter()
        import numpy as np

        run.acknowledge(
            np.concatenate([w[0] for w in waiting]),
            [k for w in waiting for k in w[1]],
            np.concatenate([w[2] for w in waiting]),
            True,
        )
        waiting, waiting_count = [], 0
        clock["acknowledge"] += time.perf_counter() - began

    sent = 0
    for page_keys, payloads in pages(day_two_numbers(keys), 2, clock):
        began = time.perf_counter()
        hashes, prints = key_hashes(page_keys), fingerprints(payloads)
        clock["hash"] += time.perf_counter() - began
        began = time.perf_counter()
        send = run.classify(hashes, prints).indexes()
        clock["classify"] += time.perf_counter() - began
        if len(send):
            waiting.append((hashes[send], [page_keys[i] for i in send], prints[send]))
            waiting_count += len(send)
            sent += len(send)
            if waiting_count >= BATCH:
                acknowledge()
    if waiting:
        acknowledge()
    began = time.perf_counter()
    removed = run.unseen_count()
    unseen = time.perf_counter() - began
    began = time.perf_counter()
    run.commit()
    commit = time.perf_counter() - began
    counts = run.counts
    peak = memory_kib("VmHWM")
    return {
        "changed": counts["changed"],
        "new": counts["new"],
        "removed": removed,
        "sent": sent,
        "load_seconds": load,
        "hash_seconds": clock["hash"],
        "classify_seconds": clock["classify"] + unseen,
        "checkpoint_seconds": clock["acknowledge"],
        "commit_seconds": commit,
        "source_seconds": clock["source"],
        "peak_rss_mib": peak / 1024,
        "growth_mib": (peak - baseline) / 1024,
        "state_bytes": state_bytes(folder),
    }


def run_reload(keys: int, folder: Path) -> dict[str, Any]:
    """The next run's load of the state the state approach committed."""
    from airflow_provider_optimizely.core.sync_state import StateStore

    began = time.perf_counter()
    StateStore.from_uri(str(folder)).sync("bench").begin_run("day-3", SIGNATURE, dry_run=True).abandon()
    return {"load_seconds": time.perf_counter() - began}


def run_dict(keys: int, folder: Path) -> dict[str, Any]:
    import pyarrow as pa
    import pyarrow.parquet as pq
    import xxhash

    baseline = memory_kib("VmRSS")
    clock = {"source": 0.0}
    began = time.perf_counter()
    [generation] = list((folder / "bench" / "keys-all" / "generations").iterdir())
    table = pq.read_table(generation, columns=["key", "fingerprint"])
    state: dict[str, int] = dict(
        zip(table.column("key").to_pylist(), table.column("fingerprint").to_pylist(), strict=True)
    )
    del table
    load = time.perf_counter() - began
    fingerprint = xxhash.xxh3_64_intdigest
    seen: set[str] = set()
    sent: dict[str, int] = {}
    changed = new = 0
    classify = 0.0
    for page_keys, payloads in pages(day_two_numbers(keys), 2, clock):
        began = time.perf_counter()
        get = state.get
        for key, payload in zip(page_keys, payloads, strict=True):
            value = fingerprint(payload)
            old = get(key)
            seen.add(key)
            if old != value:
                if old is None:
                    new += 1
                else:
                    changed += 1
                sent[key] = value
        classify += time.perf_counter() - began
    began = time.perf_counter()
    removed = len(state.keys() - seen)
    classify += time.perf_counter() - began
    began = time.perf_counter()
    state.update(sent)
    out = folder / "dict-state.parquet"
    pq.write_table(
        pa.table({"key": list(state), "fingerprint": pa.array(list(state.values()), pa.uint64())}), out
    )
    commit = time.perf_counter() - began
    peak = memory_kib("VmHWM")
    return {
        "changed": changed,
        "new": new,
        "removed": removed,
        "sent": len(sent),
        "load_seconds": load,
        "hash_seconds": 0.0,
        "classify_seconds": classify,
        "checkpoint_seconds": 0.0,
        "commit_seconds": commit,
        "source_seconds": clock["source"],
        "peak_rss_mib": peak / 1024,
        "growth_mib": (peak - baseline) / 1024,
        "state_bytes": out.stat().st_size,
    }


APPROACHES = {"setup": run_setup, "state": run_state, "reload": run_reload, "dict": run_dict}


# -- the comparison ------------------------------------------------------------------------------------


def in_process(approach: str, keys: int, folder: Path) -> dict[str, Any]:
    command = [sys.executable, __file__, "--approach", approach, "--keys", str(keys), "--folder", str(folder)]
    output = subprocess.run(command, check=True, capture_output=True, text=True, timeout=7200)
    figures: dict[str, Any] = json.loads(output.stdout.strip().splitlines()[-1])
    return figures


def median_run(figures: list[dict[str, Any]]) -> dict[str, Any]:
    """Each figure's median over the runs."""
    return {name: statistics.median(f[name] for f in figures) for name in figures[0]}


def compare(keys: int, repeat: int) -> None:
    day_one = DATA_DIR / f"sync_state_{keys}"
    if not (day_one / "bench").exists():
        shutil.rmtree(day_one, ignore_errors=True)
        setup = in_process("setup", keys, day_one)
        seconds = setup["classify_and_checkpoint_seconds"]
        print(
            f"first run, {keys:,} keys: classify + checkpoint {seconds:.1f}s, "
            f"commit {setup['commit_seconds']:.1f}s, peak RSS {setup['peak_rss_mib']:.0f} MiB"
        )
    runs: dict[str, list[dict[str, Any]]] = {"state": [], "dict": []}
    # Alternate the two, so that a slower spell of a shared machine falls on both alike.
    for _ in range(repeat):
        for approach, figures in runs.items():
            with tempfile.TemporaryDirectory(dir=DATA_DIR) as scratch:
                folder = Path(scratch) / "store"
                shutil.copytree(day_one, folder)
                figures.append(in_process(approach, keys, folder))
                reload = in_process("reload", keys, folder) if approach == "state" else {"load_seconds": 0.0}
                figures[-1]["reload_seconds"] = reload["load_seconds"]
    expected = {
        "changed": len(range(7, keys, 100)),
        "new": keys // 1000,
        "removed": len(range(999, keys, 1000)),
    }
    expected["sent"] = expected["changed"] + expected["new"]
    for approach, figures_list in runs.items():
        for figures in figures_list:
            if any(figures[name] != count for name, count in expected.items()):
                raise SystemExit(f"{approach} found {figures}, expected {expected}")
    state, plain = median_run(runs["state"]), median_run(runs["dict"])
    print(
        f"\n{keys:,} keys, next day: {state['changed']:,} changed, {state['new']:,} new, "
        f"{state['removed']:,} removed: {state['sent']:,} to send (as made, and both approaches agree); "
        f"median of {repeat}"
    )
    rows = [
        ("load state s", "load_seconds", "{:.2f}"),
        ("hash keys+payloads s", "hash_seconds", "{:.2f}"),
        ("classify s", "classify_seconds", "{:.2f}"),
        ("checkpoints s", "checkpoint_seconds", "{:.2f}"),
        ("commit s", "commit_seconds", "{:.2f}"),
        ("state total s", None, "{:.2f}"),
        ("load the committed s", "reload_seconds", "{:.2f}"),
        ("(source rows made) s", "source_seconds", "{:.2f}"),
        ("peak RSS MiB", "peak_rss_mib", "{:.0f}"),
        ("RSS growth MiB", "growth_mib", "{:.0f}"),
        ("state on disk MiB", "state_bytes", "{:.1f}"),
    ]
    timed = ("load_seconds", "hash_seconds", "classify_seconds", "checkpoint_seconds", "commit_seconds")
    print(f"{'':24}{'sync_state':>12}{'dict':>12}{'state/dict':>12}")
    for label, name, fmt in rows:
        if name is None:
            a, b = (sum(f[n] for n in timed) for f in (state, plain))
        else:
            a, b = state[name], plain[name]
        if name == "state_bytes":
            a, b = a / 2**20, b / 2**20
        ratio = f"{a / b:.2f}" if b else "-"
        print(f"{label:24}{fmt.format(a):>12}{fmt.format(b):>12}{ratio:>12}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--repeat", type=int, default=3, help="runs of each approach; the median is shown")
    parser.add_argument("--approach", choices=sorted(APPROACHES), help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.approach:
        print(json.dumps(APPROACHES[args.approach](args.keys[0], Path(args.folder))))
        return
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    for keys in args.keys:
        compare(keys, args.repeat)


if __name__ == "__main__":
    main()
