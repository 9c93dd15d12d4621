"""One account of a trunkline server, with its key and the control API (/_trunkline/) as methods.

Every call acts on this account only (its own key is the credential), so tests that run at once on
one server never see each other's records, faults or journal. The endpoints are described in
docs/testing.md and docs/testing-control.md.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from trunkline.testing._http import ControlError, JsonClient

if TYPE_CHECKING:  # telnyx is optional: only Account.telnyx_client needs it
    import telnyx

__all__ = ["Account", "ControlError"]


@dataclass
class Account:
    """An account: `key` (its API key), `user_id`, `base_url` (the Telnyx API, ending in /v2)."""

    user_id: str
    key: str
    base_url: str
    read_only: bool = False
    _client: JsonClient = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._client = JsonClient(origin_of(self.base_url), self.key)

    # --- records -----------------------------------------------------------------------------------

    def reset(self) -> dict[str, int]:
        """Delete every record of the account (connections, IPs, FQDNs, profiles, ranges, virtual
        registrations, its journal and faults); its keys stay. Returns the counts deleted."""
        data = self._client.call("POST", "/_trunkline/reset")
        return dict(data.get("deleted", data))

    def snapshot(self) -> dict[str, Any]:
        """The account's records as one JSON document (`"format": 1`), for `restore` or `serve --seed`."""
        return dict(self._client.call("GET", "/_trunkline/state"))

    def restore(self, document: dict[str, Any]) -> dict[str, int]:
        """Replace the account's records with a `snapshot` document (ids and timestamps kept).
        Returns the counts restored; a document that does not fit raises ControlError (422, with a
        pointer into the document for each problem) and changes nothing."""
        data = self._client.call("PUT", "/_trunkline/state", body=document)
        return dict(data.get("restored", data))

    # --- faults ------------------------------------------------------------------------------------

    def fault(
        self,
        path: str,
        *,
        method: str = "*",
        status: int | None = None,
        headers: dict[str, str] | None = None,
        body: Any = None,
        latency_ms: int | None = None,
        times: int | None = None,
        probability: float | None = None,
    ) -> dict[str, Any]:
        """Make matching /v2 requests of this account fail or slow down; returns the rule (with `id`).

        `path` is a pattern (`/v2/ips`, `/v2/ips/*`, `/v2/**`), `method` an HTTP method or `*`.
        With `status` (400-599) a match answers that status in Telnyx's error envelope (or `body`),
        without running the route; 429 carries `Retry-After` and `x-ratelimit-*` unless `headers`
        say otherwise. `latency_ms` delays the answer; `times` limits the rule to the next N matches;
        `probability` fires it at random.
        """
        rule: dict[str, Any] = {"method": method, "path": path}
        optional = {
            "status": status,
            "headers": headers,
            "body": body,
            "latency_ms": latency_ms,
            "times": times,
            "probability": probability,
        }
        rule.update({k: v for k, v in optional.items() if v is not None})
        return dict(self._client.call("POST", "/_trunkline/faults", body=rule))

    def faults(self) -> list[dict[str, Any]]:
        """The account's fault rules, with how many times each may still fire (`remaining`)."""
        return list(self._client.call("GET", "/_trunkline/faults"))

    def clear_faults(self, fault_id: str | None = None) -> None:
        """Remove one rule (by its id) or, without an id, all of them."""
        if fault_id is None:
            self._client.call("DELETE", "/_trunkline/faults")
        else:
            self._client.call("DELETE", f"/_trunkline/faults/{urllib.parse.quote(fault_id, safe='')}")

    # --- the request journal -----------------------------------------------------------------------

    def requests(
        self, method: str | None = None, path: str | None = None, *, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """The account's /v2 requests, newest first: `method`, `path`, `query`, `request_body`
        (passwords and keys redacted), `status`, `response_body`, `time`, `duration_ms`."""
        query = {"method": method, "path": path, "limit": limit}
        return list(self._client.call("GET", "/_trunkline/requests", query=query))

    def clear_requests(self) -> None:
        self._client.call("DELETE", "/_trunkline/requests")

    # --- virtual registrations ---------------------------------------------------------------------

    def register(self, connection_id: str, status: str = "Registered", **fields: Any) -> dict[str, Any]:
        """A virtual phone on a credential connection: `check_registration_status` then reports it as
        a real one. `status` is Registered, Failed, Unregistered or Expired; for Registered, fields
        `ip_address`, `port`, `transport`, `user_agent` and `expires` (seconds) describe the phone."""
        path = f"/_trunkline/registrations/{urllib.parse.quote(connection_id, safe='')}"
        return dict(self._client.call("PUT", path, body={"status": status, **fields}))

    def unregister(self, connection_id: str) -> None:
        """Remove the virtual registration of a connection."""
        path = f"/_trunkline/registrations/{urllib.parse.quote(connection_id, safe='')}"
        self._client.call("DELETE", path)

    # --- clients -----------------------------------------------------------------------------------

    def telnyx_client(self, **options: Any) -> telnyx.Telnyx:
        """The official Telnyx SDK (`pip install telnyx`) for this account; options go to
        `telnyx.Telnyx` (for example `max_retries=0`)."""
        try:
            import telnyx
        except ImportError:
            raise ImportError("Account.telnyx_client needs the Telnyx SDK: pip install telnyx") from None
        return telnyx.Telnyx(api_key=self.key, base_url=self.base_url, **options)

    @property
    def env(self) -> dict[str, str]:
        """The variables the Telnyx SDKs read: TELNYX_BASE_URL and TELNYX_API_KEY."""
        return {"TELNYX_BASE_URL": self.base_url, "TELNYX_API_KEY": self.key}

    def close(self) -> None:
        self._client.close()


def origin_of(base_url: str) -> str:
    """scheme://host:port of a URL (the control API sits beside /v2, at the server's root)."""
    parts = urllib.parse.urlsplit(base_url)
    return f"{parts.scheme}://{parts.netloc}"
