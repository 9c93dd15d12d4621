"""/v2/docs renders with no internet: Swagger UI served by trunkline, run in a real headless Chromium.

The browser's network is cut to loopback: every host name but 127.0.0.1 fails to resolve, and every
request that is not for 127.0.0.1 goes to a local proxy that records it and answers 502. The page must
then show every operation of /v2/openapi.json, which only Swagger UI's script can draw, with no
Content-Security-Policy complaint. A control run of FastAPI's stock page (Swagger UI from a CDN) in the
same browser proves the cut: it stays blank and its CDN requests reach only the recording proxy.

Chromium is Debian's `chromium` package (scripts/test installs it); missing, these tests skip
locally and fail under CI=true.
"""

from __future__ import annotations

import contextlib
import html
import os
import socket
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest
from fastapi.openapi.docs import get_swagger_ui_html

from tests.conftest import migrated_database, test_settings
from tests.server import LiveServer
from tests.services import missing

CHROMIUM = os.environ.get("TRUNKLINE_TEST_CHROMIUM", "/usr/bin/chromium")
# Chromium's own services (clock, component updates, sign-in), which it calls whatever page it shows.
BROWSER_OWN = (".google.com", ".googleapis.com", ".gvt1.com")
ASSET_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".png": "image/png",
}


@pytest.fixture(scope="module")
def docs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A live server on SQLite: the page does not touch the database, so one backend is enough."""
    with migrated_database("sqlite", tmp_path_factory) as url:
        live = LiveServer(test_settings(url)).start()
        yield live
        live.stop()


@dataclass
class RecordingProxy:
    """An HTTP proxy on loopback that forwards nothing: it notes each request's host and answers 502."""

    sock: socket.socket = field(default_factory=lambda: socket.create_server(("127.0.0.1", 0)))
    requests: list[str] = field(default_factory=list)

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    def hosts(self) -> set[str]:
        found = set()
        for line in self.requests:
            parts = line.split()
            if len(parts) < 2:
                continue
            target = parts[1]  # CONNECT host:443, or GET http://host/path
            host = target.split("://", 1)[-1].split("/", 1)[0].rsplit(":", 1)[0]
            found.add(host.lower())
        return found

    def page_hosts(self) -> set[str]:
        return {h for h in self.hosts() if not h.endswith(BROWSER_OWN)}

    def serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return  # closed
            with conn:
                conn.settimeout(2)
                try:
                    head = conn.recv(4096)
                    self.requests.append(head.split(b"\r\n", 1)[0].decode("latin-1"))
                    conn.sendall(
                        b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    )
                except OSError:
                    pass


@pytest.fixture
def proxy() -> Iterator[RecordingProxy]:
    p = RecordingProxy()
    thread = threading.Thread(target=p.serve, daemon=True)
    thread.start()
    yield p
    with contextlib.suppress(OSError):
        p.sock.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept(), which close() alone does not
    p.sock.close()
    thread.join(timeout=5)


@dataclass
class Run:
    dom: str  # the serialized DOM after the page's scripts ran, entities decoded
    console: list[str]


def chromium(url: str, proxy: RecordingProxy, profile: Path, *extra: str) -> Run:
    if not os.access(CHROMIUM, os.X_OK):
        missing(f"Chromium is not installed at {CHROMIUM} (Debian: apt-get install chromium)")
    args = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        f"--proxy-server=http://127.0.0.1:{proxy.port}",
        "--proxy-bypass-list=127.0.0.1",
        "--enable-logging=stderr",
        "--log-level=0",
        "--virtual-time-budget=5000",
        *extra,
        url,
    ]
    done = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    return Run(dom=html.unescape(done.stdout), console=console)


def operations(server: LiveServer) -> list[tuple[str, str, dict]]:
    doc = httpx.get(f"{server.api}/openapi.json").raise_for_status().json()
    return [(method, path, op) for path, item in doc["paths"].items() for method, op in item.items()]


def test_the_page_draws_every_operation_with_the_network_off(
    docs_server: LiveServer, proxy: RecordingProxy, tmp_path: Path
) -> None:
    run = chromium(f"{docs_server.api}/docs", proxy, tmp_path / "profile", "--dump-dom")
    ops = operations(docs_server)
    assert len(ops) >= 38
    for method, path, op in ops:
        assert op["summary"] in run.dom, f"{method.upper()} {path} ({op['summary']!r}) is not on the page"
        assert f'data-path="{path}"' in run.dom, path
    for tag in {t for _, _, op in ops for t in op.get("tags", [])}:
        assert f'data-tag="{tag}"' in run.dom, f"tag {tag!r} is not on the page"
    for summary in ("List IPs", "Create a credential connection"):
        assert summary in run.dom
    assert not [line for line in run.console if "Content Security Policy" in line or "Refused" in line]
    assert not proxy.page_hosts(), f"the page asked for other hosts: {proxy.requests}"


def test_the_cdn_page_stays_blank_in_the_same_browser(
    docs_server: LiveServer, proxy: RecordingProxy, tmp_path: Path
) -> None:
    """The control: FastAPI's stock page, which loads Swagger UI from a CDN, draws nothing here."""
    page = tmp_path / "cdn.html"
    stock = get_swagger_ui_html(openapi_url=f"{docs_server.api}/openapi.json", title="trunkline API")
    page.write_bytes(stock.body)
    run = chromium(page.as_uri(), proxy, tmp_path / "profile", "--dump-dom")
    assert "List IPs" not in run.dom and "opblock" not in run.dom
    assert "cdn.jsdelivr.net" in proxy.page_hosts()  # it tried, and only the recording proxy heard it
    assert any("SwaggerUIBundle is not defined" in line for line in run.console)


class _References(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline = 0
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in {"src", "href"} and value is not None:
                self.urls.append(value)
        if tag == "script":
            self._in_script = True
        if tag == "style" or any(name == "style" for name, _ in attrs):
            self.inline += 1  # an inline style, which the CSP would refuse

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline += 1


def test_the_page_names_no_other_host_and_its_assets_answer(docs_server: LiveServer) -> None:
    r = httpx.get(f"{docs_server.api}/docs")
    assert r.status_code == 200 and r.headers["content-type"] == "text/html; charset=utf-8"
    assert "cdn" not in r.text.lower() and "https://" not in r.text and "http://" not in r.text
    refs = _References()
    refs.feed(r.text)
    assert refs.inline == 0
    assert len(refs.urls) == 4  # stylesheet, icon, Swagger UI's bundle, its start-up script
    csp = r.headers["content-security-policy"]
    assert "script-src 'self';" in csp and "style-src 'self';" in csp and "unsafe" not in csp
    assert "frame-ancestors 'none'" in csp
    assert r.headers["cache-control"] == "no-store"
    for url in refs.urls:
        assert url.startswith("/v2/docs/assets/"), url
        asset = httpx.get(f"{docs_server.url}{url}")  # no key: the page needs none either
        assert asset.status_code == 200, url
        assert asset.headers["content-type"] == ASSET_TYPES[Path(url).suffix], url
        assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert asset.headers["x-content-type-options"] == "nosniff"
        assert len(asset.content) > 100
    bundle = next(u for u in refs.urls if "swagger-ui-bundle." in u)
    assert b"SwaggerUIBundle" in httpx.get(f"{docs_server.url}{bundle}").content


def test_an_unknown_asset_is_an_unknown_route(docs_server: LiveServer) -> None:
    for name in ("swagger-ui-bundle.js", "nope.css", "..%2F..%2Fopenapi.json"):
        r = httpx.get(f"{docs_server.api}/docs/assets/{name}")
        assert r.status_code == 404
        assert r.json()["errors"][0]["code"] == "10005"


def test_the_docs_routes_are_not_in_the_openapi_document(docs_server: LiveServer) -> None:
    assert not [path for _, path, _ in operations(docs_server) if path.startswith("/v2/docs")]
