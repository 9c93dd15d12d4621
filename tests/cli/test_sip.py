"""`trunkline sip`: a clear message and exit status 1 when Kamailio is not installed."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from trunkline.cli import app


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
