"""/v2/ips through the official SDK."""

from __future__ import annotations

import pytest
import telnyx

from tests.conftest import Account


def test_create_ip_defaults_port_and_round_trips(client: telnyx.Telnyx) -> None:
    conn = client.ip_connections.create(connection_name="pbx")
    created = client.ips.create(ip_address="192.0.2.10", connection_id=conn.data.id)
    assert created.data.port == 5060
    assert created.data.record_type == "ip"
    fetched = client.ips.retrieve(created.data.id)
    assert fetched.data == created.data


def test_create_ip_on_credential_connection_is_rejected(account: Account) -> None:
    cred = account.client.credential_connections.create(
        connection_name="c", user_name=f"u{account.user_id[-8:]}", password="password123"
    )
    r = account.http.post("/ips", json={"ip_address": "192.0.2.11", "connection_id": cred.data.id})
    assert r.status_code == 422
    assert r.json()["errors"][0]["source"]["pointer"] == "/connection_id"


def test_duplicate_ip_and_port_is_refused_across_accounts(account: Account, new_account) -> None:  # type: ignore[no-untyped-def]
    other = new_account()
    other.client.ips.create(ip_address="198.51.100.77", port=5080)
    with pytest.raises(telnyx.UnprocessableEntityError) as err:
        account.client.ips.create(ip_address="198.51.100.77", port=5080)
    assert err.value.body["errors"][0]["code"] == "10012"  # type: ignore[index]
