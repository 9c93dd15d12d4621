"""Several instances starting together on a fresh PostgreSQL database migrate it once, and none fails
(store/migrations/env.py: one migrator at a time, under an advisory lock)."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import asyncpg  # type: ignore[import-untyped]
import sqlalchemy as sa

from tests.services import postgres_database
from trunkline.store.migrate import alembic_config

MIGRATE = "import sys; from trunkline.store import migrate; migrate.upgrade(sys.argv[1])"


def head() -> str:
    from alembic.script import ScriptDirectory

    return str(ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head())


async def applied(url: str) -> list[str]:
    u = sa.make_url(url)
    conn = await asyncpg.connect(host=u.host, port=u.port, user=u.username, database=u.database)
    try:
        return [r[0] for r in await conn.fetch("SELECT version_num FROM alembic_version")]
    finally:
        await conn.close()


def test_simultaneous_upgrades_of_a_fresh_database_all_succeed() -> None:
    with postgres_database() as url:
        procs = [
            subprocess.Popen([sys.executable, "-c", MIGRATE, url], stderr=subprocess.PIPE) for _ in range(4)
        ]
        outcomes = [(p.wait(timeout=120), p.stderr.read().decode() if p.stderr else "") for p in procs]
        assert [rc for rc, _ in outcomes] == [0, 0, 0, 0], [err[-800:] for _, err in outcomes]
        assert asyncio.run(applied(url)) == [head()]
