"""``/v1/responses`` end to end over real HTTP with the official openai SDK (and the OpenAI Agents
SDK), on the replay engine, for every GLM family."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import httpx
import openai
import pytest

from .conftest import LiveServer, start_server

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "查询天气",
    "parameters": {"type": "object", "properties": {"location": {"type": "string"}, "days": {"type": "integer"}}, "required": ["location"]},
}
TIME = {"type": "function", "name": "get_time", "parameters": {"type": "object", "properties": {}}}
CHAT_WEATHER = {"type": "function", "function": {k: v for k, v in WEATHER.items() if k != "type"}}

# Raw model outputs per output format (tool-call parser name).
CALLS = {
    "glm4": 'get_weather\n{"location": "北京", "days": 3}',
    "glm45": "\n<think>用户想查北京天气</think>\n<tool_call>get_weather\n<arg_key>location</arg_key>\n<arg_value>北京</arg_value>\n<arg_key>days</arg_key>\n<arg_value>3</arg_value>\n</tool_call>",
    "glm47": "用户想查北京天气</think><tool_call>get_weather<arg_key>location</arg_key><arg_value>北京</arg_value><arg_key>days</arg_key><arg_value>3</arg_value></tool_call>",
}
PLAIN = {"glm4": "\n你好！我是GLM。", "glm45": "\n<think>打个招呼</think>\n你好！我是GLM。", "glm47": "打个招呼</think>你好！我是GLM。"}


def _thinks(server: LiveServer) -> bool:
    return server.state.reasoning_parser != "none"

QUESTION = "北京天气怎么样？"


def _create(server: LiveServer, **kwargs: Any) -> Any:
    body: dict[str, Any] = {"model": server.state.engine.served_names[0], "input": QUESTION, **kwargs}
    return server.client().responses.create(**body)


def _prompt_ids(server: LiveServer) -> list[int]:
    return list(server.engine.requests[-1]["prompt"]["prompt_token_ids"])


def _prompt(server: LiveServer) -> str:
    return str(server.state.engine.decode(_prompt_ids(server)))


def _items(response: Any) -> list[tuple[Any, ...]]:
    """Output items without their random ids."""
    out: list[tuple[Any, ...]] = []
    for item in response.output:
        if item.type == "reasoning":
            out.append(("reasoning", [c.text for c in item.content or []], item.summary))
        elif item.type == "message":
            out.append(("message", item.role, [(c.type, c.text) for c in item.content], item.status))
        else:
            out.append(("function_call", item.call_id[:5], item.name, item.arguments, item.status))
    return out


def test_plain_answer_with_a_reasoning_item(server: LiveServer) -> None:
    server.engine.script(PLAIN[server.state.tool_parser])
    response = _create(server)
    reasoning = [("reasoning", ["打个招呼"], [])] if _thinks(server) else []
    assert _items(response) == [*reasoning, ("message", "assistant", [("output_text", "你好！我是GLM。")], "completed")]
    assert response.output_text == "你好！我是GLM。"
    assert response.status == "completed" and response.object == "response" and response.id.startswith("resp_")
    assert response.usage.output_tokens == len(PLAIN[server.state.tool_parser])
    assert response.usage.input_tokens == len(_prompt_ids(server))
    assert response.usage.output_tokens_details.reasoning_tokens == (len(server.state.engine.encode("打个招呼")) if _thinks(server) else 0)


def test_function_call(server: LiveServer) -> None:
    server.engine.script(CALLS[server.state.tool_parser])
    response = _create(server, tools=[WEATHER, TIME])
    call = response.output[-1]
    assert (call.type, call.name, json.loads(call.arguments)) == ("function_call", "get_weather", {"location": "北京", "days": 3})
    assert call.call_id.startswith("call_") and call.id.startswith("fc_") and call.status == "completed"
    assert [i.type for i in response.output] == (["reasoning", "function_call"] if _thinks(server) else ["function_call"])


def _chat_prompt_ids(server: LiveServer, messages: list[dict[str, Any]], **body: Any) -> list[int]:
    httpx.post(server.url + "/v1/chat/completions", json={"messages": messages, **body}, timeout=30).raise_for_status()
    return _prompt_ids(server)


def test_tool_round_trip_renders_like_the_chat_api(server: LiveServer) -> None:
    server.engine.script(CALLS[server.state.tool_parser])
    first = _create(server, tools=[WEATHER], instructions="你是天气助手", store=False)
    call = first.output[-1]
    items = [{"role": "user", "content": QUESTION}, *[i.model_dump(exclude_none=True) for i in first.output]]
    items.append({"type": "function_call_output", "call_id": call.call_id, "output": "晴，25度"})
    server.engine.script(PLAIN[server.state.tool_parser])
    final = _create(server, tools=[WEATHER], instructions="你是天气助手", input=items)
    assert final.output_text == "你好！我是GLM。"
    ids = _prompt_ids(server)
    assert "晴，25度" in _prompt(server) and "<|observation|>" in _prompt(server)
    assistant: dict[str, Any] = {"role": "assistant", "content": "", "tool_calls": [{"id": call.call_id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}]}
    if _thinks(server):
        assistant["reasoning_content"] = "用户想查北京天气"
    messages = [{"role": "system", "content": "你是天气助手"}, {"role": "user", "content": QUESTION}, assistant, {"role": "tool", "tool_call_id": call.call_id, "content": "晴，25度"}]
    assert _chat_prompt_ids(server, messages, tools=[CHAT_WEATHER]) == ids


def test_previous_response_id_continues_the_conversation(glm45: LiveServer) -> None:
    glm45.engine.script(CALLS["glm45"])
    first = _create(glm45, tools=[WEATHER])
    output = {"type": "function_call_output", "call_id": first.output[-1].call_id, "output": "晴"}
    glm45.engine.script(PLAIN["glm45"])
    second = _create(glm45, tools=[WEATHER], input=[output], previous_response_id=first.id)
    assert second.previous_response_id == first.id and second.output_text == "你好！我是GLM。"
    chained = _prompt_ids(glm45)
    full = [{"role": "user", "content": QUESTION}, *[i.model_dump(exclude_none=True) for i in first.output], output]
    glm45.engine.script(PLAIN["glm45"])
    _create(glm45, tools=[WEATHER], input=full, store=False)
    assert _prompt_ids(glm45) == chained
    glm45.engine.script(PLAIN["glm45"])
    third = _create(glm45, input="再见", previous_response_id=second.id)
    assert third.status == "completed" and "晴" in _prompt(glm45) and "再见" in _prompt(glm45)


def test_previous_response_id_unknown_or_not_stored_is_a_400(glm45: LiveServer) -> None:
    glm45.engine.script(PLAIN["glm45"])
    unstored = _create(glm45, store=False)
    for previous in (unstored.id, "resp_nope", ""):  # "" is an id like any other: not found, never ignored
        with pytest.raises(openai.BadRequestError) as info:
            _create(glm45, previous_response_id=previous)
        assert info.value.body["param"] == "previous_response_id" and previous in info.value.body["message"]


def test_store_is_bounded(glm45: LiveServer) -> None:
    from glm_vllm_compat.server._responses import ResponseStore, _Turn

    store = ResponseStore(size=2)
    for i in range(3):
        store.put(f"r{i}", _Turn(f"r{i - 1}" if i else None, [{"role": "user", "content": str(i)}]))
    with pytest.raises(Exception, match="'r0' not found"):
        store.history("r2")
    store.put("r0", _Turn(None, [{"role": "user", "content": "0"}]))
    assert [i["content"] for i in store.history("r0")] == ["0"]


def _streamed(server: LiveServer, **kwargs: Any) -> tuple[Any, list[Any]]:
    body: dict[str, Any] = {"model": server.state.engine.served_names[0], "input": QUESTION, **kwargs}
    with server.client().responses.stream(**body) as stream:
        events = list(stream)
        return stream.get_final_response(), events


@pytest.mark.parametrize("raw_kind", ["call", "plain"])
def test_stream_assembles_to_the_non_streamed_response(server: LiveServer, raw_kind: str) -> None:
    raw = CALLS[server.state.tool_parser] if raw_kind == "call" else PLAIN[server.state.tool_parser]
    server.engine.script(raw)
    full = _create(server, tools=[WEATHER])
    server.engine.script(raw)
    streamed, events = _streamed(server, tools=[WEATHER])
    assert _items(streamed) == _items(full)
    assert streamed.usage.model_dump() == full.usage.model_dump() and streamed.status == full.status
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == full.output_text
    args = "".join(e.delta for e in events if e.type == "response.function_call_arguments.delta")
    assert args == "".join(i.arguments for i in full.output if i.type == "function_call")
    reasoning = "".join(e.delta for e in events if e.type == "response.reasoning_text.delta")
    assert reasoning == "".join(c.text for i in full.output if i.type == "reasoning" for c in i.content)
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert events[0].type == "response.created" and events[-1].type == "response.completed"


def test_reasoning_effort_none_switches_thinking_off(glm47: LiveServer) -> None:
    glm47.engine.script("好的")
    response = _create(glm47, reasoning={"effort": "none"})
    assert _items(response) == [("message", "assistant", [("output_text", "好的")], "completed")]
    assert _prompt(glm47).endswith("</think>")


@pytest.mark.parametrize(("level", "effort"), [("minimal", "Low"), ("low", "Low"), ("medium", "High"), ("high", "High"), ("xhigh", "Max")])
def test_reasoning_effort_levels_reach_glm53s_reasoning_effort(glm53: LiveServer, level: str, effort: str) -> None:
    glm53.engine.script("想</think>好")
    _create(glm53, reasoning={"effort": level})
    assert f"<|system|>Reasoning Effort: {effort}<|user|>" in _prompt(glm53)


def test_max_output_tokens_makes_an_incomplete_response(glm45: LiveServer) -> None:
    glm45.engine.script(["\n<think>", "很长", "很长的", "思考", "</think>"])
    response = _create(glm45, max_output_tokens=3)
    assert response.status == "incomplete" and response.incomplete_details.reason == "max_output_tokens"
    assert glm45.engine.requests[-1]["sampling_params"].max_tokens == 3
    glm45.engine.script(["\n<think>", "很长", "很长的", "思考", "</think>"])
    body = {"model": "glm-test-glm45", "input": QUESTION, "max_output_tokens": 3}
    with glm45.client().responses.create(stream=True, **body) as stream:
        kinds = [event.type for event in stream]
    assert kinds[-1] == "response.incomplete"


def test_tool_choice_variants(glm45: LiveServer) -> None:
    glm45.engine.script("<arg_key>location</arg_key>\n<arg_value>上海</arg_value>\n</tool_call>")
    response = _create(glm45, tools=[WEATHER, TIME], tool_choice={"type": "function", "name": "get_weather"})
    assert json.loads(response.output[-1].arguments) == {"location": "上海"}
    assert _prompt(glm45).endswith("<tool_call>get_weather\n")
    glm45.engine.script(CALLS["glm45"])
    _create(glm45, tools=[WEATHER, TIME], tool_choice="required")
    sp = glm45.engine.requests[-1]["sampling_params"]
    assert "get_weather|get_time" in (getattr(sp, "structured_outputs", None) or sp.guided_decoding).regex
    glm45.engine.script("\n好的")
    _create(glm45, tools=[WEATHER], tool_choice="none")
    assert "get_weather" not in _prompt(glm45)
    glm45.engine.script("<tool_call>get_time\n</tool_call>" + CALLS["glm45"])
    response = _create(glm45, tools=[WEATHER, TIME], parallel_tool_calls=False)
    assert [i.name for i in response.output if i.type == "function_call"] == ["get_time"]


def test_instructions_sampling_and_text_format_reach_the_engine(glm45: LiveServer) -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    glm45.engine.script('\n{"city": "北京"}')
    response = _create(glm45, instructions="只输出JSON", temperature=0.3, top_p=0.9, max_output_tokens=50, text={"format": {"type": "json_schema", "name": "c", "schema": schema}})
    assert response.output_text == '{"city": "北京"}'
    sp = glm45.engine.requests[-1]["sampling_params"]
    assert (sp.temperature, sp.top_p, sp.max_tokens) == (0.3, 0.9, 50)
    assert (getattr(sp, "structured_outputs", None) or sp.guided_decoding).json == schema
    assert "只输出JSON" in _prompt(glm45)


def test_structured_outputs_extension(glm45: LiveServer) -> None:
    glm45.engine.script("\n晴")
    _create(glm45, extra_body={"structured_outputs": {"regex": "晴|雨"}})
    sp = glm45.engine.requests[-1]["sampling_params"]
    assert (getattr(sp, "structured_outputs", None) or sp.guided_decoding).regex == "晴|雨"


def _error(server: LiveServer, body: dict[str, Any]) -> tuple[int, Any]:
    response = httpx.post(server.url + "/v1/responses", json=body, timeout=30)
    return response.status_code, response.json()


BAD = [
    ({}, "input"),
    ({"input": []}, "input"),
    ({"input": QUESTION, "tools": [{"type": "web_search"}]}, "hosted tool"),
    ({"input": QUESTION, "tools": [CHAT_WEATHER]}, "flat function tools"),
    ({"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "x"}]}]}, "input_image"),
    ({"input": [{"type": "item_reference", "id": "x"}]}, "item_reference"),
    ({"input": QUESTION, "frobnicate": 1}, "frobnicate"),
    ({"input": QUESTION, "include": ["message.output_text.logprobs"]}, "include"),
    ({"input": QUESTION, "truncation": "auto"}, "truncation"),
    ({"input": QUESTION, "background": True}, "background"),
    ({"input": QUESTION, "top_logprobs": 2}, "logprobs"),
    ({"input": QUESTION, "text": {"verbosity": "low"}}, "verbosity"),
    ({"input": QUESTION, "max_output_tokens": 0}, "max_output_tokens"),
    ({"input": QUESTION, "tool_choice": "required"}, "needs tools"),
    ({"input": QUESTION, "tools": [WEATHER], "tool_choice": {"type": "function", "name": "nope"}}, "nope"),
    ({"input": QUESTION, "reasoning": {"effort": "extreme"}}, "effort"),
    ({"input": [{"type": "function_call", "call_id": "c", "name": "f", "arguments": "not json"}]}, "arguments"),
    ({"input": "长" * 2000}, "context length"),
]


@pytest.mark.parametrize(("body", "needle"), BAD, ids=[str(i) for i in range(len(BAD))])
def test_bad_input_is_an_openai_400(glm45: LiveServer, body: dict[str, Any], needle: str) -> None:
    status, error = _error(glm45, {"model": "glm-test-glm45", **body})
    assert status == 400, error
    assert set(error["error"]) == {"message", "type", "param", "code"} and error["error"]["type"] == "invalid_request_error"
    assert needle in error["error"]["message"]


def test_bad_part_names_its_place(glm45: LiveServer) -> None:
    body = {"input": [{"role": "user", "content": "x"}, {"role": "user", "content": [{"type": "input_text", "text": "a"}, {"type": "input_file", "file_id": "f"}]}]}
    assert _error(glm45, body)[1]["error"]["param"] == "input[1].content[1].type"


def test_unknown_model_lone_surrogate_and_bad_json(glm45: LiveServer) -> None:
    with pytest.raises(openai.NotFoundError):
        glm45.client().responses.create(model="gpt-nope", input="x")
    raw = b'{"input": "a\\ud800b"}'
    for body in (raw, b"{oops", b"[]"):
        response = httpx.post(glm45.url + "/v1/responses", content=body, headers={"content-type": "application/json"}, timeout=30)
        assert response.status_code == 400 and response.json()["error"]["type"] == "invalid_request_error", response.text


def test_engine_failure_mid_stream_is_an_error_event(glm45: LiveServer) -> None:
    glm45.engine.script("\n你好", error=RuntimeError("engine exploded"))
    with glm45.client().responses.create(model="glm-test-glm45", input=QUESTION, stream=True) as stream:
        events = list(stream)
    assert events[0].type == "response.created"
    assert [e.type for e in events[-2:]] == ["error", "response.failed"]
    assert events[-1].response.status == "failed" and events[-1].response.error.code == "internal_error"
    glm45.engine.script("\n你好", error=RuntimeError("engine exploded"))
    with pytest.raises(openai.InternalServerError):
        _create(glm45)


def test_disconnect_aborts_the_engine_request(tokenizers: dict[str, Any]) -> None:
    import time

    for live in start_server(tokenizers["glm45"], "glm45", piece_delay=0.05):
        live.engine.script(["\n"] + ["字"] * 200)
        body = {"model": "glm-test-glm45", "input": QUESTION, "stream": True}
        with httpx.stream("POST", live.url + "/v1/responses", json=body, timeout=30) as response:
            for n, _ in enumerate(response.iter_lines()):
                if n > 12:
                    break
        deadline = time.monotonic() + 10
        while not live.engine.aborted and time.monotonic() < deadline:
            time.sleep(0.05)
        assert live.engine.aborted == [live.engine.requests[-1]["request_id"]]


async def _run_streamed(agents: Any, agent: Any) -> Any:
    result = agents.Runner.run_streamed(agent, QUESTION)
    async for _ in result.stream_events():
        pass
    return result


@pytest.mark.skipif(sys.version_info < (3, 10), reason="openai-agents needs Python 3.10+")
@pytest.mark.parametrize("streamed", [False, True])
def test_openai_agents_sdk_tool_round_trip(glm45: LiveServer, streamed: bool) -> None:
    agents = pytest.importorskip("agents")
    calls: list[str] = []

    @agents.function_tool
    def get_weather(location: str) -> str:
        """查询天气"""
        calls.append(location)
        return f"{location}：晴，25度"

    glm45.engine.script("\n<think>查一下</think>\n<tool_call>get_weather\n<arg_key>location</arg_key>\n<arg_value>北京</arg_value>\n</tool_call>")
    glm45.engine.script("\n<think>已经拿到结果</think>\n北京今天晴，25度。")
    client = openai.AsyncOpenAI(base_url=glm45.url + "/v1", api_key="unused", max_retries=0, timeout=30)
    model = agents.OpenAIResponsesModel(model="glm-test-glm45", openai_client=client)
    agent = agents.Agent(name="weather", instructions="你是天气助手", tools=[get_weather], model=model)
    agents.set_tracing_disabled(True)
    result = asyncio.run(_run_streamed(agents, agent) if streamed else agents.Runner.run(agent, QUESTION))
    assert calls == ["北京"]
    assert result.final_output == "北京今天晴，25度。"
    prompt = _prompt(glm45)
    assert "北京：晴，25度" in prompt and "<|observation|>" in prompt and "你是天气助手" in prompt
