"""Commands that only read (`keys list`, `access-ranges list`) never migrate and never create a database.

On a database without trunkline's newest schema they say to run `trunkline db upgrade` and exit 1,
leaving it as it was; a write command (`keys create`) still migrates it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.cli.test_keys import trunkline
from tests.services import postgres_database
from trunkline.cli._schema import current_revisions

READS = [["keys", "list"], ["access-ranges", "list", "--user-id", "cli-read"]]


@pytest.fixture
def blank_database_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """A database that was never migrated: no file at all on SQLite, an empty database on PostgreSQL."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'never-made.db'}"
        return
    with postgres_database() as url:
        yield url


def sqlite_path(database_url: str) -> Path | None:
    url = sa.make_url(database_url)
    return Path(url.database or "") if url.get_backend_name() == "sqlite" else None


@pytest.mark.parametrize("command", READS, ids=lambda c: " ".join(c[:2]))
def test_read_on_an_unmigrated_database_says_to_upgrade_and_changes_nothing(
    blank_database_url: str, command: list[str]
) -> None:
    done = trunkline(*command, database_url=blank_database_url)
    assert done.returncode == 1, done.stdout
    assert "trunkline db upgrade" in done.stderr
    assert "Traceback" not in done.stderr
    path = sqlite_path(blank_database_url)
    if path is not None:
        assert not path.exists()  # no file was created
    else:
        assert current_revisions(blank_database_url) == set()  # no schema was created


@pytest.mark.parametrize("command", READS, ids=lambda c: " ".join(c[:2]))
def test_read_on_an_older_schema_refuses_and_leaves_it_at_its_revision(
    blank_database_url: str, command: list[str]
) -> None:
    upgraded = trunkline("db", "upgrade", "--revision", "0001", database_url=blank_database_url)
    assert upgraded.returncode == 0, upgraded.stderr
    done = trunkline(*command, database_url=blank_database_url)
    assert done.returncode == 1, done.stdout
    assert "revision 0001" in done.stderr
    assert "trunkline db upgrade" in done.stderr
    assert current_revisions(blank_database_url) == {"0001"}


def test_a_write_still_migrates_and_the_read_then_works(blank_database_url: str) -> None:
    created = trunkline("keys", "create", "--user-id", "cli-read", database_url=blank_database_url)
    assert created.returncode == 0, created.stderr
    listing = trunkline("keys", "list", "--user-id", "cli-read", database_url=blank_database_url)
    assert listing.returncode == 0, listing.stderr
    assert [line.split("\t")[1] for line in listing.stdout.splitlines()] == ["cli-read"]
    ranges = trunkline("access-ranges", "list", "--user-id", "cli-read", database_url=blank_database_url)
    assert ranges.returncode == 0, ranges.stderr
