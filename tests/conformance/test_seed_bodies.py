"""Every request the seed curl docs print for connections, IPs, FQDNs and outbound voice profiles,
sent as printed, is accepted. The seed is Telnyx's generated curl skill for SIP, `telnyx-sip-curl`
in https://github.com/team-telnyx/telnyx-skills

The bodies below are copied from the seed as Python literals. Only placeholders are swapped, each for a
valid value of its field, and each swap is marked `# seed: ...`: `"string"` where the field has a
format, example ids of records that do not exist here (path ids, `outbound_voice_profile_id`,
`connection_id`, `default_*_id`), and the token and the SIP subdomain (`"test"`), which must be unique
across the server.
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

import httpx
import pytest
import telnyx

from tests.conformance._connections import profile, project, token

JSON = {"Content-Type": "application/json"}

CREDENTIAL_CONNECTION_BODY: dict[str, Any] = {
    "user_name": "myusername123",
    "password": "my123secure456password789",
    "anchorsite_override": "Amsterdam, Netherlands",
    "connection_name": "office-connection",
    "dtmf_type": "Inband",
    "encrypted_media": "SRTP",
    "ios_push_credential_id": "ec0c8e5d-439e-4620-a0c1-9d9c8d02a836",
    "android_push_credential_id": "06b09dfd-7154-4980-8b75-cebf7a9d4f8e",
    "webhook_event_url": "https://example.com",
    "webhook_event_failover_url": "https://failover.example.com",
    "webhook_api_version": "1",
    "webhook_timeout_secs": 25,
    "tags": ["tag1", "tag2"],
    "rtcp_settings": {"port": "rtcp-mux", "capture_enabled": True, "report_frequency_secs": 10},
    "inbound": {
        "ani_number_format": "+E.164",
        "dnis_number_format": "+e164",
        "codecs": ["G722"],
        "default_routing_method": "sequential",
        "channel_limit": 10,
        "generate_ringback_tone": True,
        "isup_headers_enabled": True,
        "prack_enabled": True,
        "sip_compact_headers_enabled": True,
        "timeout_1xx_secs": 10,
        "timeout_2xx_secs": 20,
        "shaken_stir_enabled": True,
        "simultaneous_ringing": "enabled",
    },
    "outbound": {
        "call_parking_enabled": True,
        "ani_override": "always",
        "channel_limit": 10,
        "instant_ringback_enabled": True,
        "generate_ringback_tone": True,
        "localization": "US",
        "t38_reinvite_source": "customer",
        "outbound_voice_profile_id": "1293384261075731499",  # seed: an OVP of the account
    },
    "noise_suppression": "both",
}
# The seed prints the same body for PATCH /credential_connections/{id}.
CREDENTIAL_CONNECTION_UPDATE_BODY = copy.deepcopy(CREDENTIAL_CONNECTION_BODY)

FQDN_CONNECTION_BODY: dict[str, Any] = {
    "anchorsite_override": "Amsterdam, Netherlands",
    "connection_name": "office-connection",
    "dtmf_type": "Inband",
    "encrypted_media": "SRTP",
    "tags": ["tag1", "tag2"],
    "ios_push_credential_id": "ec0c8e5d-439e-4620-a0c1-9d9c8d02a836",
    "android_push_credential_id": "06b09dfd-7154-4980-8b75-cebf7a9d4f8e",
    "webhook_event_url": "https://example.com",
    "webhook_event_failover_url": "https://failover.example.com",
    "webhook_api_version": "1",
    "webhook_timeout_secs": 25,
    "rtcp_settings": {"port": "rtcp-mux", "capture_enabled": True, "report_frequency_secs": 10},
    "inbound": {
        "ani_number_format": "+E.164",
        "dnis_number_format": "+e164",
        "codecs": ["G722"],
        "default_routing_method": "sequential",
        "default_primary_fqdn_id": "1293384261075731497",  # seed: FQDNs of this connection
        "default_secondary_fqdn_id": "1293384261075731498",  # seed: (none exist on create: null)
        "default_tertiary_fqdn_id": "1293384261075731499",  # seed
        "channel_limit": 10,
        "generate_ringback_tone": True,
        "isup_headers_enabled": True,
        "prack_enabled": True,
        "sip_compact_headers_enabled": True,
        "sip_region": "US",
        "sip_subdomain": "test",
        "sip_subdomain_receive_settings": "only_my_connections",
        "timeout_1xx_secs": 10,
        "timeout_2xx_secs": 20,
        "shaken_stir_enabled": True,
    },
    "noise_suppression": "both",
}
FQDN_CONNECTION_UPDATE_BODY = copy.deepcopy(FQDN_CONNECTION_BODY)

FQDN_BODY: dict[str, Any] = {
    "connection_id": "string",  # seed: an FQDN connection of the account
    "fqdn": "example.com",
    "port": 5060,
    "dns_record_type": "a",
}
FQDN_UPDATE_BODY: dict[str, Any] = {"fqdn": "example.com", "port": 5060, "dns_record_type": "a"}

IP_CONNECTION_BODY: dict[str, Any] = {
    "active": True,
    "anchorsite_override": "Amsterdam, Netherlands",
    "connection_name": "string",
    "transport_protocol": "UDP",
    "default_on_hold_comfort_noise_enabled": True,
    "dtmf_type": "Inband",
    "encode_contact_header_enabled": True,
    "encrypted_media": "SRTP",
    "onnet_t38_passthrough_enabled": False,
    "ios_push_credential_id": "ec0c8e5d-439e-4620-a0c1-9d9c8d02a836",
    "android_push_credential_id": "06b09dfd-7154-4980-8b75-cebf7a9d4f8e",
    "webhook_event_url": "https://example.com",
    "webhook_event_failover_url": "https://failover.example.com",
    "webhook_api_version": "1",
    "webhook_timeout_secs": 25,
    "tags": ["tag1", "tag2"],
    "rtcp_settings": {"port": "rtcp-mux", "capture_enabled": True, "report_frequency_secs": 10},
    "inbound": {
        "ani_number_format": "+E.164",
        "dnis_number_format": "+e164",
        "codecs": ["G722"],
        "default_routing_method": "sequential",
        "channel_limit": 10,
        "generate_ringback_tone": True,
        "isup_headers_enabled": True,
        "prack_enabled": True,
        "sip_compact_headers_enabled": True,
        "sip_region": "US",
        "sip_subdomain": "test",
        "sip_subdomain_receive_settings": "only_my_connections",
        "timeout_1xx_secs": 10,
        "timeout_2xx_secs": 20,
        "shaken_stir_enabled": True,
    },
    "outbound": {
        "call_parking_enabled": True,
        "ani_override": "string",
        "ani_override_type": "always",
        "channel_limit": 10,
        "instant_ringback_enabled": True,
        "generate_ringback_tone": True,
        "localization": "string",  # seed: a country code
        "t38_reinvite_source": "customer",
        "tech_prefix": "string",  # seed: four digits
        "ip_authentication_method": "token",
        "ip_authentication_token": "string",  # seed: 12-48 characters, unique across the server
        "outbound_voice_profile_id": "1293384261075731499",  # seed: an OVP of the account
    },
    "noise_suppression": "both",
}
IP_CONNECTION_UPDATE_BODY: dict[str, Any] = {
    "anchorsite_override": "Amsterdam, Netherlands",
    "dtmf_type": "Inband",
    "encrypted_media": "SRTP",
    "ios_push_credential_id": "ec0c8e5d-439e-4620-a0c1-9d9c8d02a836",
    "android_push_credential_id": "06b09dfd-7154-4980-8b75-cebf7a9d4f8e",
    "webhook_event_url": "https://example.com",
    "webhook_event_failover_url": "https://failover.example.com",
    "webhook_api_version": "1",
    "webhook_timeout_secs": 25,
    "tags": ["tag1", "tag2"],
    "rtcp_settings": {"port": "rtcp-mux", "capture_enabled": True, "report_frequency_secs": 10},
    "inbound": {
        "ani_number_format": "+E.164",
        "dnis_number_format": "+e164",
        "codecs": ["G722"],
        # As Telnyx's example prints it: an address, naming the connection's IP with that address.
        "default_primary_ip_id": "192.168.0.0",
        "default_tertiary_ip_id": "192.168.0.0",
        "default_secondary_ip_id": "192.168.0.0",
        "default_routing_method": "sequential",
        "channel_limit": 10,
        "generate_ringback_tone": True,
        "isup_headers_enabled": True,
        "prack_enabled": True,
        "sip_compact_headers_enabled": True,
        "sip_region": "US",
        "sip_subdomain": "test",
        "sip_subdomain_receive_settings": "only_my_connections",
        "timeout_1xx_secs": 10,
        "timeout_2xx_secs": 20,
        "shaken_stir_enabled": True,
    },
    "outbound": {
        "call_parking_enabled": True,
        "ani_override": "string",
        "ani_override_type": "always",
        "channel_limit": 10,
        "instant_ringback_enabled": True,
        "generate_ringback_tone": True,
        "localization": "string",  # seed: a country code
        "t38_reinvite_source": "customer",
        "tech_prefix": "string",  # seed: four digits
        "ip_authentication_method": "token",
        "ip_authentication_token": "string",  # seed: 12-48 characters, unique across the server
        "outbound_voice_profile_id": "1293384261075731499",  # seed: an OVP of the account
    },
    "noise_suppression": "both",
}

IP_BODY: dict[str, Any] = {"ip_address": "192.168.0.0", "port": 5060}
IP_UPDATE_BODY: dict[str, Any] = {"ip_address": "192.168.0.0", "port": 5060}

OUTBOUND_VOICE_PROFILE_BODY: dict[str, Any] = {
    "name": "office",
    "traffic_type": "conversational",
    "service_plan": "global",
    "concurrent_call_limit": 10,
    "enabled": True,
    "tags": ["office-profile"],
    "usage_payment_method": "rate-deck",
    "whitelisted_destinations": ["US", "BR", "AU"],
    "daily_spend_limit": "100.00",
    "daily_spend_limit_enabled": True,
    "call_recording": {
        "call_recording_type": "by_caller_phone_number",
        "call_recording_caller_phone_numbers": ["+19705555098"],
        "call_recording_channels": "dual",
        "call_recording_format": "mp3",
    },
    "billing_group_id": "6a09cdc3-8948-47f0-aa62-74ac943d6c58",
    "calling_window": {"start_time": "08:00:00.00Z", "end_time": "20:00:00.00Z", "calls_per_cld": 5},
}
OUTBOUND_VOICE_PROFILE_UPDATE_BODY = copy.deepcopy(OUTBOUND_VOICE_PROFILE_BODY)

# The list requests the seed prints, with their query strings.
SEED_LIST_URLS = [
    "/connections?sort=connection_name",
    "/credential_connections?sort=connection_name",
    "/fqdn_connections?sort=connection_name",
    "/ip_connections?sort=connection_name",
    "/ips",
    "/fqdns",
    "/outbound_voice_profiles?sort=name",
]


def swapped(body: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of `body` with the placeholders at these dotted paths replaced."""
    out = copy.deepcopy(body)
    for path, value in changes.items():
        *parents, leaf = path.split(".")
        node = out
        for part in parents:
            node = node[part]
        assert leaf in node, f"{path} is not in the seed body"
        node[leaf] = value
    return out


def accepted(r: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert r.status_code == status, r.text
    return r.json()["data"]  # type: ignore[no-any-return]


def ovp_or_skip(http: httpx.Client) -> str:
    return profile(http, "seed-profile")


def fqdn_routes_or_skip(http: httpx.Client) -> None:
    r = http.get("/fqdns")
    if r.status_code == 404:
        pytest.skip("OVP/FQDN routes pending: GET /v2/fqdns answers 404")


def test_seed_create_credential_connection_body_is_accepted(http: httpx.Client) -> None:
    body = swapped(CREDENTIAL_CONNECTION_BODY, {"outbound.outbound_voice_profile_id": ovp_or_skip(http)})
    data = accepted(http.post("/credential_connections", json=body, headers=JSON), 201)
    try:
        stored = {k: v for k, v in body.items() if k != "password"}
        assert project(data, stored) == stored
        assert data["password"] == body["password"]
        assert project(accepted(http.get(f"/credential_connections/{data['id']}")), stored) == stored
    finally:
        # The seed's user name is unique across the server: leave it free for other tests.
        http.delete(f"/credential_connections/{data['id']}")


def test_seed_update_credential_connection_body_is_accepted(
    client: telnyx.Telnyx, http: httpx.Client
) -> None:
    created = client.credential_connections.create(
        connection_name="before", user_name="seedpatch" + token()[4:12], password="before-password"
    ).data
    body = swapped(
        CREDENTIAL_CONNECTION_UPDATE_BODY, {"outbound.outbound_voice_profile_id": ovp_or_skip(http)}
    )
    try:
        data = accepted(http.patch(f"/credential_connections/{created.id}", json=body, headers=JSON))
        stored = {k: v for k, v in body.items() if k != "password"}
        assert project(data, stored) == stored
        assert data["password"] == body["password"]  # the update changed it, so it is shown in full
    finally:
        client.credential_connections.delete(created.id)


def subdomain() -> str:
    """The seed's `"sip_subdomain": "test"`, made unique: one connection per subdomain on the server."""
    return "test-" + uuid.uuid4().hex[:12]


def test_seed_create_fqdn_connection_body_is_accepted(http: httpx.Client) -> None:
    nulls = {f"inbound.default_{o}_fqdn_id": None for o in ("primary", "secondary", "tertiary")}
    body = swapped(FQDN_CONNECTION_BODY, {**nulls, "inbound.sip_subdomain": subdomain()})
    data = accepted(http.post("/fqdn_connections", json=body, headers=JSON), 201)
    assert project(data, body) == body
    assert project(accepted(http.get(f"/fqdn_connections/{data['id']}")), body) == body


def test_seed_fqdn_bodies_and_fqdn_connection_update_body_are_accepted(http: httpx.Client) -> None:
    fqdn_routes_or_skip(http)
    connection = accepted(http.post("/fqdn_connections", json={"connection_name": "seed"}), 201)
    try:
        fqdn = accepted(
            http.post("/fqdns", json=swapped(FQDN_BODY, {"connection_id": connection["id"]})), 201
        )
        assert project(fqdn, FQDN_UPDATE_BODY) == FQDN_UPDATE_BODY
        assert fqdn["connection_id"] == connection["id"]
        updated = accepted(http.patch(f"/fqdns/{fqdn['id']}", json=FQDN_UPDATE_BODY, headers=JSON))
        assert project(updated, FQDN_UPDATE_BODY) == FQDN_UPDATE_BODY
        others = [
            accepted(
                http.post(
                    "/fqdns",
                    json={
                        "connection_id": connection["id"],
                        "fqdn": f"{n}.{connection['id']}.example.com",
                        "dns_record_type": "srv",
                    },
                ),
                201,
            )["id"]
            for n in ("two", "three")
        ]
        ids = [fqdn["id"], *others]
        body = swapped(
            FQDN_CONNECTION_UPDATE_BODY,
            {
                "inbound.default_primary_fqdn_id": ids[0],
                "inbound.default_secondary_fqdn_id": ids[1],
                "inbound.default_tertiary_fqdn_id": ids[2],
                "inbound.sip_subdomain": subdomain(),
            },
        )
        data = accepted(http.patch(f"/fqdn_connections/{connection['id']}", json=body, headers=JSON))
        assert project(data, body) == body
    finally:
        # example.com:5060 is unique across the server; deleting the connection deletes its FQDNs.
        http.delete(f"/fqdn_connections/{connection['id']}")


def _ip_connection_swaps(profile_id: str) -> dict[str, Any]:
    return {
        "outbound.localization": "US",
        "outbound.tech_prefix": "1234",
        "outbound.ip_authentication_token": token(),
        "outbound.outbound_voice_profile_id": profile_id,
        "inbound.sip_subdomain": subdomain(),
    }


def test_seed_create_ip_connection_body_is_accepted(http: httpx.Client) -> None:
    body = swapped(IP_CONNECTION_BODY, _ip_connection_swaps(ovp_or_skip(http)))
    data = accepted(http.post("/ip_connections", json=body, headers=JSON), 201)
    assert project(data, body) == body
    assert project(accepted(http.get(f"/ip_connections/{data['id']}")), body) == body


def test_seed_ip_bodies_and_ip_connection_update_body_are_accepted(http: httpx.Client) -> None:
    profile_id = ovp_or_skip(http)
    connection = accepted(http.post("/ip_connections", json={}), 201)
    try:
        ip = accepted(http.post("/ips", json=IP_BODY, headers=JSON), 201)
        try:
            assert project(ip, IP_BODY) == IP_BODY
            assert project(accepted(http.patch(f"/ips/{ip['id']}", json=IP_UPDATE_BODY)), IP_BODY) == IP_BODY
            # Setup, not a seed body: put the IP on the connection so its address can name it.
            accepted(
                http.patch(f"/ips/{ip['id']}", json={**IP_UPDATE_BODY, "connection_id": connection["id"]})
            )
            body = swapped(IP_CONNECTION_UPDATE_BODY, _ip_connection_swaps(profile_id))
            data = accepted(http.patch(f"/ip_connections/{connection['id']}", json=body, headers=JSON))
            expected = swapped(
                body, {f"inbound.default_{o}_ip_id": ip["id"] for o in ("primary", "secondary", "tertiary")}
            )
            assert project(data, expected) == expected
        finally:
            http.delete(f"/ips/{ip['id']}")  # 192.168.0.0:5060 is unique across the server
    finally:
        http.delete(f"/ip_connections/{connection['id']}")


def test_seed_outbound_voice_profile_bodies_are_accepted(http: httpx.Client) -> None:
    r = http.post("/outbound_voice_profiles", json=OUTBOUND_VOICE_PROFILE_BODY, headers=JSON)
    if r.status_code == 404:
        pytest.skip("OVP/FQDN routes pending: POST /v2/outbound_voice_profiles answers 404")
    created = accepted(r)
    assert created["name"] == "office" and created["whitelisted_destinations"] == ["US", "BR", "AU"]
    assert created["daily_spend_limit"] == "100.00"
    assert created["call_recording"]["call_recording_format"] == "mp3"
    updated = accepted(
        http.patch(
            f"/outbound_voice_profiles/{created['id']}", json=OUTBOUND_VOICE_PROFILE_UPDATE_BODY, headers=JSON
        )
    )
    assert updated["concurrent_call_limit"] == 10 and updated["tags"] == ["office-profile"]
    assert updated["calling_window"]["calls_per_cld"] == 5


@pytest.mark.parametrize("url", SEED_LIST_URLS)
def test_seed_list_requests_are_accepted(http: httpx.Client, url: str) -> None:
    r = http.get(url)
    if r.status_code == 404 and url.startswith(("/fqdns", "/outbound_voice_profiles")):
        pytest.skip("OVP/FQDN routes pending")
    assert r.status_code == 200, r.text
    assert set(r.json()) == {"data", "meta"}


def test_seed_check_registration_status_request_is_accepted(
    client: telnyx.Telnyx, http: httpx.Client
) -> None:
    created = client.credential_connections.create(
        connection_name="reg", user_name="seedreg" + token()[4:12], password="reg-password"
    ).data
    r = http.post(f"/credential_connections/{created.id}/actions/check_registration_status", headers=JSON)
    assert accepted(r)["status"] == "Not Registered"


@pytest.mark.parametrize("kind", ["credential_connections", "fqdn_connections", "ip_connections", "ips"])
def test_seed_delete_requests_are_accepted(client: telnyx.Telnyx, http: httpx.Client, kind: str) -> None:
    bodies: dict[str, dict[str, Any]] = {
        "credential_connections": {
            "connection_name": "d",
            "user_name": "seeddel" + token()[4:12],
            "password": "p" * 8,
        },
        "fqdn_connections": {"connection_name": "d"},
        "ip_connections": {},
        "ips": {"ip_address": "192.0.2.1", "port": 5000 + int(token()[4:8], 16) % 1000},
    }
    made = accepted(http.post(f"/{kind}", json=bodies[kind]), 201)
    # As the seed's curl sends it: no body, no content type.
    url = f"{str(http.base_url).rstrip('/')}/{kind}/{made['id']}"
    deleted = accepted(httpx.delete(url, headers={"Authorization": http.headers["Authorization"]}))
    assert deleted["id"] == made["id"]
    assert http.get(f"/{kind}/{made['id']}").status_code == 404
