"""Schemathesis against our own OpenAPI document: no 5xx, and no response that breaks the schema.

The document is fetched from the live server (`/v2/openapi.json`), so what is tested is what clients
read. Schemathesis' engine runs its phases over every operation, as the `account` fixture's key:
examples, coverage (boundary values, missing and wrong-typed fields, for each parameter and body field),
a bounded fuzzing run, and stateful sequences that follow the document's links (create, then read,
update and delete what was created). The seed is fixed and generation deterministic, so a run is
repeatable. Every response must not be a 5xx, must have a documented status code and content type,
and its body must validate against the schema documented for that status.

Records whose create bodies generated data rarely gets right (a credential connection's user name
rules, an IP or FQDN on an existing connection) are made first, so that reading, updating and
deleting them answers 200 too and those bodies are checked against the schema as well.

(Schemathesis' pytest plugin, `schemathesis.pytest.from_fixture`, does not run under pytest 9, so the
engine is driven directly and its failures are collected here.)
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
import schemathesis
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import Status, events

from tests.conformance.test_phone_numbers import add_numbers, fresh_number
from tests.conftest import Account
from tests.server import LiveServer

CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
)
SEED = 20240601
MAX_EXAMPLES = 10  # fuzzing examples per operation; the coverage phase adds its own, deterministic ones


@dataclass
class Run:
    cases: int = 0
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _create(http: httpx.Client, path: str, body: dict[str, Any]) -> str:
    r = http.post(path, json=body)
    assert r.status_code in (200, 201), r.text
    return str(r.json()["data"]["id"])


def seed_records(http: httpx.Client) -> list[dict[str, Any]]:
    """Records for the by-id operations generated data cannot reach; one kept, one to delete, per kind."""
    tag = uuid.uuid4().hex[:10]

    def credential(n: int) -> str:
        body = {"connection_name": f"st {n}", "user_name": f"st{tag}{n}", "password": "schemathesis-1"}
        return _create(http, "/credential_connections", body)

    ip_connection = _create(http, "/ip_connections", {"connection_name": "st ip"})
    fqdn_connection = _create(http, "/fqdn_connections", {"connection_name": "st fqdn"})
    # Addresses and names unique on the server: IPs and FQDNs are unique across accounts.
    ips = [
        _create(http, "/ips", {"connection_id": ip_connection, "ip_address": f"2001:db8::{tag[:4]}:{n}"})
        for n in (1, 2)
    ]
    fqdns = [
        _create(
            http,
            "/fqdns",
            {
                "connection_id": fqdn_connection,
                "fqdn": f"st-{tag}-{n}.example.com",
                "dns_record_type": "a",
                "port": 5060,
            },
        )
        for n in (1, 2)
    ]
    kept = {"credential_connections": credential(1), "ips": ips[0], "fqdns": fqdns[0]}
    doomed = {"credential_connections": credential(2), "ips": ips[1], "fqdns": fqdns[1]}
    operations = []
    for kind in kept:
        item = f"/v2/{kind}/{{id}}"
        for method in ("GET", "PATCH"):
            operations.append({"include-name": f"{method} {item}", "parameters": {"id": kept[kind]}})
        operations.append({"include-name": f"DELETE {item}", "parameters": {"id": doomed[kind]}})
    action = "POST /v2/credential_connections/{id}/actions/check_registration_status"
    operations.append({"include-name": action, "parameters": {"id": kept["credential_connections"]}})
    return operations


def seed_numbers(database_url: str, user_id: str) -> list[dict[str, Any]]:
    """Numbers come from the operator, not the API: two added through the store, one kept, one to delete."""
    kept, doomed = (n["id"] for n in add_numbers(database_url, user_id, fresh_number(), fresh_number()))
    item = "/v2/phone_numbers/{id}"
    return [
        {"include-name": f"GET {item}", "parameters": {"id": kept}},
        {"include-name": f"PATCH {item}", "parameters": {"id": kept}},
        {"include-name": f"DELETE {item}", "parameters": {"id": doomed}},
    ]


def run_schemathesis(server: LiveServer, account: Account) -> Run:
    config = SchemathesisConfig.from_dict(
        {
            "seed": SEED,
            "headers": {"Authorization": f"Bearer {account.key}"},
            "workers": 1,
            "request-timeout": 10,
            "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none"},
            "checks": {"enabled": False, **{name: {"enabled": True} for name in CHECKS}},
            "warnings": False,
            "operations": [
                *seed_records(account.http),
                *seed_numbers(server.settings.database_url, account.user_id),
            ],
        }
    )
    schema = schemathesis.openapi.from_url(f"{server.api}/openapi.json", config=config)
    run = Run()
    seen: set[tuple[str, str, str]] = set()
    for event in schemathesis.engine.from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            recorder = event.recorder
            run.cases += len(recorder.cases)
            for interaction in recorder.interactions.values():
                if interaction.response is not None:
                    run.statuses[(recorder.label, interaction.response.status_code)] += 1
            for checks in recorder.checks.values():
                for check in checks:
                    if check.status != Status.FAILURE or check.failure_info is None:
                        continue
                    failure = check.failure_info.failure
                    if (recorder.label, check.name, failure.title) in seen:
                        continue
                    seen.add((recorder.label, check.name, failure.title))
                    run.failures.append(
                        f"{recorder.label}: {check.name}: {failure.title}\n"
                        f"{failure.message}\n{check.failure_info.code_sample}"
                    )
        elif isinstance(event, events.NonFatalError | events.FatalError):
            run.errors.append(f"{type(event).__name__}: {event.exception!r}")
    return run


def test_the_openapi_document_is_valid_openapi(server: LiveServer) -> None:
    document = httpx.get(f"{server.api}/openapi.json").json()
    schemathesis.openapi.from_dict(document).validate()  # against the OpenAPI 3.1 meta-schema
    operations = [op for path in document["paths"].values() for op in path.values()]
    ids = Counter(op["operationId"] for op in operations)
    assert not [op_id for op_id, n in ids.items() if n > 1], ids
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert document["paths"]["/health"]["get"]["security"] == []


def test_no_5xx_and_every_response_keeps_the_schema(server: LiveServer, account: Account) -> None:
    run = run_schemathesis(server, account)
    assert not run.errors, "\n\n".join(run.errors)
    assert not run.failures, f"{len(run.failures)} distinct failures:\n\n" + "\n\n".join(run.failures)
    # The run had volume, and every by-id operation answered 200 at least once: its success body
    # was checked against the schema, not only its 404.
    assert run.cases >= 1000, run.cases
    succeeded = {label for (label, status), _ in run.statuses.items() if 200 <= status < 300}
    by_id = {label for label, _ in run.statuses if label.endswith("{id}")}
    assert by_id and by_id <= succeeded, sorted(by_id - succeeded)
