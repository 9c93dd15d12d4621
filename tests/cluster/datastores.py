"""PostgreSQL and Redis of their own on a host, listening on its address.

PostgreSQL is a private cluster (initdb(1) into the host's directory, run as the `postgres` user from
Debian's binaries under /usr/lib/postgresql/<version>/bin): the machine's own server is never touched,
so it needs none and no test run sees another's roles or databases.
"""

from __future__ import annotations

import pwd
import shutil
import signal
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.cluster import netns
from tests.cluster.hosts import Host, Proc

PG_ROOT = Path("/usr/lib/postgresql")
PG_USER = "postgres"
DATABASE = "trunkline"
START_TIMEOUT = 30.0


def pg_bindir() -> Path | None:
    """The newest installed PostgreSQL's bin directory, or None."""
    found = [d / "bin" for d in PG_ROOT.glob("*") if (d / "bin" / "initdb").exists()]
    return max(found, key=lambda d: int(d.parent.name) if d.parent.name.isdigit() else 0, default=None)


def postgres_missing() -> str | None:
    if pg_bindir() is None:
        return (
            f"PostgreSQL's server binaries are not under {PG_ROOT}/<version>/bin (apt-get install postgresql)"
        )
    try:
        pwd.getpwnam(PG_USER)
    except KeyError:
        return f"there is no `{PG_USER}` user to run a private PostgreSQL as (apt-get install postgresql)"
    return None


def redis_missing() -> str | None:
    if shutil.which("redis-server") is None:
        return "redis-server is not installed (apt-get install redis-server)"
    return None


@dataclass
class Postgres:
    host: Host
    proc: Proc
    port: int

    def url(self, *, user: str = PG_USER, database: str = DATABASE) -> str:
        """A trunkline database URL (README.md, TRUNKLINE_DATABASE_URL). Every role logs in without a
        password: pg_hba trusts the test subnet."""
        return f"postgresql://{user}@{self.host.ip}:{self.port}/{database}"


def start_postgres(host: Host, *, port: int = 5432, database: str = DATABASE) -> Postgres:
    """A fresh cluster on `host`, trusting the topology's subnet, with `database` created."""
    bindir = pg_bindir()
    assert bindir is not None, postgres_missing()
    owner = pwd.getpwnam(PG_USER)
    data = host.workdir / "pgdata"
    data.mkdir(mode=0o700)
    shutil.chown(data, owner.pw_uid, owner.pw_gid)
    # --no-sync: a throw-away cluster need not wait for the disk (initdb(1)); about a second.
    host.run(
        [
            bindir / "initdb",
            "--pgdata",
            data,
            "--username",
            PG_USER,
            "--auth",
            "trust",
            "--encoding",
            "UTF8",
            "--locale",
            "C",
            "--no-sync",
            "--no-instructions",
        ],
        user=PG_USER,
    )
    # Any role from any host of the test subnet, without a password: test-only (pg_hba.conf docs,
    # https://www.postgresql.org/docs/current/auth-pg-hba-conf.html). The file stays the postgres
    # user's: appending keeps its owner.
    with (data / "pg_hba.conf").open("a") as hba:
        hba.write(f"host all all {host.topology.subnet} trust\n")
    settings = {
        "listen_addresses": host.ip,
        "port": str(port),
        "unix_socket_directories": str(data),
        # Durability is not what these tests are about; without it a commit costs no disk flush
        # (https://www.postgresql.org/docs/current/non-durability.html).
        "fsync": "off",
        "synchronous_commit": "off",
        "full_page_writes": "off",
        # two API nodes, two edges (Kamailio's children each hold connections) and the test itself
        "max_connections": "300",
    }
    argv: list[str | Path] = [bindir / "postgres", "-D", data]
    for name, value in settings.items():
        argv += ["-c", f"{name}={value}"]
    proc = host.popen(argv, log="postgres", user=PG_USER, stop_signal=signal.SIGINT)
    pg_isready: list[str | Path] = [bindir / "pg_isready", "--quiet", "--host", host.ip, "--port", str(port)]
    proc.wait_until(
        lambda: host.run(pg_isready, check=False).returncode == 0,
        timeout=START_TIMEOUT,
        what=f"PostgreSQL accepting connections on {host.ip}:{port}",
    )
    psql: list[str | Path] = [
        bindir / "psql",
        "--host",
        host.ip,
        "--port",
        str(port),
        "--username",
        PG_USER,
        "--dbname",
    ]
    host.run([*psql, "postgres", "--quiet", "--command", f'CREATE DATABASE "{database}"'])
    return Postgres(host, proc, port)


def release_shared_memory(run_dir: Path) -> None:
    """Remove the System V shared memory segment of a private cluster that was killed (SIGKILL, a
    crashed run): a server that shuts down removes its own, a killed one leaves it behind. The
    segment's key and id are line 7 of postmaster.pid (storage/ipc/ipc.c, "postmaster.pid" in the
    PostgreSQL docs' "Database File Layout"); only a segment nothing is attached to is removed
    (ipcs(1), ipcrm(1))."""
    for pidfile in run_dir.glob("*/pgdata/postmaster.pid"):
        try:
            key, shmid = pidfile.read_text().splitlines()[6].split()
        except (OSError, IndexError, ValueError):
            continue
        listing = subprocess.run(["ipcs", "-m"], capture_output=True, text=True, check=False).stdout
        for row in listing.splitlines():
            cols = row.split()  # key shmid owner perms bytes nattch status
            if len(cols) >= 6 and cols[1] == shmid and int(cols[0], 16) == int(key) and cols[5] == "0":
                subprocess.run(["ipcrm", "-m", shmid], capture_output=True, check=False)


netns.RUN_DIR_CLEANUPS.append(release_shared_memory)


@dataclass
class Redis:
    host: Host
    proc: Proc
    port: int

    @property
    def url(self) -> str:
        return f"redis://{self.host.ip}:{self.port}/0"  # README.md, TRUNKLINE_REDIS_URL


def redis_pong(ip: str, port: int) -> bool:
    """Whether Redis answers PING (its protocol: https://redis.io/docs/latest/develop/reference/protocol-spec/)."""
    try:
        with socket.create_connection((ip, port), timeout=1) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def start_redis(host: Host, *, port: int = 6379) -> Redis:
    """redis-server on the host's address, keeping nothing on disk."""
    proc = host.popen(
        [
            "redis-server",
            "--bind",
            host.ip,
            "--port",
            str(port),
            # Nothing to keep: no snapshots, no append-only file (redis.conf, "SNAPSHOTTING").
            "--save",
            "",
            "--appendonly",
            "no",
            # Clients come from other hosts and there is no password: protected mode would refuse
            # them (redis.conf, "protected-mode"). Only the test subnet can reach this address.
            "--protected-mode",
            "no",
            "--dir",
            str(host.workdir),
        ],
        log="redis",
    )
    proc.wait_until(
        lambda: host.call(redis_pong, host.ip, port),
        timeout=START_TIMEOUT,
        what=f"Redis answering on {host.ip}:{port}",
    )
    return Redis(host, proc, port)
