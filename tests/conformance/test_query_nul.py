"""Guard: a NUL in any text parameter of any route is a clear 4xx on both engines, never a 500.

The routes are walked, not listed, so a route or filter added later is covered without a test of its
own: every string query parameter must be `FilterText` (http/params.py) and answer 422 naming itself;
every path parameter holding a NUL names no record (404).
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from tests.conformance._connections import assert_error
from trunkline.app import create_app
from trunkline.config import Settings

# Parameters the OpenAPI document hides (older spellings Telnyx still accepts): (path, alias).
HIDDEN = [
    (f"/v2/{collection}", "filter[outbound.outbound_voice_profile_id]")
    for collection in ("connections", "credential_connections", "fqdn_connections", "ip_connections")
]


def _operations() -> list[tuple[str, str, dict[str, Any]]]:
    """(method, path, operation) for every operation of the API, from its own OpenAPI document."""
    document = create_app(Settings(database_url="sqlite:///:memory:")).openapi()
    return [
        (method.upper(), path, operation)
        for path, item in document["paths"].items()
        if path.startswith("/v2/")
        for method, operation in item.items()
    ]


def _is_text(schema: dict[str, Any]) -> bool:
    return (schema.get("type") == "string" and "enum" not in schema) or any(
        _is_text(s) for s in schema.get("anyOf", [])
    )


def _text_queries() -> list[tuple[str, str, str]]:
    found = [
        (method, path, param["name"])
        for method, path, operation in _operations()
        for param in operation.get("parameters", [])
        if param["in"] == "query" and _is_text(param["schema"])
    ]
    found += [("GET", path, alias) for path, alias in HIDDEN]
    return sorted(set(found))


def _path_params() -> list[tuple[str, str]]:
    return sorted({(method, path) for method, path, _ in _operations() if "{" in path})


def test_the_walk_finds_the_filters() -> None:
    aliases = {alias for _, _, alias in _text_queries()}
    assert {"filter[connection_id]", "filter[cidr_block][contains]", "filter[name][contains]"} <= aliases
    assert len(_text_queries()) >= 20


@pytest.mark.parametrize(("method", "path", "alias"), _text_queries())
def test_nul_in_a_text_query_parameter_is_422(http: httpx.Client, method: str, path: str, alias: str) -> None:
    r = http.request(method, path.removeprefix("/v2"), params={alias: "a\x00"})
    entry = assert_error(r, 422, code="10015")
    assert entry["source"]["parameter"] == alias, entry
    assert "NUL" in entry["detail"], entry


@pytest.mark.parametrize(("method", "path"), _path_params())
def test_nul_in_a_path_parameter_names_nothing(http: httpx.Client, method: str, path: str) -> None:
    concrete = re.sub(r"\{[a-z_]+\}", "12%003", path.removeprefix("/v2"))
    body = {"ip_address": "192.0.2.1"} if method == "PATCH" else None
    assert_error(http.request(method, concrete, json=body), 404, code="10005")
