"""Two `trunkline serve` processes with the control API on, sharing one database and one Redis.

What tests/control/test_shared_journal.py and test_shared_faults.py stand on. Each module claims a
Redis database of its own (1-15, never the 0 the rate-limit tests use), empties it before each test
and flushes it at the end; the outage test runs a Redis server of its own, on a free port, which it
may stop.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import httpx
import redis

from tests.frontdoor._clients import ServeProcess, serve
from tests.services import REDIS_URL, missing, port_open

ADMIN_TOKEN = "admin-" + secrets.token_urlsafe(24)
_CLAIM = "trunkline-test-claim"  # the key that marks a database as taken by a test module


@contextlib.contextmanager
def redis_database() -> Iterator[str]:
    """The URL of an empty database of the test Redis, taken for the caller and flushed afterwards."""
    parsed = urlparse(REDIS_URL)
    host, port = parsed.hostname or "127.0.0.1", parsed.port or 6379
    if not port_open(host, port):
        missing(f"Redis is not reachable at {REDIS_URL}")
    for number in range(15, 0, -1):
        client = redis.Redis(host=host, port=port, db=number)
        try:
            # SET NX: of two runs that find the same database empty, one takes it.
            if client.dbsize() == 0 and client.set(_CLAIM, "1", nx=True, ex=3600):
                try:
                    yield f"redis://{host}:{port}/{number}"
                finally:
                    client.flushdb()
                return
        finally:
            client.close()
    missing("no empty database (1-15) on the test Redis to take")


def empty(url: str) -> None:
    """Delete everything trunkline keeps in the database of `url`, not the claim."""
    with redis.Redis.from_url(url) as client:
        keys = [k for k in client.scan_iter("trunkline*", count=1000)]
        if keys:
            client.delete(*keys)


def raw_values(url: str) -> bytes:
    """Every value trunkline stored in the database of `url`, concatenated: what Redis holds."""
    chunks: list[bytes] = []
    with redis.Redis.from_url(url) as client:
        for key in client.scan_iter("trunkline*", count=1000):
            kind = client.type(key)
            if kind == b"list":
                chunks.extend(client.lrange(key, 0, -1))
            elif kind == b"hash":
                for k, v in client.hgetall(key).items():
                    chunks += [k, v]
            elif kind == b"string":
                chunks.append(client.get(key) or b"")
    return b"\n".join(chunks)


@dataclass
class Tenant:
    """An account with a /v2 client and a /_trunkline client on each instance."""

    user_id: str
    key: str
    v2: list[httpx.Client]
    control: list[httpx.Client]


@dataclass
class Instances:
    """The two API processes, the admin token's clients for each, and the accounts made on them."""

    processes: list[ServeProcess]
    admin: list[httpx.Client]
    made: list[Tenant] = field(default_factory=list)

    def tenant(self) -> Tenant:
        r = self.admin[0].post("/accounts")
        assert r.status_code == 201, r.text
        data = r.json()["data"]
        auth = {"Authorization": f"Bearer {data['key']}"}
        t = Tenant(
            user_id=data["user_id"],
            key=data["key"],
            v2=[httpx.Client(base_url=p.api, headers=auth, timeout=30) for p in self.processes],
            control=[httpx.Client(base_url=_control(p), headers=auth, timeout=30) for p in self.processes],
        )
        self.made.append(t)
        return t

    def logs(self) -> str:
        return "\n".join(p.log.read_text() for p in self.processes)

    def close_tenants(self) -> None:
        for t in self.made:
            for c in (*t.v2, *t.control):
                c.close()
        self.made.clear()


def _control(process: ServeProcess) -> str:
    return process.api.removesuffix("/v2") + "/_trunkline"


@contextlib.contextmanager
def two_instances(database_url: str, redis_url: str, log_dir: Path, **env: str) -> Iterator[Instances]:
    """Two API processes on one database, with the control API on and `redis_url` shared."""
    settings = {
        "control": "true",
        "admin_token": ADMIN_TOKEN,
        "redis_url": redis_url,
        "webhook_delivery": "false",
        **env,
    }
    with serve(database_url, log_dir, **settings) as a, serve(database_url, log_dir, **settings) as b:
        admin = [
            httpx.Client(base_url=_control(p), headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=30)
            for p in (a, b)
        ]
        instances = Instances([a, b], admin)
        try:
            yield instances
        finally:
            instances.close_tenants()
            for c in admin:
                c.close()
