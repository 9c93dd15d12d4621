"""A real call through the edge sends its webhooks: signed, in order, with the call's own values.

SIPp calls from 127.0.4.x (this module's range); the API beside the edge (conftest.py) runs the
delivery worker, and a local HTTP receiver checks every request with the official SDK's `unwrap`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import telnyx
from telnyx.types import (
    CallAnsweredWebhookEvent,
    CallBridgedWebhookEvent,
    CallCostWebhookEvent,
    CallHangupWebhookEvent,
    CallInitiatedWebhookEvent,
)

from tests.sip.conftest import Edge, eventually
from tests.sip.test_calls import ready, trunkline
from tests.sip.test_edge import profile, service_name
from tests.webhooks.conftest import Receiver

pytestmark = pytest.mark.sip

CALLER = "127.0.4.10"


def test_a_call_sends_initiated_answered_bridged_hangup_and_cost_signed_in_order(
    sip_edge: Edge, tmp_path: Path
) -> None:
    receiver = Receiver().start()
    client = sip_edge.account()
    conn_id = client.ip_connections.create(
        connection_name="webhooks",
        outbound={"outbound_voice_profile_id": profile(client)},
        webhook_event_url=receiver.url(),
        webhook_api_version="2",
        call_cost_in_webhooks=True,
    ).data.id
    client.ips.create(ip_address=CALLER, connection_id=conn_id)
    ready(sip_edge, CALLER, conn_id)
    deck = tmp_path / "rates.csv"
    deck.write_text("prefix,rate,description\n1212,0.01,New York\n")
    assert trunkline(sip_edge, "rates", "import", str(deck)).returncode == 0
    try:
        number = service_name()
        result = sip_edge.sipp(
            "call.xml", local_ip=CALLER, keys={"extra": "X-Test: 1"}, args=("-s", number, "-d", "1200")
        )
        assert result.returncode == 0, result.status_lines
        eventually(lambda: len(receiver.hits) >= 5, timeout=20)
    finally:
        assert trunkline(sip_edge, "rates", "clear").returncode == 0
        receiver.stop()

    key = trunkline(sip_edge, "webhooks", "public-key").stdout.strip()
    sdk = telnyx.Telnyx(api_key="unused", base_url=sip_edge.server.api)
    events = [sdk.webhooks.unwrap(hit.body, headers=hit.headers, key=key) for hit in receiver.hits]
    assert [type(e) for e in events] == [
        CallInitiatedWebhookEvent,
        CallAnsweredWebhookEvent,
        CallBridgedWebhookEvent,
        CallHangupWebhookEvent,
        CallCostWebhookEvent,
    ]

    async def read(conn: Any) -> Any:
        stmt = sa.text("SELECT * FROM call_record WHERE connection_id = :c").bindparams(c=conn_id)
        return (await conn.execute(stmt)).one()

    record = sip_edge.db(read)
    initiated, answered, bridged, hangup, cost = (e.data for e in events)  # type: ignore[union-attr]
    for data in (initiated, answered, bridged, hangup, cost):
        payload = data.payload  # type: ignore[union-attr]
        assert (payload.call_leg_id, payload.call_control_id) == (record.id, record.call_control_id)
        assert (payload.call_session_id, payload.connection_id) == (record.call_session_id, conn_id)
    assert (initiated.payload.from_, initiated.payload.to) == (record.cli, "+" + number)  # type: ignore[union-attr]
    assert initiated.payload.direction == "incoming"  # type: ignore[union-attr]
    assert initiated.occurred_at.isoformat().startswith(record.started_at[:19])  # type: ignore[union-attr]
    assert answered.occurred_at.isoformat().startswith(record.answered_at[:19])  # type: ignore[union-attr]
    assert hangup.payload.hangup_cause == "normal_clearing"  # type: ignore[union-attr]
    assert hangup.payload.hangup_source == record.hangup_source == "caller"  # type: ignore[union-attr]
    assert hangup.payload.sip_hangup_cause == "200"  # type: ignore[union-attr]
    assert (cost.payload.status, cost.payload.total_cost) == ("success", record.cost)  # type: ignore[union-attr]
    assert cost.payload.billed_duration_secs == record.billed_sec == 60  # type: ignore[union-attr]
    assert [h.json["meta"]["attempt"] for h in receiver.hits] == [1] * 5
