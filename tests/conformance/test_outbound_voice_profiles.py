"""/v2/outbound_voice_profiles through the official SDK, bad input through httpx."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import telnyx

from tests.conftest import Account

FULL = {
    "name": "office",
    "enabled": False,
    "traffic_type": "conversational",
    "service_plan": "global",
    "usage_payment_method": "rate-deck",
    "concurrent_call_limit": 10,
    "daily_spend_limit": "100.00",
    "daily_spend_limit_enabled": True,
    "max_destination_rate": 10.5,
    "whitelisted_destinations": ["US", "BR", "AU"],
    "billing_group_id": "6a09cdc3-8948-47f0-aa62-74ac943d6c58",
    "tags": ["office-profile"],
    "call_recording": {
        "call_recording_type": "by_caller_phone_number",
        "call_recording_caller_phone_numbers": ["+19705555098"],
        "call_recording_channels": "dual",
        "call_recording_format": "mp3",
    },
    "calling_window": {"calls_per_cld": 5, "start_time": "08:00:00.00Z", "end_time": "20:00:00.00Z"},
}


def only_error(r: httpx.Response) -> dict[str, Any]:
    """The single error entry of a 422 response."""
    assert r.status_code == 422, r.text
    errors = r.json()["errors"]
    assert len(errors) == 1, errors
    return errors[0]  # type: ignore[no-any-return]


def attach(client: telnyx.Telnyx, profile_id: str | None) -> str:
    """An IP connection using the profile; returns its id."""
    return client.ip_connections.create(outbound={"outbound_voice_profile_id": profile_id}).data.id  # type: ignore[typeddict-item]


def test_create_outbound_voice_profile_returns_200_with_defaults(client: telnyx.Telnyx) -> None:
    raw = client.outbound_voice_profiles.with_raw_response.create(name="office")
    assert raw.status_code == 200
    profile = raw.parse().data
    assert profile is not None
    assert re.fullmatch(r"[0-9]{15,19}", profile.id or "")
    assert profile.record_type == "outbound_voice_profile"
    assert profile.name == "office"
    assert profile.enabled is True
    assert profile.traffic_type == "conversational"
    assert profile.service_plan == "global"
    assert profile.usage_payment_method == "rate-deck"
    assert profile.whitelisted_destinations == ["US", "CA"]
    assert profile.concurrent_call_limit is None
    assert profile.daily_spend_limit is None
    assert profile.daily_spend_limit_enabled is False
    assert profile.max_destination_rate is None
    assert profile.billing_group_id is None
    assert profile.tags == []
    assert profile.calling_window is None
    assert profile.connections_count == 0
    assert profile.call_recording is not None
    assert profile.call_recording.model_dump() == {
        "call_recording_type": "none",
        "call_recording_caller_phone_numbers": [],
        "call_recording_channels": "single",
        "call_recording_format": "wav",
    }
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", profile.created_at or "")
    assert profile.updated_at == profile.created_at


def test_create_outbound_voice_profile_with_every_field_round_trips(client: telnyx.Telnyx) -> None:
    created = client.outbound_voice_profiles.create(**FULL).data  # type: ignore[arg-type]
    assert created is not None
    for key, value in FULL.items():
        got = getattr(created, key)
        assert (got.model_dump() if hasattr(got, "model_dump") else got) == value, key
    fetched = client.outbound_voice_profiles.retrieve(created.id).data  # type: ignore[arg-type]
    assert fetched == created


def test_create_outbound_voice_profile_accepts_hh_mm_times_and_integer_rate(http: httpx.Client) -> None:
    body = {"name": "window", "max_destination_rate": 3, "calling_window": {"start_time": "08:30"}}
    r = http.post("/outbound_voice_profiles", json=body)
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["max_destination_rate"] == 3
    assert data["calling_window"] == {"start_time": "08:30", "end_time": None, "calls_per_cld": None}


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        ({}, "/name"),
        ({"name": "ab"}, "/name"),
        ({"name": None}, "/name"),
        ({"name": "a\u0000bc"}, "/name"),
        ({"name": "x" * 256}, "/name"),
        ({"name": "ok!", "enabled": "yes"}, "/enabled"),
        ({"name": "ok!", "traffic_type": "short_duration"}, "/traffic_type"),
        ({"name": "ok!", "service_plan": "us"}, "/service_plan"),
        ({"name": "ok!", "usage_payment_method": "tariff"}, "/usage_payment_method"),
        ({"name": "ok!", "concurrent_call_limit": 0}, "/concurrent_call_limit"),
        ({"name": "ok!", "concurrent_call_limit": "10"}, "/concurrent_call_limit"),
        ({"name": "ok!", "concurrent_call_limit": 10**12}, "/concurrent_call_limit"),
        ({"name": "ok!", "daily_spend_limit": 100}, "/daily_spend_limit"),
        ({"name": "ok!", "daily_spend_limit": "ten"}, "/daily_spend_limit"),
        ({"name": "ok!", "daily_spend_limit": "1.005"}, "/daily_spend_limit"),
        ({"name": "ok!", "daily_spend_limit_enabled": 1}, "/daily_spend_limit_enabled"),
        ({"name": "ok!", "max_destination_rate": -1}, "/max_destination_rate"),
        ({"name": "ok!", "max_destination_rate": "1"}, "/max_destination_rate"),
        ({"name": "ok!", "whitelisted_destinations": "US"}, "/whitelisted_destinations"),
        ({"name": "ok!", "whitelisted_destinations": ["US", "usa"]}, "/whitelisted_destinations/1"),
        ({"name": "ok!", "whitelisted_destinations": ["us"]}, "/whitelisted_destinations/0"),
        ({"name": "ok!", "billing_group_id": "group-1"}, "/billing_group_id"),
        ({"name": "ok!", "tags": "office"}, "/tags"),
        ({"name": "ok!", "tags": ["x" * 256]}, "/tags/0"),
        (
            {"name": "ok!", "call_recording": {"call_recording_type": "some"}},
            "/call_recording/call_recording_type",
        ),
        (
            {"name": "ok!", "call_recording": {"call_recording_channels": "triple"}},
            "/call_recording/call_recording_channels",
        ),
        (
            {"name": "ok!", "call_recording": {"call_recording_format": "ogg"}},
            "/call_recording/call_recording_format",
        ),
        (
            {"name": "ok!", "call_recording": {"call_recording_caller_phone_numbers": ["5551234"]}},
            "/call_recording/call_recording_caller_phone_numbers/0",
        ),
        ({"name": "ok!", "call_recording": None}, "/call_recording"),
        ({"name": "ok!", "calling_window": {"start_time": "25:00"}}, "/calling_window/start_time"),
        ({"name": "ok!", "calling_window": {"end_time": "8pm"}}, "/calling_window/end_time"),
        ({"name": "ok!", "calling_window": {"calls_per_cld": -1}}, "/calling_window/calls_per_cld"),
    ],
)
def test_create_outbound_voice_profile_invalid_field_is_rejected(
    http: httpx.Client, body: dict[str, Any], pointer: str
) -> None:
    error = only_error(http.post("/outbound_voice_profiles", json=body))
    assert error["code"] == "10015"
    assert error["title"] == "Bad Request"
    assert error["source"]["pointer"] == pointer


def test_create_outbound_voice_profile_reports_every_invalid_field(http: httpx.Client) -> None:
    r = http.post("/outbound_voice_profiles", json={"name": "ab", "enabled": "no", "tags": 1})
    assert r.status_code == 422
    pointers = {e["source"]["pointer"] for e in r.json()["errors"]}
    assert pointers == {"/name", "/enabled", "/tags"}


def test_update_outbound_voice_profile_deep_merges(client: telnyx.Telnyx) -> None:
    created = client.outbound_voice_profiles.create(**FULL).data  # type: ignore[arg-type]
    assert created is not None and created.id is not None
    updated = client.outbound_voice_profiles.update(
        created.id,
        name="renamed",
        call_recording={"call_recording_format": "wav"},
        calling_window={"calls_per_cld": 9},
    ).data
    assert updated is not None
    assert updated.name == "renamed"
    assert updated.call_recording is not None
    assert updated.call_recording.call_recording_format == "wav"
    assert updated.call_recording.call_recording_channels == "dual"  # kept: nested objects merge
    assert updated.call_recording.call_recording_caller_phone_numbers == ["+19705555098"]
    assert updated.calling_window is not None
    assert updated.calling_window.model_dump() == {
        "calls_per_cld": 9,
        "start_time": "08:00:00.00Z",
        "end_time": "20:00:00.00Z",
    }
    # Keys absent from the PATCH keep their values.
    assert updated.tags == ["office-profile"]
    assert updated.whitelisted_destinations == ["US", "BR", "AU"]
    assert updated.enabled is False and updated.daily_spend_limit == "100.00"
    assert updated.created_at == created.created_at
    assert (updated.updated_at or "") >= (created.updated_at or "")
    assert client.outbound_voice_profiles.retrieve(created.id).data == updated


def test_update_outbound_voice_profile_replaces_lists_and_clears_nullable_fields(http: httpx.Client) -> None:
    pid = http.post("/outbound_voice_profiles", json=FULL).json()["data"]["id"]
    patch = {
        "name": "office",
        "whitelisted_destinations": ["GB"],
        "tags": [],
        "concurrent_call_limit": None,
        "billing_group_id": None,
        "daily_spend_limit": None,
        "max_destination_rate": None,
        "calling_window": None,
    }
    r = http.patch(f"/outbound_voice_profiles/{pid}", json=patch)
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert {k: data[k] for k in patch} == patch


def test_update_outbound_voice_profile_fills_defaults_of_a_new_calling_window(http: httpx.Client) -> None:
    pid = http.post("/outbound_voice_profiles", json={"name": "office"}).json()["data"]["id"]
    r = http.patch(
        f"/outbound_voice_profiles/{pid}", json={"name": "office", "calling_window": {"calls_per_cld": 2}}
    )
    assert r.json()["data"]["calling_window"] == {"calls_per_cld": 2, "start_time": None, "end_time": None}


def test_update_outbound_voice_profile_without_name_is_rejected(http: httpx.Client) -> None:
    pid = http.post("/outbound_voice_profiles", json={"name": "office"}).json()["data"]["id"]
    error = only_error(http.patch(f"/outbound_voice_profiles/{pid}", json={"enabled": False}))
    assert error["code"] == "10015"
    assert error["source"]["pointer"] == "/name"
    assert http.get(f"/outbound_voice_profiles/{pid}").json()["data"]["enabled"] is True


@pytest.mark.parametrize(
    ("patch", "pointer"),
    [
        ({"name": "ok!", "enabled": None}, "/enabled"),
        ({"name": "ok!", "tags": None}, "/tags"),
        ({"name": "ok!", "whitelisted_destinations": None}, "/whitelisted_destinations"),
        (
            {"name": "ok!", "call_recording": {"call_recording_channels": None}},
            "/call_recording/call_recording_channels",
        ),
        (
            {"name": "ok!", "call_recording": {"call_recording_type": "never"}},
            "/call_recording/call_recording_type",
        ),
        ({"name": "no", "enabled": False}, "/name"),
        ({"name": "ok!", "calling_window": {"start_time": "7am"}}, "/calling_window/start_time"),
    ],
)
def test_update_outbound_voice_profile_invalid_field_is_rejected(
    http: httpx.Client, patch: dict[str, Any], pointer: str
) -> None:
    pid = http.post("/outbound_voice_profiles", json=FULL).json()["data"]["id"]
    error = only_error(http.patch(f"/outbound_voice_profiles/{pid}", json=patch))
    assert error["code"] == "10015"
    assert error["source"]["pointer"] == pointer


@pytest.mark.parametrize("id", ["1", "913864563328020480", "not-a-number", "%00"])
def test_retrieve_outbound_voice_profile_unknown_is_404(http: httpx.Client, id: str) -> None:
    for method in ("GET", "PATCH", "DELETE"):
        r = http.request(method, f"/outbound_voice_profiles/{id}", json={"name": "office"})
        assert r.status_code == 404, (method, r.text)
        assert r.json()["errors"][0]["code"] == "10005"


def test_retrieve_outbound_voice_profile_unknown_raises_not_found(client: telnyx.Telnyx) -> None:
    with pytest.raises(telnyx.NotFoundError):
        client.outbound_voice_profiles.retrieve("1")


def test_outbound_voice_profile_of_another_account_is_invisible(
    account: Account, new_account: Callable[..., Account]
) -> None:
    other = new_account()
    theirs = other.client.outbound_voice_profiles.create(name="theirs").data
    assert theirs is not None and theirs.id is not None
    with pytest.raises(telnyx.NotFoundError):
        account.client.outbound_voice_profiles.retrieve(theirs.id)
    with pytest.raises(telnyx.NotFoundError):
        account.client.outbound_voice_profiles.update(theirs.id, name="mine now")
    with pytest.raises(telnyx.NotFoundError):
        account.client.outbound_voice_profiles.delete(theirs.id)
    assert [p.id for p in account.client.outbound_voice_profiles.list()] == []
    # Nor can a connection of this account use it, so it is never counted here.
    r = account.http.post("/ip_connections", json={"outbound": {"outbound_voice_profile_id": theirs.id}})
    error = only_error(r)
    assert error["code"] == "10017"
    assert error["source"]["pointer"] == "/outbound/outbound_voice_profile_id"
    assert other.client.outbound_voice_profiles.retrieve(theirs.id).data.connections_count == 0  # type: ignore[union-attr]


def test_connections_count_follows_connections(client: telnyx.Telnyx) -> None:
    profile = client.outbound_voice_profiles.create(name="counted").data
    assert profile is not None and profile.id is not None
    pid = profile.id

    def count() -> int | None:
        return client.outbound_voice_profiles.retrieve(pid).data.connections_count  # type: ignore[union-attr]

    ip_id = attach(client, pid)
    fqdn_id = client.fqdn_connections.create(
        connection_name="trunk", outbound={"outbound_voice_profile_id": pid}
    ).data.id  # type: ignore[union-attr]
    cred = client.credential_connections.create(
        connection_name="desk", user_name="u" + uuid.uuid4().hex[:12], password="s3cret-pass"
    ).data
    assert cred is not None and cred.id is not None
    assert count() == 2
    client.credential_connections.update(cred.id, outbound={"outbound_voice_profile_id": pid})
    assert count() == 3
    assert [p.connections_count for p in client.outbound_voice_profiles.list() if p.id == pid] == [3]
    client.ip_connections.update(ip_id, outbound={"outbound_voice_profile_id": None})  # type: ignore[typeddict-item]
    assert count() == 2
    client.fqdn_connections.delete(fqdn_id)  # type: ignore[arg-type]
    assert count() == 1
    updated = client.outbound_voice_profiles.update(pid, name="still counted").data
    assert updated is not None and updated.connections_count == 1


def test_delete_outbound_voice_profile_in_use_is_refused(client: telnyx.Telnyx, http: httpx.Client) -> None:
    profile = client.outbound_voice_profiles.create(name="busy").data
    assert profile is not None and profile.id is not None
    first, second = attach(client, profile.id), attach(client, profile.id)
    error = only_error(http.delete(f"/outbound_voice_profiles/{profile.id}"))
    assert error["code"] == "10015"
    assert error["source"]["pointer"] == "/"
    assert "2 connections use it" in error["detail"]
    client.ip_connections.delete(first)
    assert (
        "1 connection uses it" in only_error(http.delete(f"/outbound_voice_profiles/{profile.id}"))["detail"]
    )
    client.ip_connections.update(second, outbound={"outbound_voice_profile_id": None})  # type: ignore[typeddict-item]
    deleted = client.outbound_voice_profiles.delete(profile.id).data
    assert deleted is not None
    assert deleted.id == profile.id and deleted.name == "busy" and deleted.connections_count == 0
    with pytest.raises(telnyx.NotFoundError):
        client.outbound_voice_profiles.retrieve(profile.id)


def test_list_outbound_voice_profiles_walks_pages_newest_first(
    client: telnyx.Telnyx, http: httpx.Client
) -> None:
    made = [client.outbound_voice_profiles.create(name=f"profile {i}").data.id for i in range(5)]  # type: ignore[union-attr]
    walked = [p.id for p in client.outbound_voice_profiles.list(page_size=2)]
    assert walked == made[::-1]
    meta = http.get("/outbound_voice_profiles", params={"page[size]": 2, "page[number]": 3}).json()["meta"]
    assert meta == {"page_number": 3, "page_size": 2, "total_pages": 3, "total_results": 5}
    past = http.get("/outbound_voice_profiles", params={"page[size]": 2, "page[number]": 9}).json()
    assert past["data"] == [] and past["meta"]["total_results"] == 5


def test_list_outbound_voice_profiles_default_page_size_is_20(
    client: telnyx.Telnyx, http: httpx.Client
) -> None:
    for i in range(21):
        client.outbound_voice_profiles.create(name=f"bulk {i:02d}")
    body = http.get("/outbound_voice_profiles").json()
    assert len(body["data"]) == 20
    assert body["meta"] == {"page_number": 1, "page_size": 20, "total_pages": 2, "total_results": 21}


def test_list_outbound_voice_profiles_filters_by_name_contains(client: telnyx.Telnyx) -> None:
    for name in ("Main Office", "branch office", "warehouse", "50% off", "under_score"):
        client.outbound_voice_profiles.create(name=name)

    def names(contains: str) -> list[str | None]:
        return sorted(
            p.name for p in client.outbound_voice_profiles.list(filter={"name": {"contains": contains}})
        )

    assert names("OFFICE") == ["Main Office", "branch office"]
    assert names("%") == ["50% off"]  # wildcards match themselves
    assert names("_") == ["under_score"]
    assert names("nothing") == []


SORTS = [
    "enabled",
    "-enabled",
    "created_at",
    "-created_at",
    "name",
    "-name",
    "service_plan",
    "-service_plan",
    "traffic_type",
    "-traffic_type",
    "usage_payment_method",
    "-usage_payment_method",
]


@pytest.mark.parametrize("sort", SORTS)
def test_list_outbound_voice_profiles_sorts(client: telnyx.Telnyx, sort: str) -> None:
    specs = [("bravo", True), ("alpha", False), ("delta", True), ("charlie", False)]
    made = [
        (p.id, p.name, p.enabled)
        for p in (client.outbound_voice_profiles.create(name=n, enabled=e).data for n, e in specs)
        if p is not None
    ]
    key = sort.lstrip("-")
    descending = sort.startswith("-")
    by_creation = made[::-1] if descending else made
    if key == "name":
        expected = sorted(made, key=lambda p: p[1], reverse=descending)
    elif key == "enabled":
        # Ties keep creation order, in the same direction as the key.
        expected = sorted(by_creation, key=lambda p: p[2], reverse=descending)
    else:
        # One value each for service_plan, traffic_type and usage_payment_method: creation order decides.
        expected = by_creation
    listed = [p.id for p in client.outbound_voice_profiles.list(sort=sort)]  # type: ignore[arg-type]
    assert listed == [p[0] for p in expected]


@pytest.mark.parametrize(
    ("params", "title", "pointer"),
    [
        ({"sort": "colour"}, "Invalid sorting value", "/sort"),
        ({"sort": "-connections_count"}, "Invalid sorting value", "/sort"),
        ({"page[size]": 251}, "Invalid pagination", "/page/size"),
        ({"page[size]": 0}, "Invalid pagination", "/page/size"),
        ({"page[number]": "first"}, "Invalid pagination", "/page/number"),
        ({"filter[name][contains]": "a\u0000"}, "Bad Request", "/filter/name/contains"),
    ],
)
def test_list_outbound_voice_profiles_bad_parameter_is_rejected(
    http: httpx.Client, params: dict[str, Any], title: str, pointer: str
) -> None:
    error = only_error(http.get("/outbound_voice_profiles", params=params))
    assert error["code"] == "10015"
    assert error["title"] == title
    assert error["source"]["pointer"] == pointer
