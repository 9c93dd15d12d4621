"""/v2/ip_connections through the official SDK (strict response validation) and raw HTTP."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
import telnyx

from tests.conformance._connections import (
    DEFAULT_CODECS,
    SHARED_DEFAULTS,
    address,
    assert_error,
    pointers,
    profile,
    project,
    token,
)

IP_DEFAULTS: dict[str, Any] = {
    "record_type": "ip_connection",
    "connection_name": None,
    **SHARED_DEFAULTS,
    "transport_protocol": "UDP",
    "inbound": {
        "ani_number_format": "E.164-national",
        "dnis_number_format": "e164",
        "codecs": DEFAULT_CODECS,
        "channel_limit": None,
        "default_primary_ip_id": None,
        "default_secondary_ip_id": None,
        "default_tertiary_ip_id": None,
        "generate_ringback_tone": False,
        "isup_headers_enabled": False,
        "prack_enabled": False,
        "shaken_stir_enabled": False,
        "sip_compact_headers_enabled": True,
        "sip_region": "US",
        "sip_subdomain": None,
        "timeout_1xx_secs": 3,
        "timeout_2xx_secs": 90,
    },
    "outbound": {
        "ani_override": "",
        "ani_override_type": "always",
        "call_parking_enabled": False,
        "channel_limit": None,
        "generate_ringback_tone": False,
        "instant_ringback_enabled": True,
        "ip_authentication_method": "tech-prefixp-charge-info",
        "ip_authentication_token": None,
        "localization": None,
        "t38_reinvite_source": "customer",
        "tech_prefix": "",
    },
}


def wire(model: Any) -> dict[str, Any]:
    return model.to_dict(mode="json")  # type: ignore[no-any-return]


def add_ip(client: telnyx.Telnyx, connection_id: str, ip: str | None = None, port: int = 5060) -> Any:
    return client.ips.create(ip_address=ip or address(), port=port, connection_id=connection_id).data


def test_create_ip_connection_with_no_body_fields_applies_every_default(client: telnyx.Telnyx) -> None:
    created = client.ip_connections.create().data
    body = wire(created)
    assert project(body, IP_DEFAULTS) == IP_DEFAULTS
    assert body["inbound"].get("sip_subdomain_receive_settings") is None
    assert body["outbound"].get("outbound_voice_profile_id") is None
    assert "user_name" not in body and "password" not in body
    assert created.id and created.id.isdigit()


def test_create_ip_connection_returns_201(http: httpx.Client) -> None:
    r = http.post("/ip_connections", json={})
    assert r.status_code == 201, r.text
    assert r.json()["data"]["record_type"] == "ip_connection"


def test_create_ip_connection_round_trips_outbound_settings(client: telnyx.Telnyx) -> None:
    tok = token()
    outbound = {
        "ani_override": "+13125550001",
        "ani_override_type": "normal",
        "call_parking_enabled": True,
        "channel_limit": 4,
        "generate_ringback_tone": True,
        "instant_ringback_enabled": False,
        "ip_authentication_method": "token",
        "ip_authentication_token": tok,
        "localization": "US",
        "t38_reinvite_source": "passthru",
        "tech_prefix": "9876",
    }
    inbound = {
        "sip_region": "Australia",
        "sip_subdomain": "pbx1",
        "sip_subdomain_receive_settings": "from_anyone",
    }
    created = client.ip_connections.create(
        connection_name="pbx", transport_protocol="TCP", outbound=outbound, inbound=inbound
    ).data
    expected = {
        "connection_name": "pbx",
        "transport_protocol": "TCP",
        "outbound": outbound,
        "inbound": inbound,
    }
    assert project(wire(created), expected) == expected
    assert wire(client.ip_connections.retrieve(created.id).data) == wire(created)


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        ({"transport_protocol": "udp"}, "/transport_protocol"),
        ({"connection_name": ""}, "/connection_name"),
        ({"connection_name": 5}, "/connection_name"),
        ({"webhook_api_version": "texml"}, "/webhook_api_version"),
        ({"outbound": {"tech_prefix": "12"}}, "/outbound/tech_prefix"),
        ({"outbound": {"tech_prefix": "abcd"}}, "/outbound/tech_prefix"),
        (
            {"outbound": {"ip_authentication_method": "ip-authentication"}},
            "/outbound/ip_authentication_method",
        ),
        ({"outbound": {"ip_authentication_token": "tiny"}}, "/outbound/ip_authentication_token"),
        ({"outbound": {"ip_authentication_token": "bad_chars_here!"}}, "/outbound/ip_authentication_token"),
        ({"outbound": {"localization": "U"}}, "/outbound/localization"),
        ({"inbound": {"sip_subdomain_receive_settings": "all"}}, "/inbound/sip_subdomain_receive_settings"),
        ({"inbound": {"timeout_2xx_secs": 0}}, "/inbound/timeout_2xx_secs"),
        (
            {"inbound": {"default_primary_ip_id": "6a09cdc3-8948-47f0-aa62-74ac943d6c58"}},
            "/inbound/default_primary_ip_id",
        ),
    ],
)
def test_create_ip_connection_invalid_field_is_422_with_pointer(
    http: httpx.Client, body: dict[str, Any], pointer: str
) -> None:
    assert_error(http.post("/ip_connections", json=body), 422, pointer=pointer)


def test_create_ip_connection_empty_tech_prefix_is_accepted(client: telnyx.Telnyx) -> None:
    assert client.ip_connections.create(outbound={"tech_prefix": ""}).data.outbound.tech_prefix == ""
    assert client.ip_connections.create(outbound={"tech_prefix": "0000"}).data.outbound.tech_prefix == "0000"


def test_update_ip_connection_connection_name_can_be_null(client: telnyx.Telnyx) -> None:
    created = client.ip_connections.create(connection_name="named").data
    updated = client.ip_connections.update(created.id, connection_name=None).data  # type: ignore[arg-type]
    assert updated.connection_name is None


def test_update_ip_connection_default_ip_ids_must_belong_to_it(
    client: telnyx.Telnyx, http: httpx.Client
) -> None:
    mine = client.ip_connections.create(connection_name="mine").data
    other = client.ip_connections.create(connection_name="other").data
    a, b, c = (add_ip(client, mine.id) for _ in range(3))
    foreign = add_ip(client, other.id)
    updated = client.ip_connections.update(
        mine.id,
        inbound={
            "default_primary_ip_id": a.id,
            "default_secondary_ip_id": b.id,
            "default_tertiary_ip_id": c.id,
        },
    ).data
    assert (updated.inbound.default_primary_ip_id, updated.inbound.default_secondary_ip_id) == (a.id, b.id)
    assert updated.inbound.default_tertiary_ip_id == c.id
    r = http.patch(
        f"/ip_connections/{mine.id}",
        json={"inbound": {"default_primary_ip_id": foreign.id, "default_secondary_ip_id": str(uuid.uuid4())}},
    )
    assert r.status_code == 422
    assert pointers(r) == {"/inbound/default_primary_ip_id", "/inbound/default_secondary_ip_id"}
    assert client.ip_connections.retrieve(mine.id).data.inbound.default_primary_ip_id == a.id


def test_update_ip_connection_default_ip_id_accepts_an_address_of_its_ips(client: telnyx.Telnyx) -> None:
    created = client.ip_connections.create(connection_name="lenient").data
    ip = add_ip(client, created.id)
    updated = client.ip_connections.update(created.id, inbound={"default_primary_ip_id": ip.ip_address}).data
    assert updated.inbound.default_primary_ip_id == ip.id
    assert client.ip_connections.retrieve(created.id).data.inbound.default_primary_ip_id == ip.id


def test_update_ip_connection_default_ip_id_address_of_another_connection_is_422(
    client: telnyx.Telnyx, http: httpx.Client
) -> None:
    created = client.ip_connections.create(connection_name="mine").data
    other = client.ip_connections.create(connection_name="other").data
    ip = add_ip(client, other.id)
    r = http.patch(
        f"/ip_connections/{created.id}", json={"inbound": {"default_primary_ip_id": ip.ip_address}}
    )
    assert_error(r, 422, pointer="/inbound/default_primary_ip_id")


def test_update_ip_connection_default_ip_id_null_clears_it(client: telnyx.Telnyx) -> None:
    created = client.ip_connections.create().data
    ip = add_ip(client, created.id)
    client.ip_connections.update(created.id, inbound={"default_primary_ip_id": ip.id})
    cleared = client.ip_connections.update(created.id, inbound={"default_primary_ip_id": None}).data  # type: ignore[typeddict-item]
    assert cleared.inbound.default_primary_ip_id is None


def test_update_ip_connection_deep_merge_keeps_default_ip_ids(client: telnyx.Telnyx) -> None:
    created = client.ip_connections.create().data
    ip = add_ip(client, created.id)
    client.ip_connections.update(created.id, inbound={"default_primary_ip_id": ip.id})
    updated = client.ip_connections.update(created.id, inbound={"channel_limit": 9}, tags=["t"]).data
    assert updated.inbound.default_primary_ip_id == ip.id
    assert updated.inbound.channel_limit == 9


def test_delete_ip_clears_default_ip_id(client: telnyx.Telnyx) -> None:
    created = client.ip_connections.create().data
    keep, gone = add_ip(client, created.id), add_ip(client, created.id)
    client.ip_connections.update(
        created.id, inbound={"default_primary_ip_id": gone.id, "default_secondary_ip_id": keep.id}
    )
    client.ips.delete(gone.id)
    fetched = client.ip_connections.retrieve(created.id).data
    assert fetched.inbound.default_primary_ip_id is None
    assert fetched.inbound.default_secondary_ip_id == keep.id


def test_update_ip_moving_to_another_connection_clears_default_ip_id(client: telnyx.Telnyx) -> None:
    first = client.ip_connections.create().data
    second = client.ip_connections.create().data
    ip = add_ip(client, first.id)
    client.ip_connections.update(first.id, inbound={"default_tertiary_ip_id": ip.id})
    client.ips.update(ip.id, ip_address=ip.ip_address, connection_id=second.id)
    assert client.ip_connections.retrieve(first.id).data.inbound.default_tertiary_ip_id is None


def test_delete_ip_connection_returns_record_and_cascades_its_ips(client: telnyx.Telnyx) -> None:
    created = client.ip_connections.create(connection_name="cascade").data
    ips = [add_ip(client, created.id) for _ in range(2)]
    deleted = client.ip_connections.delete(created.id).data
    assert wire(deleted) == wire(created)
    for ip in ips:
        with pytest.raises(telnyx.NotFoundError):
            client.ips.retrieve(ip.id)
    assert client.ips.list(filter={"connection_id": created.id}).data == []
    # The address is free again.
    assert (
        client.ips.create(ip_address=ips[0].ip_address, port=ips[0].port).data.ip_address == ips[0].ip_address
    )


def test_delete_ip_connection_twice_is_404(client: telnyx.Telnyx, http: httpx.Client) -> None:
    created = client.ip_connections.create().data
    client.ip_connections.delete(created.id)
    assert_error(http.delete(f"/ip_connections/{created.id}"), 404, code="10005", pointer="/")


def test_update_ip_connection_token_taken_by_another_connection_is_10012(
    client: telnyx.Telnyx, http: httpx.Client
) -> None:
    tok = token()
    client.ip_connections.create(outbound={"ip_authentication_token": tok})
    other = client.ip_connections.create().data
    r = http.patch(f"/ip_connections/{other.id}", json={"outbound": {"ip_authentication_token": tok}})
    assert_error(r, 422, code="10012", pointer="/outbound/ip_authentication_token")


def test_create_ip_connection_with_profile_and_update_to_unknown_profile(
    client: telnyx.Telnyx, http: httpx.Client
) -> None:
    profile_id = profile(http)
    created = client.ip_connections.create(outbound={"outbound_voice_profile_id": profile_id}).data
    assert created.outbound.outbound_voice_profile_id == profile_id
    r = http.patch(f"/ip_connections/{created.id}", json={"outbound": {"outbound_voice_profile_id": "42"}})
    assert_error(r, 422, code="10017", pointer="/outbound/outbound_voice_profile_id")
    assert client.ip_connections.retrieve(created.id).data.outbound.outbound_voice_profile_id == profile_id


def test_update_ip_connection_patch_without_body_changes_nothing_but_updated_at(
    client: telnyx.Telnyx, http: httpx.Client
) -> None:
    created = client.ip_connections.create(connection_name="same").data
    r = http.patch(f"/ip_connections/{created.id}")
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert {k: v for k, v in data.items() if k != "updated_at"} == {
        k: v for k, v in wire(created).items() if k != "updated_at"
    }
