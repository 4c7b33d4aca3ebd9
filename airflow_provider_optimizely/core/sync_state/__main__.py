"""``python -m airflow_provider_optimizely.core.sync_state show|reset URI SYNC_ID [--key-range i/n]``."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from airflow_provider_optimizely.core.sync_state.state import StateStore


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m airflow_provider_optimizely.core.sync_state",
        description="Show or reset the state of a sync in a state store.",
    )
    parser.add_argument("action", choices=["show", "reset"])
    parser.add_argument("uri", help="the state store: a folder, file://, s3://bucket/prefix, gs://...")
    parser.add_argument("sync_id")
    parser.add_argument("--key-range", help="one key range, 'index/count' (default: every one)")
    parser.add_argument(
        "--storage-options", default="{}", help="JSON options for the filesystem (s3fs: endpoint, keys...)"
    )
    arguments = parser.parse_args(argv)
    store = StateStore.from_uri(arguments.uri, json.loads(arguments.storage_options))
    if arguments.action == "show":
        if arguments.key_range:
            described = store.sync(arguments.sync_id, arguments.key_range).describe()
        else:
            described = store.describe(arguments.sync_id)
        json.dump(described, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
        return 0
    if arguments.key_range:
        store.sync(arguments.sync_id, arguments.key_range).reset()
    else:
        store.reset(arguments.sync_id)
    print(f"reset the sync state of {arguments.sync_id!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
