"""sip.supervisor without a process: a missing binary is explained with the install command."""

from __future__ import annotations

from pathlib import Path

import pytest

from trunkline.sip.state import EdgeConfig
from trunkline.sip.supervisor import KamailioMissing, State, Supervisor


def test_missing_kamailio_names_the_install_command(tmp_path: Path) -> None:
    config = EdgeConfig(
        sip_host="127.0.0.1",
        sip_port=5060,
        realm="r",
        engine="sqlite",
        app_db_url=f"sqlite://{tmp_path}/a.db",
        edge_db_url=f"sqlite://{tmp_path}/k.db",
        run_dir=tmp_path / "run",
    )
    supervisor = Supervisor(config, workdir=tmp_path, binary="kamailio-not-installed")
    with pytest.raises(KamailioMissing, match="apt-get install -y kamailio kamailio-sqlite-modules"):
        supervisor.start()
    assert supervisor.state is State.STOPPED
