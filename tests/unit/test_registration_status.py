"""resources.registrations.decide: the status from usrloc bindings and the edge's newest outcome."""

from __future__ import annotations

from trunkline.resources.registrations import decide
from trunkline.sip.state import RegistrationEvent
from trunkline.store.registrations import Binding

NOW = 1_800_000_000.0


def binding(expires: float, modified: float = NOW - 10) -> Binding:
    return Binding(
        contact="sip:alice@10.0.0.5:5062;transport=tcp",
        received="sip:198.51.100.4:40123;transport=tcp",
        socket="tcp:192.0.2.1:5060",
        user_agent="Phone/1.0",
        expires=expires,
        last_modified=modified,
    )


def event(outcome: str, at: float = NOW - 5, expires_at: float = 0.0) -> RegistrationEvent:
    return RegistrationEvent(at, outcome, expires_at, "198.51.100.4", 40123, "TCP", "Phone/1.0")  # type: ignore[arg-type]


def test_nothing_seen_is_not_registered() -> None:
    assert decide([], None, NOW) == {"status": "Not Registered"}


def test_a_live_binding_is_registered_with_its_received_source() -> None:
    seen = decide([binding(NOW + 100)], event("ok", expires_at=NOW + 100), NOW)
    assert seen["status"] == "Registered"
    assert (seen["ip_address"], seen["port"], seen["transport"]) == ("198.51.100.4", 40123, "TCP")
    assert seen["last_registration"].endswith("Z")


def test_the_newest_failure_wins_over_a_live_binding() -> None:
    assert decide([binding(NOW + 100)], event("fail"), NOW)["status"] == "Failed"


def test_deregistered_keeps_the_last_contact() -> None:
    seen = decide([], event("unreg"), NOW)
    assert seen["status"] == "Unregistered"
    assert seen["ip_address"] == "198.51.100.4"


def test_lapsed_is_expired_even_while_the_row_lingers() -> None:
    assert decide([binding(NOW - 1)], event("ok", expires_at=NOW - 1), NOW)["status"] == "Expired"
    assert decide([binding(NOW - 1)], None, NOW)["status"] == "Expired"


def test_a_fresh_register_not_yet_written_back_is_registered() -> None:
    # SQLite: usrloc writes `location` back every timer_interval; the edge's own record is newer.
    assert decide([], event("ok", expires_at=NOW + 60), NOW)["status"] == "Registered"


def test_event_parsing_is_strict() -> None:
    parsed = RegistrationEvent.parse("1795719252|ok|1795719282|127.0.0.1|5060|udp|Phone|with|bars")
    assert parsed is not None
    assert (parsed.transport, parsed.user_agent) == ("UDP", "Phone|with|bars")
    assert RegistrationEvent.parse("garbage") is None
    assert RegistrationEvent.parse("1|maybe|0|1.2.3.4|5060|udp|x") is None
