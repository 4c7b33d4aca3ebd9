"""``[core] hostname_callable`` of the cluster's workers: the hostname their task instances report.

All workers of a local cluster run on one machine, so the default (the machine's FQDN) cannot tell them
apart; each worker's environment names it instead. Imported by Airflow inside the worker processes.
"""

from __future__ import annotations

import os
import socket


def worker_hostname() -> str:
    return os.environ.get("OPTIMIZELY_CLUSTER_HOSTNAME") or socket.getfqdn()
