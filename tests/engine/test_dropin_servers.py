"""The drop-in example servers against the real vLLM engine.

Each of examples/legacy_v040_server.py, legacy_v043_server.py,
legacy_glm4_openai_server.py and modern_server.py is started as a subprocess on
127.0.0.1 (a free port) with the tiny random-weight GLM-4 model, called with the
official ``openai`` client (chat, non-stream and stream) and stopped;
examples/legacy_fastchat_worker.py is called the way a FastChat controller calls
a worker; examples/legacy_llm_batch.py runs as a batch job. They run one after
the other: an engine start takes 20-45 s on a 2-core machine.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import tiny_arch

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ("legacy_v040_server.py", "legacy_v043_server.py", "legacy_glm4_openai_server.py", "modern_server.py")
# Extra command-line arguments per example (the GLM-4 server defaults to the original's bfloat16).
EXTRA_ARGS = {"legacy_glm4_openai_server.py": ["--dtype", "float32", "--max-model-len", "1024"]}
# The examples with a --trust-remote-code flag (the GLM-4 server always trusts the checkpoint's code).
TRUST_FLAG = frozenset(EXAMPLES) - {"legacy_glm4_openai_server.py"}
READY_TIMEOUT_S = 150.0
# The historic forms each legacy example uses (read from its code): capability flags of the generate /
# SamplingParams forms, and the engine-argument fields it passes.  Where the installed vLLM takes all of
# them as written (the example's own era, e.g. legacy_v043_server.py on 0.4.3) nothing is translated and
# no LegacyCallWarning is due; elsewhere the shim translates and says so.
LEGACY_FORMS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "legacy_v040_server.py": (("async_generate_legacy_kwargs", "sampling_use_beam_search", "sampling_best_of"),
                              ("worker_use_ray", "engine_use_ray", "disable_log_requests")),
    "legacy_v043_server.py": (("async_generate_inputs_keyword", "sampling_use_beam_search"), ("worker_use_ray", "disable_log_requests")),
    "legacy_glm4_openai_server.py": (("async_generate_inputs_keyword", "sampling_use_beam_search", "sampling_best_of"),
                                     ("worker_use_ray", "engine_use_ray", "disable_log_requests")),
    "legacy_fastchat_worker.py": (("sampling_use_beam_search", "sampling_best_of"), ("worker_use_ray", "engine_use_ray", "disable_log_requests")),
    "legacy_llm_batch.py": (("llm_prompt_token_ids_kwarg", "sampling_use_beam_search", "sampling_best_of"), ()),
}
MESSAGES = [{"role": "user", "content": "你好，介绍一下你自己"}]


def _missing() -> str | None:
    if importlib.util.find_spec("vllm") is None:
        return "vllm is not importable (install the engine: pip install 'glm-vllm-compat[cpu]')"
    for name in ("fastapi", "uvicorn", "openai", "httpx", "tokenizers", "safetensors"):
        if importlib.util.find_spec(name) is None:
            return f"{name} is not installed (needed by the example servers and this test)"
    return None


pytestmark = [pytest.mark.engine, pytest.mark.skipif(_missing() is not None, reason=_missing() or "")]


def _translated(example: str) -> bool:
    """Whether the installed vLLM lacks one of the example's historic forms (so the shim must translate)."""
    import dataclasses

    import vllm

    import glm_vllm_compat as gvc

    flags, engine_fields = LEGACY_FORMS[example]
    caps = gvc.capabilities()
    fields = {f.name for f in dataclasses.fields(vllm.AsyncEngineArgs)}
    return not all(getattr(caps, flag) for flag in flags) or not set(engine_fields) <= fields


@pytest.fixture(scope="module")
def tiny_model() -> str:
    from glm_vllm_compat.testing._tiny_model import build_tiny_model

    return str(build_tiny_model(tiny_arch()))


def _engine_env() -> dict[str, str]:
    """scripts/cpu_defaults.sh, for the subprocess ("all" is not a valid thread binding)."""
    env = dict(os.environ)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if env.get("VLLM_CPU_OMP_THREADS_BIND", "all") in ("", "all", "auto"):
        env["VLLM_CPU_OMP_THREADS_BIND"] = f"0-{cores - 1}"
    env.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    env.setdefault("VLLM_TARGET_DEVICE", "cpu")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.update(VLLM_NO_USAGE_STATS="1", DO_NOT_TRACK="1", PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    env.pop("VLLM_USE_V1", None)
    return env


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tail(log: Path, lines: int = 40) -> str:
    text = log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
    return "\n".join(text.splitlines()[-lines:])


def _wait_ready(proc: subprocess.Popen[bytes], base: str, log: Path, ready: str = "GET /v1/models") -> None:
    import httpx

    method, path = ready.split(" ", 1)
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"server exited with {proc.returncode} before it was ready:\n{_tail(log)}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.request(method, f"{base}{path}", timeout=2.0).status_code == 200:
                return
        time.sleep(0.5)
    pytest.fail(f"server not ready after {READY_TIMEOUT_S:.0f}s:\n{_tail(log)}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM (uvicorn shuts down cleanly), then SIGKILL for the process group it leads."""
    if proc.poll() is None:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=30)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # the engine-core children of this server only
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)


@contextlib.contextmanager
def _server(example: str, model: str, log: Path, ready: str = "GET /v1/models") -> Iterator[str]:
    port = _free_port()
    command = [sys.executable, str(ROOT / "examples" / example), "--model", model,
               "--host", "127.0.0.1", "--port", str(port), *EXTRA_ARGS.get(example, [])]
    if tiny_arch() == "ChatGLMModel" and example in TRUST_FLAG:  # its config class is the checkpoint's own code (vLLM <= 0.5 loads it)
        command.append("--trust-remote-code")
    with log.open("wb") as out:
        proc = subprocess.Popen(command, cwd=ROOT, env=_engine_env(), stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            base = f"http://127.0.0.1:{port}"
            _wait_ready(proc, base, log, ready)
            yield base
        finally:
            _stop(proc)


def _check_chat(client: Any, model: str) -> str:
    response = client.chat.completions.create(
        model=model, messages=MESSAGES, max_tokens=8, temperature=0.0, extra_body={"min_tokens": 4}
    )
    assert response.object == "chat.completion" and response.model == model
    choice = response.choices[0]
    assert choice.message.role == "assistant"
    assert isinstance(choice.message.content, str) and choice.message.content
    assert choice.finish_reason in ("length", "stop")
    usage = response.usage
    assert usage.prompt_tokens > len(MESSAGES[0]["content"]) // 4
    assert 4 <= usage.completion_tokens <= 8
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    return str(choice.message.content)


def _check_stream(client: Any, model: str) -> str:
    stream = client.chat.completions.create(
        model=model, messages=MESSAGES, max_tokens=8, temperature=0.0, stream=True,
        stream_options={"include_usage": True}, extra_body={"min_tokens": 4},
    )
    pieces, finish, usage = [], None, None
    for chunk in stream:
        assert chunk.object == "chat.completion.chunk"
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            pieces.append(choice.delta.content or "")
            finish = choice.finish_reason or finish
    assert finish in ("length", "stop")
    assert usage is not None and 4 <= usage.completion_tokens <= 8
    return "".join(pieces)


@pytest.mark.parametrize("example", EXAMPLES)
def test_example_server_serves_chat_completions(example: str, tiny_model: str, tmp_path: Path) -> None:
    import openai

    log = tmp_path / f"{example}.log"
    with _server(example, tiny_model, log) as base:
        client = openai.OpenAI(base_url=f"{base}/v1", api_key="EMPTY", timeout=120.0, max_retries=0)
        assert [m.id for m in client.models.list().data] == [tiny_model]
        text = _check_chat(client, tiny_model)
        streamed = _check_stream(client, tiny_model)
        assert streamed and streamed == text  # greedy: the stream adds up to the same answer
    output = log.read_text(encoding="utf-8", errors="replace")
    # The legacy servers' historic forms were translated (and said so) unless this vLLM takes them as
    # written (their own era); the modern one needs none.
    assert ("LegacyCallWarning" in output) is (example.startswith("legacy_") and _translated(example)), _tail(log)


def test_fastchat_worker(tiny_model: str, tmp_path: Path) -> None:
    """A FastChat-style worker: positional engine.generate(prompt, sampling_params, request_id),
    use_beam_search/best_of in every request, NUL-delimited stream."""
    import httpx

    log = tmp_path / "legacy_fastchat_worker.log"
    params = {"prompt": "[gMASK]<sop><|user|>\n你好<|assistant|>", "temperature": 0.0, "top_p": 1.0, "top_k": -1,
              "max_new_tokens": 8, "stop": [], "use_beam_search": False, "best_of": 1, "echo": False}
    with _server("legacy_fastchat_worker.py", tiny_model, log, ready="POST /worker_get_status") as base:
        status = httpx.post(f"{base}/worker_get_status", timeout=10).json()
        assert status["model_names"] == [tiny_model]
        body = httpx.post(f"{base}/worker_generate", json=params, timeout=120).json()
        assert body["error_code"] == 0 and body["text"], body
        assert 1 <= body["usage"]["completion_tokens"] <= 8 and body["finish_reason"] in ("length", "stop")
        stream = httpx.post(f"{base}/worker_generate_stream", json=params, timeout=120)
        chunks = [json.loads(c) for c in stream.content.split(b"\0") if c]
        assert chunks and chunks[-1]["text"] == body["text"]  # greedy: the same answer
        beam = httpx.post(f"{base}/worker_generate", json={**params, "use_beam_search": True, "best_of": 2},
                          timeout=60).json()
        if _capabilities().sampling_use_beam_search:  # vLLM < 0.6.3 still has beam search: it runs
            assert beam["error_code"] == 0 and beam["text"], beam
        else:  # gone since 0.6.3: refused the worker way
            assert beam["error_code"] != 0 and "asks for beam search" in beam["text"], beam
        count = httpx.post(f"{base}/count_token", json={"prompt": "hello"}, timeout=30).json()
        assert count["count"] >= 1
    assert ("LegacyCallWarning" in log.read_text(encoding="utf-8", errors="replace")) is _translated("legacy_fastchat_worker.py"), _tail(log)


def test_llm_batch_script(tiny_model: str, tmp_path: Path) -> None:
    """LLM.generate(prompt_token_ids=...) and the positional form, as a batch job."""
    requests = [{"messages": [{"role": "user", "content": "你好"}]}, {"messages": [{"role": "user", "content": "hi"}]}]
    source, out, log = tmp_path / "in.jsonl", tmp_path / "out.jsonl", tmp_path / "batch.log"
    source.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in requests), encoding="utf-8")
    command = [sys.executable, str(ROOT / "examples" / "legacy_llm_batch.py"), "--model", tiny_model,
               "--input", str(source), "--output", str(out), "--max-tokens", "8", "--positional"]
    with log.open("wb") as sink:
        proc = subprocess.Popen(command, cwd=ROOT, env=_engine_env(), stdout=sink, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            proc.wait(timeout=READY_TIMEOUT_S + 120)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the batch script did not finish:\n{_tail(log)}")
        finally:
            _stop(proc)
    assert proc.returncode == 0, _tail(log)
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    by_form = {form: [r for r in rows if r["form"] == form] for form in ("keyword", "positional")}
    assert [r["index"] for r in by_form["keyword"]] == [0, 1] == [r["index"] for r in by_form["positional"]]
    for keyword, positional in zip(by_form["keyword"], by_form["positional"]):
        assert keyword["text"] and 1 <= len(keyword["token_ids"]) <= 8
        assert keyword["prompt_tokens"] > 3 and keyword["finish_reason"] in ("length", "stop")
        assert (keyword["text"], keyword["token_ids"]) == (positional["text"], positional["token_ids"])
    assert ("LegacyCallWarning" in log.read_text(encoding="utf-8", errors="replace")) is _translated("legacy_llm_batch.py"), _tail(log)


def _capabilities() -> Any:
    import glm_vllm_compat as gvc

    return gvc.capabilities()
