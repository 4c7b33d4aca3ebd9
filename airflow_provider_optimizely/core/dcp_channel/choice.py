"""Which channel carries a DCP change set: the profile API (a request a profile) or one bulk-upload file.

The profile API costs a round trip a profile (at ``max_concurrency`` in flight); a file costs a fixed
upload and DCP's processing, whatever its size up to millions of rows. ``method="auto"`` sends a change
set of at least ``bulk_threshold`` rows as a file, a smaller one through the API; ``"rest"`` and
``"bulk"`` force one. The default threshold is where the two cost the same
(``benchmarks/bench_dcp_channel.py``, docs/dcp-channel.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

METHODS = ("auto", "rest", "bulk")
REST, BULK = "rest", "bulk"
#: Changed profiles from which a file is cheaper than the profile API (see docs/dcp-channel.md).
DEFAULT_BULK_THRESHOLD = 20_000


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
