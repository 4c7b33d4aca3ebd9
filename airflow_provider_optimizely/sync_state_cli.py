"""``optimizely-sync-state show|reset SYNC_ID``: look at, or forget, the state of an incremental sync.

The store is found as the operators find it (``--state-store``, else ``[optimizely] sync_state_uri``,
else the Airflow home's ``optimizely_sync_state``), with Airflow's connections for an object store
(``--conn-id``). A sync's id is in its run report (``sync_state``) and task log; by default it is
``<dag id>.<task id>.<target>`` (with the map index or the partition of a mapped task).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from airflow_provider_optimizely.operators._sync_state import open_state_store, state_store_uri


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="optimizely-sync-state", description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["show", "reset"], help="show the state, or forget it")
    parser.add_argument("sync_id", help="the sync, as its run report names it")
    parser.add_argument("--state-store", help="a folder or an object-storage URI (s3://bucket/prefix)")
    parser.add_argument("--conn-id", help="the Airflow connection of an object-storage state store")
    arguments = parser.parse_args(argv)
    store = open_state_store(arguments.state_store, arguments.conn_id)
    where = state_store_uri(arguments.state_store)
    if arguments.action == "show":
        json.dump(
            {"state_store": where, **store.describe(arguments.sync_id)}, sys.stdout, indent=2, default=str
        )
        sys.stdout.write("\n")
    else:
        store.reset(arguments.sync_id)
        print(f"forgot the state of sync {arguments.sync_id!r} in {where}: its next run sends every row")
    return 0


if __name__ == "__main__":
    sys.exit(main())
