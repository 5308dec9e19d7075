"""Every GLM family over HTTP (replay engine): its prompt, thinking controls and request fields."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import openai
import pytest

from .conftest import LiveServer

USER = [{"role": "user", "content": "你好"}]
# The tail of the rendered prompt per family (generation prompt), thinking on by default.
PROMPT_TAIL = {
    "glm4": "<|user|>\n你好<|assistant|>",
    "glm45": "<|user|>\n你好<|assistant|>",
    "glm47": "<|user|>你好<|assistant|><think>",
    "glm47_flash": "<|user|>你好<|assistant|><think>",
    "glm5": "<|user|>你好<|assistant|><think>",
    "glm52": "<|user|>你好<|assistant|><think>",
    "glm53": "<|system|>Reasoning Effort: Max<|user|>你好<|assistant|><think>",
}
EFFORTS = {"glm52": "max", "glm53": "low"}


def _create(server: LiveServer, **kwargs: Any) -> Any:
    kwargs.setdefault("messages", USER)
    return server.client().chat.completions.create(model=server.state.engine.served_names[0], **kwargs)


def _prompt(server: LiveServer) -> str:
    return str(server.engine.tokenizer.decode(server.engine.requests[-1]["prompt"]["prompt_token_ids"]))


def _raw(server: LiveServer, reasoning: str, answer: str) -> str:
    if server.family == "glm4":
        return "\n" + answer
    if server.family == "glm45":
        return f"\n<think>{reasoning}</think>\n{answer}"
    return f"{reasoning}</think>{answer}"


def test_each_family_renders_its_own_prompt(server: LiveServer) -> None:
    server.engine.script(_raw(server, "想", "好"))
    message = _create(server).choices[0].message
    assert _prompt(server).endswith(PROMPT_TAIL[server.family])
    assert message.content == "好"
    assert message.model_extra.get("reasoning") == (None if server.family == "glm4" else "想")


def test_reasoning_effort_per_family(server: LiveServer) -> None:
    effort = EFFORTS.get(server.family)
    if effort is None:
        with pytest.raises(openai.BadRequestError) as info:
            _create(server, reasoning_effort="high")
        assert info.value.body["param"] == "reasoning_effort"
        assert "not a thinking control" in info.value.body["message"]
        return
    server.engine.script(_raw(server, "想", "好"))
    message = _create(server, reasoning_effort=effort).choices[0].message
    assert f"Reasoning Effort: {effort.capitalize()}" in _prompt(server)
    assert message.content == "好" and message.model_extra["reasoning"] == "想"
    with pytest.raises(openai.BadRequestError) as info:
        _create(server, reasoning_effort="medium")
    assert info.value.body["param"] == "reasoning_effort"


def test_reasoning_effort_in_chat_template_kwargs(glm53: LiveServer) -> None:
    glm53.engine.script("想</think>好")
    _create(glm53, extra_body={"chat_template_kwargs": {"reasoning_effort": "high"}})
    assert "Reasoning Effort: High" in _prompt(glm53)


def test_include_reasoning_false_hides_reasoning(server: LiveServer) -> None:
    for stream in (False, True):
        server.engine.script(_raw(server, "想", "好"))
        if not stream:
            message = _create(server, extra_body={"include_reasoning": False}).choices[0].message
            assert message.content == "好" and message.model_extra.get("reasoning") is None
        else:
            chunks = list(_create(server, stream=True, extra_body={"include_reasoning": False}))
            deltas = [c.choices[0].delta for c in chunks if c.choices]
            assert "".join(d.content or "" for d in deltas) == "好"
            assert not any((d.model_extra or {}).get("reasoning") for d in deltas)


def test_glm53_turning_thinking_off_warns_and_keeps_it_on(glm53: LiveServer, caplog: pytest.LogCaptureFixture) -> None:
    glm53.engine.script("想</think>好")
    with caplog.at_level(logging.WARNING, logger="glm_vllm_compat.server"):
        message = _create(glm53, extra_body={"chat_template_kwargs": {"enable_thinking": False}}).choices[0].message
    assert "GLM-5.3" in caplog.text and "cannot turn thinking off" in caplog.text
    assert _prompt(glm53).endswith("<|assistant|><think>")
    assert message.content == "好" and message.model_extra["reasoning"] == "想"


def test_default_chat_template_kwargs(glm5: LiveServer) -> None:
    glm5.state.default_chat_template_kwargs = {"enable_thinking": False}
    try:
        glm5.engine.script("好")
        message = _create(glm5).choices[0].message
        assert _prompt(glm5).endswith("<|assistant|></think>") and message.content == "好"
        glm5.engine.script("想</think>好")
        message = _create(glm5, extra_body={"chat_template_kwargs": {"enable_thinking": True}}).choices[0].message
        assert _prompt(glm5).endswith("<|assistant|><think>") and message.model_extra["reasoning"] == "想"
    finally:
        glm5.state.default_chat_template_kwargs = {}


def test_glm5_clear_thinking_keeps_earlier_reasoning(glm5: LiveServer) -> None:
    messages = [
        {"role": "user", "content": "q1"},
        {"role": "assistant", "content": "a1", "reasoning_content": "early"},
        {"role": "user", "content": "q2"},
    ]
    glm5.engine.script("r</think>a")
    _create(glm5, messages=messages)
    assert "early" not in _prompt(glm5)
    _create(glm5, messages=messages, extra_body={"chat_template_kwargs": {"clear_thinking": False}})
    assert "<think>early</think>a1" in _prompt(glm5)


def test_tokenize_shows_glm53_preserved_thinking(glm53: LiveServer) -> None:
    messages = [
        {"role": "user", "content": "q1"},
        {"role": "assistant", "content": "a1", "reasoning_content": "t1"},
        {"role": "user", "content": "q2"},
        {"role": "assistant", "content": "a2", "reasoning": "t2"},
        {"role": "user", "content": "q3"},
    ]
    body = {"model": glm53.state.engine.served_names[0], "messages": messages}
    response = httpx.post(glm53.url + "/tokenize", json=body, timeout=30).json()
    text = glm53.engine.tokenizer.decode(response["tokens"])
    assert text == (
        "[gMASK]<sop><|system|>Reasoning Effort: Max<|user|>q1<|assistant|><think>t1</think>a1"
        "<|user|>q2<|assistant|><think>t2</think>a2<|user|>q3<|assistant|><think>"
    )
