"""The SIP edge as one service: Kamailio's supervisor and the ACL reconciler on one asyncio loop.

`run()` is what `trunkline sip` awaits; `start_in_thread()` runs the same beside an API server
(`trunkline serve --sip`, tests), on a loop of its own so neither can stall the other.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Coroutine
from contextlib import AbstractAsyncContextManager
from typing import Any

from trunkline.sip.reconcile import Reconciler
from trunkline.sip.supervisor import State, Supervisor

log = logging.getLogger("trunkline.sip")

CHECK_SECONDS = 0.5


class EdgeStartFailed(RuntimeError):
    """Kamailio did not come up at the first start."""


class EdgeService:
    def __init__(
        self,
        supervisor: Supervisor,
        open_reconciler: Callable[[], AbstractAsyncContextManager[Reconciler]],
        import_calls: Callable[[asyncio.Event], Coroutine[Any, Any, None]] | None = None,
    ) -> None:
        self.supervisor = supervisor
        self.open_reconciler = open_reconciler
        # Folds the call log Kamailio spools into the call records until the stop event (sip/call_log.py).
        self.import_calls = import_calls
        self.reconciler: Reconciler | None = None
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None

    async def run(self, stop: asyncio.Event, *, ready: Callable[[], None] | None = None) -> None:
        """Start Kamailio, keep it and its ACL current until `stop` is set, then stop it."""
        async with self.open_reconciler() as reconciler:
            self.reconciler = reconciler
            self.supervisor.on_start = reconciler.kamailio_restarted
            try:
                await asyncio.to_thread(self.supervisor.start)
                if self.supervisor.state is not State.RUNNING:
                    where = self.supervisor.log_path
                    raise EdgeStartFailed(
                        f"Kamailio did not start; see {where}:\n{self.supervisor.log_tail()}"
                    )
                if ready is not None:
                    ready()
                task = asyncio.create_task(reconciler.run(stop))
                imports: asyncio.Task[None] | None = None
                imports = asyncio.create_task(self.import_calls(stop)) if self.import_calls else None
                while not stop.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), timeout=CHECK_SECONDS)
                    if not stop.is_set():
                        await asyncio.to_thread(self.supervisor.check)
                await task
                if imports is not None:
                    await imports
            finally:
                # Not via to_thread: at interpreter exit (serve --sip's atexit hook) executors take
                # no new work, and Kamailio must be stopped all the same.
                self.supervisor.stop()

    def start_in_thread(self, *, timeout: float = 30.0) -> EdgeService:
        """Run the service on a thread of its own; return once Kamailio answers (or raise why not)."""

        def main() -> None:
            async def go() -> None:
                self._loop = asyncio.get_running_loop()
                self._stop = asyncio.Event()
                await self.run(self._stop, ready=self._started.set)

            try:
                asyncio.run(go())
            except BaseException as exc:  # handed to the starting thread
                self._error = exc
            finally:
                self._started.set()

        self._thread = threading.Thread(target=main, name="trunkline-sip", daemon=True)
        self._thread.start()
        if not self._started.wait(timeout):
            raise EdgeStartFailed(f"the SIP edge did not start within {timeout:.0f} s")
        if self._error is not None:
            raise self._error
        return self

    def stop_thread(self, *, timeout: float = 30.0) -> None:
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout)
