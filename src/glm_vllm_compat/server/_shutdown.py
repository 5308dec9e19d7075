"""Bounded shutdown: SIGTERM or Ctrl+C, at any phase, stops everything in bounded time.

* While serving, uvicorn stops accepting connections; requests in flight may
  run on for ``--shutdown-timeout`` seconds (default 0, as ``vllm serve``),
  then they are aborted in the engine: a stream ends with an error event and
  ``[DONE]``, a non-streamed request gets a 503. uvicorn's own graceful limit
  is a few seconds later, as a backstop.
* During start-up, SIGTERM is turned into ``KeyboardInterrupt`` (the default
  would kill the API process and orphan the engine's processes).
* Whatever happened, the child processes (engine core, workers) left at the
  end are terminated, then killed.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
from collections.abc import Callable
from typing import Any

import uvicorn

from ._state import ServerState

__all__ = ["BACKSTOP_SECONDS", "BoundedServer", "interrupt_on_sigterm", "reap_children"]

logger = logging.getLogger("glm_vllm_compat.server")

BACKSTOP_SECONDS = 3.0
"""After the aborts, how long uvicorn waits for responses to finish before cancelling them."""


class BoundedServer(uvicorn.Server):
    """A uvicorn server whose shutdown aborts in-flight requests after ``state.shutdown_timeout``."""

    def __init__(self, config: uvicorn.Config, state: ServerState) -> None:
        config.timeout_graceful_shutdown = int(state.shutdown_timeout + BACKSTOP_SECONDS) + 1
        super().__init__(config)
        self.state = state

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        timeout = self.state.shutdown_timeout
        logger.info("shutting down: in-flight requests have %ss before they are aborted", timeout)
        loop = asyncio.get_running_loop()
        timer = loop.call_later(timeout, lambda: loop.create_task(self._abort_in_flight()))
        try:
            await super().shutdown(sockets)
        finally:
            timer.cancel()

    async def _abort_in_flight(self) -> None:
        aborted = await self.state.engine.abort_all("the server is shutting down")
        if aborted:
            logger.warning("shutdown timeout reached: aborted %d in-flight request(s)", aborted)


def interrupt_on_sigterm() -> Callable[[], None]:
    """SIGTERM raises ``KeyboardInterrupt`` like Ctrl+C; returns a function restoring the old handler."""
    previous: Any = signal.getsignal(signal.SIGTERM)

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, handler)

    def restore() -> None:
        signal.signal(signal.SIGTERM, previous)

    return restore


def reap_children(timeout: float = 5.0) -> int:
    """Terminate (then kill) every process this one started and that is still alive; how many there were."""
    try:
        import psutil  # type: ignore[import-untyped]
    except ImportError:  # pragma: no cover - vLLM depends on psutil
        return 0
    children = psutil.Process().children(recursive=True)
    for child in children:
        try:
            child.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(children, timeout=timeout)
    for child in alive:
        try:
            child.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=timeout)
    return len(children)
