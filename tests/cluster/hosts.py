"""Separate hosts for one test session: network namespaces on one private subnet.

Each host is a namespace with loopback up and one veth `eth0` holding its address. The other ends of
the veths are ports of one bridge that lives in a namespace of its own (the "switch"), so nothing is
added to the machine's own network and the subnet cannot clash with any of the machine's
(ip-netns(8), veth(4), ip-link(8) "type bridge"). Hosts have no route anywhere else: nothing outside
the machine, nor the machine's own loopback services, can be reached from them.

    topology = Topology.create(["db", "api1"])
    api1 = topology["api1"]
    proc = api1.popen(["trunkline", "serve", "--host", api1.ip])   # killed at teardown, logged
    api1.run(["redis-cli", "-h", topology["db"].ip, "ping"])
    client = api1.http_client()      # httpx, connecting from api1
    api1.call(fn, *args)             # fn on a thread inside api1's namespace (its sockets live there)
    api1.kill(signal.SIGKILL)        # every process on the host: the machine died
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpcore
import httpx

from tests.cluster import netns

T = TypeVar("T")

# Private (RFC 1918) on purpose: webhook delivery must treat the receiver host as private
# (docs/webhooks.md). The bridge lives in its own namespace, so any subnet is safe to reuse per run.
DEFAULT_SUBNET = "10.213.0.0/24"
# A host's name is part of its bridge port's interface name, "v-<name>", which must fit IFNAMSIZ
# (16 bytes with the NUL, netdevice(7)).
_HOST_NAME = re.compile(r"[a-z][a-z0-9_]{0,12}")
LOG_TAIL_LINES = 40


class StartFailed(RuntimeError):
    """A process did not come up; the message ends with the tail of its log."""


def eventually(
    check: Callable[[], T], *, timeout: float, what: str, interval: float = 0.05, watch: Proc | None = None
) -> T:
    """Poll `check` until it returns something truthy, and return that. Fail at the deadline, or as
    soon as `watch` (the process that should bring it about) has exited, with its log's tail."""
    deadline = time.monotonic() + timeout
    value = check()
    while not value:
        if watch is not None and not watch.alive():
            raise StartFailed(f"{what}: {watch} exited with {watch.popen.returncode}{watch.tail_text()}")
        if time.monotonic() > deadline:
            shown = watch.tail_text() if watch is not None else f"; last value {value!r}"
            raise (StartFailed if watch is not None else AssertionError)(
                f"{what}: not within {timeout} s{shown}"
            )
        time.sleep(interval)
        value = check()
    return value


@dataclass(repr=False)
class Proc:
    """A process started on a host: in a session of its own (so a signal reaches it and its children
    only), its stdout and stderr in `log`."""

    host: Host
    label: str
    popen: subprocess.Popen[bytes]
    log: Path
    # What asks it to stop (PostgreSQL: SIGINT is its "fast" shutdown, SIGTERM would wait for every
    # client to leave; postgres(1), "Shutting Down the Server").
    stop_signal: signal.Signals = signal.SIGTERM

    def __str__(self) -> str:
        return f"{self.label} (pid {self.popen.pid}) on {self.host.name}"

    __repr__ = __str__

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def signal(self, sig: signal.Signals) -> None:
        """Send `sig` to the process and its children (its process group), while it runs. Once it
        has been reaped its number may belong to someone else's process (group), so nothing is sent:
        what it left on the host goes with the host's namespace (Topology.close)."""
        if self.popen.poll() is None:  # not reaped: the number is still ours
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, sig)

    def stop(self, timeout: float = 15.0) -> None:
        """Ask it to stop (`stop_signal`, once: uvicorn takes a second SIGTERM as "exit now"), give it
        `timeout` seconds, then kill its group."""
        self._ask()
        self._finish(timeout)

    def _ask(self) -> None:
        self.signal(self.stop_signal)
        self.signal(signal.SIGCONT)  # one a test paused (SIGSTOP) could not act on it otherwise

    def _finish(self, timeout: float) -> None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=timeout)
        self.signal(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=5)

    def tail(self, lines: int = LOG_TAIL_LINES) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def tail_text(self) -> str:
        return f"\n--- last lines of {self.log} ---\n{self.tail()}"

    def wait_until(self, check: Callable[[], T], *, timeout: float, what: str) -> T:
        return eventually(check, timeout=timeout, what=what, watch=self)


def stop_together(procs: Iterable[Proc], timeout: float = 15.0) -> None:
    """Ask every one to stop at once, then wait for each: their shutdowns overlap."""
    procs = list(procs)
    for proc in procs:
        proc._ask()
    deadline = time.monotonic() + timeout
    for proc in procs:
        proc._finish(max(0.1, deadline - time.monotonic()))


def child_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a process on a host: this one's, less every TRUNKLINE_* variable (a node
    gets exactly the settings its helper gives it, never the test runner's), plus `extra`."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("TRUNKLINE_")}
    return base | dict(extra or {})


class _HostBackend(httpcore.SyncBackend):
    """httpcore's blocking network backend, making each TCP connection from the host's namespace."""

    def __init__(self, host: Host) -> None:
        self._host = host

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        connect = super().connect_tcp
        return self._host.call(connect, host, port, timeout, local_address, socket_options)


class HostTransport(httpx.HTTPTransport):
    """An httpx transport whose connections leave from a host. httpx builds its httpcore pool in
    __init__ with no way to pass a network backend (httpx/_transports/default.py), so the pool is
    rebuilt with one: httpcore's ConnectionPool takes `network_backend`
    (https://www.encode.io/httpcore/connection-pools/)."""

    def __init__(self, host: Host, limits: httpx.Limits = httpx.Limits()) -> None:
        super().__init__(limits=limits)
        self._pool = httpcore.ConnectionPool(
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_HostBackend(host),
        )


@dataclass(repr=False)
class Host:
    """One machine of the topology: a network namespace with one address on the shared subnet."""

    topology: Topology
    name: str
    netns: str
    ip: str
    workdir: Path
    procs: list[Proc] = field(default_factory=list)

    def __str__(self) -> str:
        return f"{self.name} ({self.ip})"

    __repr__ = __str__  # the dataclass's would print the whole topology

    def command(self, argv: Sequence[str | os.PathLike[str]], *, user: str | None = None) -> list[str]:
        """argv as run on this host: `ip netns exec` joins the namespace and execs it (ip-netns(8));
        with `user`, setpriv(1) drops to that user and execs in turn, so the pid stays the program's."""
        prefix = ["ip", "netns", "exec", self.netns]
        if user is not None:
            prefix += ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", "--"]
        return prefix + [str(a) for a in argv]

    def run(
        self,
        argv: Sequence[str | os.PathLike[str]],
        *,
        env: Mapping[str, str] | None = None,
        user: str | None = None,
        timeout: float = 60.0,
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        """Run a command on this host to completion; with `check`, fail naming its output."""
        proc = subprocess.run(
            self.command(argv, user=user),
            capture_output=True,
            text=True,
            timeout=timeout,
            env=child_environment(env),
            cwd=self.workdir,
            stdin=subprocess.DEVNULL,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"on {self}: {' '.join(map(str, argv))} exited with {proc.returncode}:\n"
                f"{proc.stdout}{proc.stderr}"
            )
        return proc

    def popen(
        self,
        argv: Sequence[str | os.PathLike[str]],
        *,
        env: Mapping[str, str] | None = None,
        log: str | None = None,
        user: str | None = None,
        stop_signal: signal.Signals = signal.SIGTERM,
    ) -> Proc:
        """Start a process on this host, stopped at teardown (or by `Proc.stop`). Its output goes to
        `<host workdir>/<log>.log` (default: the program's name), appended across restarts."""
        label = log or Path(str(argv[0])).name
        path = self.workdir / f"{label}.log"
        with path.open("ab") as out:
            popen = subprocess.Popen(
                self.command(argv, user=user),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=child_environment(env),
                cwd=self.workdir,
                start_new_session=True,
            )
        proc = Proc(self, label, popen, path, stop_signal)
        self.procs.append(proc)
        self.topology.started.append(proc)
        return proc

    def pids(self) -> list[int]:
        return netns.pids_in(self.netns)

    def kill(self, sig: signal.Signals = signal.SIGKILL, *, timeout: float = 15.0) -> list[int]:
        """Send `sig` to every process on this host and return their pids. With SIGKILL this is the
        machine dying: it returns once nothing runs on the host any more (its processes reaped)."""
        pids = netns.kill_all_in(self.netns, sig)
        if sig == signal.SIGKILL:

            def down() -> bool:
                for proc in self.procs:
                    proc.popen.poll()  # reap our own children, or they linger as zombies
                return all(netns.gone(pid) for pid in pids) and not self.pids()

            eventually(down, timeout=timeout, what=f"every process on {self} gone")
        return pids

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` on a thread inside this host's namespace (netns.run_in)."""
        return netns.run_in(self.netns, fn, *args)

    def connects(self, ip: str, port: int, timeout: float = 2.0) -> bool:
        """Whether a TCP connection from this host to ip:port is accepted."""

        def attempt() -> bool:
            try:
                with socket.create_connection((ip, port), timeout=timeout):
                    return True
            except OSError:
                return False

        return self.call(attempt)

    def http_client(self, **options: Any) -> httpx.Client:
        """An httpx client whose connections leave from this host."""
        options.setdefault("timeout", 10.0)
        return httpx.Client(transport=HostTransport(self), **options)


def root_links() -> list[str]:
    """The interfaces of the namespace this process runs in (the machine's own)."""
    return [line.split(":")[1].strip().split("@")[0] for line in netns.ip("-o", "link", "show").splitlines()]


@dataclass
class Topology:
    """The hosts of one test session, the switch joining them, and everything started on them."""

    subnet: ipaddress.IPv4Network = field(default_factory=lambda: ipaddress.IPv4Network(DEFAULT_SUBNET))
    token: str = field(default_factory=netns.new_token)
    hosts: dict[str, Host] = field(default_factory=dict)
    # every process any host started, in order: teardown stops them newest first (clients before
    # the databases they use)
    started: list[Proc] = field(default_factory=list)
    # the machine's own interfaces when the topology was made: it must add none (test_topology.py)
    root_links: frozenset[str] = frozenset()
    _free: Iterator[ipaddress.IPv4Address] | None = None

    @property
    def switch(self) -> str:
        return f"{netns.PREFIX}-{self.token}-switch"

    @property
    def workdir(self) -> Path:
        return Path(tempfile.gettempdir()) / f"{netns.PREFIX}-{self.token}"

    @classmethod
    def create(cls, names: Iterable[str] = (), subnet: str = DEFAULT_SUBNET) -> Topology:
        """The switch and these hosts, after removing what crashed earlier runs left."""
        netns.sweep_stale()
        topology = cls(subnet=ipaddress.IPv4Network(subnet), root_links=frozenset(root_links()))
        try:
            topology._start_switch()
            for name in names:
                topology.add_host(name)
        except BaseException:
            topology.close()
            raise
        return topology

    def _start_switch(self) -> None:
        # Traversable by others (PostgreSQL runs as `postgres` in a directory below), listable by none.
        self.workdir.mkdir(mode=0o711)
        self.workdir.chmod(0o711)
        self._free = self.subnet.hosts()
        netns.ip("netns", "add", self.switch)
        netns.ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
        netns.ip("-n", self.switch, "link", "set", "br0", "up")

    def add_host(self, name: str) -> Host:
        """A new host on the subnet, with the next free address. Cheap: a namespace, a veth pair and
        a few `ip` calls (a few tens of milliseconds)."""
        if not _HOST_NAME.fullmatch(name) or name == "switch":
            raise ValueError(f"host name {name!r}: 1-13 of [a-z0-9_], starting with a letter; not 'switch'")
        if name in self.hosts:
            raise ValueError(f"host {name!r} exists already")
        assert self._free is not None, "Topology.create() first"
        address = str(next(self._free))
        space = f"{netns.PREFIX}-{self.token}-{name}"
        workdir = self.workdir / name
        workdir.mkdir(mode=0o711)
        workdir.chmod(0o711)
        netns.ip("netns", "add", space)
        self.hosts[name] = host = Host(self, name, space, address, workdir)
        port = f"v-{name}"
        # Both ends are made where they live: the port in the switch, eth0 in the host (ip-link(8):
        # `peer ... netns`), so no interface ever appears in the machine's own namespace.
        netns.ip(
            "-n", self.switch, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", space
        )
        netns.ip("-n", self.switch, "link", "set", port, "master", "br0", "up")
        netns.ip("-n", space, "addr", "add", f"{address}/{self.subnet.prefixlen}", "dev", "eth0")
        netns.ip("-n", space, "link", "set", "eth0", "up")
        netns.ip("-n", space, "link", "set", "lo", "up")
        return host

    def __getitem__(self, name: str) -> Host:
        return self.hosts[name]

    def namespaces(self) -> list[str]:
        return [self.switch, *(h.netns for h in self.hosts.values())]

    def close(self) -> None:
        """Stop every process (newest first), then remove the namespaces and the directory."""
        for proc in reversed(self.started):
            proc.stop()
        for host in self.hosts.values():
            netns.delete(host.netns)
        netns.delete(self.switch)
        netns.remove_run_dir(self.workdir)
