"""/v2/credential_connections through the official SDK (strict response validation) and raw HTTP."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
import telnyx

from tests.conformance._connections import (
    DEFAULT_CODECS,
    MASK,
    SHARED_DEFAULTS,
    assert_error,
    credential,
    pointers,
    profile,
    project,
    sdk_errors,
    user_name,
)
from tests.conftest import Account

# Every default a credential connection gets when the create body omits the field (Telnyx's spec).
CREDENTIAL_DEFAULTS: dict[str, Any] = {
    "record_type": "credential_connection",
    **SHARED_DEFAULTS,
    "sip_uri_calling_preference": "disabled",
}
CREDENTIAL_INBOUND_DEFAULTS: dict[str, Any] = {
    "ani_number_format": "E.164-national",
    "dnis_number_format": "e164",
    "codecs": DEFAULT_CODECS,
    "channel_limit": None,
    "generate_ringback_tone": False,
    "isup_headers_enabled": False,
    "prack_enabled": False,
    "shaken_stir_enabled": False,
    "sip_compact_headers_enabled": True,
    "timeout_1xx_secs": 3,
    "timeout_2xx_secs": 90,
    "simultaneous_ringing": "disabled",
}
CREDENTIAL_OUTBOUND_DEFAULTS: dict[str, Any] = {
    "ani_override": "",
    "ani_override_type": "always",
    "call_parking_enabled": False,
    "channel_limit": None,
    "generate_ringback_tone": False,
    "instant_ringback_enabled": True,
    "localization": "US",
    "t38_reinvite_source": "telnyx",
}


def wire(model: Any) -> dict[str, Any]:
    """An SDK model as the JSON the server sent."""
    return model.to_dict(mode="json")  # type: ignore[no-any-return]


def test_create_credential_connection_applies_every_default(client: telnyx.Telnyx) -> None:
    name = user_name()
    created = client.credential_connections.create(
        connection_name="office", user_name=name, password="s3cret-pass"
    ).data
    body = wire(created)
    assert {k: body[k] for k in CREDENTIAL_DEFAULTS} == CREDENTIAL_DEFAULTS
    assert {k: body["inbound"][k] for k in CREDENTIAL_INBOUND_DEFAULTS} == CREDENTIAL_INBOUND_DEFAULTS
    assert {k: body["outbound"][k] for k in CREDENTIAL_OUTBOUND_DEFAULTS} == CREDENTIAL_OUTBOUND_DEFAULTS
    assert body["outbound"].get("outbound_voice_profile_id") is None
    assert body["connection_name"] == "office"
    assert body["user_name"] == name
    assert created.id and created.id.isdigit() and 15 <= len(created.id) <= 19
    assert created.created_at == created.updated_at
    assert created.created_at.endswith("Z") and len(created.created_at) == 24


def test_create_credential_connection_returns_201_with_data(http: httpx.Client) -> None:
    r = http.post(
        "/credential_connections",
        json={"connection_name": "c", "user_name": user_name(), "password": "s3cret-pass"},
    )
    assert r.status_code == 201
    assert r.headers["content-type"].startswith("application/json")
    assert set(r.json()) == {"data"}


def test_create_credential_connection_round_trips_every_writable_field(client: telnyx.Telnyx) -> None:
    fields: dict[str, Any] = {
        "connection_name": "round trip",
        "user_name": user_name(),
        "password": "s3cret-pass",
        "active": False,
        "anchorsite_override": "Frankfurt, Germany",
        "android_push_credential_id": "06b09dfd-7154-4980-8b75-cebf7a9d4f8e",
        "ios_push_credential_id": "ec0c8e5d-439e-4620-a0c1-9d9c8d02a836",
        "bridge_generate_comfort_noise_on_cn": True,
        "call_cost_in_webhooks": True,
        "default_on_hold_comfort_noise_enabled": False,
        "dtmf_type": "SIP INFO",
        "encode_contact_header_enabled": True,
        "encrypted_media": "SRTP",
        "jitter_buffer": {
            "enable_jitter_buffer": True,
            "jitterbuffer_msec_min": 40,
            "jitterbuffer_msec_max": 400,
        },
        "noise_suppression": "both",
        "noise_suppression_details": {"engine": "krisp_viva_tel", "attenuation_limit": 55},
        "onnet_t38_passthrough_enabled": True,
        "rtcp_settings": {"port": "rtcp-mux", "capture_enabled": True, "report_frequency_secs": 3000},
        "sip_uri_calling_preference": "internal",
        "tags": ["a", "b"],
        "webhook_api_version": "2",
        "webhook_event_url": "https://example.com/hook",
        "webhook_event_failover_url": "https://failover.example.com/hook",
        "webhook_timeout_secs": 30,
        "inbound": {
            "ani_number_format": "+E.164",
            "dnis_number_format": "sip_username",
            "codecs": ["OPUS", "G711U"],
            "channel_limit": 7,
            "default_routing_method": "round-robin",
            "generate_ringback_tone": True,
            "isup_headers_enabled": True,
            "prack_enabled": True,
            "shaken_stir_enabled": True,
            "sip_compact_headers_enabled": False,
            "timeout_1xx_secs": 120,
            "timeout_2xx_secs": 600,
            "simultaneous_ringing": "enabled",
        },
        "outbound": {
            "ani_override": "+13125550001",
            "ani_override_type": "emergency",
            "call_parking_enabled": True,
            "channel_limit": 3,
            "generate_ringback_tone": True,
            "instant_ringback_enabled": False,
            "localization": "GB",
            "t38_reinvite_source": "callee-passthru",
        },
    }
    created = wire(client.credential_connections.create(**fields).data)
    fetched = wire(client.credential_connections.retrieve(created["id"]).data)
    expected = {k: v for k, v in fields.items() if k != "password"}
    assert project(created, expected) == expected
    assert project(fetched, expected) == expected
    assert fetched == {**created, "password": MASK}


def test_create_credential_connection_noise_engine_sets_its_attenuation_default(
    client: telnyx.Telnyx,
) -> None:
    krisp = credential(client, noise_suppression_details={"engine": "krisp_viva_ss"})
    quail = credential(client, noise_suppression_details={"engine": "quail_voice_focus"})
    assert krisp.noise_suppression_details.attenuation_limit == 80
    assert quail.noise_suppression_details.attenuation_limit == 100


def test_create_credential_connection_returns_password_then_masks_it(client: telnyx.Telnyx) -> None:
    created = credential(client, password="first-password")
    assert created.password == "first-password"
    assert client.credential_connections.retrieve(created.id).data.password == MASK
    listed = [c for c in client.credential_connections.list() if c.id == created.id]
    assert listed[0].password == MASK
    renamed = client.credential_connections.update(created.id, connection_name="renamed").data
    assert renamed.password == MASK
    changed = client.credential_connections.update(created.id, password="second-password").data
    assert changed.password == "second-password"
    assert client.credential_connections.retrieve(created.id).data.password == MASK
    assert client.credential_connections.delete(created.id).data.password == MASK


def test_create_credential_connection_texml_with_call_parking_is_version_2(client: telnyx.Telnyx) -> None:
    created = credential(client, webhook_api_version="texml", outbound={"call_parking_enabled": True})
    assert created.webhook_api_version == "2"
    assert client.credential_connections.retrieve(created.id).data.webhook_api_version == "2"


@pytest.mark.parametrize("outbound", [None, {"call_parking_enabled": False}, {"call_parking_enabled": None}])
def test_create_credential_connection_texml_without_call_parking_is_refused(
    http: httpx.Client, outbound: dict[str, Any] | None
) -> None:
    body: dict[str, Any] = {
        "connection_name": "t",
        "user_name": user_name(),
        "password": "s3cret-pass",
        "webhook_api_version": "texml",
    }
    if outbound is not None:
        body["outbound"] = outbound
    assert_error(http.post("/credential_connections", json=body), 422, pointer="/webhook_api_version")


def test_update_credential_connection_texml_is_refused(client: telnyx.Telnyx, http: httpx.Client) -> None:
    created = credential(client, outbound={"call_parking_enabled": True})
    r = http.patch(f"/credential_connections/{created.id}", json={"webhook_api_version": "texml"})
    assert_error(r, 422, pointer="/webhook_api_version")


@pytest.mark.parametrize("missing", ["connection_name", "user_name", "password"])
def test_create_credential_connection_without_required_field_is_422(http: httpx.Client, missing: str) -> None:
    body = {"connection_name": "c", "user_name": user_name(), "password": "s3cret-pass"}
    del body[missing]
    assert_error(http.post("/credential_connections", json=body), 422, pointer=f"/{missing}")


def test_create_credential_connection_empty_body_reports_all_required_fields(http: httpx.Client) -> None:
    r = http.post("/credential_connections", json={})
    assert r.status_code == 422
    assert {"/connection_name", "/user_name", "/password"} <= pointers(r)


@pytest.mark.parametrize(
    "value",
    ["abc", "a" * 33, "user name", "user_name1", "user-name", "12345abc", "ÄbcdE", 12345678],
)
def test_create_credential_connection_bad_user_name_is_422(http: httpx.Client, value: Any) -> None:
    body = {"connection_name": "c", "user_name": value, "password": "s3cret-pass"}
    assert_error(http.post("/credential_connections", json=body), 422, pointer="/user_name")


@pytest.mark.parametrize(
    "make",
    [
        lambda: "abcd",  # four characters
        lambda: "1234a",  # the only letter is the fifth character
        lambda: "a" * 20 + user_name()[1:13],  # 32 characters
    ],
    ids=["4-chars", "letter-fifth", "32-chars"],
)
def test_create_credential_connection_user_name_at_the_limits_is_accepted(
    client: telnyx.Telnyx, make: Callable[[], str]
) -> None:
    name = make()
    created = credential(client, user_name=name)
    try:
        assert created.user_name == name
        assert client.credential_connections.retrieve(created.id).data.user_name == name
    finally:
        # Names are unique across the server: free the fixed ones for the other backend's run.
        client.credential_connections.delete(created.id)


@pytest.mark.parametrize("value", ["short77", "p" * 129])
def test_create_credential_connection_bad_password_length_is_422(http: httpx.Client, value: str) -> None:
    body = {"connection_name": "c", "user_name": user_name(), "password": value}
    assert_error(http.post("/credential_connections", json=body), 422, pointer="/password")


def test_create_credential_connection_password_limits_are_accepted(client: telnyx.Telnyx) -> None:
    assert credential(client, password="p" * 8).password == "p" * 8
    assert credential(client, password="p" * 128).password == "p" * 128


def test_create_credential_connection_duplicate_user_name_any_case_any_account_is_10012(
    account: Account, new_account: Callable[..., Account]
) -> None:
    name = user_name()
    credential(account.client, user_name=name)
    other = new_account()
    for candidate in (name, name.upper()):
        r = other.http.post(
            "/credential_connections",
            json={"connection_name": "dup", "user_name": candidate, "password": "s3cret-pass"},
        )
        assert_error(r, 422, code="10012", pointer="/user_name")
    r = account.http.post(
        "/credential_connections",
        json={"connection_name": "dup", "user_name": name.upper(), "password": "s3cret-pass"},
    )
    assert_error(r, 422, code="10012", pointer="/user_name")


def test_update_credential_connection_to_taken_user_name_is_10012(
    client: telnyx.Telnyx, http: httpx.Client
) -> None:
    first = credential(client)
    second = credential(client)
    r = http.patch(
        f"/credential_connections/{second.id}",
        json={"user_name": first.user_name.upper(), "password": "new-password"},
    )
    assert_error(r, 422, code="10012", pointer="/user_name")


def test_update_credential_connection_keeps_own_user_name(client: telnyx.Telnyx) -> None:
    created = credential(client)
    updated = client.credential_connections.update(
        created.id, user_name=created.user_name, password="other-password"
    ).data
    assert updated.user_name == created.user_name


def test_update_credential_connection_user_name_with_password_changes_it(client: telnyx.Telnyx) -> None:
    created = credential(client)
    new_name = user_name()
    updated = client.credential_connections.update(
        created.id, user_name=new_name, password="brand-new-pw"
    ).data
    assert updated.user_name == new_name
    assert updated.password == "brand-new-pw"
    # The old name is free again.
    assert credential(client, user_name=created.user_name).user_name == created.user_name


def test_update_credential_connection_user_name_without_password_is_422(
    client: telnyx.Telnyx, http: httpx.Client
) -> None:
    created = credential(client)
    r = http.patch(f"/credential_connections/{created.id}", json={"user_name": user_name()})
    assert_error(r, 422, pointer="/password")
    assert client.credential_connections.retrieve(created.id).data.user_name == created.user_name


def test_update_credential_connection_deep_merges_nested_objects(client: telnyx.Telnyx) -> None:
    created = credential(
        client,
        inbound={"channel_limit": 4, "timeout_1xx_secs": 9, "codecs": ["G729"]},
        outbound={"localization": "GB", "channel_limit": 2},
        rtcp_settings={"port": "rtcp-mux"},
    )
    updated = client.credential_connections.update(
        created.id, inbound={"timeout_2xx_secs": 45}, outbound={"generate_ringback_tone": True}
    ).data
    assert updated.inbound.timeout_2xx_secs == 45
    assert updated.inbound.timeout_1xx_secs == 9
    assert updated.inbound.channel_limit == 4
    assert updated.inbound.codecs == ["G729"]
    assert updated.outbound.generate_ringback_tone is True
    assert updated.outbound.localization == "GB"
    assert updated.outbound.channel_limit == 2
    assert updated.rtcp_settings.port == "rtcp-mux"
    assert updated.connection_name == created.connection_name
    fetched = client.credential_connections.retrieve(created.id).data
    assert wire(fetched) == {**wire(updated), "password": MASK}


def test_update_credential_connection_absent_keys_keep_values(client: telnyx.Telnyx) -> None:
    created = credential(client, tags=["keep"], webhook_event_url="https://example.com/a", active=False)
    updated = client.credential_connections.update(created.id, dtmf_type="Inband").data
    before, after = wire(created), wire(updated)
    assert after["dtmf_type"] == "Inband"
    for key in set(before) - {"dtmf_type", "updated_at", "password"}:
        assert after[key] == before[key], key
    assert after["updated_at"] >= before["updated_at"]


def test_update_credential_connection_replaces_lists_whole(client: telnyx.Telnyx) -> None:
    created = credential(client, tags=["a", "b"], inbound={"codecs": ["G722", "G729"]})
    updated = client.credential_connections.update(created.id, tags=["c"], inbound={"codecs": ["OPUS"]}).data
    assert updated.tags == ["c"]
    assert updated.inbound.codecs == ["OPUS"]


def test_update_credential_connection_explicit_null_sets_nullable_fields(client: telnyx.Telnyx) -> None:
    created = credential(
        client,
        webhook_event_url="https://example.com/a",
        webhook_event_failover_url="https://example.com/b",
        webhook_timeout_secs=10,
        encrypted_media="SRTP",
        ios_push_credential_id="ec0c8e5d-439e-4620-a0c1-9d9c8d02a836",
        inbound={"channel_limit": 5},
        outbound={"channel_limit": 5, "call_parking_enabled": True},
    )
    updated = client.credential_connections.update(
        created.id,
        webhook_event_url=None,  # type: ignore[arg-type]
        webhook_event_failover_url=None,
        webhook_timeout_secs=None,
        encrypted_media=None,
        ios_push_credential_id=None,
        inbound={"channel_limit": None},  # type: ignore[typeddict-item]
        outbound={"channel_limit": None, "call_parking_enabled": None},  # type: ignore[typeddict-item]
    ).data
    body = wire(updated)
    for key in ("webhook_event_url", "webhook_event_failover_url", "webhook_timeout_secs", "encrypted_media"):
        assert body[key] is None, key
    assert body["ios_push_credential_id"] is None
    assert body["inbound"]["channel_limit"] is None
    assert body["outbound"]["channel_limit"] is None
    assert body["outbound"]["call_parking_enabled"] is None
    assert wire(client.credential_connections.retrieve(created.id).data) == {**body, "password": MASK}


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        ({"active": None}, "/active"),
        ({"connection_name": None}, "/connection_name"),
        ({"user_name": None}, "/user_name"),
        ({"password": None}, "/password"),
        ({"bridge_generate_comfort_noise_on_cn": None}, "/bridge_generate_comfort_noise_on_cn"),
        ({"tags": None}, "/tags"),
        ({"inbound": None}, "/inbound"),
        ({"inbound": {"timeout_1xx_secs": None}}, "/inbound/timeout_1xx_secs"),
        ({"outbound": {"ani_override_type": None}}, "/outbound/ani_override_type"),
        ({"rtcp_settings": {"port": None}}, "/rtcp_settings/port"),
        ({"webhook_api_version": None}, "/webhook_api_version"),
    ],
)
def test_update_credential_connection_null_on_non_nullable_is_422(
    client: telnyx.Telnyx, http: httpx.Client, body: dict[str, Any], pointer: str
) -> None:
    created = credential(client)
    assert_error(http.patch(f"/credential_connections/{created.id}", json=body), 422, pointer=pointer)
    assert wire(client.credential_connections.retrieve(created.id).data) == {
        **wire(created),
        "password": MASK,
    }


def test_update_credential_connection_ignores_read_only_fields(
    client: telnyx.Telnyx, http: httpx.Client
) -> None:
    created = credential(client)
    r = http.patch(
        f"/credential_connections/{created.id}",
        json={
            "id": "1",
            "record_type": "ip_connection",
            "created_at": "2000-01-01T00:00:00.000Z",
            "updated_at": "2000-01-01T00:00:00.000Z",
            "connection_name": "changed",
        },
    )
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["id"] == created.id
    assert data["record_type"] == "credential_connection"
    assert data["created_at"] == created.created_at
    assert data["updated_at"] >= created.updated_at and data["updated_at"] != "2000-01-01T00:00:00.000Z"
    assert data["connection_name"] == "changed"


def test_create_credential_connection_ignores_read_only_and_patch_only_fields(http: httpx.Client) -> None:
    r = http.post(
        "/credential_connections",
        json={
            "connection_name": "c",
            "user_name": user_name(),
            "password": "s3cret-pass",
            "id": "42",
            "record_type": "fqdn_connection",
            "created_at": "2000-01-01T00:00:00.000Z",
            "conversation_persistence": True,
        },
    )
    assert r.status_code == 201, r.text
    data = r.json()["data"]
    assert data["id"] != "42"
    assert data["record_type"] == "credential_connection"
    assert data["created_at"] != "2000-01-01T00:00:00.000Z"
    assert data["conversation_persistence"] is False


def test_update_credential_connection_conversation_persistence_is_patchable(client: telnyx.Telnyx) -> None:
    created = credential(client)
    updated = client.credential_connections.update(created.id, conversation_persistence=True).data
    assert updated.conversation_persistence is True


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        ({"anchorsite_override": "Paris"}, "/anchorsite_override"),
        ({"dtmf_type": "rfc2833"}, "/dtmf_type"),
        ({"encrypted_media": "None"}, "/encrypted_media"),
        ({"noise_suppression": "all"}, "/noise_suppression"),
        ({"noise_suppression_details": {"engine": "rnnoise"}}, "/noise_suppression_details/engine"),
        (
            {"noise_suppression_details": {"attenuation_limit": 101}},
            "/noise_suppression_details/attenuation_limit",
        ),
        ({"sip_uri_calling_preference": "everyone"}, "/sip_uri_calling_preference"),
        ({"webhook_api_version": "3"}, "/webhook_api_version"),
        ({"webhook_api_version": 1}, "/webhook_api_version"),
        ({"webhook_timeout_secs": 31}, "/webhook_timeout_secs"),
        ({"webhook_timeout_secs": -1}, "/webhook_timeout_secs"),
        ({"webhook_event_url": "example.com/hook"}, "/webhook_event_url"),
        ({"webhook_event_url": "not a url"}, "/webhook_event_url"),
        ({"webhook_event_failover_url": "ftp//nowhere"}, "/webhook_event_failover_url"),
        ({"ios_push_credential_id": "not-a-uuid"}, "/ios_push_credential_id"),
        ({"android_push_credential_id": "1234"}, "/android_push_credential_id"),
        ({"active": "true"}, "/active"),
        ({"tags": "tag"}, "/tags"),
        ({"tags": [1]}, "/tags/0"),
        ({"rtcp_settings": {"port": "rtp+2"}}, "/rtcp_settings/port"),
        ({"rtcp_settings": {"report_frequency_secs": 4}}, "/rtcp_settings/report_frequency_secs"),
        ({"rtcp_settings": {"report_frequency_secs": 3001}}, "/rtcp_settings/report_frequency_secs"),
        ({"jitter_buffer": {"jitterbuffer_msec_min": 39}}, "/jitter_buffer/jitterbuffer_msec_min"),
        ({"jitter_buffer": {"jitterbuffer_msec_max": 401}}, "/jitter_buffer/jitterbuffer_msec_max"),
        ({"inbound": {"timeout_1xx_secs": 0}}, "/inbound/timeout_1xx_secs"),
        ({"inbound": {"timeout_1xx_secs": 121}}, "/inbound/timeout_1xx_secs"),
        ({"inbound": {"timeout_2xx_secs": 601}}, "/inbound/timeout_2xx_secs"),
        ({"inbound": {"timeout_2xx_secs": 1.5}}, "/inbound/timeout_2xx_secs"),
        ({"inbound": {"ani_number_format": "e164"}}, "/inbound/ani_number_format"),
        ({"inbound": {"dnis_number_format": "test"}}, "/inbound/dnis_number_format"),
        ({"inbound": {"default_routing_method": "random"}}, "/inbound/default_routing_method"),
        ({"inbound": {"simultaneous_ringing": "on"}}, "/inbound/simultaneous_ringing"),
        ({"inbound": {"codecs": ["G722", "MP3"]}}, "/inbound/codecs/1"),
        ({"inbound": {"channel_limit": -1}}, "/inbound/channel_limit"),
        ({"inbound": "yes"}, "/inbound"),
        ({"outbound": {"ani_override_type": "sometimes"}}, "/outbound/ani_override_type"),
        ({"outbound": {"t38_reinvite_source": "nobody"}}, "/outbound/t38_reinvite_source"),
        ({"outbound": {"localization": "usa"}}, "/outbound/localization"),
        ({"outbound": {"instant_ringback_enabled": 1}}, "/outbound/instant_ringback_enabled"),
    ],
)
def test_create_credential_connection_invalid_field_is_422_with_pointer(
    http: httpx.Client, body: dict[str, Any], pointer: str
) -> None:
    full = {"connection_name": "c", "user_name": user_name(), "password": "s3cret-pass", **body}
    entry = assert_error(http.post("/credential_connections", json=full), 422, pointer=pointer)
    assert entry["title"] == "Bad Request"
    assert entry["meta"]["url"].endswith("/10015")


def test_update_credential_connection_invalid_field_is_422_with_pointer(
    client: telnyx.Telnyx, http: httpx.Client
) -> None:
    created = credential(client)
    r = http.patch(f"/credential_connections/{created.id}", json={"inbound": {"timeout_1xx_secs": 500}})
    assert_error(r, 422, pointer="/inbound/timeout_1xx_secs")


def test_create_credential_connection_reports_several_errors_together(http: httpx.Client) -> None:
    r = http.post(
        "/credential_connections",
        json={
            "connection_name": "c",
            "user_name": "x",
            "password": "short",
            "dtmf_type": "bad",
            "inbound": {"timeout_1xx_secs": 0, "dnis_number_format": "test"},
            "webhook_event_url": "nope",
        },
    )
    assert r.status_code == 422
    assert pointers(r) >= {
        "/user_name",
        "/password",
        "/dtmf_type",
        "/inbound/timeout_1xx_secs",
        "/inbound/dnis_number_format",
        "/webhook_event_url",
    }


def test_create_credential_connection_jitter_min_above_max_is_422(http: httpx.Client) -> None:
    r = http.post(
        "/credential_connections",
        json={
            "connection_name": "c",
            "user_name": user_name(),
            "password": "s3cret-pass",
            "jitter_buffer": {"jitterbuffer_msec_min": 300, "jitterbuffer_msec_max": 100},
        },
    )
    assert_error(r, 422, pointer="/jitter_buffer/jitterbuffer_msec_min")


def test_update_credential_connection_jitter_min_above_stored_max_is_422(
    client: telnyx.Telnyx, http: httpx.Client
) -> None:
    created = credential(client, jitter_buffer={"jitterbuffer_msec_max": 100})
    r = http.patch(
        f"/credential_connections/{created.id}", json={"jitter_buffer": {"jitterbuffer_msec_min": 150}}
    )
    assert_error(r, 422, pointer="/jitter_buffer/jitterbuffer_msec_min")


def test_create_credential_connection_unknown_keys_are_ignored(http: httpx.Client) -> None:
    r = http.post(
        "/credential_connections",
        json={
            "connection_name": "c",
            "user_name": user_name(),
            "password": "s3cret-pass",
            "no_such_field": 1,
            "inbound": {"nor_this": True},
        },
    )
    assert r.status_code == 201, r.text
    assert "no_such_field" not in r.json()["data"]
    assert "nor_this" not in r.json()["data"]["inbound"]


def test_create_credential_connection_with_profile_links_it(
    client: telnyx.Telnyx, http: httpx.Client
) -> None:
    profile_id = profile(http)
    created = credential(client, outbound={"outbound_voice_profile_id": profile_id})
    assert created.outbound.outbound_voice_profile_id == profile_id
    count = http.get(f"/outbound_voice_profiles/{profile_id}").json()["data"]["connections_count"]
    assert count == 1


def test_create_credential_connection_unknown_profile_is_10017(http: httpx.Client) -> None:
    profile(http)  # skips while OVPs are not served, since the check then cannot pass for a real id
    r = http.post(
        "/credential_connections",
        json={
            "connection_name": "c",
            "user_name": user_name(),
            "password": "s3cret-pass",
            "outbound": {"outbound_voice_profile_id": "1293384261075731499"},
        },
    )
    assert_error(r, 422, code="10017", pointer="/outbound/outbound_voice_profile_id")


def test_create_credential_connection_nonexistent_profile_is_refused_without_ovp_routes(
    http: httpx.Client,
) -> None:
    r = http.post(
        "/credential_connections",
        json={
            "connection_name": "c",
            "user_name": user_name(),
            "password": "s3cret-pass",
            "outbound": {"outbound_voice_profile_id": "999"},
        },
    )
    assert_error(r, 422, code="10017", pointer="/outbound/outbound_voice_profile_id")


def test_update_credential_connection_profile_can_be_set_and_cleared(
    client: telnyx.Telnyx, http: httpx.Client
) -> None:
    profile_id = profile(http)
    created = credential(client)
    linked = client.credential_connections.update(
        created.id, outbound={"outbound_voice_profile_id": profile_id}
    )
    assert linked.data.outbound.outbound_voice_profile_id == profile_id
    cleared = client.credential_connections.update(
        created.id,
        outbound={"outbound_voice_profile_id": None},  # type: ignore[typeddict-item]
    )
    assert cleared.data.outbound.outbound_voice_profile_id is None
    assert http.get(f"/outbound_voice_profiles/{profile_id}").json()["data"]["connections_count"] == 0


def test_retrieve_credential_connection_unknown_id_is_404(client: telnyx.Telnyx, http: httpx.Client) -> None:
    with pytest.raises(telnyx.NotFoundError) as err:
        client.credential_connections.retrieve("1293384261075731499")
    assert sdk_errors(err.value)[0]["code"] == "10005"
    assert_error(http.get("/credential_connections/not-a-number"), 404, code="10005", pointer="/")


def test_retrieve_credential_connection_of_another_kind_is_404(client: telnyx.Telnyx) -> None:
    ip = client.ip_connections.create(connection_name="ip").data
    with pytest.raises(telnyx.NotFoundError):
        client.credential_connections.retrieve(ip.id)  # type: ignore[arg-type]
    with pytest.raises(telnyx.NotFoundError):
        client.credential_connections.update(ip.id, connection_name="x")  # type: ignore[arg-type]
    with pytest.raises(telnyx.NotFoundError):
        client.credential_connections.delete(ip.id)  # type: ignore[arg-type]
    assert client.ip_connections.retrieve(ip.id).data.connection_name == "ip"  # type: ignore[arg-type]


def test_update_credential_connection_unknown_id_is_404(http: httpx.Client) -> None:
    assert_error(http.patch("/credential_connections/1", json={"active": False}), 404, code="10005")


def test_delete_credential_connection_returns_the_record_and_removes_it(client: telnyx.Telnyx) -> None:
    created = credential(client, tags=["gone"])
    deleted = client.credential_connections.delete(created.id).data
    assert wire(deleted) == {**wire(created), "password": MASK}
    with pytest.raises(telnyx.NotFoundError):
        client.credential_connections.retrieve(created.id)
    with pytest.raises(telnyx.NotFoundError):
        client.credential_connections.delete(created.id)


def test_delete_credential_connection_returns_200_without_body_needed(
    client: telnyx.Telnyx, http: httpx.Client
) -> None:
    created = credential(client)
    r = http.request(
        "DELETE", f"/credential_connections/{created.id}", headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 200
    assert r.json()["data"]["id"] == created.id


def test_delete_credential_connection_frees_its_user_name(client: telnyx.Telnyx) -> None:
    created = credential(client)
    client.credential_connections.delete(created.id)
    assert credential(client, user_name=created.user_name.upper()).user_name == created.user_name.upper()


def test_check_registration_status_fresh_connection_is_not_registered(client: telnyx.Telnyx) -> None:
    created = credential(client)
    status = client.credential_connections.actions.check_registration_status(created.id).data
    assert status is not None
    assert status.status == "Not Registered"
    assert status.record_type == "registration_status"
    assert status.sip_username == created.user_name


def test_check_registration_status_inactive_connection_is_not_applicable(client: telnyx.Telnyx) -> None:
    created = credential(client, active=False)
    status = client.credential_connections.actions.check_registration_status(created.id).data
    assert status is not None and status.status == "Not Applicable"
    client.credential_connections.update(created.id, active=True)
    again = client.credential_connections.actions.check_registration_status(created.id).data
    assert again is not None and again.status == "Not Registered"


def test_check_registration_status_accepts_an_empty_body_with_json_type(
    client: telnyx.Telnyx, http: httpx.Client
) -> None:
    created = credential(client)
    r = http.post(
        f"/credential_connections/{created.id}/actions/check_registration_status",
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["record_type"] == "registration_status"
    assert data["status"] == "Not Registered"
    assert data["sip_username"] == created.user_name
    assert data.get("ip_address") is None and data.get("last_registration") is None


def test_check_registration_status_unknown_id_is_404(client: telnyx.Telnyx, http: httpx.Client) -> None:
    with pytest.raises(telnyx.NotFoundError):
        client.credential_connections.actions.check_registration_status("1293384261075731499")
    r = http.post("/credential_connections/nope/actions/check_registration_status")
    assert_error(r, 404, code="10005", pointer="/")


def test_check_registration_status_of_ip_connection_is_404(client: telnyx.Telnyx) -> None:
    ip = client.ip_connections.create(connection_name="ip").data
    with pytest.raises(telnyx.NotFoundError):
        client.credential_connections.actions.check_registration_status(ip.id)  # type: ignore[arg-type]


def test_check_registration_status_get_is_405(client: telnyx.Telnyx, http: httpx.Client) -> None:
    created = credential(client)
    r = http.get(f"/credential_connections/{created.id}/actions/check_registration_status")
    assert r.status_code == 405


def test_create_credential_connection_concurrent_same_user_name_one_wins(
    account: Account, new_account: Callable[..., Account]
) -> None:
    name = user_name()
    others = [account, *(new_account() for _ in range(3))]
    body = {"connection_name": "race", "user_name": name, "password": "s3cret-pass"}

    def attempt(i: int) -> httpx.Response:
        acct = others[i % len(others)]
        return acct.http.post(
            "/credential_connections", json={**body, "user_name": name if i % 2 else name.upper()}
        )

    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(attempt, range(8)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] + [422] * 7, [r.text for r in responses]
    for r in responses:
        if r.status_code == 422:
            assert r.json()["errors"][0]["code"] == "10012", r.text
