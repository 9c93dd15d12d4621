"""Every event trunkline sends passes the official SDK's `webhooks.unwrap` and parses into its typed
event; a tampered body, a wrong key and an old timestamp are refused. Events carry the call's values."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
import telnyx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from telnyx.types import (
    CallAnsweredWebhookEvent,
    CallBridgedWebhookEvent,
    CallCostWebhookEvent,
    CallHangupWebhookEvent,
    CallInitiatedWebhookEvent,
)

from tests.webhooks.conftest import Env, Receiver, deliver, public_key, signing_key
from trunkline.webhooks import signing
from trunkline.webhooks.signing import Signer

SDK = telnyx.Telnyx(api_key="unused", base_url="http://127.0.0.1:9/v2")
TYPES = {
    "call.initiated": CallInitiatedWebhookEvent,
    "call.answered": CallAnsweredWebhookEvent,
    "call.bridged": CallBridgedWebhookEvent,
    "call.hangup": CallHangupWebhookEvent,
    "call.cost": CallCostWebhookEvent,
}


def _one_call(env: Env, receiver: Receiver, **call: object) -> tuple[str, str]:
    tenant = env.tenant()
    conn_id = tenant.connection(
        webhook_event_url=receiver.url(), webhook_api_version="2", call_cost_in_webhooks=True
    )
    record_id = tenant.call(conn_id, **call)  # type: ignore[arg-type]
    expected = 3 if call.get("refused") else 5
    deliver(env.database_url, lambda: len(receiver.hits) >= expected)
    return conn_id, record_id


def test_the_sdk_verifies_and_types_every_event_of_a_call(env: Env, receiver: Receiver) -> None:
    conn_id, record_id = _one_call(env, receiver)
    key = public_key(env)
    events = [SDK.webhooks.unwrap(hit.body, headers=hit.headers, key=key) for hit in receiver.hits]
    assert [type(e) for e in events] == list(TYPES.values())
    assert [e.data.event_type for e in events] == list(TYPES)  # type: ignore[union-attr]
    initiated, answered, bridged, hangup, cost = (e.data for e in events)  # type: ignore[union-attr]
    for data in (initiated, answered, bridged, hangup, cost):
        assert data.payload.call_leg_id == record_id  # type: ignore[union-attr]
        assert data.payload.call_control_id == "v3:" + record_id  # type: ignore[union-attr]
        assert data.payload.connection_id == conn_id  # type: ignore[union-attr]
        assert data.payload.call_session_id  # type: ignore[union-attr]
        assert data.record_type == "event"  # type: ignore[union-attr]
    assert initiated.payload.direction == "incoming" and initiated.payload.state == "bridging"  # type: ignore[union-attr]
    assert initiated.payload.from_ == "+13125550100" and initiated.payload.to == "+12127363100"  # type: ignore[union-attr]
    assert answered.payload.state == "answered"  # type: ignore[union-attr]
    assert (hangup.payload.hangup_cause, hangup.payload.hangup_source) == ("normal_clearing", "caller")  # type: ignore[union-attr]
    assert hangup.payload.sip_hangup_cause == "200" and hangup.payload.state == "hangup"  # type: ignore[union-attr]
    assert cost.payload.total_cost == "0.02" and cost.payload.billed_duration_secs == 120  # type: ignore[union-attr]
    assert cost.payload.status == "success"  # type: ignore[union-attr]
    part = cost.payload.cost_parts[0]  # type: ignore[union-attr, index]
    assert (part.call_part, part.cost, part.currency, part.rate) == ("sip-trunking", "0.02", "USD", "0.01")
    assert initiated.occurred_at < answered.occurred_at <= bridged.occurred_at < hangup.occurred_at  # type: ignore[union-attr, operator]
    for hit in receiver.hits:
        assert hit.json["meta"] == {"attempt": 1, "delivered_to": receiver.url()}
        assert hit.headers["user-agent"] == "telnyx-webhooks"
        assert hit.headers["content-type"] == "application/json"


def test_unwrap_refuses_a_tampered_body_a_wrong_key_and_an_old_timestamp(
    env: Env, receiver: Receiver
) -> None:
    _one_call(env, receiver, refused=403)
    hit = receiver.hits[1]
    key = public_key(env)
    SDK.webhooks.unwrap(hit.body, headers=hit.headers, key=key)  # as sent: accepted
    with pytest.raises(ValueError, match="Signature verification failed"):
        SDK.webhooks.unwrap(hit.body.replace("call_rejected", "user_busy"), headers=hit.headers, key=key)
    other = Signer(signing.generate()[1]).public_key  # a key pair of somebody else
    with pytest.raises(ValueError, match="Signature verification failed"):
        SDK.webhooks.unwrap(hit.body, headers=hit.headers, key=other)
    old = int(time.time()) - 301
    resigned = Signer(signing_key(env)).headers(hit.body.encode(), old)  # a valid signature, but old
    with pytest.raises(ValueError, match="too old"):
        SDK.webhooks.unwrap(hit.body, headers=resigned, key=key)


def test_a_refused_call_is_initiated_then_hung_up_with_its_sip_status(env: Env, receiver: Receiver) -> None:
    _one_call(env, receiver, refused=403)
    events = [SDK.webhooks.unwrap(h.body, headers=h.headers, key=public_key(env)) for h in receiver.hits]
    assert [type(e) for e in events] == [
        CallInitiatedWebhookEvent,
        CallHangupWebhookEvent,
        CallCostWebhookEvent,
    ]
    hangup = events[1].data.payload  # type: ignore[union-attr]
    assert (hangup.hangup_cause, hangup.hangup_source, hangup.sip_hangup_cause) == (
        "call_rejected",
        "callee",
        "403",
    )
    cost = events[2].data.payload  # type: ignore[union-attr]
    assert (cost.status, cost.total_cost, cost.billed_duration_secs) == ("success", "0", 0)


def test_the_cli_prints_the_key_events_are_signed_with_and_never_the_private_key(
    env: Env, receiver: Receiver
) -> None:
    _one_call(env, receiver, refused=403)
    environ = {**os.environ, "TRUNKLINE_DATABASE_URL": env.database_url}
    done = subprocess.run(
        [sys.executable, "-m", "trunkline", "webhooks", "public-key"],
        capture_output=True,
        text=True,
        env=environ,
    )
    assert done.returncode == 0, done.stderr
    printed = done.stdout.strip()
    hit = receiver.hits[-1]
    SDK.webhooks.unwrap(hit.body, headers=hit.headers, key=printed)
    assert signing_key(env) not in done.stdout + done.stderr
    listing = subprocess.run(
        [sys.executable, "-m", "trunkline", "webhooks", "list", "--json", "--attempts"],
        capture_output=True,
        text=True,
        env=environ,
    )
    assert listing.returncode == 0, listing.stderr
    assert signing_key(env) not in listing.stdout
    assert any(json.loads(line)["id"] == hit.json["data"]["id"] for line in listing.stdout.splitlines())
    assert signing_key(env) not in repr(Signer(signing_key(env)))


def test_every_instance_signs_with_the_one_stored_key(env: Env) -> None:
    first = env.db(signing.server_public_key)
    again = env.db(signing.server_public_key)
    assert first == again == public_key(env)
    assert len(Ed25519PrivateKey.generate().public_key().public_bytes_raw()) == 32
