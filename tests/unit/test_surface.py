"""The API surface is exactly Telnyx's 36 SIP-connection operations, its two call-record operations and
four of its phone-number operations, plus our operational endpoints."""

from __future__ import annotations

from trunkline.app import create_app
from trunkline.config import Settings
from trunkline.http import openapi

# The operations of Telnyx's SIP connection API, as its curl docs list them.
TELNYX_OPERATIONS = {
    ("GET", "/v2/access_ip_ranges"),
    ("POST", "/v2/access_ip_ranges"),
    ("DELETE", "/v2/access_ip_ranges/{access_ip_range_id}"),
    ("GET", "/v2/connections"),
    ("GET", "/v2/connections/{id}"),
    ("GET", "/v2/credential_connections"),
    ("POST", "/v2/credential_connections"),
    ("GET", "/v2/credential_connections/{id}"),
    ("PATCH", "/v2/credential_connections/{id}"),
    ("DELETE", "/v2/credential_connections/{id}"),
    ("POST", "/v2/credential_connections/{id}/actions/check_registration_status"),
    ("GET", "/v2/fqdn_connections"),
    ("POST", "/v2/fqdn_connections"),
    ("GET", "/v2/fqdn_connections/{id}"),
    ("PATCH", "/v2/fqdn_connections/{id}"),
    ("DELETE", "/v2/fqdn_connections/{id}"),
    ("GET", "/v2/fqdns"),
    ("POST", "/v2/fqdns"),
    ("GET", "/v2/fqdns/{id}"),
    ("PATCH", "/v2/fqdns/{id}"),
    ("DELETE", "/v2/fqdns/{id}"),
    ("GET", "/v2/ip_connections"),
    ("POST", "/v2/ip_connections"),
    ("GET", "/v2/ip_connections/{id}"),
    ("PATCH", "/v2/ip_connections/{id}"),
    ("DELETE", "/v2/ip_connections/{id}"),
    ("GET", "/v2/ips"),
    ("POST", "/v2/ips"),
    ("GET", "/v2/ips/{id}"),
    ("PATCH", "/v2/ips/{id}"),
    ("DELETE", "/v2/ips/{id}"),
    ("GET", "/v2/outbound_voice_profiles"),
    ("POST", "/v2/outbound_voice_profiles"),
    ("GET", "/v2/outbound_voice_profiles/{id}"),
    ("PATCH", "/v2/outbound_voice_profiles/{id}"),
    ("DELETE", "/v2/outbound_voice_profiles/{id}"),
}


# Beyond the seed: the call records of SIP trunking calls (docs/calls.md), in Telnyx's shape.
CALL_RECORD_OPERATIONS = {
    ("GET", "/v2/detail_records"),
    ("GET", "/v2/connections/{connection_id}/active_calls"),
}

# The subset of Telnyx's phone-number resource over the operator's inventory (docs/numbers.md).
PHONE_NUMBER_OPERATIONS = {
    ("GET", "/v2/phone_numbers"),
    ("GET", "/v2/phone_numbers/{id}"),
    ("PATCH", "/v2/phone_numbers/{id}"),
    ("DELETE", "/v2/phone_numbers/{id}"),
}


def _operations() -> dict[tuple[str, str], dict]:
    app = create_app(Settings(database_url="sqlite:///:memory:"))
    doc = openapi.build(app)
    return {
        (method.upper(), path): op
        for path, ops in doc["paths"].items()
        if path.startswith("/v2/")
        for method, op in ops.items()
    }


def test_app_serves_exactly_the_telnyx_operations() -> None:
    assert len(TELNYX_OPERATIONS) == 36
    assert set(_operations()) == TELNYX_OPERATIONS | CALL_RECORD_OPERATIONS | PHONE_NUMBER_OPERATIONS


def test_every_operation_has_a_summary_and_documents_its_errors() -> None:
    for (method, path), op in _operations().items():
        assert op.get("summary"), (method, path)
        assert {"404", "422"} <= set(op["responses"]), (method, path)
