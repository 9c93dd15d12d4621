"""A live trunkline API on loopback for tests: the real app under uvicorn, in a thread."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import httpx
import uvicorn

from tests.services import free_port
from trunkline.app import create_app
from trunkline.config import Settings


@dataclass
class LiveServer:
    settings: Settings
    host: str = "127.0.0.1"
    port: int = field(default_factory=free_port)
    _server: uvicorn.Server | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host  # an IPv6 literal needs brackets
        return f"http://{host}:{self.port}"

    @property
    def api(self) -> str:
        return f"{self.url}/v2"

    def start(self) -> LiveServer:
        config = uvicorn.Config(
            create_app(self.settings),
            host=self.host,
            port=self.port,
            log_config=None,
            access_log=False,
            loop="asyncio",
            lifespan="on",
            # As `trunkline serve`: the app reads X-Forwarded-For itself, from trusted proxies only.
            proxy_headers=False,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"trunkline did not start on {self.url}")

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=15)
