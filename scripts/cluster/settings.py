"""What a local cluster is made of: its folder, names, ports and the ``airflow.cfg`` its processes share.

Everything that must not clash with another cluster on the same machine (another checkout, another test
session) derives from the cluster's folder: the Postgres database, the Redis key prefix, the Celery node
names and the workers' hostnames all carry ``cluster_id``, a short hash of the folder's path.
"""

from __future__ import annotations

import configparser
import hashlib
import json
import secrets
import socket
from base64 import urlsafe_b64encode
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_FOLDER = REPO_ROOT / ".cluster"
DEFAULT_DAG_FOLDERS = (REPO_ROOT / "example_dags",)
LOOPBACK = "127.0.0.1"
# Redis and PostgreSQL as every machine of the project runs them (README, CI).
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379"
DEFAULT_REDIS_DB = 6
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432"
ADMIN_USER = "admin"
# Set in the environment of every process the cluster starts (and inherited by their children):
# ``<cluster_id>/<member>``. ``down`` finds leftovers by it, and never touches a process without it.
MEMBER_ENV = "OPTIMIZELY_CLUSTER_MEMBER"
# The hostname a worker's task instances report (``scripts.cluster.hostname``).
HOSTNAME_ENV = "OPTIMIZELY_CLUSTER_HOSTNAME"


def free_port(host: str = LOOPBACK) -> int:
    """A port nobody listens on now (the api-server binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int, host: str = LOOPBACK) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


@dataclass
class ClusterSettings:
    """How to start a cluster. Only ``folder`` is needed to find a running one again."""

    folder: Path = DEFAULT_FOLDER
    dag_folders: tuple[Path, ...] = DEFAULT_DAG_FOLDERS
    workers: int = 2
    #: Task slots per Celery worker.
    worker_concurrency: int = 2
    #: The api-server's port; 0 picks a free one (never 8080, where a user's own Airflow may listen).
    api_port: int = 0
    redis_url: str = DEFAULT_REDIS_URL
    redis_db: int = DEFAULT_REDIS_DB
    postgres_url: str = DEFAULT_POSTGRES_URL
    #: Seconds without a heartbeat after which the scheduler fails a running task (and retries it, if the
    #: task has retries left). A killed worker's task comes back after about this long.
    task_heartbeat_timeout: int = 20
    #: Seconds a message a worker took but never acknowledged waits in Redis before another worker gets
    #: it. Longer than any task (Celery would redeliver a task that runs longer), shorter than Airflow's
    #: 24 h default.
    visibility_timeout: int = 3600
    #: Extra environment of every process, e.g. ``AIRFLOW_CONN_*`` pointing at the emulator.
    extra_env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.folder = Path(self.folder).resolve()
        self.dag_folders = tuple(Path(path).resolve() for path in self.dag_folders)
        if not self.dag_folders:
            raise ValueError("a cluster needs at least one DAG folder")
        if self.workers < 1:
            raise ValueError("a cluster needs at least one worker")

    @property
    def cluster_id(self) -> str:
        return cluster_id_of(self.folder)

    @property
    def database(self) -> str:
        return f"airflow_cluster_{self.cluster_id}"

    @property
    def redis_prefix(self) -> str:
        return f"optimizely-cluster-{self.cluster_id}:"

    @property
    def celery_url(self) -> str:
        return f"{self.redis_url.rstrip('/')}/{self.redis_db}"

    @property
    def queue(self) -> str:
        """The queue every worker serves (Airflow's ``[operators] default_queue``)."""
        return "default"

    def worker_names(self) -> list[str]:
        return [f"worker-{number}" for number in range(1, self.workers + 1)]


def cluster_id_of(folder: Path) -> str:
    return hashlib.sha256(str(Path(folder).resolve()).encode()).hexdigest()[:10]


def worker_hostname(cluster_id: str, worker: str) -> str:
    """What a worker's task instances report as their hostname: one per worker, unique on the machine."""
    return f"{worker}.cluster-{cluster_id}"


def celery_node_name(cluster_id: str, worker: str) -> str:
    return f"{worker}@cluster-{cluster_id}"


def worker_queue(worker: str) -> str:
    """A queue only this worker serves: ``queue=`` on a task pins it to one worker."""
    return worker


@dataclass
class Secrets:
    """Keys shared by every process of one cluster; new for every ``up``."""

    fernet_key: str
    jwt_secret: str
    api_secret_key: str
    admin_password: str

    @classmethod
    def generate(cls) -> Secrets:
        return cls(
            fernet_key=urlsafe_b64encode(secrets.token_bytes(32)).decode(),
            jwt_secret=secrets.token_urlsafe(32),
            api_secret_key=secrets.token_urlsafe(32),
            admin_password=secrets.token_urlsafe(12),
        )


def airflow_config(
    settings: ClusterSettings, home: Path, api_port: int, keys: Secrets
) -> dict[str, dict[str, str]]:
    """The sections of ``airflow.cfg`` (names as in Airflow's ``config_templates/config.yml`` and the
    Celery provider's ``get_provider_info``)."""
    api_url = f"http://{LOOPBACK}:{api_port}"
    postgres = settings.postgres_url.rstrip("/").replace("postgresql://", "postgresql+psycopg2://", 1)
    bundles = [
        {
            "name": f"dags-{index}-{folder.name}",
            "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
            "kwargs": {"path": str(folder)},
        }
        for index, folder in enumerate(settings.dag_folders, start=1)
    ]
    return {
        "core": {
            "executor": "CeleryExecutor",
            "dags_folder": str(settings.dag_folders[0]),
            "load_examples": "False",
            "fernet_key": keys.fernet_key,
            # Task workers talk to Airflow only through the api-server's execution API.
            "execution_api_server_url": f"{api_url}/execution/",
            "simple_auth_manager_users": f"{ADMIN_USER}:admin",
            "simple_auth_manager_passwords_file": str(home / "passwords.json"),
        },
        "database": {
            "sql_alchemy_conn": f"{postgres}/{settings.database}",
            # Six processes share a server other test sessions use too (max_connections 100).
            "sql_alchemy_pool_size": "2",
            "sql_alchemy_max_overflow": "4",
        },
        "api": {
            "host": LOOPBACK,
            "port": str(api_port),
            "base_url": api_url,
            "workers": "1",
            "secret_key": keys.api_secret_key,
        },
        # The scheduler signs each task's execution-API token with it; the api-server checks it.
        "api_auth": {"jwt_secret": keys.jwt_secret},
        "scheduler": {
            "task_instance_heartbeat_timeout": str(settings.task_heartbeat_timeout),
            "task_instance_heartbeat_timeout_detection_interval": "2",
        },
        "dag_processor": {
            "dag_bundle_config_list": json.dumps(bundles),
            # A DAG file added while the cluster runs shows up within seconds, not Airflow's 5 minutes.
            "refresh_interval": "10",
        },
        "celery": {
            "broker_url": settings.celery_url,
            "result_backend": settings.celery_url,
            "worker_concurrency": str(settings.worker_concurrency),
            # Publishing to a busy 2-core machine's Redis can take longer than Airflow's 1 s.
            "operation_timeout": "5",
        },
        "celery_broker_transport_options": {
            # Every key (queues, unacked messages, the pidbox channels that `inspect ping` uses) carries
            # this prefix: two clusters on one Redis database never see each other's messages.
            "global_keyprefix": settings.redis_prefix,
            "visibility_timeout": str(settings.visibility_timeout),
        },
        "celery_result_backend_transport_options": {"global_keyprefix": settings.redis_prefix},
        "operators": {"default_queue": settings.queue},
        "logging": {
            "base_log_folder": str(home / "logs"),
            "dag_processor_child_process_log_directory": str(home / "logs" / "dag_processor"),
            "colored_console_log": "False",
        },
    }


def write_config(path: Path, sections: dict[str, dict[str, str]]) -> None:
    # Interpolation off: values are written as they are (a '%' in a key would otherwise need escaping).
    parser = configparser.RawConfigParser()
    for section, options in sections.items():
        parser[section] = {key: value.replace("%", "%%") for key, value in options.items()}
    with path.open("w") as stream:
        parser.write(stream)
