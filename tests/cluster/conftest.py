"""The cluster of one test session: separate hosts (network namespaces) on one private subnet, and the
db host's PostgreSQL and Redis that every node shares.

Needs root and iproute2: without them the cluster tests skip with the reason locally and fail under
CI=true (tests/services.py, `missing`). Tests add nodes with tests/cluster/nodes.py (`start_api`,
`start_edge`) and more hosts with `topology.add_host(name)`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.cluster import datastores, netns
from tests.cluster.hosts import Host, Topology
from tests.conftest import mint_key
from tests.services import missing
from trunkline.store import migrate
from trunkline.store.db import Database

# The hosts every session has. ops is the operator's machine: the tests' SDK clients, key minting
# and direct database work run from there, never from the machine's own namespace (which has no route
# to the subnet).
HOSTS = ("db", "api1", "api2", "edge_a", "edge_b", "phone", "carrier", "receiver", "ops")


@pytest.fixture(scope="session")
def topology() -> Iterator[Topology]:
    if reason := netns.unavailable():
        missing(reason)
    try:
        topology = Topology.create(HOSTS)
    except netns.NetnsError as exc:
        missing(f"cannot create network namespaces here: {exc}")
    try:
        yield topology
    finally:
        topology.close()


@dataclass
class Cluster:
    """The shared services on the db host, and what tests do with the database from `ops`."""

    topology: Topology
    postgres: datastores.Postgres
    redis: datastores.Redis

    @property
    def ops(self) -> Host:
        return self.topology["ops"]

    @property
    def database_url(self) -> str:
        return self.postgres.url()

    @property
    def sip_database_url(self) -> str:
        """Kamailio's own role, which migration 0002 creates (tests/sip/conftest.py, running_edge)."""
        return self.postgres.url(user="trunkline_kamailio")

    @property
    def redis_url(self) -> str:
        return self.redis.url

    def mint_key(self, user_id: str) -> str:
        """A new API key for `user_id`, written from the ops host (tests/conftest.py, mint_key)."""
        return self.ops.call(mint_key, self.database_url, user_id)

    def db(self, work: Callable[..., Any], *, via: Host | None = None) -> Any:
        """`await work(conn)` in one write transaction, connecting from `via` (default: ops)."""

        async def go() -> Any:
            db = Database(self.database_url)
            try:
                async with db.transaction(write=True) as conn:
                    return await work(conn)
            finally:
                await db.dispose()

        return (via or self.ops).call(asyncio.run, go())


@pytest.fixture(scope="session")
def cluster(topology: Topology) -> Cluster:
    """PostgreSQL (a private cluster, migrated once here so that nodes starting together find it
    ready) and Redis on the db host; stopped with the topology."""
    if reason := datastores.postgres_missing() or datastores.redis_missing():
        missing(reason)
    db = topology["db"]
    postgres = datastores.start_postgres(db)
    redis = datastores.start_redis(db)
    cluster = Cluster(topology, postgres, redis)
    cluster.ops.call(migrate.upgrade, cluster.database_url)
    return cluster
