"""A local Airflow cluster with the CeleryExecutor, started and stopped by the project (docs/cluster.md).

    python -m scripts.cluster up | status | down      (or: make cluster-up, cluster-status, cluster-down)

From Python (the tests in ``tests/cluster`` do this): ``LocalCluster(ClusterSettings(...)).up()``, then
``cluster.api()`` to trigger a DAG run and wait for its end, ``cluster.kill_worker("worker-1")`` to lose a
worker, ``cluster.down()``.
"""

from scripts.cluster.api import AirflowApi, ApiError, RunOutcome
from scripts.cluster.control import ClusterError, LocalCluster
from scripts.cluster.settings import ClusterSettings

__all__ = ["AirflowApi", "ApiError", "ClusterError", "ClusterSettings", "LocalCluster", "RunOutcome"]
