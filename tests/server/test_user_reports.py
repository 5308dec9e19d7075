"""Regression tests for the behaviours users reported against GLM servers
(research notes, "Reported by users"), through the pipeline and over HTTP
with the replay engine."""

from __future__ import annotations

import json
from typing import Any

import pytest

from glm_vllm_compat.server._pipeline import ChatOutputPipeline
from glm_vllm_compat.server.families import get_family
from glm_vllm_compat.server.protocol import ChatCompletionRequest, parse_request

from .conftest import LiveServer

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"location": {"type": "string"}, "days": {"type": "integer"}}},
    },
}
TIME = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}}
TOOL_12 = {"type": "function", "function": {"name": "tool_12", "parameters": {"type": "object", "properties": {}}}}
USER = [{"role": "user", "content": "北京天气？"}]


def chat(**extra: Any) -> ChatCompletionRequest:
    return parse_request(ChatCompletionRequest, {"messages": USER, "tools": [WEATHER, TIME, TOOL_12], **extra})


def pipeline(family: str, req: ChatCompletionRequest, opened: bool | None = None) -> ChatOutputPipeline:
    fam = get_family(family)
    return ChatOutputPipeline.for_request(
        req,
        tool_parser=fam.tool_parser,
        reasoning_parser=fam.reasoning_parser,
        prompt_opened_thinking=opened,
        enable_thinking=fam.thinking_on(fam.template_kwargs(req)),
    )


def run(family: str, chunks: list[str], req: ChatCompletionRequest | None = None, opened: bool | None = None) -> dict[str, Any]:
    """Feed ``chunks``; the accumulated streamed message (content, reasoning, calls)."""
    p = pipeline(family, req or chat(), opened)
    content, reasoning = [], []
    calls: dict[int, dict[str, str]] = {}
    for delta in [p.feed(c) for c in chunks] + [p.finish()]:
        if delta is None:
            continue
        content.append(delta.content or "")
        reasoning.append(delta.reasoning_content or "")
        for call in delta.tool_calls or []:
            entry = calls.setdefault(call.index, {"name": "", "arguments": ""})
            assert call.function is not None
            if call.function.name:
                assert not entry["name"], "the name is sent once, in the call's first delta"
                entry["name"] = call.function.name
            entry["arguments"] += call.function.arguments or ""
    final = p.final_message()
    return {
        "content": "".join(content),
        "reasoning": "".join(reasoning),
        "calls": [(c["name"], c["arguments"]) for _, c in sorted(calls.items())],
        "final": final,
    }


def whole(family: str, raw: str, req: ChatCompletionRequest | None = None, opened: bool | None = None) -> dict[str, Any]:
    return run(family, [raw], req, opened)


def split(raw: str, size: int) -> list[str]:
    return [raw[i : i + size] for i in range(0, len(raw), size)]


# 1. zero-argument inline call while streaming (vllm#44326)
@pytest.mark.parametrize("family", ["glm47", "glm47_flash", "glm5", "glm52", "glm53"])
@pytest.mark.parametrize("size", [1, 2, 3, 5, 50])
def test_zero_argument_inline_call_streams(family: str, size: int) -> None:
    raw = "想一下</think><tool_call>get_time</tool_call>"
    out = run(family, split(raw, size), opened=True)
    assert out["calls"] == [("get_time", "{}")]
    assert out["content"] == "" and out["reasoning"] == "想一下"


# 2./3. several tokens per delta: call end and closing tags together; names never truncated
# (vllm#34449, #35208, #36410, #39757)
RAW_47 = "r</think><tool_call>get_weather<arg_key>location</arg_key><arg_value>北京</arg_value><arg_key>days</arg_key><arg_value>3</arg_value></tool_call><tool_call>get_time</tool_call>"
RAW_45 = "\n<think>r</think>\n<tool_call>get_weather\n<arg_key>location</arg_key>\n<arg_value>北京</arg_value>\n<arg_key>days</arg_key>\n<arg_value>3</arg_value>\n</tool_call>"


@pytest.mark.parametrize(("family", "raw"), [("glm47", RAW_47), ("glm53", RAW_47), ("glm45", RAW_45)])
@pytest.mark.parametrize("size", [1, 2, 3, 4, 7, 11, 16, 29, 1000])
def test_multi_token_deltas_join_to_the_non_streamed_arguments(family: str, raw: str, size: int) -> None:
    reference = whole(family, raw)
    streamed = run(family, split(raw, size))
    assert streamed["calls"] == [(c.function.name, c.function.arguments) for c in reference["final"].tool_calls]
    assert json.loads(streamed["calls"][0][1]) == {"location": "北京", "days": 3}
    assert streamed["content"] == reference["content"] == ""


def test_call_end_and_closing_tags_in_one_delta() -> None:
    chunks = ["r</think><tool_call>get_weather<arg_key>location</arg_key><arg_value>北", "京</arg_value></tool_call>"]
    assert run("glm53", chunks)["calls"] == [("get_weather", '{"location": "北京"}')]


# 4. <tool_call> before </think> (vllm#42400, #46040)
@pytest.mark.parametrize(
    ("family", "raw", "reasoning"),
    [
        ("glm47", "查天气<tool_call>get_weather<arg_key>location</arg_key><arg_value>北京</arg_value></tool_call>", "查天气"),
        ("glm53", "查天气\n<tool_call>get_weather<arg_key>location</arg_key><arg_value>北京</arg_value></tool_call>", "查天气\n"),
        ("glm45", "\n<think>查天气<tool_call>get_weather\n<arg_key>location</arg_key>\n<arg_value>北京</arg_value>\n</tool_call>", "查天气"),
    ],
)
@pytest.mark.parametrize("size", [1, 4, 1000])
def test_tool_call_before_think_end_is_a_call(family: str, raw: str, reasoning: str, size: int) -> None:
    out = run(family, split(raw, size))
    assert out["calls"] == [("get_weather", '{"location": "北京"}')]
    assert out["reasoning"] == reasoning and out["content"] == ""


def test_tool_call_tag_in_reasoning_without_tools_stays_reasoning() -> None:
    req = parse_request(ChatCompletionRequest, {"messages": USER})
    out = whole("glm47", "the <tool_call> tag</think>answer", req)
    assert out["reasoning"] == "the <tool_call> tag" and out["content"] == "answer"


# 6. thinking off -> no answer in reasoning; thinking on without tags -> content (sglang#37645)
@pytest.mark.parametrize("family", ["glm45", "glm47", "glm5"])
def test_thinking_off_answer_is_content(family: str) -> None:
    req = chat(chat_template_kwargs={"enable_thinking": False})
    out = whole(family, "\n北京晴。" if family == "glm45" else "北京晴。", req, opened=False)
    assert out["content"] == "北京晴。" and out["reasoning"] == ""


@pytest.mark.parametrize("size", [1, 3, 1000])
def test_thinking_on_without_think_tags_answer_is_content(size: int) -> None:
    out = run("glm45", split("\n北京晴，25度。", size), chat(), opened=False)
    assert out["content"] == "北京晴，25度。" and out["reasoning"] == ""


# 10. malformed calls seen in the wild (vllm#47190): text or a partial call, never a wrong name
@pytest.mark.parametrize("family", ["glm45", "glm47", "glm53"])
@pytest.mark.parametrize(
    "raw",
    [
        "<tool_call>location</arg_key><arg_value>北京</arg_value></tool_call>",
        "<tool_call>get_weatherlocation</arg_key><arg_value>北京</arg_value></tool_call>",
        "<tool_call>tool_12</arg_value>",
        "<tool_call>tool_12</arg_value></tool_call>",
        "<tool_call>get_weather</arg_key><arg_value>北京</arg_value></tool_call>",
        "<tool_call>get_weather\nlocation</arg_key>\n<arg_value>北京</arg_value>\n</tool_call>",
    ],
)
@pytest.mark.parametrize("size", [1, 1000])
def test_malformed_calls_never_get_a_wrong_name(family: str, raw: str, size: int) -> None:
    req = chat(chat_template_kwargs={"enable_thinking": False})
    out = run(family, split(raw, size), req, opened=False)
    declared = {"get_weather", "get_time", "tool_12"}
    for name, arguments in out["calls"]:
        assert name in declared and raw.startswith(f"<tool_call>{name}")
        json.loads(arguments)
    if not out["calls"]:
        assert out["content"] == raw  # all of it comes back as text
    else:  # stray tags inside the call come back as text, nothing is lost
        assert "北京" in out["content"] or "</arg_value>" in out["content"]


# --- over HTTP with the replay engine -------------------------------------------------------------------


def _prompt(server: LiveServer) -> str:
    ids = server.engine.requests[-1]["prompt"]["prompt_token_ids"]
    return str(server.engine.tokenizer.decode(ids))


def _create(server: LiveServer, **kwargs: Any) -> Any:
    kwargs.setdefault("messages", USER)
    return server.client().chat.completions.create(model=server.state.engine.served_names[0], **kwargs)


FORCED = {  # raw output after the forced opening of a named call of get_weather
    "glm4": '{"location": "北京"}',
    "glm45": "<arg_key>location</arg_key>\n<arg_value>北京</arg_value>\n</tool_call>",
}


# 7. a forced call (required / named) is parsed, never left in content (vllm#48095)
def test_named_tool_choice_is_parsed_for_every_family(server: LiveServer) -> None:
    raw = FORCED.get(server.family, "<arg_key>location</arg_key><arg_value>北京</arg_value></tool_call>")
    for stream in (False, True):
        server.engine.script(raw)
        choice = {"type": "function", "function": {"name": "get_weather"}}
        if not stream:
            message = _create(server, tools=[WEATHER, TIME], tool_choice=choice).choices[0].message
            assert message.content is None
            assert [(c.function.name, json.loads(c.function.arguments)) for c in message.tool_calls] == [("get_weather", {"location": "北京"})]
        else:
            chunks = list(_create(server, tools=[WEATHER, TIME], tool_choice=choice, stream=True))
            content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
            args = "".join(
                t.function.arguments or "" for c in chunks if c.choices for t in c.choices[0].delta.tool_calls or []
            )
            assert content == "" and json.loads(args) == {"location": "北京"}
            assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_required_tool_choice_is_parsed_and_constrained(server: LiveServer) -> None:
    if server.family == "glm4":
        raw = 'get_weather\n{"location": "北京"}'
    elif server.family == "glm45":
        raw = "\n<think>r</think>\n<tool_call>get_weather\n<arg_key>location</arg_key>\n<arg_value>北京</arg_value>\n</tool_call>"
    else:
        raw = "r</think><tool_call>get_weather<arg_key>location</arg_key><arg_value>北京</arg_value></tool_call>"
    server.engine.script(raw)
    message = _create(server, tools=[WEATHER, TIME], tool_choice="required").choices[0].message
    assert message.content is None and message.tool_calls[0].function.name == "get_weather"
    sampling = server.engine.requests[-1]["sampling_params"]
    so = getattr(sampling, "structured_outputs", None)
    import re

    assert so is not None and re.fullmatch(so.regex, raw.lstrip("\n") if server.family == "glm45" else raw)


# 5. reasoning never leaks into content from the third tool turn on (vllm#27703)
def _tool_turn(i: int) -> list[dict[str, Any]]:
    call = {"id": f"call_{i}", "type": "function", "function": {"name": "get_weather", "arguments": json.dumps({"location": f"城市{i}"})}}
    return [
        {"role": "assistant", "content": None, "reasoning_content": f"想{i}", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": f"call_{i}", "content": f"晴{i}"},
    ]


def test_third_tool_turn_keeps_reasoning_out_of_content(server: LiveServer) -> None:
    messages = USER + _tool_turn(1) + _tool_turn(2) + _tool_turn(3)
    raw = {"glm4": "\n三个城市都晴。", "glm45": "\n<think>总结一下</think>\n三个城市都晴。"}.get(server.family, "总结一下</think>三个城市都晴。")
    server.engine.script(raw)
    message = _create(server, messages=messages, tools=[WEATHER]).choices[0].message
    assert message.content == "三个城市都晴。"
    reasoning = None if server.family == "glm4" else "总结一下"  # GLM-4 has no reasoning
    assert message.model_extra.get("reasoning_content") == message.model_extra.get("reasoning") == reasoning
    prompt = _prompt(server)
    assert all(f"晴{i}" in prompt for i in (1, 2, 3))


# 8. request-history reasoning is rendered, under either name (vllm#38488)
def test_history_reasoning_reaches_the_prompt(glm53: LiveServer) -> None:
    messages = [
        {"role": "user", "content": "q1"},
        {"role": "assistant", "content": "a1", "reasoning_content": "first-thought"},
        {"role": "user", "content": "q2"},
        {"role": "assistant", "content": "a2", "reasoning": "second-thought"},
        {"role": "user", "content": "q3"},
    ]
    glm53.engine.script("r</think>a3")
    _create(glm53, messages=messages)
    prompt = _prompt(glm53)
    assert "<think>first-thought</think>a1" in prompt and "<think>second-thought</think>a2" in prompt


# 12. thinking_token_budget bounds thinking (vllm#48201): passed on, or a clear 400
def test_thinking_token_budget_is_passed_on(glm53: LiveServer) -> None:
    import openai

    from glm_vllm_compat._live import live

    if not live().caps.thinking_token_budget:
        pytest.skip("the installed vLLM has no thinking_token_budget")
    with pytest.raises(openai.BadRequestError) as info:  # vLLM would refuse it without its reasoning config
        _create(glm53, extra_body={"thinking_token_budget": 64})
    assert info.value.body["param"] == "thinking_token_budget" and "reasoning config" in info.value.body["message"]
    glm53.state.engine.thinking_budget_ready = True
    try:
        glm53.engine.script("r</think>a")
        _create(glm53, extra_body={"thinking_token_budget": 64})
        assert glm53.engine.requests[-1]["sampling_params"].thinking_token_budget == 64
        _create(glm53, extra_body={"thinking_token_budget": -1})  # unlimited: nothing to pass
        assert glm53.engine.requests[-1]["sampling_params"].thinking_token_budget is None
    finally:
        glm53.state.engine.thinking_budget_ready = False
    with pytest.raises(openai.BadRequestError):
        _create(glm53, extra_body={"thinking_token_budget": -2})


def test_thinking_token_budget_unsupported_is_a_400(glm53: LiveServer, monkeypatch: pytest.MonkeyPatch) -> None:
    import types

    import openai

    from glm_vllm_compat._live import live
    from glm_vllm_compat.server import _chat

    real = live()
    fake = types.SimpleNamespace(caps=real.caps.replace(thinking_token_budget=False), info=real.info)
    monkeypatch.setattr(_chat, "live", lambda: fake)
    with pytest.raises(openai.BadRequestError) as info:
        _create(glm53, extra_body={"thinking_token_budget": 64})
    assert "thinking_token_budget" in str(info.value) and ">=0.19.0" in str(info.value)
    assert info.value.status_code == 400
