"""Writers racing on one record: no update lost, and the loser of every race gets the status it should.

Each test fires its requests at once (asyncio.gather over one HTTP connection per request) at the
live server, on both engines. PostgreSQL runs them truly in parallel (READ COMMITTED, a pool of
connections), which is where a read-then-write without a row lock loses updates (store/locks.py);
SQLite serialises writers, so there the tests pin that the answers are the same.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests import conftest
from tests.conftest import Account, migrated_database, mint_key
from tests.server import LiveServer

# Disjoint fields of an IP connection, each PATCHed by its own request to a value that is not its
# default: after the race every one must hold its value. (path into the record, PATCH body, value)
FIELDS: list[tuple[tuple[str, ...], dict[str, Any], Any]] = [
    (("connection_name",), {"connection_name": "renamed"}, "renamed"),
    (("active",), {"active": False}, False),
    (("anchorsite_override",), {"anchorsite_override": "Chicago, IL"}, "Chicago, IL"),
    (("dtmf_type",), {"dtmf_type": "Inband"}, "Inband"),
    (("encode_contact_header_enabled",), {"encode_contact_header_enabled": True}, True),
    (("onnet_t38_passthrough_enabled",), {"onnet_t38_passthrough_enabled": True}, True),
    (("webhook_event_url",), {"webhook_event_url": "https://example.com/hook"}, "https://example.com/hook"),
    (("webhook_timeout_secs",), {"webhook_timeout_secs": 7}, 7),
    (("tags",), {"tags": ["raced"]}, ["raced"]),
    (("inbound", "channel_limit"), {"inbound": {"channel_limit": 3}}, 3),
    (("outbound", "channel_limit"), {"outbound": {"channel_limit": 4}}, 4),
    (("inbound", "timeout_1xx_secs"), {"inbound": {"timeout_1xx_secs": 9}}, 9),
]
ROUNDS = 8  # 8 x 12 = 96 concurrent PATCHes, as many as the defect was first measured with


def _async_client(account: Account, base_url: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base_url,
        headers={"Authorization": f"Bearer {account.key}"},
        timeout=30,
        limits=httpx.Limits(max_connections=200, max_keepalive_connections=0),
    )


def _at(record: dict[str, Any], path: tuple[str, ...]) -> Any:
    for part in path:
        record = record[part]
    return record


async def _create(http: httpx.AsyncClient, path: str) -> str:
    """A connection made for the race, with nothing but a name."""
    r = await http.post(path, json={"connection_name": "owner"})
    assert r.status_code == 201, r.text
    return str(r.json()["data"]["id"])


def _credentials() -> dict[str, str]:
    return {"user_name": "u" + uuid.uuid4().hex[:12], "password": "s3cret-pass"}


async def _together(*requests: Any) -> list[httpx.Response]:
    return list(await asyncio.gather(*requests))


def test_concurrent_patches_lose_no_update(account: Account, server: LiveServer) -> None:
    async def go() -> int:
        lost = 0
        async with _async_client(account, server.api) as http:
            for _ in range(ROUNDS):
                conn_id = (await http.post("/ip_connections", json={"connection_name": "race"})).json()
                conn_id = conn_id["data"]["id"]
                answers = await _together(
                    *(http.patch(f"/ip_connections/{conn_id}", json=body) for _, body, _ in FIELDS)
                )
                assert [r.status_code for r in answers] == [200] * len(FIELDS), [r.text for r in answers]
                record = (await http.get(f"/ip_connections/{conn_id}")).json()["data"]
                lost += sum(_at(record, path) != value for path, _, value in FIELDS)
        return lost

    assert asyncio.run(go()) == 0, "updates were lost"


def test_deleting_a_default_ip_under_concurrent_patches_clears_the_default(
    account: Account, server: LiveServer
) -> None:
    async def go() -> list[str | None]:
        left = []
        async with _async_client(account, server.api) as http:
            for round_ in range(10):
                conn_id = (await http.post("/ip_connections", json={"connection_name": "owner"})).json()[
                    "data"
                ]["id"]
                port = uuid.uuid4().int % 60000 + 1024  # (address, port) is unique server-wide
                body = {"ip_address": f"198.51.100.{round_ + 1}", "connection_id": conn_id, "port": port}
                ip = (await http.post("/ips", json=body)).json()["data"]
                patch = {"inbound": {"default_primary_ip_id": ip["id"]}}
                assert (await http.patch(f"/ip_connections/{conn_id}", json=patch)).status_code == 200
                answers = await _together(
                    http.delete(f"/ips/{ip['id']}"),
                    *(
                        http.patch(f"/ip_connections/{conn_id}", json={"connection_name": f"n{i}"})
                        for i in range(6)
                    ),
                )
                assert [r.status_code for r in answers] == [200] * 7, [r.text for r in answers]
                record = (await http.get(f"/ip_connections/{conn_id}")).json()["data"]
                left.append(record["inbound"]["default_primary_ip_id"])
        return left

    assert asyncio.run(go()) == [None] * 10


@pytest.mark.parametrize(
    ("collection", "body"),
    [
        ("ip_connections", {"connection_name": "doomed"}),
        ("credential_connections", None),
        ("fqdn_connections", {"connection_name": "doomed"}),
        ("outbound_voice_profiles", {"name": "doomed profile"}),
        ("ips", None),
        ("fqdns", None),
        ("access_ip_ranges", None),
    ],
)
def test_parallel_deletes_answer_200_once(
    account: Account, server: LiveServer, collection: str, body: dict[str, Any] | None
) -> None:
    async def make(http: httpx.AsyncClient) -> str:
        if collection == "credential_connections":
            payload: dict[str, Any] = {"connection_name": "doomed", **_credentials()}
        elif collection == "ips":
            owner = (await http.post("/ip_connections", json={"connection_name": "owner"})).json()["data"][
                "id"
            ]
            octet = uuid.uuid4().int % 250 + 1
            payload = {"ip_address": f"203.0.113.{octet}", "port": uuid.uuid4().int % 60000 + 1024}
            payload["connection_id"] = owner
        elif collection == "fqdns":
            owner = (await http.post("/fqdn_connections", json={"connection_name": "owner"})).json()["data"][
                "id"
            ]
            name = f"{uuid.uuid4().hex[:10]}.example.com"
            payload = {"fqdn": name, "dns_record_type": "a", "connection_id": owner}
        elif collection == "access_ip_ranges":
            # A range that admits the tests' own address, so the account keeps working.
            payload = {"cidr_block": "127.0.0.0/8"}
        else:
            payload = dict(body or {})
        r = await http.post(f"/{collection}", json=payload)
        assert r.status_code in (200, 201), r.text
        data = r.json()
        return str((data.get("data") or data)["id"])

    async def go() -> list[Counter[int]]:
        tallies = []
        async with _async_client(account, server.api) as http:
            for _ in range(5):
                id = await make(http)
                answers = await _together(*(http.delete(f"/{collection}/{id}") for _ in range(8)))
                tallies.append(Counter(r.status_code for r in answers))
        return tallies

    assert asyncio.run(go()) == [Counter({200: 1, 404: 7})] * 5


def test_patch_that_loses_to_a_delete_is_404(account: Account, server: LiveServer) -> None:
    async def go() -> Counter[int]:
        tally: Counter[int] = Counter()
        async with _async_client(account, server.api) as http:
            for _ in range(10):
                created = await http.post(
                    "/credential_connections",
                    json={"connection_name": "doomed", **_credentials()},
                )
                conn_id = created.json()["data"]["id"]
                answers = await _together(
                    http.delete(f"/credential_connections/{conn_id}"),
                    *(
                        http.patch(f"/credential_connections/{conn_id}", json={"password": f"new-pass-{i}"})
                        for i in range(6)
                    ),
                )
                assert answers[0].status_code == 200, answers[0].text
                tally.update(r.status_code for r in answers[1:])
                assert (await http.get(f"/credential_connections/{conn_id}")).status_code == 404
        return tally

    tally = asyncio.run(go())
    assert set(tally) <= {200, 404}, tally


def test_profile_delete_racing_references_is_10015_or_the_reference_is_10017(
    account: Account, server: LiveServer
) -> None:
    async def go() -> None:
        async with _async_client(account, server.api) as http:
            for round_ in range(10):
                profile = (
                    await http.post("/outbound_voice_profiles", json={"name": f"race {round_}"})
                ).json()
                profile_id = profile["data"]["id"]
                conn_ids = [
                    (await http.post("/ip_connections", json={"connection_name": "owner"})).json()["data"][
                        "id"
                    ]
                    for _ in range(4)
                ]
                refer = {"outbound": {"outbound_voice_profile_id": profile_id}}
                answers = await _together(
                    http.delete(f"/outbound_voice_profiles/{profile_id}"),
                    *(http.patch(f"/ip_connections/{c}", json=refer) for c in conn_ids),
                    http.post("/ip_connections", json={"connection_name": "late", **refer}),
                )
                deleted, references = answers[0], answers[1:]
                if deleted.status_code == 200:
                    # Every reference that did not get in first names a profile that is gone.
                    for r in references:
                        assert r.status_code == 422, r.text
                        assert r.json()["errors"][0]["code"] == "10017", r.text
                else:
                    assert deleted.status_code == 422, deleted.text
                    assert deleted.json()["errors"][0]["code"] == "10015", deleted.text
                    assert any(r.status_code in (200, 201) for r in references)
                still = (await http.get(f"/outbound_voice_profiles/{profile_id}")).status_code
                assert still == (404 if deleted.status_code == 200 else 200)

    asyncio.run(go())


@pytest.fixture
def fresh_database(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An empty, migrated database no write has touched yet."""
    with migrated_database(backend, tmp_path_factory) as url:
        yield url


def test_first_concurrent_writes_on_a_fresh_database_all_succeed(fresh_database: str) -> None:
    live = LiveServer(conftest.test_settings(fresh_database)).start()
    try:
        key = mint_key(fresh_database, "fresh-" + uuid.uuid4().hex[:8])

        async def go() -> list[httpx.Response]:
            async with httpx.AsyncClient(
                base_url=live.api, headers={"Authorization": f"Bearer {key}"}, timeout=30
            ) as http:
                creates = [http.post("/ip_connections", json={"connection_name": f"c{i}"}) for i in range(16)]
                creates += [http.post("/ips", json={"ip_address": f"192.0.2.{i + 1}"}) for i in range(16)]
                return await _together(*creates)

        answers = asyncio.run(go())
        assert [r.status_code for r in answers] == [201] * 32, [
            r.text for r in answers if r.status_code != 201
        ]
    finally:
        live.stop()
