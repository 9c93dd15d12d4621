"""The migrations and the metadata agree, and autogenerate leaves Kamailio's objects alone."""

from __future__ import annotations

from alembic import command

from trunkline.store import migrate


def test_migrated_schema_matches_the_metadata_without_touching_kamailio_objects(database_url: str) -> None:
    # Raises when autogenerate would emit anything, e.g. drop Kamailio's `version` or `location`.
    command.check(migrate.alembic_config(database_url))
