"""A small JSON client over the standard library: keep-alive, one connection per thread.

trunkline.testing runs in the test process of someone else's project, which may have neither httpx
nor requests; `http.client` is enough for the control API (https://docs.python.org/3/library/http.client.html).
"""

from __future__ import annotations

import http.client
import json
import threading
import urllib.parse
from typing import Any


class ControlError(Exception):
    """A control call failed; `status` is the HTTP status, `errors` Telnyx's error entries."""

    def __init__(self, method: str, path: str, status: int, errors: list[dict[str, Any]], text: str) -> None:
        self.method = method
        self.path = path
        self.status = status
        self.errors = errors
        details = []
        for e in errors:
            detail = str(e.get("detail") or e.get("title") or e)
            pointer = (e.get("source") or {}).get("pointer")
            details.append(f"{detail} (at {pointer})" if pointer and pointer != "/" else detail)
        summary = "; ".join(details) or text[:500] or "no body"
        super().__init__(f"{method} {path} answered {status}: {summary}")


class JsonClient:
    """Calls `origin` (scheme://host:port) with a bearer credential; thread-safe."""

    def __init__(self, origin: str, credential: str, *, timeout: float = 30.0) -> None:
        parts = urllib.parse.urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {origin!r}")
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._headers = {
            "Authorization": f"Bearer {credential}",
            "Accept": "application/json",
            "User-Agent": "trunkline.testing",
        }
        self._timeout = timeout
        self._local = threading.local()

    def _connection(self) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is None:
            cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            conn = cls(self._host, self._port, timeout=self._timeout)
            self._local.conn = conn
        return conn

    def call(self, method: str, path: str, *, body: Any = None, query: dict[str, Any] | None = None) -> Any:
        """The response's `data`; raises ControlError for a status of 400 or more."""
        params = {k: v for k, v in (query or {}).items() if v is not None}
        target = path + ("?" + urllib.parse.urlencode(params) if params else "")
        payload = None if body is None else json.dumps(body).encode()
        headers = dict(self._headers)
        if payload is not None:
            headers["Content-Type"] = "application/json"
        for attempt in range(2):
            conn = self._connection()
            try:
                conn.request(method, target, body=payload, headers=headers)
                resp = conn.getresponse()
                raw = resp.read()
                break
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                # The server closed an idle keep-alive connection (uvicorn's keep-alive timeout)
                # before reading the request: once more on a new connection.
                conn.close()
                self._local.conn = None
                if attempt:
                    raise
        text = raw.decode("utf-8", "replace")
        try:
            doc = json.loads(text) if text else {}
        except json.JSONDecodeError:
            doc = None
        if resp.status >= 400:
            errors = doc.get("errors") if isinstance(doc, dict) else None
            raise ControlError(method, target, resp.status, errors if isinstance(errors, list) else [], text)
        if not isinstance(doc, dict):
            raise ControlError(method, target, resp.status, [], f"not a JSON object: {text[:200]}")
        return doc.get("data", doc)

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
