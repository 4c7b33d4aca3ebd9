"""The cluster's processes: start one with its log and pid file, find them again, stop them.

Each process starts in a session of its own (its children, the Celery pool, the DAG processor's parsers
and task supervisors, stay in it) with ``OPTIMIZELY_CLUSTER_MEMBER`` in its environment, which every
child inherits. A process is the cluster's when it carries this cluster's mark, or when it is in the
session of a leader whose pid file names both its pid and its start time: a pid alone could be one the
system has since given to someone else. ``SPT_NOENV`` stops setproctitle (Celery and the api-server
rename their processes) from writing the title over the environment, where the mark is read.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from scripts.cluster.settings import MEMBER_ENV

PROC = Path("/proc")


@dataclass(frozen=True)
class Member:
    """One process of the cluster: its name (``scheduler``, ``worker-1``...), log and pid files."""

    name: str
    log: Path
    pid_file: Path

    def pid(self) -> int | None:
        """The leader's pid while the process the pid file recorded runs (same pid, same start time)."""
        try:
            pid_text, _, started = self.pid_file.read_text().strip().partition(" ")
            pid = int(pid_text)
        except (FileNotFoundError, ValueError):
            return None
        stat = _stat(pid)
        if stat is None or stat[19] != started or stat[0] in ("Z", "X"):
            return None
        return pid

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except FileNotFoundError:
            return f"(no log at {self.log})"
        return "\n".join(text.splitlines()[-lines:])


def spawn(member: Member, argv: Sequence[str], env: Mapping[str, str], cwd: Path) -> subprocess.Popen[bytes]:
    member.log.parent.mkdir(parents=True, exist_ok=True)
    member.pid_file.parent.mkdir(parents=True, exist_ok=True)
    with member.log.open("ab") as log:
        process = subprocess.Popen(  # noqa: S603 - the cluster's own commands, no shell
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(env),
            cwd=cwd,
            start_new_session=True,
        )
    stat = _stat(process.pid)
    member.pid_file.write_text(f"{process.pid} {stat[19] if stat else ''}\n")
    return process


def _stat(pid: int) -> list[str] | None:
    """``/proc/<pid>/stat`` after the command name: [0] state, [3] session, [19] start time."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()


def mark_of(pid: int) -> str | None:
    """The ``OPTIMIZELY_CLUSTER_MEMBER`` of a process, or None (no mark, gone, or not ours to read)."""
    try:
        environ = (PROC / str(pid) / "environ").read_bytes()
    except OSError:
        return None
    prefix = f"{MEMBER_ENV}=".encode()
    for entry in environ.split(b"\0"):
        if entry.startswith(prefix):
            return entry[len(prefix) :].decode(errors="replace")
    return None


def is_running(pid: int) -> bool:
    """Alive and not a zombie (a dead child its parent has not reaped yet still answers ``kill 0``)."""
    stat = _stat(pid)
    return stat is not None and stat[0] not in ("Z", "X")


def cluster_pids(
    cluster_id: str, leaders: Mapping[str, int] | None = None, member: str | None = None
) -> dict[int, str]:
    """Every running process of this cluster (of one member, when given): ``{pid: member}``. ``leaders``
    (``{member: pid}``, pids checked by ``Member.pid``) adds the processes of their sessions."""
    sessions = {str(pid): name for name, pid in (leaders or {}).items()}
    found: dict[int, str] = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        if pid == os.getpid():
            continue
        stat = _stat(pid)
        if stat is None or stat[0] in ("Z", "X"):
            continue
        mark = mark_of(pid)
        owner, _, name = (mark or "").partition("/")
        if owner != cluster_id:
            if stat[3] not in sessions:
                continue
            name = sessions[stat[3]]
        if member is None or name == member:
            found[pid] = name
    return found


def signal_pids(pids: Iterable[int], sig: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def wait_gone(pids: Iterable[int], timeout: float, reap: Iterable[subprocess.Popen[bytes]] = ()) -> set[int]:
    """Wait until none of ``pids`` runs; return those still running at the deadline."""
    waiting = set(pids)
    children = list(reap)
    deadline = time.monotonic() + timeout
    while True:
        for child in children:
            child.poll()  # reap our own children, or they would linger as zombies
        waiting = {pid for pid in waiting if is_running(pid)}
        if not waiting or time.monotonic() >= deadline:
            return waiting
        time.sleep(0.1)


def stop_cluster_processes(
    cluster_id: str,
    leaders: Mapping[str, int],
    *,
    grace: float,
    children: Iterable[subprocess.Popen[bytes]] = (),
) -> list[str]:
    """SIGTERM each member's leader (``{member: pid}``, checked by ``Member.pid``), give them ``grace``
    seconds together, then SIGKILL whatever of the cluster still runs: a leader past its grace, a child
    it left behind. Returns what had to be killed, for the report."""
    children = list(children)
    signal_pids(leaders.values(), signal.SIGTERM)
    # The triggerer waits 10 s for its trigger runner to obey a SIGINT; a SIGTERM ends the runner at once.
    runners = cluster_pids(cluster_id, leaders, "triggerer").keys() - set(leaders.values())
    signal_pids(runners, signal.SIGTERM)
    wait_gone(leaders.values(), grace, children)
    killed: list[str] = []
    for _ in range(3):
        left = cluster_pids(cluster_id, leaders)
        if not left:
            break
        killed.extend(f"{name} (pid {pid})" for pid, name in sorted(left.items()))
        signal_pids(left, signal.SIGKILL)
        wait_gone(left, 10.0, children)
    return killed


def kill_member(
    cluster_id: str, member: str, leader: int | None, sig: signal.Signals = signal.SIGKILL
) -> list[int]:
    """Signal every process of one member at once (its leader and all its children), as when the
    machine it ran on is lost; return their pids."""
    pids = sorted(cluster_pids(cluster_id, {member: leader} if leader else None, member))
    signal_pids(pids, sig)
    return pids
