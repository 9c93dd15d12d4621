"""sip.render: the Kamailio config is a pure, deterministic function of EdgeConfig (goldens pin it).

Regenerate the goldens after an intended change with TRUNKLINE_UPDATE_GOLDENS=1.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from trunkline.sip import render
from trunkline.sip.state import EdgeConfig, Upstream

GOLDEN = Path(__file__).parent / "golden"

CONFIGS = {
    "kamailio-sqlite.cfg": EdgeConfig(
        sip_host="127.0.0.1",
        sip_port=5060,
        realm="sip.trunkline.local",
        engine="sqlite",
        app_db_url="sqlite:///srv/trunkline/trunkline.db",
        edge_db_url="sqlite:///srv/trunkline/sip/kamailio.db",
        run_dir=Path("/srv/trunkline/sip/run"),
    ),
    "kamailio-postgres-sha256.cfg": EdgeConfig(
        sip_host="192.0.2.10",
        sip_port=5070,
        realm="sip.example.net",
        engine="postgres",
        app_db_url="postgres://trunkline_kamailio:secret@127.0.0.1:5432/trunkline",
        edge_db_url="postgres://trunkline_kamailio:secret@127.0.0.1:5432/trunkline",
        run_dir=Path("/run/trunkline/sip"),
        algorithm="SHA-256",
        upstreams=(
            Upstream("198.51.100.20", 5060),
            Upstream("198.51.100.21", 5080, "tcp"),
            Upstream("203.0.113.7", 5060),
        ),
        upstream_probe_seconds=30,
        reply_timeout_ms=3000,
        children=4,
        tcp_children=4,
        tls_port=5071,
        tls_cert=Path("/etc/trunkline/edge.crt"),
        tls_key=Path("/etc/trunkline/edge.key"),
    ),
    # One edge of several (docs/deploy.md): call counts in Redis, the other edges as peers.
    "kamailio-postgres-cluster.cfg": EdgeConfig(
        sip_host="10.20.0.21",
        sip_port=5060,
        realm="sip.example.net",
        engine="postgres",
        app_db_url="postgres://trunkline_kamailio:secret@10.20.0.2:5432/trunkline",
        edge_db_url="postgres://trunkline_kamailio:secret@10.20.0.2:5432/trunkline",
        run_dir=Path("/run/trunkline/sip"),
        counters_url="redis://10.20.0.2:6379/0",
        counter_lease_seconds=30,
        peers=("10.20.0.22", "2001:db8::22"),
        tls_port=5061,
        tls_cert=Path("/etc/trunkline/edge.crt"),
        tls_key=Path("/etc/trunkline/edge.key"),
    ),
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_render_matches_golden(name: str) -> None:
    text = render.render(CONFIGS[name])[render.CONFIG_FILE]
    golden = GOLDEN / name
    if os.environ.get("TRUNKLINE_UPDATE_GOLDENS"):
        golden.write_text(text)
    assert text == golden.read_text()


def test_render_is_deterministic() -> None:
    config = CONFIGS["kamailio-sqlite.cfg"]
    assert render.render(config) == render.render(config)


def test_sqlite_keeps_one_writer_per_file() -> None:
    text = render.render(CONFIGS["kamailio-sqlite.cfg"])[render.CONFIG_FILE]
    assert 'modparam("db_sqlite", "db_set_readonly", "/srv/trunkline/trunkline.db")' in text
    assert 'modparam("usrloc", "db_mode", 2)' in text
    assert "#!define WITH_SQLITE" in text


def test_postgres_keeps_bindings_in_the_database_only_and_selects_sha256() -> None:
    text = render.render(CONFIGS["kamailio-postgres-sha256.cfg"])[render.CONFIG_FILE]
    assert 'modparam("usrloc", "db_mode", 3)' in text
    assert 'modparam("auth_db", "password_column", "ha1_sha256")' in text
    assert "#!define WITH_SHA256" in text and "#!define WITH_UPSTREAM" in text
    assert 'modparam("dispatcher", "list_file", "/run/trunkline/sip/dispatcher.list")' in text
    assert 'modparam("dispatcher", "ds_ping_interval", 30)' in text
    assert 'modparam("tm", "fr_timer", 3000)' in text
    assert 'ds_select_dst("1", "8")' in text and "failure_route[UPSTREAM_FAILOVER]" in text


def test_without_upstreams_there_is_no_dispatcher_and_no_list() -> None:
    config = CONFIGS["kamailio-sqlite.cfg"]
    text = render.render(config)[render.CONFIG_FILE]
    assert "#!define WITH_UPSTREAM" not in text
    assert render.dispatcher_list(config) is None


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_dispatcher_list_matches_golden(name: str) -> None:
    listed = render.dispatcher_list(CONFIGS[name])
    if listed is None:
        return
    golden = GOLDEN / name.replace(".cfg", "-dispatcher.list")
    if os.environ.get("TRUNKLINE_UPDATE_GOLDENS"):
        golden.write_text(listed)
    assert listed == golden.read_text()


def test_a_value_that_would_break_substdef_is_refused() -> None:
    config = CONFIGS["kamailio-sqlite.cfg"]
    bad = EdgeConfig(**{**config.__dict__, "realm": "evil!realm"})
    with pytest.raises(render.RenderError):
        render.render(bad)


def test_fill_refuses_missing_and_unused_values() -> None:
    with pytest.raises(render.RenderError):
        render.fill("{{a}} {{b}}", {"a": "1"})
    with pytest.raises(render.RenderError):
        render.fill("{{a}}", {"a": "1", "c": "2"})


def test_admission_lock_has_a_lock_set_and_every_exit_under_it_unlocks() -> None:
    # cfgutils lock() locks nothing without lock_set_size
    # (https://kamailio.org/docs/modules/5.6.x/modules/cfgutils.html#cfgutils.p.lock_set_size).
    text = render.render(CONFIGS["kamailio-sqlite.cfg"])[render.CONFIG_FILE]
    assert 'modparam("cfgutils", "lock_set_size", 4)' in text
    held, depth, released = False, 0, False
    for raw in text.splitlines():
        line, indent = raw.strip(), len(raw) - len(raw.lstrip("\t"))
        if line == 'lock("admit");':
            assert not held
            held, depth = True, indent
        elif line == 'unlock("admit");' and held:
            if indent == depth:
                held = False  # the end of the locked section
            else:
                released = True  # a refusal branch lets go before it exits
        elif line == "exit;":
            assert not held or released, "an exit under the admission lock would leave it held"
            released = False
    assert not held


def test_tls_is_rendered_only_with_a_listener() -> None:
    with_tls = CONFIGS["kamailio-postgres-sha256.cfg"]
    tls = render.tls_config(with_tls)
    assert tls is not None
    assert "certificate = /etc/trunkline/edge.crt" in tls and "private_key = /etc/trunkline/edge.key" in tls
    assert "#!define WITH_TLS" in render.render(with_tls)[render.CONFIG_FILE]
    assert "listen=tls:192.0.2.10:5071" in render.render(with_tls)[render.CONFIG_FILE]
    plain = CONFIGS["kamailio-sqlite.cfg"]
    assert render.tls_config(plain) is None
    assert "#!define WITH_TLS" not in render.render(plain)[render.CONFIG_FILE]


def test_peers_match_their_addresses_only() -> None:
    import re

    pattern = render.peers_pattern(("10.20.0.22", "2001:db8::22"))
    assert re.fullmatch(pattern, "10.20.0.22") and re.fullmatch(pattern, "2001:db8::22")
    assert not re.fullmatch(pattern, "10.20.0.2") and not re.fullmatch(pattern, "10.20.0.222")
    assert not re.fullmatch(pattern, "10x20.0.22")
    assert render.peers_pattern(()) == "^$"


def test_the_boot_file_hands_the_shared_counts_to_the_workers() -> None:
    boot = render.python_boot(CONFIGS["kamailio-postgres-cluster.cfg"])
    assert "'url': 'redis://10.20.0.2:6379/0'" in boot and "'lease_seconds': 30" in boot
    assert "counters=None" in render.python_boot(CONFIGS["kamailio-sqlite.cfg"])
