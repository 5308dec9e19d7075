"""Issue 10 on the real engine: bounded shutdown (idle, in flight, start-up) and the stress harness (reduced)."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from .conftest import tiny_arch
from .test_server_real import _free_port, _group_alive, _stop, _wait_ready

TIMEOUT = 2.0
# The stream in flight at SIGTERM must outlast TIMEOUT: the V0 line writes ~900 tiny-model tokens in under 2 s.
LONG = 4096  # the tiny models' max_position_embeddings
SLACK = 15.0  # engine-core and worker processes need a few seconds to exit on a loaded 2-core machine


def _serve(*extra: str, max_model_len: int = 1024) -> tuple[subprocess.Popen[str], str, list[str]]:
    port = _free_port()
    cmd = [sys.executable, "-m", "glm_vllm_compat", "serve", "--port", str(port), "--max-model-len", str(max_model_len),
           "--shutdown-timeout", str(TIMEOUT), *extra]
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=dict(os.environ), start_new_session=True)
    return process, f"http://127.0.0.1:{port}", []


def _gone_within(process: subprocess.Popen[str], seconds: float) -> float:
    started = time.monotonic()
    while (process.poll() is None or _group_alive(process.pid)) and time.monotonic() - started < seconds:
        time.sleep(0.2)
    assert process.poll() is not None and not _group_alive(process.pid), "server or engine processes survived"
    return time.monotonic() - started


def _harness() -> Any:
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "stress.py"
    spec = importlib.util.spec_from_file_location("glm_stress_real", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


BAD_REGEXES = ["(", "[", "a{2,1}", "(a)\\1"]


def _bad_constraints_are_400_and_the_engine_lives(url: str) -> None:
    """A regex the backend cannot compile is that request's 400 on every endpoint, streamed or not; on V0
    lines the compile error used to kill the engine loop (fixes v0-guided-errors, v0-xgrammar-regex)."""
    model = httpx.get(url + "/v1/models", timeout=30).json()["data"][0]["id"]
    bodies = {
        "/v1/chat/completions": {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4},
        "/v1/completions": {"prompt": "hi", "max_tokens": 4},
        "/v1/messages": {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4},
        "/v1/responses": {"input": "hi", "max_output_tokens": 4},
    }
    for regex in BAD_REGEXES:
        for path, body in bodies.items():
            for stream in (False, True):
                ask = {"model": model, **body, "stream": stream, "structured_outputs": {"regex": regex}}
                response = httpx.post(url + path, json=ask, timeout=60)
                assert response.status_code == 400, (path, regex, stream, response.text[:300])
    ok = httpx.post(url + "/v1/chat/completions", json={"model": model, **bodies["/v1/chat/completions"]}, timeout=60)
    assert ok.status_code == 200 and ok.json()["choices"][0]["finish_reason"] in ("length", "stop")


def test_stress_then_sigterm_with_requests_in_flight() -> None:
    process, url, log = _serve(max_model_len=LONG)
    try:
        _wait_ready(process, url, log)
        _bad_constraints_are_400_and_the_engine_lives(url)
        stress = _harness()
        figures = asyncio.run(stress.run(url, bad=200, stream_disconnects=10, plain_disconnects=5, concurrent=16, big_mb=5.0, settle=10.0))
        print(stress._report(figures))
        assert figures.responses_5xx == 0 and figures.in_stream_errors == 0 == figures.in_stream_internal_errors, figures.samples_5xx
        # both counts are real here: the API process's and the engine scheduler's (V0: in process; V1: engine core's gauges)
        assert figures.left_running_after_disconnects == 0 and figures.engine_running_after_disconnects == 0
        assert figures.streams_done == 16 and figures.health_max_latency_s < 1.0
        events: list[Any] = []

        def stream() -> None:
            body = {"messages": [{"role": "user", "content": "long"}], "max_tokens": LONG - 64, "ignore_eos": True, "stream": True}
            with httpx.stream("POST", url + "/v1/chat/completions", json=body, timeout=60) as response:
                for line in response.iter_lines():
                    if line.startswith("data: "):
                        events.append(line[6:] if line == "data: [DONE]" else json.loads(line[6:]))

        client = threading.Thread(target=stream)
        client.start()
        while not events:
            time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        _gone_within(process, TIMEOUT + SLACK)
        client.join(timeout=10)
        assert events[-1] == "[DONE]" and (events[-2].get("error") or {}).get("code") == "server_shutting_down", json.dumps(events[-3:])[-600:]
    finally:
        _stop(process)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl+C"])
@pytest.mark.parametrize("phase", ["idle", "start-up"])
def test_signal_when_idle_and_during_start_up(phase: str, signum: signal.Signals) -> None:
    """SIGTERM or Ctrl+C, idle or while the engine is being built: no process of the server is left."""
    process, url, log = _serve("--tiny-arch", tiny_arch())
    try:
        if phase == "idle":
            _wait_ready(process, url, log)
        else:
            assert process.stdout is not None
            for line in process.stdout:  # the engine is being built
                if "loading" in line:
                    break
            time.sleep(3)
        if signum == signal.SIGINT:  # a terminal's Ctrl+C reaches the whole foreground group: engine processes too
            os.killpg(process.pid, signum)
        else:  # a supervisor's SIGTERM reaches the server's own process
            process.send_signal(signum)
        _gone_within(process, TIMEOUT + SLACK)
    finally:
        _stop(process)
