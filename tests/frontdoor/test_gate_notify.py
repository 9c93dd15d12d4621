"""The access gate on PostgreSQL: a range added or removed anywhere (another instance, the CLI) is
enforced by every API instance within a second, woken by the writer's announcement, although each
polls only every 30 s (http/gate.py, store/notify.py).

A database of this module's own, two API instances on it; clients call from 127.0.0.x addresses.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests import conftest
from tests.frontdoor._clients import cli, http_from, sdk_from, wait_for
from tests.server import LiveServer
from tests.services import end_listening_sessions, postgres_database
from trunkline.store import migrate, notify

SLOW_POLL = 30.0
APPLIES_WITHIN = 1.0
OUTSIDE = "127.0.0.9"


@dataclass
class Pair:
    database_url: str
    a: LiveServer
    b: LiveServer


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    with postgres_database() as url:
        migrate.upgrade(url)
        settings = conftest.test_settings(
            url, access_gate_refresh_seconds=SLOW_POLL, change_safety_poll_seconds=SLOW_POLL
        )
        a = LiveServer(settings).start()
        b = LiveServer(settings).start()
        try:
            yield Pair(url, a, b)
        finally:
            a.stop()
            b.stop()


def new_key(pair: Pair) -> tuple[str, str]:
    user_id = f"gate-notify-{uuid.uuid4().hex[:8]}"
    return user_id, conftest.mint_key(pair.database_url, user_id)


def refused(client: httpx.Client) -> bool:
    return client.get("/ips").status_code == 403


def test_a_range_added_on_one_instance_is_enforced_by_the_other_within_a_second(pair: Pair) -> None:
    _, key = new_key(pair)
    with sdk_from(pair.a.api, key) as via_a, http_from(pair.b.api, key, OUTSIDE) as b_outside:
        assert b_outside.get("/ips").status_code == 200
        made = via_a.access_ip_ranges.create(cidr_block="127.0.0.1/32")
        assert wait_for(lambda: refused(b_outside), timeout=APPLIES_WITHIN) < APPLIES_WITHIN
        via_a.access_ip_ranges.delete(made.id)
        wait_for(lambda: not refused(b_outside), timeout=APPLIES_WITHIN)


def test_a_range_added_by_the_cli_is_enforced_by_every_instance_within_a_second(pair: Pair) -> None:
    user_id, key = new_key(pair)
    with http_from(pair.a.api, key, OUTSIDE) as a_outside, http_from(pair.b.api, key, OUTSIDE) as b_outside:
        assert a_outside.get("/ips").status_code == 200
        result = cli(
            "access-ranges", "add", "--user-id", user_id, "127.0.0.1/32", database_url=pair.database_url
        )
        assert result.exit_code == 0, result.output
        wait_for(lambda: refused(a_outside) and refused(b_outside), timeout=APPLIES_WITHIN)
        # Loading it is what makes it `added` (http/gate.py).
        with sdk_from(pair.a.api, key) as inside:
            assert [r.status for r in inside.access_ip_ranges.list()] == ["added"]


def test_a_range_added_while_the_listeners_reconnect_is_still_enforced(pair: Pair) -> None:
    user_id, key = new_key(pair)

    with http_from(pair.a.api, key, OUTSIDE) as a_outside, http_from(pair.b.api, key, OUTSIDE) as b_outside:
        assert end_listening_sessions(pair.database_url, notify.APPLICATION_NAME) == 2  # one per instance
        # Written at once, likely before they listen again: their reconnect makes them reread.
        result = cli(
            "access-ranges", "add", "--user-id", user_id, "127.0.0.1/32", database_url=pair.database_url
        )
        assert result.exit_code == 0, result.output
        # The listeners' first retry comes 0.05-0.1 s after the loss (store/notify.py).
        wait_for(lambda: refused(a_outside) and refused(b_outside), timeout=APPLIES_WITHIN + 0.5)


def test_with_notifications_off_an_instance_polls_at_its_refresh_interval(pair: Pair) -> None:
    # For PostgreSQL behind a pooler that cannot LISTEN: the poll of SQLite, every
    # access_gate_refresh_seconds.
    refresh = 0.25
    settings = conftest.test_settings(
        pair.database_url, change_notifications=False, access_gate_refresh_seconds=refresh
    )
    polling = LiveServer(settings).start()
    try:
        _, key = new_key(pair)
        with sdk_from(pair.a.api, key) as via_a, http_from(polling.api, key, OUTSIDE) as outside:
            assert outside.get("/ips").status_code == 200
            via_a.access_ip_ranges.create(cidr_block="127.0.0.1/32")
            wait_for(lambda: refused(outside), timeout=refresh + 1.0)
    finally:
        polling.stop()
