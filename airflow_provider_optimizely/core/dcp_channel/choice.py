"""Which channel carries a DCP change set: the profile API (a request a profile) or one bulk-upload file.

The profile API costs a round trip a profile (at ``max_concurrency`` in flight); a file costs a fixed
upload and DCP's processing, whatever its size up to millions of rows. ``method="auto"`` sends a change
set of at least ``bulk_threshold`` rows as a file, a smaller one through the API; ``"rest"`` and
``"bulk"`` force one. The default threshold comes from ``benchmarks/bench_dcp_channel.py``
(docs/dcp-channel.md): at 50 ms a request a file costs what the API does for about 60 profiles, with the
emulator's instant processing; DCP's own queue before a file is processed is not documented, so the
default leaves room for one of about 15 s, and stays where the API takes no more than about 16 s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

METHODS = ("auto", "rest", "bulk")
REST, BULK = "rest", "bulk"
#: Changed profiles from which ``auto`` uploads a file (see the module doc and docs/dcp-channel.md).
DEFAULT_BULK_THRESHOLD = 1_000


@dataclass(frozen=True)
class ChannelChoice:
    """The channel and why, as the run report says it (``bulk: 120,000 changed ≥ threshold 20,000``)."""

    channel: str
    reason: str


def parse_method(value: Any) -> str:
    method = str(value).strip().lower()
    if method not in METHODS:
        raise ValueError(f"method is one of {', '.join(METHODS)}, not {value!r}")
    return method


def parse_threshold(value: Any) -> int:
    threshold = int(str(value).replace("_", "").replace(",", ""))
    if threshold < 1:
        raise ValueError(f"bulk_threshold must be at least 1, got {value!r}")
    return threshold


def choose_channel(method: str, changed: int, threshold: int) -> ChannelChoice:
    """The channel for ``changed`` rows that fit a file (the others always go through the profile API)."""
    if method == REST:
        return ChannelChoice(REST, f"rest: method='rest' ({changed:,} changed)")
    if method == BULK:
        return ChannelChoice(BULK, f"bulk: method='bulk' ({changed:,} changed)")
    if changed >= threshold:
        return ChannelChoice(BULK, f"bulk: {changed:,} changed ≥ threshold {threshold:,}")
    return ChannelChoice(REST, f"rest: {changed:,} changed < threshold {threshold:,}")
