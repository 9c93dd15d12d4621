"""Linux network namespaces for test hosts: the `ip` calls, running code inside a namespace, and
sweeping what a crashed run left behind.

A named namespace is a file under /run/netns that `ip netns add` bind-mounts and `ip netns delete`
removes (ip-netns(8)). Every name this harness makes is `tlcluster-<pid>-<hex>-<what>`: the pid of the
pytest process that made it and a random part, so parallel runs (pytest-xdist workers are separate
processes) never collide, and a name whose pid is gone is a leftover any later run may remove.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

PREFIX = "tlcluster"
NETNS_DIR = Path("/run/netns")  # where ip-netns(8) keeps named namespaces
_NAME = re.compile(rf"{PREFIX}-(?P<pid>\d+)-[0-9a-f]+(?:-.*)?")
CLONE_NEWNET = 0x40000000  # <sched.h>; setns(2) with it joins only a network namespace
_libc = ctypes.CDLL(None, use_errno=True)


class NetnsError(RuntimeError):
    """An `ip` command failed; the message is the command and what it printed."""


def new_token() -> str:
    """This run's part of every name: `<pid>-<6 hex digits>`."""
    return f"{os.getpid()}-{secrets.token_hex(3)}"


def unavailable() -> str | None:
    """Why this machine cannot make hosts, or None when it can."""
    if os.geteuid() != 0:
        return "cluster tests need root: they create network namespaces (ip-netns(8))"
    if shutil.which("ip") is None:
        return "cluster tests need `ip` from iproute2 (apt-get install iproute2)"
    return None


def ip(*args: str, check: bool = True) -> str:
    """Run `ip ARGS...` and return its output."""
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and proc.returncode != 0:
        raise NetnsError(f"ip {' '.join(args)}: {(proc.stderr or proc.stdout).strip()}")
    return proc.stdout


def namespaces() -> list[str]:
    return sorted(os.listdir(NETNS_DIR)) if NETNS_DIR.is_dir() else []


def pids_in(namespace: str) -> list[int]:
    """The processes whose network namespace is this one (`ip netns pids`), never this process."""
    proc = subprocess.run(["ip", "netns", "pids", namespace], capture_output=True, text=True, timeout=30)
    if proc.returncode != 0 and (NETNS_DIR / namespace).exists():
        raise NetnsError(f"ip netns pids {namespace}: {(proc.stderr or proc.stdout).strip()}")
    out = proc.stdout
    return [int(p) for p in out.split() if p.isdigit() and int(p) != os.getpid()]


def kill_all_in(namespace: str, sig: signal.Signals = signal.SIGKILL) -> list[int]:
    pids = pids_in(namespace)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
    return pids


def gone(pid: int) -> bool:
    """Whether every thread of a process has exited. The process's pid leaves its namespace's list
    as soon as its main thread exits, while other threads may still hold its sockets open (a thread
    group ends with its last thread, exit(2)): so each task under /proc/<pid>/task is looked at
    (proc(5): state Z is a zombie, X dead)."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return True
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                # "pid (comm) state ...": comm may hold spaces and parentheses, so after the last ")"
                state = f.read().rpartition(")")[2].split()[0]
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if state not in ("Z", "X"):
            return False
    return True


def delete(namespace: str) -> None:
    """Kill what runs in the namespace, then remove its name. A namespace lives on, unnamed, while a
    process is still in it (network_namespaces(7)), so the processes go first."""
    deadline = time.monotonic() + 10
    while kill_all_in(namespace) and time.monotonic() < deadline:
        time.sleep(0.05)
    ip("netns", "delete", namespace, check=False)


def run_in(namespace: str, fn: Callable[..., T], *args: Any) -> T:
    """Call `fn(*args)` on a new thread that first joins `namespace`, and return what it returns.

    setns(2) moves only the calling thread, and a socket belongs for its whole life to the namespace
    it was created in, whichever thread uses it later (network_namespaces(7)): so sockets `fn`
    creates (a connection, a listener) stay on that host, and the test's own threads never move.
    """
    result: list[T] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            fd = os.open(NETNS_DIR / namespace, os.O_RDONLY | os.O_CLOEXEC)
            try:
                # os.setns exists from Python 3.12; the project supports 3.11 (pyproject.toml).
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"setns into {namespace}: {os.strerror(err)}")
            finally:
                os.close(fd)
            result.append(fn(*args))
        except BaseException as exc:  # handed to the caller's thread below
            error.append(exc)

    thread = threading.Thread(target=target, name=f"netns-{namespace}", daemon=True)
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stale(name: str) -> bool:
    """A harness name whose creating process is gone."""
    m = _NAME.fullmatch(name)
    return m is not None and not pid_alive(int(m["pid"]))


def sweep_stale() -> list[str]:
    """Remove what crashed runs left: their namespaces (and what still runs in them) and their
    temporary directories. Two runs sweeping at once is harmless: each step tolerates the other."""
    removed = []
    for name in namespaces():
        if stale(name):
            delete(name)
            removed.append(name)
    for path in Path(tempfile.gettempdir()).glob(f"{PREFIX}-*"):
        if path.is_dir() and stale(path.name):
            remove_run_dir(path)
            removed.append(str(path))
    return removed


# Called with a run's directory before it is removed (its namespaces are gone by then): a service
# whose killed process leaves something outside the directory registers how to release it here.
RUN_DIR_CLEANUPS: list[Callable[[Path], None]] = []


def remove_run_dir(path: Path) -> None:
    for cleanup in RUN_DIR_CLEANUPS:
        cleanup(path)
    shutil.rmtree(path, ignore_errors=True)
