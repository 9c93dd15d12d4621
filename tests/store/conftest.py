"""Fixtures of the store tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.services import postgres_database


@pytest.fixture
def fresh_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """An empty database of the backend, not migrated: for tests that migrate it step by step."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'live.db'}"
        return
    with postgres_database() as url:
        yield url
