"""The webhook events of a call, built from its `call_record` row: what each one says, in both formats.

Field names and values are those of the official SDK's event types (telnyx 4.189.0,
`telnyx/types/call_initiated.py`, `call_answered.py`, `call_bridged.py`, `call_hangup.py`,
`call_cost_webhook_event.py`); a field trunkline has no real value for is left out, never filled with
a placeholder. The envelope of API version "2" and the legacy version "1" are from
https://developers.telnyx.com/docs/voice/programmable-voice/voice-api-webhooks and
https://developers.telnyx.com/development/migration/call-control-migration-guide (docs/webhooks.md).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

# One call's events in the order they happen; the number orders them in the outbox (`seq`).
SEQ = {
    "call.initiated": 1,
    "call.answered": 2,
    "call.bridged": 3,
    "call.hangup": 4,
    "call.cost": 5,
}

# What each call-log step announces (store/call_ingest.py). An answered SIP trunking call is bridged to
# the other party at once: Telnyx lists Call Bridged among a SIP connection's events
# (https://support.telnyx.com/en/articles/4351104-sip-connection-settings).
ON_START = ("call.initiated",)
ON_ANSWER = ("call.answered", "call.bridged")
ON_END = ("call.hangup",)
ON_END_WITH_COST = ("call.hangup", "call.cost")

# A record's direction is the connection's point of view (docs/calls.md); a webhook's is Telnyx's leg:
# a call the connection places arrives at Telnyx as an incoming leg, and a call Telnyx sends to the
# connection is an outgoing one (the reference quote "Can not issue an answer command on an outbound
# call" for calls to a SIP connection, https://support.telnyx.com/en/articles/4351104-sip-connection-settings).
DIRECTION = {"outbound": "incoming", "inbound": "outgoing"}

# The call part of a SIP trunking call's cost (the SDK's cost_parts[].call_part example values).
CALL_PART = "sip-trunking"

Record = Mapping[Any, Any]  # a call_record row


def _ids(r: Record) -> dict[str, Any]:
    ids = {
        "call_control_id": r["call_control_id"],
        "call_leg_id": r["id"],
        "call_session_id": r["call_session_id"],
        "connection_id": r["connection_id"],
    }
    return {k: v for k, v in ids.items() if v}


def _parties(r: Record) -> dict[str, Any]:
    return {k: v for k, v in (("from", r["cli"]), ("to", r["cld"])) if v}


def _initiated(r: Record) -> dict[str, Any]:
    # SIP trunking never parks a call: the edge routes it on as it arrives, so its leg is `bridging`.
    return {
        **_ids(r),
        **_parties(r),
        "direction": DIRECTION.get(r["direction"], "incoming"),
        "state": "bridging",
        "start_time": r["started_at"],
    }


def _answered(r: Record) -> dict[str, Any]:
    return {**_ids(r), **_parties(r), "state": "answered", "start_time": r["started_at"]}


def _bridged(r: Record) -> dict[str, Any]:
    return {**_ids(r), **_parties(r)}


def _hangup(r: Record) -> dict[str, Any]:
    payload = {
        **_ids(r),
        **_parties(r),
        "state": "hangup",
        "start_time": r["started_at"],
        "hangup_cause": r["hangup_cause"] or "unspecified",
        "hangup_source": r["hangup_source"] or "unknown",
        # The SDK: "If the SIP response is unavailable ... this is set to `unspecified`".
        "sip_hangup_cause": str(r["sip_status"]) if r["sip_status"] else "unspecified",
    }
    return payload


def _cost(r: Record) -> dict[str, Any]:
    payload: dict[str, Any] = {**_ids(r), "occurred_at": r["finished_at"]}
    billed = int(r["billed_sec"] or 0)
    if r["cost"] is None:
        # Not rated (no rate deck, or no rate for the number): the cost is unknown, not zero.
        return {**payload, "status": "error", "billed_duration_secs": billed}
    part = {
        "call_part": CALL_PART,
        "billed_duration_secs": billed,
        "cost": r["cost"],
        "currency": r["currency"],
        "rate": r["rate"],
    }
    return {
        **payload,
        "status": "success",
        "total_cost": r["cost"],
        "billed_duration_secs": billed,
        "cost_parts": [part],
    }


PAYLOADS: dict[str, Callable[[Record], dict[str, Any]]] = {
    "call.initiated": _initiated,
    "call.answered": _answered,
    "call.bridged": _bridged,
    "call.hangup": _hangup,
    "call.cost": _cost,
}


def occurred_at(event_type: str, r: Record) -> str:
    """When the event happened, on the server clock: the step of the call it announces."""
    if event_type == "call.initiated":
        return str(r["started_at"])
    if event_type in ("call.answered", "call.bridged"):
        return str(r["answered_at"])
    return str(r["finished_at"])


def body(api_version: str, event_id: str, event_type: str, r: Record) -> dict[str, Any]:
    """The event as delivered, without `meta` (the worker adds it per attempt to version 2)."""
    at = occurred_at(event_type, r)
    payload = PAYLOADS[event_type](r)
    if api_version == "1":
        # Version 1: no `data` wrapper, snake_case names, `created_at`, and `occurred_at` in the payload.
        return {
            "record_type": "event",
            "id": event_id,
            "event_type": event_type.replace(".", "_"),
            "created_at": at,
            "payload": {**payload, "occurred_at": at},
        }
    return {
        "data": {
            "record_type": "event",
            "event_type": event_type,
            "id": event_id,
            "occurred_at": at,
            "payload": payload,
        }
    }
