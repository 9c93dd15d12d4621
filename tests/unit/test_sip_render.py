"""sip.render: the Kamailio config is a pure, deterministic function of EdgeConfig (goldens pin it).

Regenerate the goldens after an intended change with TRUNKLINE_UPDATE_GOLDENS=1.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from trunkline.sip import render
from trunkline.sip.state import EdgeConfig

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
        upstream="198.51.100.20:5060",
        children=4,
        tcp_children=4,
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


def test_postgres_writes_through_and_selects_sha256() -> None:
    text = render.render(CONFIGS["kamailio-postgres-sha256.cfg"])[render.CONFIG_FILE]
    assert 'modparam("usrloc", "db_mode", 1)' in text
    assert 'modparam("auth_db", "password_column", "ha1_sha256")' in text
    assert "#!define WITH_SHA256" in text and "#!define WITH_UPSTREAM" in text
    assert '$du = "sip:198.51.100.20:5060";' in text


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
