"""Two SIP edge hosts on the one database: each answers SIP on its own address, with Kamailio logged in
to PostgreSQL as its own role from its own host."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from tests.cluster.conftest import Cluster
from tests.cluster.hosts import stop_together
from tests.cluster.nodes import EdgeNode, kamailio_missing, sip_options, start_edge, wait_edge_ready
from tests.services import missing


@pytest.fixture(scope="module")
def edges(cluster: Cluster) -> Iterator[list[EdgeNode]]:
    if reason := kamailio_missing():
        missing(reason)
    # Launched side by side, then awaited: Kamailio's config check and start take a few seconds each.
    launched = [
        start_edge(
            cluster.topology[name],
            database_url=cluster.database_url,
            sip_database_url=cluster.sip_database_url,
            redis_url=cluster.redis_url,
            wait=False,
        )
        for name in ("edge_a", "edge_b")
    ]
    ready = [wait_edge_ready(edge) for edge in launched]
    yield ready
    stop_together(edge.proc for edge in ready)


def test_each_edge_answers_sip_on_its_own_address(cluster: Cluster, edges: list[EdgeNode]) -> None:
    for caller in ("phone", "carrier"):
        for edge in edges:
            status = sip_options(cluster.topology[caller], edge.host.ip, edge.sip_port)
            assert status == "SIP/2.0 200 OK", f"{caller} -> {edge.host}: {status}"
    # Nothing answers SIP on a host without an edge.
    assert sip_options(cluster.topology["phone"], cluster.topology["api1"].ip, 5060, timeout=0.5) is None


def test_each_edges_kamailio_uses_its_own_role_from_its_own_host(
    cluster: Cluster, edges: list[EdgeNode]
) -> None:
    async def sessions(conn: AsyncConnection) -> set[tuple[str, str]]:
        rows = await conn.execute(
            sa.text(
                "SELECT DISTINCT usename, host(client_addr) FROM pg_stat_activity"
                " WHERE datname = current_database() AND client_addr IS NOT NULL"
            )
        )
        return {(str(user), str(addr)) for user, addr in rows}

    seen = cluster.db(sessions)
    for edge in edges:
        assert ("trunkline_kamailio", edge.host.ip) in seen
