"""``LocalCluster``: start, inspect and stop Airflow with the CeleryExecutor on loopback.

    cluster = LocalCluster(ClusterSettings(dag_folders=(Path("my_dags"),)))
    cluster.up()                     # migrate, start every process, wait until each is ready
    outcome = cluster.api().run("my_dag", {"rows": 100})
    cluster.down()

Processes (each its own session, log file ``logs/<name>.log`` and pid file ``run/<name>.pid`` under the
cluster's folder): ``api-server`` (REST API, UI and the execution API the workers call), ``scheduler``,
``dag-processor``, ``triggerer``, and ``worker-1``...``worker-N`` (Celery workers). The settings every
process shares are in ``airflow-home/airflow.cfg``; ``cluster.json`` says where the running cluster is.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from importlib.metadata import version
from pathlib import Path
from typing import Any

from scripts.cluster import processes, stores
from scripts.cluster.api import AirflowApi
from scripts.cluster.members import (
    CORE_MEMBERS,
    WATCHDOG,
    command,
    ping_workers,
    process_env,
    watchdog_command,
)
from scripts.cluster.processes import Member
from scripts.cluster.settings import (
    ADMIN_USER,
    LOOPBACK,
    REPO_ROOT,
    ClusterSettings,
    Secrets,
    airflow_config,
    free_port,
    port_is_free,
    worker_hostname,
    worker_queue,
    write_config,
)

STATE_FILE = "cluster.json"
Echo = Callable[[str], None]


class ClusterError(RuntimeError):
    """The cluster could not start (the message holds the failing process's log tail) or is misused."""


class LocalCluster:
    @classmethod
    def at(cls, folder: Path, *, echo: Echo = print) -> LocalCluster:
        """The cluster last started in ``folder``, as its ``cluster.json`` describes it (for ``down`` and
        ``status`` from another process)."""
        folder = Path(folder).resolve()
        try:
            state = json.loads((folder / STATE_FILE).read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return cls(ClusterSettings(folder=folder), echo=echo)
        settings = ClusterSettings(
            folder=folder,
            dag_folders=tuple(Path(path) for path in state["dag_folders"]),
            workers=len(state["workers"]),
            redis_url=state["redis_url"],
            redis_db=state["redis_db"],
            postgres_url=state["postgres_url"],
        )
        return cls(settings, echo=echo)

    def __init__(self, settings: ClusterSettings, *, echo: Echo = print) -> None:
        self.settings = settings
        self.echo = echo
        self.folder = settings.folder
        self.home = self.folder / "airflow-home"
        self._children: dict[str, subprocess.Popen[bytes]] = {}
        self._state: dict[str, Any] = self._read_state()

    # --- where things are --------------------------------------------------------------------------

    @property
    def cluster_id(self) -> str:
        return self.settings.cluster_id

    def member(self, name: str) -> Member:
        return Member(name, self.folder / "logs" / f"{name}.log", self.folder / "run" / f"{name}.pid")

    def member_names(self) -> list[str]:
        return [*CORE_MEMBERS, *self.settings.worker_names()]

    @property
    def api_url(self) -> str:
        if "api_url" not in self._state:
            raise ClusterError(f"no cluster was started in {self.folder}")
        return str(self._state["api_url"])

    @property
    def api_port(self) -> int:
        return int(self.api_url.rsplit(":", 1)[1])

    @property
    def admin_password(self) -> str:
        return str(self._state["admin_password"])

    def api(self) -> AirflowApi:
        return AirflowApi(self.api_url, ADMIN_USER, self.admin_password)

    def worker_hostname(self, worker: str) -> str:
        """The ``hostname`` of the task instances this worker runs."""
        return worker_hostname(self.cluster_id, worker)

    def _read_state(self) -> dict[str, Any]:
        try:
            state: dict[str, Any] = json.loads((self.folder / STATE_FILE).read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {}
        return state

    def _write_state(self) -> None:
        path = self.folder / STATE_FILE
        path.write_text(json.dumps(self._state, indent=2) + "\n")
        path.chmod(0o600)  # it holds the admin's password

    # --- up ----------------------------------------------------------------------------------------

    def up(
        self,
        *,
        fresh_database: bool = False,
        timeout: float = 240.0,
        owner_pid: int | None = None,
        drop_database_after: bool = False,
    ) -> None:
        """Start every process and wait until each is ready; on failure stop them all and raise.

        With ``owner_pid`` (a test session's pid), a watchdog process stops the cluster as soon as the
        owner is gone, however it ended (even ``kill -9``), and drops its database if
        ``drop_database_after``."""
        started = time.monotonic()
        if running := self.running_members():
            raise ClusterError(
                f"the cluster in {self.folder} already runs ({', '.join(running)}): down first"
            )
        self._prepare_folder()
        settings = self.settings
        stores.check_redis(settings.celery_url)
        created = stores.create_database(settings.postgres_url, settings.database, fresh=fresh_database)
        stores.clear_redis_prefix(settings.celery_url, settings.redis_prefix)
        keys = Secrets.generate()
        api_port = settings.api_port or free_port()
        if not port_is_free(api_port):
            raise ClusterError(f"port {api_port} is in use: choose another (or 0 for a free one)")
        self._write_home(api_port, keys)
        self._state = {
            "cluster_id": self.cluster_id,
            "folder": str(self.folder),
            "api_url": f"http://{LOOPBACK}:{api_port}",
            "admin_password": keys.admin_password,
            "database": settings.database,
            "postgres_url": settings.postgres_url,
            "redis_url": settings.redis_url,
            "redis_db": settings.redis_db,
            "redis_prefix": settings.redis_prefix,
            "workers": settings.worker_names(),
            "dag_folders": [str(path) for path in settings.dag_folders],
            "extra_env": sorted(settings.extra_env),
            "migrated": self._state.get("migrated") if not created else None,
        }
        self._write_state()
        try:
            if owner_pid is not None:
                self._start_watchdog(owner_pid, drop_database_after)
            # Workers never touch the metadata DB (tasks reach it through the api-server): they start
            # while it migrates.
            for worker in settings.worker_names():
                self._start(worker)
            self._migrate(timeout)
            for name in CORE_MEMBERS:
                self._start(name)
            self._wait_ready(self.member_names(), started + timeout)
        except BaseException:
            self.down(grace=5.0)
            raise
        self._state["started_seconds"] = round(time.monotonic() - started, 1)
        self._write_state()
        self.echo(self.describe())

    def _prepare_folder(self) -> None:
        for path in (self.folder, self.home, self.folder / "logs", self.folder / "run"):
            path.mkdir(parents=True, exist_ok=True)
        self.folder.chmod(0o700)
        (self.folder / ".gitignore").write_text("*\n")
        for name in self.member_names():
            self.member(name).pid_file.unlink(missing_ok=True)

    def _write_home(self, api_port: int, keys: Secrets) -> None:
        passwords = self.home / "passwords.json"
        passwords.write_text(json.dumps({ADMIN_USER: keys.admin_password}) + "\n")
        passwords.chmod(0o600)
        write_config(self.home / "airflow.cfg", airflow_config(self.settings, self.home, api_port, keys))

    def _start(self, name: str) -> None:
        member = self.member(name)
        member.log.unlink(missing_ok=True)
        argv = command(self.settings, name, self.api_port)
        self._children[name] = processes.spawn(member, argv, self._env(name), self.home)

    def _env(self, name: str) -> dict[str, str]:
        return process_env(self.settings, self.home, name)

    def _start_watchdog(self, owner_pid: int, drop_database: bool) -> None:
        argv = watchdog_command(self.folder, owner_pid, drop_database)
        member = self.member(WATCHDOG)
        self._children[WATCHDOG] = processes.spawn(member, argv, self._env(WATCHDOG), REPO_ROOT)

    def _migrate(self, timeout: float) -> None:
        revision = self._database_revision()
        airflow_version = version("apache-airflow-core")
        if revision and self._state.get("migrated") == {"revision": revision, "airflow": airflow_version}:
            return
        began = time.monotonic()
        member = self.member("migrate")
        with member.log.open("wb") as log:
            try:
                result = subprocess.run(
                    [sys.executable, "-m", "airflow", "db", "migrate"],
                    env=self._env("migrate"),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    timeout=timeout,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                raise ClusterError(f"airflow db migrate took over {timeout} s ({member.log})") from None
        if result.returncode != 0:
            raise ClusterError(f"airflow db migrate failed ({member.log}):\n{member.log_tail()}")
        self._state["migrated"] = {"revision": self._database_revision(), "airflow": airflow_version}
        self._write_state()
        self.echo(f"migrated {self.settings.database} in {time.monotonic() - began:.1f} s")

    def _database_revision(self) -> str | None:
        return stores.alembic_revision(self.settings.postgres_url, self.settings.database)

    # --- readiness ---------------------------------------------------------------------------------

    def _wait_ready(self, names: Iterable[str], deadline: float) -> None:
        names = set(names)
        waiting = set(names)
        api = AirflowApi(self.api_url, ADMIN_USER, self.admin_password, timeout=5.0)
        try:
            while waiting:
                self._check_alive(waiting)
                waiting -= self._ready(waiting, api)
                if not waiting:
                    self._check_alive(names)  # none of those ready earlier has died since
                    return
                if time.monotonic() >= deadline:
                    tails = "\n\n".join(f"== {n} ==\n{self.member(n).log_tail()}" for n in sorted(waiting))
                    raise ClusterError(f"not ready in time: {', '.join(sorted(waiting))}\n{tails}")
                time.sleep(0.5)
        finally:
            api.close()

    def _check_alive(self, names: Iterable[str]) -> None:
        for name in names:
            pid = self.member(name).pid()
            if pid is None or not processes.is_running(pid):
                child = self._children.get(name)
                code = child.poll() if child else None
                member = self.member(name)
                raise ClusterError(f"{name} exited (code {code}); {member.log}:\n{member.log_tail()}")

    def _ready(self, waiting: set[str], api: AirflowApi) -> set[str]:
        ready: set[str] = set()
        if waiting & set(CORE_MEMBERS):
            health = api.health_or_none()
            # The admin's password, new at every `up`, is accepted by this cluster's api-server only:
            # not by whatever else might answer on the port.
            if health is not None and api.logs_in():
                ready.add("api-server")
                for name, key in (
                    ("scheduler", "scheduler"),
                    ("triggerer", "triggerer"),
                    ("dag-processor", "dag_processor"),
                ):
                    if (health.get(key) or {}).get("status") == "healthy":
                        ready.add(name)
        if workers := sorted(name for name in waiting if name.startswith("worker-")):
            ready.update(self.ping_workers(workers))
        return ready

    def ping_workers(self, workers: Iterable[str], timeout: float = 1.0) -> set[str]:
        """The workers that answer a Celery ``ping`` (``celery inspect ping``) within ``timeout``."""
        return ping_workers(self.settings, workers, timeout)

    def wait_workers(self, workers: Iterable[str], timeout: float = 120.0) -> None:
        self._wait_ready(workers, time.monotonic() + timeout)

    # --- workers -----------------------------------------------------------------------------------

    def worker_pid(self, worker: str) -> int:
        """The pid of a worker's main process (its pool and its tasks run in its children)."""
        pid = self.member(worker).pid()
        if pid is None:
            raise ClusterError(f"{worker} is not running")
        return pid

    def kill_worker(self, worker: str) -> list[int]:
        """``kill -9`` a worker with all its children at once, as if its machine were lost."""
        pids = processes.kill_member(self.cluster_id, worker, self.member(worker).pid())
        processes.wait_gone(pids, 10.0, self._children.values())
        return pids

    def start_worker(self, worker: str, *, timeout: float = 120.0) -> None:
        """Start a worker that is down (after ``kill_worker``) and wait until it answers a ping."""
        if worker not in self.settings.worker_names():
            raise ClusterError(f"no worker {worker!r}")
        if processes.cluster_pids(self.cluster_id, self._leaders(), worker):
            raise ClusterError(f"{worker} still runs")
        self._start(worker)
        self.wait_workers([worker], timeout)

    # --- status and down ---------------------------------------------------------------------------

    def _leaders(self) -> dict[str, int]:
        """``{member: pid}`` of the leaders that run (the process each pid file recorded), this process
        left out (the watchdog stops the cluster it belongs to)."""
        names = [*self.member_names(), WATCHDOG]
        leaders = {name: pid for name in names if (pid := self.member(name).pid())}
        return {name: pid for name, pid in leaders.items() if pid != os.getpid()}

    def running_members(self) -> list[str]:
        return sorted(set(processes.cluster_pids(self.cluster_id, self._leaders()).values()))

    def status(self) -> dict[str, Any]:
        members: list[dict[str, Any]] = []
        watched = self.member(WATCHDOG).pid_file.exists()
        for name in [*self.member_names(), *([WATCHDOG] if watched else [])]:
            member = self.member(name)
            pid = member.pid()
            members.append({"name": name, "pid": pid, "running": pid is not None, "log": str(member.log)})
        result: dict[str, Any] = {"folder": str(self.folder), "members": members}
        if self._state.get("api_url") and any(entry["running"] for entry in members):
            result["api_url"] = self.api_url
            api = self.api()
            try:
                result["health"] = api.health_or_none()
            finally:
                api.close()
            running = {entry["name"] for entry in members if entry["running"]}
            workers = [name for name in self.settings.worker_names() if name in running]
            result["workers_answering"] = sorted(self.ping_workers(workers)) if workers else []
        return result

    def describe(self) -> str:
        lines = [
            f"Airflow (CeleryExecutor) is up in {self._state.get('started_seconds', '?')} s",
            f"  api-server and UI: {self.api_url}  (user {ADMIN_USER}, password {self.admin_password})",
            f"  AIRFLOW_HOME:      {self.home}",
            f"  logs:              {self.folder / 'logs'}/<process>.log, task logs in {self.home / 'logs'}",
            f"  DAG folders:       {', '.join(str(path) for path in self.settings.dag_folders)}",
            f"  metadata DB:       {self.settings.postgres_url}/{self.settings.database}",
            f"  Celery:            {self.settings.celery_url} (keys prefixed {self.settings.redis_prefix})",
        ]
        for worker in self.settings.worker_names():
            lines.append(
                f"  {worker}:          hostname {self.worker_hostname(worker)}, queue {worker_queue(worker)}"
            )
        return "\n".join(lines)

    def down(self, *, grace: float = 20.0, drop_database: bool = False) -> list[str]:
        """Stop every process of this cluster (and only those); return what had to be killed."""
        killed = processes.stop_cluster_processes(
            self.cluster_id, self._leaders(), grace=grace, children=self._children.values()
        )
        for child in self._children.values():
            child.poll()
        self._children.clear()
        for name in [*self.member_names(), WATCHDOG]:
            self.member(name).pid_file.unlink(missing_ok=True)
        try:
            stores.clear_redis_prefix(self.settings.celery_url, self.settings.redis_prefix)
            if drop_database:
                stores.drop_database(self.settings.postgres_url, self.settings.database)
                if self._state:
                    self._state["migrated"] = None
        except stores.StoreUnavailable as exc:
            self.echo(f"warning: {exc}")
        if self._state:
            self._write_state()
        return killed
