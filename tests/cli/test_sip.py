"""`trunkline sip`: a clear message and exit status 1 when Kamailio is not installed or when another
supervisor owns the SIP directory."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from trunkline.cli import app
from trunkline.sip.owner import DirectoryLock


def test_sip_without_kamailio_explains_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRUNKLINE_KAMAILIO_BINARY", "kamailio-not-installed")
    monkeypatch.setenv("TRUNKLINE_SIP_DIR", str(tmp_path / "sip"))
    result = CliRunner().invoke(
        app, ["sip", "--database-url", f"sqlite:///{tmp_path}/t.db", "--sip-port", "5999"]
    )
    assert result.exit_code == 1
    assert "apt-get install -y kamailio" in result.output


def test_sip_in_a_directory_another_supervisor_owns_names_it_and_exits_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `true` passes for the binary: the refusal comes before anything is rendered or started.
    monkeypatch.setenv("TRUNKLINE_KAMAILIO_BINARY", "true")
    owner = DirectoryLock(tmp_path / "sip")
    owner.acquire()
    try:
        result = CliRunner().invoke(
            app,
            ["sip", "--database-url", f"sqlite:///{tmp_path}/t.db", "--sip-dir", str(tmp_path / "sip")],
        )
    finally:
        owner.release()
    assert result.exit_code == 1
    assert f"pid {os.getpid()}" in result.output
    assert "--sip-dir or TRUNKLINE_SIP_DIR" in result.output
    assert sorted(p.name for p in (tmp_path / "sip").iterdir()) == ["supervisor.lock"]
