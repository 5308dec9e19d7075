"""Bounded shutdown (issue 10 item 7): in-flight requests are aborted when --shutdown-timeout expires."""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import threading
import time
from typing import Any

import httpx
import pytest

from glm_vllm_compat.server._app import create_app
from glm_vllm_compat.server._cli import build_parser
from glm_vllm_compat.server._engine import ServerEngine, glm_stop_token_ids
from glm_vllm_compat.server._server_flags import resolved
from glm_vllm_compat.server._shutdown import BACKSTOP_SECONDS, BoundedServer, reap_children
from glm_vllm_compat.server._state import ServerState
from glm_vllm_compat.testing._replay import ReplayEngine

from .conftest import MAX_MODEL_LEN

MODEL = "glm-test-glm45"
USER = [{"role": "user", "content": "hi"}]


def _start(tokenizer: Any, timeout: float, abort_cancels: bool = False) -> tuple[str, BoundedServer, threading.Thread, ReplayEngine]:
    import uvicorn

    engine = ReplayEngine(tokenizer, max_model_len=MAX_MODEL_LEN, piece_delay=0.05, abort_cancels=abort_cancels)
    server_engine = ServerEngine(engine, tokenizer, "/m", [MODEL], MAX_MODEL_LEN, ["Glm4MoeForCausalLM"], tokenizer.chat_template, glm_stop_token_ids(tokenizer))
    state = ServerState(server_engine, "glm45", "glm45", "glm45", shutdown_timeout=timeout)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = BoundedServer(uvicorn.Config(create_app(state), log_level="warning", lifespan="off"), state)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    return f"http://127.0.0.1:{sock.getsockname()[1]}", server, thread, engine


def _parsed(*argv: str) -> argparse.Namespace:
    return argparse.Namespace(**resolved(build_parser([]).parse_args(list(argv))))


def test_flags_and_defaults() -> None:
    args = _parsed()
    assert args.shutdown_timeout == 0 and args.max_request_body_bytes == 32 * 1024 * 1024
    args = _parsed("--shutdown-timeout", "2.5", "--max-request-body-bytes", "1000")
    assert args.shutdown_timeout == 2.5 and args.max_request_body_bytes == 1000


@pytest.mark.parametrize("abort_cancels", [False, True], ids=["v1-abort-ends-the-stream", "v0-abort-raises-cancelled"])
@pytest.mark.parametrize("timeout", [0.0, 1.0])
def test_in_flight_requests_are_aborted_at_the_timeout(tokenizers: dict[str, Any], timeout: float, abort_cancels: bool) -> None:
    url, server, thread, engine = _start(tokenizers["glm45"], timeout, abort_cancels)
    engine.script("很长的回答" * 200)  # 1,000 pieces at 50 ms: far longer than the timeout
    events: list[Any] = []
    statuses: list[int] = []

    def stream() -> None:
        body = {"model": MODEL, "messages": USER, "stream": True}
        with httpx.stream("POST", url + "/v1/chat/completions", json=body, timeout=30) as response:
            for line in response.iter_lines():
                if line.startswith("data: "):
                    events.append(line[6:] if line == "data: [DONE]" else json.loads(line[6:]))

    def plain() -> None:
        statuses.append(httpx.post(url + "/v1/chat/completions", json={"model": MODEL, "messages": USER}, timeout=30).status_code)

    clients = [threading.Thread(target=stream), threading.Thread(target=plain)]
    for client in clients:
        client.start()
    time.sleep(0.5)
    started = time.monotonic()
    server.should_exit = True  # what SIGTERM / Ctrl+C does
    thread.join(timeout=timeout + BACKSTOP_SECONDS + 5)
    elapsed = time.monotonic() - started
    for client in clients:
        client.join(timeout=5)
    assert not thread.is_alive() and elapsed < timeout + 3, elapsed
    assert events[-1] == "[DONE]" and events[-2]["error"]["code"] == "server_shutting_down"
    assert statuses == [503]
    assert engine.get_num_unfinished_requests() == 0 and len(engine.aborted) == 2


def test_reap_children_ends_what_the_process_started() -> None:
    pytest.importorskip("psutil", reason="reap_children uses psutil (a vLLM dependency)")
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"])
    time.sleep(0.3)
    assert reap_children(timeout=1) >= 1
    assert child.wait(timeout=5) is not None
