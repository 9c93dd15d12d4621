"""Virtual registrations: check_registration_status reports a phone that is not there."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from tests.control.conftest import Tenant, assert_error


def credential(t: Tenant) -> str:
    created = t.client.credential_connections.create(
        connection_name="phone", user_name=f"phone{t.user_id[-10:]}", password="phone-pass-123"
    ).data
    assert created is not None
    return created.id


def test_registered_is_reported_with_its_details_and_expires(tenant: Tenant) -> None:
    cid = credential(tenant)
    body = {
        "status": "Registered",
        "ip_address": "198.51.100.7",
        "port": 5070,
        "transport": "TLS",
        "user_agent": "Yealink T54W",
        "expires": 1,
    }
    r = tenant.control.put(f"/registrations/{cid}", json=body)
    assert r.status_code == 200, r.text
    put = r.json()["data"]
    status = tenant.client.credential_connections.actions.check_registration_status(cid).data
    assert status is not None
    assert status.status == "Registered" and status.record_type == "registration_status"
    assert (status.ip_address, status.port, status.transport) == ("198.51.100.7", 5070, "TLS")
    assert status.user_agent == "Yealink T54W" and status.sip_username == f"phone{tenant.user_id[-10:]}"
    assert status.last_registration == put["last_registration"]
    time.sleep(1.1)
    later = tenant.client.credential_connections.actions.check_registration_status(cid).data
    assert later is not None and later.status == "Expired" and later.ip_address == "198.51.100.7"


def test_registered_takes_defaults(tenant: Tenant) -> None:
    cid = credential(tenant)
    data = tenant.control.put(f"/registrations/{cid}", json={"status": "Registered"}).json()["data"]
    assert data["status"] == "Registered" and data["port"] == 5060 and data["transport"] == "UDP"


@pytest.mark.parametrize("status", ["Failed", "Unregistered", "Expired"])
def test_other_statuses_are_reported_as_given(tenant: Tenant, status: str) -> None:
    cid = credential(tenant)
    r = tenant.control.put(f"/registrations/{cid}", json={"status": status, "ip_address": "192.0.2.55"})
    assert r.status_code == 200, r.text
    got = tenant.client.credential_connections.actions.check_registration_status(cid).data
    assert got is not None and got.status == status and got.ip_address == "192.0.2.55"


def test_delete_removes_it(tenant: Tenant) -> None:
    cid = credential(tenant)
    tenant.control.put(f"/registrations/{cid}", json={"status": "Failed"})
    r = tenant.control.delete(f"/registrations/{cid}")
    assert r.status_code == 200 and r.json()["data"]["status"] == "Not Registered"
    got = tenant.client.credential_connections.actions.check_registration_status(cid).data
    assert got is not None and got.status == "Not Registered"
    assert_error(tenant.control.delete(f"/registrations/{cid}"), 404, code="10005")


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        ({"status": "Maybe"}, "/status"),
        ({}, "/status"),
        ({"status": "Registered", "expires": 0}, "/expires"),
        ({"status": "Registered", "expires": "60"}, "/expires"),
        ({"status": "Failed", "expires": 60}, "/expires"),
        ({"status": "Registered", "port": 70000}, "/port"),
        ({"status": "Registered", "ip_address": "nope"}, "/ip_address"),
        ({"status": "Registered", "transport": "SCTP"}, "/transport"),
        ({"status": "Registered", "user_agent": "x" * 256}, "/user_agent"),
        ({"status": "Registered", "color": "blue"}, "/color"),
    ],
)
def test_bad_bodies_are_422(tenant: Tenant, body: dict[str, object], pointer: str) -> None:
    cid = credential(tenant)
    assert_error(tenant.control.put(f"/registrations/{cid}", json=body), 422, pointer=pointer)


def test_unknown_other_kind_and_other_account_ids_are_404(new_tenant: Callable[..., Tenant]) -> None:
    a, b = new_tenant(), new_tenant()
    cid = credential(a)
    ip = a.client.ip_connections.create(connection_name="ip").data
    assert ip is not None
    for target in ("1293384261075731499", "nope", ip.id):
        assert_error(a.control.put(f"/registrations/{target}", json={"status": "Failed"}), 404)
    assert_error(b.control.put(f"/registrations/{cid}", json={"status": "Registered"}), 404)
    assert_error(b.control.delete(f"/registrations/{cid}"), 404)
    got = a.client.credential_connections.actions.check_registration_status(cid).data
    assert got is not None and got.status == "Not Registered"
