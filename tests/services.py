"""Loopback services the tests need, and the rule for when they are missing.

Locally a missing service skips its tests with a reason; under CI=true it fails them.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest
import redis

PG_HOST = os.environ.get("TRUNKLINE_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("TRUNKLINE_TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("TRUNKLINE_TEST_PG_USER", "postgres")
REDIS_URL = os.environ.get("TRUNKLINE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def missing(reason: str) -> None:
    """Skip locally; fail under CI, where every service must be there."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true: a missing service is a failure)")
    pytest.skip(reason)


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database for one test session, dropped afterwards."""
    if not port_open(PG_HOST, PG_PORT):
        missing(f"PostgreSQL is not reachable on {PG_HOST}:{PG_PORT}")
    import asyncio

    import asyncpg

    name = f"trunkline_test_{uuid.uuid4().hex[:12]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database="postgres")
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@dataclass
class OwnRedis:
    """A redis-server of the test's own, on a free loopback port, which the test may stop and start."""

    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> OwnRedis:
        if shutil.which("redis-server") is None:
            missing("redis-server is not installed (apt-get install redis-server)")
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        argv += ["--save", "", "--appendonly", "no"]  # nothing on disk
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not port_open("127.0.0.1", self.port):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc = None


def end_listening_sessions(database_url: str, application_name: str) -> int:
    """Terminate the sessions of `database_url` named `application_name` (store/notify.py's listeners);
    how many there were."""
    import asyncio

    import asyncpg

    async def go() -> int:
        admin = await asyncpg.connect(
            host=PG_HOST, port=PG_PORT, user=PG_USER, database=database_url.rsplit("/", 1)[1]
        )
        try:
            return int(
                await admin.fetchval(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND application_name = $1",
                    application_name,
                )
            )
        finally:
            await admin.close()

    return asyncio.run(go())


def redis_prefix(url: str = REDIS_URL) -> str:
    """A key prefix of its own in the test Redis (it must answer: `missing` otherwise), for one test's keys;
    `forget` deletes them."""
    client = redis.Redis.from_url(url, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.RedisError:
        missing(f"Redis is not reachable at {url}")
    finally:
        client.close()
    return f"test-{uuid.uuid4().hex[:10]}:"


def forget(prefix: str, url: str = REDIS_URL) -> None:
    client = redis.Redis.from_url(url, socket_connect_timeout=1)
    try:
        for key in client.scan_iter(f"{prefix}*"):
            client.delete(key)
    finally:
        client.close()
