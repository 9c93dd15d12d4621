"""Outbound voice profile policy and numbers at the real edge, and the call records it leaves.

Callers on their own loopback addresses, the upstream UAS on 127.0.0.2 (conftest.py). The rate deck
and the clock are server-wide, so this module runs on an edge and a database of its own
(`policy_edge`); a test that loads a deck or moves the clock puts it back.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import telnyx

from tests.conftest import migrated_database
from tests.sip.conftest import Edge, eventually, running_edge
from tests.sip.test_calls import dial, header, race, ready, trunkline, upstream_invites
from tests.sip.test_edge import service_name
from trunkline.store import clock


@pytest.fixture(scope="module")
def policy_edge(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edge]:
    with migrated_database(backend, tmp_path_factory) as url, running_edge(url, backend) as edge:
        yield edge


def caller(edge: Edge, address: str, profile: dict[str, Any] | None = None, **outbound: Any) -> str:
    """An IP connection at `address` with a profile of these settings; ready for calls."""
    client: telnyx.Telnyx = edge.account()
    name = f"policy-{address}-{time.monotonic_ns()}"
    ovp = client.outbound_voice_profiles.create(name=name, **(profile or {})).data.id
    conn_id = client.ip_connections.create(
        connection_name=name, outbound={"outbound_voice_profile_id": ovp, **outbound}
    ).data.id
    client.ips.create(ip_address=address, connection_id=conn_id)
    ready(edge, address, conn_id)
    return conn_id


def records(edge: Edge, conn_id: str) -> list[dict[str, Any]]:
    async def read(conn: Any) -> list[dict[str, Any]]:
        stmt = sa.text("SELECT * FROM call_record WHERE connection_id = :c ORDER BY started_at, id")
        return [dict(r._mapping) for r in await conn.execute(stmt.bindparams(c=conn_id))]

    return list(edge.db(read))


def finished(edge: Edge, conn_id: str, n: int) -> list[dict[str, Any]]:
    """The connection's records once `n` of them are finished (the importer runs every 0.2 s)."""

    def check() -> list[dict[str, Any]] | None:
        rows = records(edge, conn_id)
        return rows if sum(r["state"] == "finished" for r in rows) >= n else None

    return list(eventually(check, timeout=10))


def set_clock(edge: Edge, at: str | None) -> None:
    async def move(conn: Any) -> None:
        offset = 0 if at is None else round((dt.datetime.fromisoformat(at).timestamp() - time.time()) * 1000)
        await clock.set_offset_ms(conn, offset)

    edge.db(move)


def status(result: Any) -> list[str]:
    """The final responses (a limit refused after the transaction exists follows a 100 Trying)."""
    return [line for line in result.status_lines if not line.startswith("SIP/2.0 1")]


def load_deck(edge: Edge, tmp: Path, rows: str) -> None:
    deck = tmp / "rates.csv"
    deck.write_text("prefix,rate,description\n" + rows)
    done = trunkline(edge, "rates", "import", str(deck))
    assert done.returncode == 0, done.stderr


# --- numbers ----------------------------------------------------------------------------------


def test_an_unparseable_number_is_refused_with_d14_and_never_reaches_the_upstream(policy_edge: Edge) -> None:
    conn_id = caller(policy_edge, "127.0.0.41")
    refused = dial(policy_edge, "127.0.0.41", "99999", refused=True)
    assert status(refused) == ["SIP/2.0 404 Dialed number is not valid D14"]
    assert not upstream_invites(policy_edge, "99999")
    (record,) = finished(policy_edge, conn_id, 1)
    assert (record["sip_status"], record["d_code"], record["cld"]) == (404, "D14", "99999")


def test_a_national_number_leaves_as_e164_under_the_connections_localization(policy_edge: Edge) -> None:
    caller(policy_edge, "127.0.0.42", {"whitelisted_destinations": ["GB"]}, localization="GB")
    answered = dial(policy_edge, "127.0.0.42", "02071838750")
    assert status(answered)[-1].startswith("SIP/2.0 200"), status(answered)
    (invite,) = upstream_invites(policy_edge, "+442071838750")
    assert "INVITE sip:+442071838750@" in invite
    assert header(
        invite,
        "To",
    ).startswith("<sip:+442071838750@")  # type: ignore[union-attr]


def test_blank_localization_tries_us_then_gb(policy_edge: Edge) -> None:
    caller(policy_edge, "127.0.0.43", {"whitelisted_destinations": ["US", "GB"]}, localization="")
    assert status(dial(policy_edge, "127.0.0.43", "3125550142"))[-1].startswith("SIP/2.0 200")
    assert upstream_invites(policy_edge, "+13125550142")
    assert status(dial(policy_edge, "127.0.0.43", "02079460123"))[-1].startswith("SIP/2.0 200")
    assert upstream_invites(policy_edge, "+442079460123")


def test_ani_override_always_replaces_the_caller_number_in_from_and_pai(policy_edge: Edge) -> None:
    caller(policy_edge, "127.0.0.44", ani_override="+13125550111", ani_override_type="always")
    number = service_name()
    dial(policy_edge, "127.0.0.44", number, extra="P-Asserted-Identity: <sip:+15550000000@127.0.0.44>")
    (invite,) = upstream_invites(policy_edge, number)
    assert header(invite, "From").startswith("<sip:+13125550111@")  # type: ignore[union-attr]
    assert header(invite, "P-Asserted-Identity").startswith("<sip:+13125550111@")  # type: ignore[union-attr]


def test_ani_override_emergency_applies_to_emergency_calls_only(policy_edge: Edge) -> None:
    caller(policy_edge, "127.0.0.45", ani_override="+13125550112", ani_override_type="emergency")
    number = service_name()
    dial(policy_edge, "127.0.0.45", number)
    (normal,) = upstream_invites(policy_edge, number)
    assert header(normal, "From").startswith("<sip:caller@")  # type: ignore[union-attr]
    dial(policy_edge, "127.0.0.45", "911")
    emergency = upstream_invites(policy_edge, "911")[-1]
    assert header(emergency, "From").startswith("<sip:+13125550112@")  # type: ignore[union-attr]


# --- the profile's rules ----------------------------------------------------------------------


def test_a_destination_outside_the_whitelist_is_refused_with_d13(policy_edge: Edge) -> None:
    caller(policy_edge, "127.0.0.46", {"whitelisted_destinations": ["US", "CA"]})
    refused = dial(policy_edge, "127.0.0.46", "+442071838751", refused=True)
    assert status(refused) == [
        "SIP/2.0 403 Dialed number +442071838751 (pertinent countries: GB) is not included in "
        "whitelisted countries: US, CA D13"
    ]
    assert not upstream_invites(policy_edge, "+442071838751")
    assert status(dial(policy_edge, "127.0.0.46", "+16135550123"))[-1].startswith("SIP/2.0 200")


def test_rate_deck_refuses_unrated_numbers_tm1_and_dear_ones_d24(policy_edge: Edge, tmp_path: Path) -> None:
    caller(policy_edge, "127.0.0.47", {"max_destination_rate": 0.05})
    load_deck(policy_edge, tmp_path, "1212,0.01,New York\n1213,0.10,Los Angeles\n")
    try:
        ok = service_name()
        assert status(dial(policy_edge, "127.0.0.47", ok))[-1].startswith("SIP/2.0 200")
        assert status(dial(policy_edge, "127.0.0.47", "13125550100", refused=True)) == [
            "SIP/2.0 403 No Rates Found TM1"
        ]
        assert status(dial(policy_edge, "127.0.0.47", "12135550100", refused=True)) == [
            "SIP/2.0 403 Maximum destination rate limit exceeded D24"
        ]
        assert not upstream_invites(policy_edge, "+13125550100")
        assert not upstream_invites(policy_edge, "+12135550100")
    finally:
        assert trunkline(policy_edge, "rates", "clear").returncode == 0
    # Without a deck, rate rules are off.
    assert status(dial(policy_edge, "127.0.0.47", "13125550100"))[-1].startswith("SIP/2.0 200")


@pytest.mark.parametrize(
    ("window", "outside", "inside"),
    [
        (("09:00", "17:00"), "2026-12-01T08:59:30Z", "2026-12-01T09:00:30Z"),
        (("22:00", "06:00"), "2026-12-01T12:00:00Z", "2026-12-01T23:30:00Z"),
    ],
)
def test_calls_start_only_inside_the_calling_window(
    policy_edge: Edge, window: tuple[str, str], outside: str, inside: str
) -> None:
    address = "127.0.0.48" if window[0] == "09:00" else "127.0.0.49"
    caller(policy_edge, address, {"calling_window": {"start_time": window[0], "end_time": window[1]}})
    try:
        set_clock(policy_edge, outside)
        assert status(dial(policy_edge, address, service_name(), refused=True)) == [
            "SIP/2.0 403 Outside the outbound profile's calling window TL1"
        ]
        set_clock(policy_edge, inside)
        assert status(dial(policy_edge, address, service_name()))[-1].startswith("SIP/2.0 200")
    finally:
        set_clock(policy_edge, None)


def test_calls_per_cld_caps_calls_to_one_number(policy_edge: Edge) -> None:
    caller(policy_edge, "127.0.0.50", {"calling_window": {"calls_per_cld": 1}})
    number = service_name()
    assert status(dial(policy_edge, "127.0.0.50", number))[-1].startswith("SIP/2.0 200")
    assert status(dial(policy_edge, "127.0.0.50", number, refused=True)) == [
        "SIP/2.0 403 Calls per CLD limit reached for the calling window TL2"
    ]
    assert status(dial(policy_edge, "127.0.0.50", service_name()))[-1].startswith("SIP/2.0 200")


def test_simultaneous_calls_to_one_number_take_the_last_cld_call_once(policy_edge: Edge) -> None:
    caller(policy_edge, "127.0.0.51", {"calling_window": {"calls_per_cld": 1}})
    number = service_name()
    lines = race(policy_edge, number, ["127.0.0.51"], 8)
    assert len(upstream_invites(policy_edge, number)) == 1
    assert lines.count("SIP/2.0 403 Calls per CLD limit reached for the calling window TL2") == 7, lines


def test_daily_spend_limit_blocks_new_calls_once_reached_and_resets_at_utc_midnight(
    policy_edge: Edge, tmp_path: Path
) -> None:
    conn_id = caller(
        policy_edge, "127.0.0.52", {"daily_spend_limit": "0.01", "daily_spend_limit_enabled": True}
    )
    load_deck(policy_edge, tmp_path, "1,0.01,North America\n")
    try:
        set_clock(policy_edge, "2026-12-01T23:55:00Z")
        # One answered second bills one minute at 0.01 USD: the day's limit.
        assert status(dial(policy_edge, "127.0.0.52", service_name()))[-1].startswith("SIP/2.0 200")
        (billed,) = finished(policy_edge, conn_id, 1)
        assert (billed["billed_sec"], billed["cost"], billed["rate"]) == (60, "0.01", "0.01")
        eventually(
            lambda: (
                status(dial(policy_edge, "127.0.0.52", service_name(), refused=True))
                == ["SIP/2.0 403 International daily spent limit reached D39"]
            ),
            timeout=5,
        )
        set_clock(policy_edge, "2026-12-02T00:00:30Z")
        assert status(dial(policy_edge, "127.0.0.52", service_name()))[-1].startswith("SIP/2.0 200")
    finally:
        set_clock(policy_edge, None)
        assert trunkline(policy_edge, "rates", "clear").returncode == 0


# --- call records -----------------------------------------------------------------------------


def test_records_show_what_sipp_did(policy_edge: Edge) -> None:
    conn_id = caller(policy_edge, "127.0.0.53", {"whitelisted_destinations": ["US"]})
    number = service_name()
    answered = policy_edge.sipp(
        "call.xml", local_ip="127.0.0.53", keys={"extra": "X-Test: 1"}, args=("-s", number, "-d", "1200")
    )
    assert answered.returncode == 0, answered.stderr
    dial(policy_edge, "127.0.0.53", "+442071838752", refused=True)
    first, second = finished(policy_edge, conn_id, 2)
    assert first["cld"] == "+" + number
    assert (first["sip_status"], first["hangup_cause"], first["hangup_source"]) == (
        200,
        "normal_clearing",
        "caller",
    )
    assert first["destination_country"] == "US"
    assert first["answered_at"] and first["finished_at"] and first["started_at"] <= first["answered_at"]
    assert first["call_sec"] in (1, 2) and first["billed_sec"] == 60
    assert first["cost"] is None  # no rate deck loaded
    assert (second["sip_status"], second["d_code"], second["hangup_cause"]) == (403, "D13", "call_rejected")
    assert second["cld"] == "+442071838752" and second["answered_at"] is None and second["call_sec"] == 0


# --- the edge's database failing --------------------------------------------------------------


@contextlib.contextmanager
def view_gone(edge: Edge, view: str) -> Iterator[None]:
    """The edge's queries of `view` fail (no such relation) until the block ends."""

    async def hide(conn: Any) -> None:
        if conn.dialect == "postgresql":
            await conn.execute(sa.text(f"ALTER VIEW {view} RENAME TO {view}_hidden"))
        else:
            query = sa.text("SELECT sql FROM sqlite_master WHERE name = :v").bindparams(v=view)
            definition = (await conn.execute(query)).scalar()
            saved[view] = str(definition)
            await conn.execute(sa.text(f"DROP VIEW {view}"))

    async def restore(conn: Any) -> None:
        if conn.dialect == "postgresql":
            await conn.execute(sa.text(f"ALTER VIEW {view}_hidden RENAME TO {view}"))
        else:
            await conn.execute(sa.text(saved[view]))

    saved: dict[str, str] = {}
    edge.db(hide)
    try:
        yield
    finally:
        edge.db(restore)


@pytest.mark.kamailio_errors(r"sqlops|db_sqlite|db_postgres|db_do_raw_query|kam_rate")
def test_a_failed_database_read_is_503_not_a_refusal_that_blames_the_call(
    policy_edge: Edge, tmp_path: Path
) -> None:
    """A rate lookup the database cannot answer must not read as "no rate" (403 TM1): 503, so the
    caller's PBX retries or tries another edge, and nothing reaches the upstream."""
    conn_id = caller(policy_edge, "127.0.0.59", {"max_destination_rate": 0.05})
    load_deck(policy_edge, tmp_path, "1212,0.01,New York\n")
    try:
        number = service_name()
        with view_gone(policy_edge, "kam_rate"):
            assert status(dial(policy_edge, "127.0.0.59", number, refused=True)) == [
                "SIP/2.0 503 Service Unavailable"
            ]
        assert not upstream_invites(policy_edge, number)
        assert status(dial(policy_edge, "127.0.0.59", number))[-1].startswith("SIP/2.0 200")
    finally:
        assert trunkline(policy_edge, "rates", "clear").returncode == 0
    first, _ = finished(policy_edge, conn_id, 2)
    assert (first["sip_status"], first["d_code"]) == (503, None)
