"""Streaming equals non-streaming for any chunking, per GLM family (issue 10, item 4).

Generated raw outputs (text around calls, calls with and without arguments,
malformed calls, reasoning, forced and named ``tool_choice``) go through the
public :class:`ChatOutputPipeline` twice: whole (the non-streamed response) and
split into deltas (random cuts, one character at a time, and cuts on both sides
of every tag). What a client assembles from the deltas - content, reasoning,
tool calls (name + concatenated arguments) and ``finish_reason`` - must equal
the non-streamed message.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from glm_vllm_compat.server._pipeline import ChatOutputPipeline
from glm_vllm_compat.server.protocol import ChatCompletionRequest

EXAMPLES = 1000
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"location": {"type": "string"}, "days": {"type": "integer"}, "units": {"type": ["string", "null"]}}},
    },
}
PING = {"type": "function", "function": {"name": "ping", "parameters": {"type": "object", "properties": {}}}}
TAGS = ("<tool_call>", "</tool_call>", "<arg_key>", "</arg_key>", "<arg_value>", "</arg_value>", "<think>", "</think>")
FAMILIES = {"glm4": "none", "glm45": "glm45", "glm47": "glm47"}

# Text with the characters that matter: spaces, newlines, tag starts, quotes, Chinese.
_words = st.lists(st.sampled_from(list("ab 北京\n<>/\"{}:,_") + ["  ", "\n\n", " big "]), max_size=6).map("".join)


@st.composite
def _glm45_call(draw: Any, family: str) -> str:
    sep = "\n" if family == "glm45" else ""
    name = draw(st.sampled_from(["get_weather", "ping", "unknown_tool", "", "get_weath"]))
    out = f"<tool_call>{name}{sep}"
    for _ in range(draw(st.integers(0, 2))):
        kind = draw(st.sampled_from(["pair", "pair", "key_only", "junk", "open_value"]))
        key = draw(st.sampled_from(["location", "days", "units", "other", ""]))
        value = draw(st.sampled_from(["北京", " hello big world ", "3", "null", '{"a": 1}', "x<y", ""]))
        if kind == "pair":
            out += f"<arg_key>{key}</arg_key>{sep}<arg_value>{value}</arg_value>{sep}"
        elif kind == "key_only":
            out += f"<arg_key>{key}</arg_key>{sep}"
        elif kind == "junk":
            out += draw(_words)
        else:
            out += f"<arg_key>{key}</arg_key>{sep}<arg_value>{value}"
    out += draw(st.sampled_from(["</tool_call>", "</tool_call>", "</tool_", ""]))
    return out


@st.composite
def _glm4_call(draw: Any) -> str:
    name = draw(st.sampled_from(["get_weather", "ping", "unknown_tool"]))
    args = draw(st.sampled_from([{}, {"location": "北京"}, {"location": "a b", "days": 3}]))
    body = json.dumps(args, ensure_ascii=False)
    return f"{name}\n" + draw(st.sampled_from([body, body[:-1], "not json", " " + body + "\n"]))


@dataclass
class Case:
    family: str
    text: str
    request: ChatCompletionRequest
    opened: bool


@st.composite
def cases(draw: Any, family: str) -> Case:
    choice = draw(st.sampled_from(["auto", "auto", "named", "required", "none", "no_tools"]))
    thinking = draw(st.booleans())
    body: dict[str, Any] = {"messages": [{"role": "user", "content": "hi"}], "chat_template_kwargs": {"enable_thinking": thinking}}
    if choice != "no_tools":
        body["tools"] = [WEATHER, PING]
        body["tool_choice"] = {"type": "function", "function": {"name": "get_weather"}} if choice == "named" else choice
        body["parallel_tool_calls"] = draw(st.booleans())
    request = ChatCompletionRequest.model_validate(body)
    opened = family == "glm47" and draw(st.booleans())
    parts: list[str] = []
    if family == "glm4":
        head = "get_weather\n" if choice == "named" else draw(st.sampled_from(["\n", "", " "]))
        parts.append(head)
        parts.append(draw(_glm4_call()) if draw(st.booleans()) and choice != "named" else draw(_words))
    else:
        if choice == "named":
            parts.append(("</think>" if opened else "") + ("<tool_call>get_weather\n" if family == "glm45" else "<tool_call>get_weather"))
        elif family == "glm45":
            parts.append(draw(st.sampled_from(["\n", "", "\n<think>", "<think>"])))
        for _ in range(draw(st.integers(1, 4))):
            kind = draw(st.sampled_from(["text", "call", "call", "think", "tag"]))
            if kind == "text":
                parts.append(draw(_words))
            elif kind == "call":
                parts.append(draw(_glm45_call(family)))
            elif kind == "think":
                parts.append(draw(st.sampled_from(["</think>", "</think>\n", "<think>", "<think>r</think>"])))
            else:
                parts.append(draw(st.sampled_from(TAGS)))
    return Case(family, "".join(parts), request, opened)


def _pipeline(case: Case) -> ChatOutputPipeline:
    return ChatOutputPipeline.for_request(
        case.request,
        tool_parser=case.family if case.request.tools_enabled else None,
        reasoning_parser=FAMILIES[case.family],
        prompt_opened_thinking=case.opened if case.family == "glm47" else None,
    )


def _whole(case: Case, engine_reason: str) -> dict[str, Any]:
    pipeline = _pipeline(case)
    pipeline.feed(case.text)
    pipeline.finish()
    message = pipeline.final_message()
    calls = [(c.function.name, c.function.arguments) for c in message.tool_calls or []]
    return {"content": pipeline.content, "reasoning": pipeline.reasoning, "calls": calls, "finish": pipeline.finish_reason(engine_reason)}


def _streamed(case: Case, deltas: list[str], engine_reason: str) -> dict[str, Any]:
    """Assembled the way a client does it: from the DeltaMessages only."""
    pipeline = _pipeline(case)
    messages = [pipeline.feed(d) for d in deltas if d] + [pipeline.finish()]
    content, reasoning = [], []
    calls: dict[int, list[str]] = {}
    for message in messages:
        if message is None:
            continue
        content.append(message.content or "")
        reasoning.append(message.reasoning_content or "")
        assert message.reasoning == message.reasoning_content
        for call in message.tool_calls or []:
            assert call.function is not None
            if call.id is not None:
                assert call.index not in calls, "a call started twice"
                calls[call.index] = [call.function.name or "", ""]
            calls[call.index][1] += call.function.arguments or ""
    for _, arguments in calls.values():
        json.loads(arguments)  # always valid JSON, even for a call cut short
    return {
        "content": "".join(content),
        "reasoning": "".join(reasoning),
        "calls": [tuple(calls[i]) for i in sorted(calls)],
        "finish": pipeline.finish_reason(engine_reason),
    }


def _tag_cuts(text: str) -> list[int]:
    cuts = set()
    for tag in TAGS:
        start = text.find(tag)
        while start >= 0:
            cuts.update({start, start + 1, start + len(tag) // 2, start + len(tag) - 1, start + len(tag)})
            start = text.find(tag, start + 1)
    return sorted(c for c in cuts if 0 < c < len(text))


def _split(text: str, cuts: list[int]) -> list[str]:
    points = [0, *sorted(set(c for c in cuts if 0 < c < len(text))), len(text)]
    return [text[a:b] for a, b in zip(points, points[1:])]


def _check(case: Case, cuts: list[int], engine_reason: str) -> None:
    expected = _whole(case, engine_reason)
    for deltas in (_split(case.text, cuts), list(case.text), _split(case.text, _tag_cuts(case.text))):
        assert _streamed(case, deltas, engine_reason) == expected, (case.text, deltas)


@pytest.mark.parametrize("family", sorted(FAMILIES))
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_streamed_equals_non_streamed(family: str, data: Any) -> None:
    case = data.draw(cases(family))
    cuts = data.draw(st.lists(st.integers(0, max(len(case.text), 1)), max_size=12))
    _check(case, cuts, data.draw(st.sampled_from(["stop", "length"])))


RECORDED = [
    ("glm45", "auto", "\n<think>用户想知道天气</think>\n我来查一下。\n<tool_call>get_weather\n<arg_key>location</arg_key>\n<arg_value>北京</arg_value>\n<arg_key>days</arg_key>\n<arg_value>3</arg_value>\n</tool_call>"),
    ("glm45", "named", "<tool_call>get_weather\nhello big world<arg_key>location</arg_key>\n<arg_value>a b</arg_value>\n</tool_call>"),
    ("glm47", "auto", "<think>思考</think>好的<tool_call>get_weather<arg_key>location</arg_key><arg_value>上海</arg_value></tool_call><tool_call>ping</tool_call>"),
    ("glm4", "auto", "get_weather\n{\"location\": \"北京\"}"),
    ("glm4", "auto", "\n北京今天晴。"),
]


@pytest.mark.parametrize(("family", "choice", "text"), RECORDED)
def test_recorded_outputs_stream_like_they_parse(family: str, choice: str, text: str) -> None:
    body: dict[str, Any] = {"messages": [{"role": "user", "content": "hi"}], "tools": [WEATHER, PING]}
    body["tool_choice"] = {"type": "function", "function": {"name": "get_weather"}} if choice == "named" else choice
    case = Case(family, text, ChatCompletionRequest.model_validate(body), family == "glm47")
    _check(case, list(range(0, len(text), 3)), "stop")


def test_named_call_keeps_spaces_in_stray_text() -> None:
    """The reported bug: "hello big world" streamed inside an open GLM-4.5 call became "hellobigworld"."""
    text = RECORDED[1][2]
    body = {"messages": [{"role": "user", "content": "hi"}], "tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "get_weather"}}}
    case = Case("glm45", text, ChatCompletionRequest.model_validate(body), False)
    assert _streamed(case, list(text), "stop")["content"] == "hello big world"
