"""``/v1/messages`` end to end over real HTTP with the official anthropic SDK, on the replay engine,
for every GLM family."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from .conftest import MAX_MODEL_LEN, LiveServer, start_server

anthropic = pytest.importorskip("anthropic")

WEATHER = {
    "name": "get_weather",
    "description": "查询天气",
    "input_schema": {"type": "object", "properties": {"location": {"type": "string"}, "days": {"type": "integer"}}, "required": ["location"]},
}
TIME = {"name": "get_time", "input_schema": {"type": "object", "properties": {}}}
OPENAI_WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "查询天气", "parameters": WEATHER["input_schema"]}}

# Raw model outputs per output format (tool-call parser name; the same as the chat-completions tests).
CALLS = {
    "glm4": 'get_weather\n{"location": "北京", "days": 3}',
    "glm45": "\n<think>用户想查北京天气</think>\n<tool_call>get_weather\n<arg_key>location</arg_key>\n<arg_value>北京</arg_value>\n<arg_key>days</arg_key>\n<arg_value>3</arg_value>\n</tool_call>",
    "glm47": "用户想查北京天气</think><tool_call>get_weather<arg_key>location</arg_key><arg_value>北京</arg_value><arg_key>days</arg_key><arg_value>3</arg_value></tool_call>",
}
PLAIN = {"glm4": "\n你好！我是GLM。", "glm45": "\n<think>打个招呼</think>\n你好！我是GLM。", "glm47": "打个招呼</think>你好！我是GLM。"}


def _thinking(server: LiveServer) -> str | None:
    """The reasoning of PLAIN, for a family that thinks."""
    return None if server.state.reasoning_parser == "none" else "打个招呼"

USER = [{"role": "user", "content": "北京天气怎么样？"}]


def _client(server: LiveServer, **kwargs: Any) -> Any:
    return anthropic.Anthropic(base_url=server.url, api_key=server.state.api_key or "unused", max_retries=0, timeout=30, **kwargs)


def _create(server: LiveServer, **kwargs: Any) -> Any:
    body: dict[str, Any] = {"model": server.state.engine.served_names[0], "max_tokens": 200, "messages": USER, **kwargs}
    return _client(server).messages.create(**body)


def _prompt(server: LiveServer) -> str:
    return str(server.state.engine.decode(server.engine.requests[-1]["prompt"]["prompt_token_ids"]))


def _blocks(message: Any) -> list[tuple[Any, ...]]:
    """Content blocks without the random parts of ids."""
    out: list[tuple[Any, ...]] = []
    for block in message.content:
        if block.type == "text":
            out.append(("text", block.text))
        elif block.type == "thinking":
            out.append(("thinking", block.thinking))
        else:
            out.append(("tool_use", block.id[:5], block.name, block.input))
    return out


def test_plain_answer_with_thinking_blocks(server: LiveServer) -> None:
    server.engine.script(PLAIN[server.state.tool_parser])
    message = _create(server)
    thinking = [("thinking", _thinking(server))] if _thinking(server) else []
    assert _blocks(message) == [*thinking, ("text", "你好！我是GLM。")]
    assert message.type == "message" and message.role == "assistant" and message.id.startswith("msg_")
    assert message.model == server.state.engine.served_names[0]
    assert (message.stop_reason, message.stop_sequence) == ("end_turn", None)
    assert message.usage.output_tokens == len(PLAIN[server.state.tool_parser])
    assert message.usage.input_tokens == len(server.engine.requests[-1]["prompt"]["prompt_token_ids"])


def test_tool_use(server: LiveServer) -> None:
    server.engine.script(CALLS[server.state.tool_parser])
    message = _create(server, tools=[WEATHER, TIME])
    assert message.stop_reason == "tool_use"
    *thinking, call = message.content
    assert [b.thinking for b in thinking] == ([_thinking(server) and "用户想查北京天气"] if _thinking(server) else [])
    assert (call.type, call.name, call.input) == ("tool_use", "get_weather", {"location": "北京", "days": 3})


def _chat_prompt_ids(server: LiveServer, messages: list[dict[str, Any]], **body: Any) -> list[int]:
    httpx.post(server.url + "/v1/chat/completions", json={"messages": messages, **body}, timeout=30).raise_for_status()
    return list(server.engine.requests[-1]["prompt"]["prompt_token_ids"])


def test_tool_round_trip_renders_like_the_chat_api(server: LiveServer) -> None:
    """tool_use / tool_result / thinking blocks render exactly as the equivalent chat messages do."""
    server.engine.script(CALLS[server.state.tool_parser])
    first = _create(server, tools=[WEATHER], system="你是天气助手")
    history = [*USER, {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]}]
    call = first.content[-1]
    result = {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": [{"type": "text", "text": "晴，25度"}]}]}
    server.engine.script(PLAIN[server.state.tool_parser])
    final = _create(server, tools=[WEATHER], system="你是天气助手", messages=[*history, result])
    assert final.content[-1].text == "你好！我是GLM。"
    ids = server.engine.requests[-1]["prompt"]["prompt_token_ids"]
    prompt = _prompt(server)
    assert "晴，25度" in prompt and "<|observation|>" in prompt and "你是天气助手" in prompt
    chat_history = [
        {"role": "system", "content": "你是天气助手"},
        *USER,
        {
            "role": "assistant",
            "content": "",
            "reasoning_content": _thinking(server) and "用户想查北京天气",
            "tool_calls": [{"id": call.id, "type": "function", "function": {"name": "get_weather", "arguments": json.dumps(call.input)}}],
        },
        {"role": "tool", "tool_call_id": call.id, "content": "晴，25度"},
    ]
    if not _thinking(server):
        del chat_history[2]["reasoning_content"]
    assert _chat_prompt_ids(server, chat_history, tools=[OPENAI_WEATHER]) == ids


def _streamed(server: LiveServer, **kwargs: Any) -> tuple[Any, list[Any]]:
    body: dict[str, Any] = {"model": server.state.engine.served_names[0], "max_tokens": 200, "messages": USER, **kwargs}
    with _client(server).messages.stream(**body) as stream:
        events = list(stream)
        return stream.get_final_message(), events


@pytest.mark.parametrize("raw_kind", ["call", "plain"])
def test_stream_assembles_to_the_non_streamed_message(server: LiveServer, raw_kind: str) -> None:
    raw = CALLS[server.state.tool_parser] if raw_kind == "call" else PLAIN[server.state.tool_parser]
    server.engine.script(raw)
    full = _create(server, tools=[WEATHER])
    server.engine.script(raw)
    streamed, _ = _streamed(server, tools=[WEATHER])
    assert _blocks(streamed) == _blocks(full)
    assert (streamed.stop_reason, streamed.stop_sequence) == (full.stop_reason, full.stop_sequence)
    assert streamed.usage.model_dump() == full.usage.model_dump()


def _raw_events(server: LiveServer, body: dict[str, Any], headers: dict[str, str] | None = None) -> list[tuple[str, Any]]:
    body = {"model": server.state.engine.served_names[0], "max_tokens": 200, "messages": USER, "stream": True, **body}
    events: list[tuple[str, Any]] = []
    name = ""
    with httpx.stream("POST", server.url + "/v1/messages", json=body, headers=headers, timeout=30) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("event: "):
                name = line[len("event: ") :]
            elif line.startswith("data: "):
                data = json.loads(line[len("data: ") :])
                assert data["type"] == name
                events.append((name, data))
    return events


def test_stream_event_sequence(glm45: LiveServer) -> None:
    """Anthropic's order: message_start, then per block start/deltas/stop with rising indexes, message_delta, message_stop."""
    glm45.engine.script(["\n<think>", "想", "一想", "</think>\n", "我来", "查询。", *CALLS["glm45"].split("\n", 2)[2].split("\n")])
    events = _raw_events(glm45, {"tools": [WEATHER, TIME]})
    names = [name for name, _ in events]
    assert names[:2] == ["message_start", "ping"] and names[-2:] == ["message_delta", "message_stop"]
    start = events[0][1]["message"]
    assert start["content"] == [] and start["stop_reason"] is None and start["usage"]["input_tokens"] > 0
    blocks = [(d["index"], d["content_block"]["type"]) for n, d in events if n == "content_block_start"]
    assert blocks == [(0, "thinking"), (1, "text"), (2, "tool_use")]
    deltas = {d["index"]: set() for n, d in events if n == "content_block_delta"}
    for n, d in events:
        if n == "content_block_delta":
            deltas[d["index"]].add(d["delta"]["type"])
    assert deltas == {0: {"thinking_delta"}, 1: {"text_delta"}, 2: {"input_json_delta"}}
    order = [(n, d.get("index")) for n, d in events if n.startswith("content_block_")]
    for index in range(3):  # each block: start, deltas, stop, before the next one starts
        mine = [i for i, (_, idx) in enumerate(order) if idx == index]
        assert order[mine[0]][0] == "content_block_start" and order[mine[-1]][0] == "content_block_stop"
        assert mine == list(range(mine[0], mine[-1] + 1))
    partial = "".join(d["delta"]["partial_json"] for n, d in events if n == "content_block_delta" and d["index"] == 2)
    assert json.loads(partial) == {"location": "北京", "days": 3}
    final = events[-2][1]
    assert final["delta"] == {"stop_reason": "tool_use", "stop_sequence": None} and final["usage"]["output_tokens"] > 0


def test_thinking_disabled_switches_the_template(server: LiveServer) -> None:
    """The family's thinking switch is set; the answer is parsed the way the prompt left it."""
    server.engine.script("好的")
    message = _create(server, thinking={"type": "disabled"})
    switched_off = _prompt(server).endswith("</think>")
    if _thinking(server) is None or switched_off:
        assert _blocks(message) == [("text", "好的")]
    else:  # a family whose thinking cannot be switched off
        assert _blocks(message) == [("thinking", "好的")]


@pytest.mark.parametrize("family", ["glm45", "glm47"])
def test_thinking_disabled_reaches_the_template(family: str, request: pytest.FixtureRequest) -> None:
    live: LiveServer = request.getfixturevalue(family)
    live.engine.scripts.clear()
    live.engine.script("好的")
    assert _blocks(_create(live, thinking={"type": "disabled"})) == [("text", "好的")]
    assert _prompt(live).endswith("</think>")
    live.engine.script(PLAIN[family])
    _create(live, thinking={"type": "adaptive"})
    assert not _prompt(live).endswith("</think>")


def test_thinking_enabled_with_a_budget(glm45: LiveServer) -> None:
    glm45.engine.script(PLAIN["glm45"])
    message = _create(glm45, max_tokens=2048, thinking={"type": "enabled", "budget_tokens": 1024})
    assert _blocks(message) == [("thinking", "打个招呼"), ("text", "你好！我是GLM。")]
    assert message.content[0].signature == ""
    assert not _prompt(glm45).endswith("</think>")


@pytest.mark.parametrize(
    ("body", "effort"),
    [
        ({"output_config": {"effort": "low"}}, "Low"),
        ({"output_config": {"effort": "medium"}}, "High"),  # GLM-5.3 has low/high/max: never less than asked
        ({"output_config": {"effort": "max"}, "thinking": {"type": "enabled", "budget_tokens": 1024}}, "Max"),  # effort wins
        ({"thinking": {"type": "enabled", "budget_tokens": 2048}}, "Low"),
        ({"thinking": {"type": "enabled", "budget_tokens": 16384}}, "High"),
        ({"thinking": {"type": "enabled", "budget_tokens": 40000}}, "Max"),
        ({"thinking": {"type": "adaptive"}}, "Max"),  # the family's default
    ],
)
def test_effort_and_budget_reach_glm53s_reasoning_effort(glm53: LiveServer, body: dict[str, Any], effort: str) -> None:
    glm53.engine.script("想</think>好")
    _create(glm53, max_tokens=60000, **body)
    assert f"<|system|>Reasoning Effort: {effort}<|user|>" in _prompt(glm53)


def test_budget_tokens_bounds_thinking_where_the_engine_can(glm53: LiveServer) -> None:
    from glm_vllm_compat._live import live

    glm53.engine.script("想</think>好")
    _create(glm53, max_tokens=4096, thinking={"type": "enabled", "budget_tokens": 2048})
    assert getattr(glm53.engine.requests[-1]["sampling_params"], "thinking_token_budget", None) is None  # no reasoning config
    if not live().caps.thinking_token_budget:
        return
    glm53.state.engine.thinking_budget_ready = True
    try:
        glm53.engine.script("想</think>好")
        _create(glm53, max_tokens=4096, thinking={"type": "enabled", "budget_tokens": 2048})
        assert glm53.engine.requests[-1]["sampling_params"].thinking_token_budget == 2048
    finally:
        glm53.state.engine.thinking_budget_ready = False


def test_thinking_display_omitted_keeps_an_empty_block(glm47: LiveServer) -> None:
    glm47.engine.script(PLAIN["glm47"])
    message = _create(glm47, thinking={"type": "adaptive", "display": "omitted"})
    assert _blocks(message) == [("thinking", ""), ("text", "你好！我是GLM。")]


def test_tool_choice_tool_forces_the_named_call(glm45: LiveServer) -> None:
    glm45.engine.script("<arg_key>location</arg_key>\n<arg_value>上海</arg_value>\n</tool_call>")
    message = _create(glm45, tools=[WEATHER, TIME], tool_choice={"type": "tool", "name": "get_weather"})
    (call,) = [b for b in message.content if b.type == "tool_use"]
    assert (call.name, call.input, message.stop_reason) == ("get_weather", {"location": "上海"}, "tool_use")
    assert _prompt(glm45).endswith("<tool_call>get_weather\n")


def test_tool_choice_any_constrains_decoding(glm45: LiveServer) -> None:
    glm45.engine.script(CALLS["glm45"])
    _create(glm45, tools=[WEATHER, TIME], tool_choice={"type": "any"})
    sp = glm45.engine.requests[-1]["sampling_params"]
    regex = (getattr(sp, "structured_outputs", None) or sp.guided_decoding).regex
    assert "get_weather|get_time" in regex


def test_tool_choice_none_renders_no_tools(glm45: LiveServer) -> None:
    glm45.engine.script("\n好的")
    _create(glm45, tools=[WEATHER], tool_choice={"type": "none"})
    assert "get_weather" not in _prompt(glm45)


def test_disable_parallel_tool_use_keeps_the_first_call(glm45: LiveServer) -> None:
    glm45.engine.script("<tool_call>get_time\n</tool_call>" + CALLS["glm45"])
    message = _create(glm45, tools=[WEATHER, TIME], tool_choice={"type": "auto", "disable_parallel_tool_use": True})
    assert [b.name for b in message.content if b.type == "tool_use"] == ["get_time"]


def test_stop_sequence_and_sampling_reach_the_engine(glm45: LiveServer) -> None:
    glm45.engine.script("\n<think>嗯</think>\n一二", stop_reason="###")
    message = _create(glm45, max_tokens=100, stop_sequences=["###", "END"], extra_body={"temperature": 0.5, "top_p": 0.9, "top_k": 5})
    assert (message.stop_reason, message.stop_sequence) == ("stop_sequence", "###")
    sp = glm45.engine.requests[-1]["sampling_params"]
    assert (sp.stop, sp.max_tokens, sp.temperature, sp.top_p, sp.top_k) == (["###", "END"], 100, 0.5, 0.9, 5)


def test_structured_outputs_extension_and_output_format(glm45: LiveServer) -> None:
    glm45.engine.script("\n晴")
    _create(glm45, extra_body={"structured_outputs": {"choice": ["晴", "雨"]}})
    sp = glm45.engine.requests[-1]["sampling_params"]
    assert (getattr(sp, "structured_outputs", None) or sp.guided_decoding).choice == ["晴", "雨"]
    schema = {"type": "object", "properties": {"city": {"type": "string"}}}
    glm45.engine.script('\n{"city": "北京"}')
    _create(glm45, extra_body={"output_config": {"format": {"type": "json_schema", "schema": schema}}})
    sp = glm45.engine.requests[-1]["sampling_params"]
    assert (getattr(sp, "structured_outputs", None) or sp.guided_decoding).json == schema


def test_stop_token_is_end_turn_and_max_tokens_is_reported(glm45: LiveServer) -> None:
    glm45.engine.script("\n好的", stop_reason=151336)
    assert _create(glm45).stop_reason == "end_turn"
    glm45.engine.script(["\n<think>", "很长", "很长的", "思考", "</think>"])
    message = _create(glm45, max_tokens=3)
    assert message.stop_reason == "max_tokens" and message.usage.output_tokens == 3
    assert _blocks(message) == [("thinking", "很长很长的")]


def test_max_tokens_beyond_the_context_window_runs_up_to_it(glm45: LiveServer) -> None:
    """Like Anthropic's API: max_tokens is a cap; a stop at the window is model_context_window_exceeded."""
    glm45.engine.script("\n" + "字" * MAX_MODEL_LEN)
    message = _create(glm45, max_tokens=32000)
    prompt_len = len(glm45.engine.requests[-1]["prompt"]["prompt_token_ids"])
    assert glm45.engine.requests[-1]["sampling_params"].max_tokens == MAX_MODEL_LEN - prompt_len
    assert message.stop_reason == "model_context_window_exceeded"
    assert message.usage.output_tokens == MAX_MODEL_LEN - prompt_len


def test_count_tokens_matches_the_prompt(server: LiveServer) -> None:
    body: dict[str, Any] = {"model": server.state.engine.served_names[0], "messages": USER, "tools": [WEATHER], "system": "简短回答"}
    counted = _client(server).messages.count_tokens(**body)
    server.engine.script(PLAIN[server.state.tool_parser])
    message = _client(server).messages.create(max_tokens=64, **body)
    assert counted.input_tokens == message.usage.input_tokens > 0


def _error(server: LiveServer, body: dict[str, Any], path: str = "/v1/messages") -> tuple[int, Any]:
    response = httpx.post(server.url + path, json=body, timeout=30)
    return response.status_code, response.json()


BAD = [
    ({"messages": USER}, "max_tokens"),
    ({"max_tokens": 0, "messages": USER}, "max_tokens"),
    ({"max_tokens": 16, "messages": []}, "messages"),
    ({"max_tokens": 16, "messages": [{"role": "user", "content": [{"type": "image", "source": {}}]}]}, "image"),
    ({"max_tokens": 16, "messages": [{"role": "system", "content": "x"}]}, "role"),
    ({"max_tokens": 16, "messages": [{"role": "assistant", "content": "x"}]}, "first message"),
    ({"max_tokens": 16, "messages": [*USER, {"role": "assistant", "content": "北京"}]}, "prefilled"),
    ({"max_tokens": 16, "messages": USER, "container": "c1"}, "container"),
    ({"max_tokens": 16, "messages": USER, "tools": [{"type": "web_search_20250305", "name": "web_search"}]}, "server tool"),
    ({"max_tokens": 16, "messages": USER, "tools": [{"name": "has space", "input_schema": {"type": "object"}}]}, "tool name"),
    ({"max_tokens": 16, "messages": USER, "tools": [WEATHER, WEATHER]}, "duplicate"),
    ({"max_tokens": 16, "messages": USER, "tool_choice": {"type": "any"}}, "needs tools"),
    ({"max_tokens": 16, "messages": USER, "tools": [WEATHER], "tool_choice": {"type": "tool", "name": "nope"}}, "nope"),
    ({"max_tokens": 16, "messages": USER, "tool_choice": {"type": "tool"}}, "name"),
    ({"max_tokens": 2048, "messages": USER, "thinking": {"type": "enabled", "budget_tokens": 100}}, "1024"),
    ({"max_tokens": 1024, "messages": USER, "thinking": {"type": "enabled", "budget_tokens": 1024}}, "less than max_tokens"),
    ({"max_tokens": 16, "messages": USER, "thinking": {"type": "between_tools"}}, "between_tools"),
    ({"max_tokens": 16, "messages": USER, "output_config": {"effort": "high"}}, "output_config.effort is not a control of GLM-4.5"),
    ({"max_tokens": 16, "messages": USER, "output_config": {"effort": "extreme"}}, "effort"),
    ({"max_tokens": 16, "messages": USER, "temperature": 1.5}, "temperature"),
    ({"max_tokens": 16, "messages": USER, "structured_outputs": {"regex": "a"}, "output_config": {"format": {"type": "json_schema", "schema": {}}}}, "conflicting"),
    ({"max_tokens": 16, "messages": USER, "stop_sequences": [""]}, "stop_sequences"),
    ({"max_tokens": 16, "messages": [*USER, {"role": "assistant", "content": "x"}, {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "r"}]}]}, "no matching tool_use"),
    ({"max_tokens": 16, "messages": [{"role": "user", "content": "长" * (MAX_MODEL_LEN * 2)}]}, "context length"),
]


@pytest.mark.parametrize(("body", "needle"), BAD, ids=[str(i) for i in range(len(BAD))])
def test_bad_input_is_an_anthropic_400(glm45: LiveServer, body: dict[str, Any], needle: str) -> None:
    status, error = _error(glm45, {"model": "glm-test-glm45", **body})
    assert status == 400, error
    assert error["type"] == "error" and error["error"]["type"] == "invalid_request_error"
    assert needle in error["error"]["message"]


def test_count_tokens_errors_are_anthropic_shaped(glm45: LiveServer) -> None:
    status, error = _error(glm45, {"model": "glm-test-glm45", "messages": [{"role": "user", "content": [{"type": "image"}]}]}, "/v1/messages/count_tokens")
    assert status == 400 and error["type"] == "error" and "image" in error["error"]["message"]
    status, error = _error(glm45, {"model": "nope", "messages": USER}, "/v1/messages/count_tokens")
    assert status == 404 and error["error"]["type"] == "not_found_error"


def test_bad_input_through_the_sdk(glm4: LiveServer) -> None:
    with pytest.raises(anthropic.BadRequestError) as info:
        _create(glm4, thinking={"type": "enabled", "budget_tokens": 1024}, max_tokens=2048)
    assert "no reasoning mode" in info.value.body["error"]["message"]
    with pytest.raises(anthropic.NotFoundError) as missing:
        _client(glm4).messages.create(model="claude-nope", max_tokens=16, messages=USER)
    assert missing.value.body["error"]["type"] == "not_found_error"


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b"", "\"\\ud800\"".encode()])
def test_unparseable_bodies(glm45: LiveServer, raw: bytes) -> None:
    response = httpx.post(glm45.url + "/v1/messages", content=raw, headers={"content-type": "application/json"}, timeout=10)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_lone_surrogate_in_a_message(glm45: LiveServer) -> None:
    raw = b'{"model": "glm-test-glm45", "max_tokens": 16, "messages": [{"role": "user", "content": "a\\ud800b"}]}'
    response = httpx.post(glm45.url + "/v1/messages", content=raw, headers={"content-type": "application/json"}, timeout=30)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and "messages[0].content" in error["message"]


def test_engine_failure_mid_stream_is_an_error_event(glm45: LiveServer) -> None:
    glm45.engine.script("\n你好", error=RuntimeError("engine exploded"))
    events = _raw_events(glm45, {})
    assert events[0][0] == "message_start"
    name, data = events[-1]
    assert name == "error" and data["error"]["type"] == "api_error"
    glm45.engine.script("\n你好", error=RuntimeError("engine exploded"))
    with pytest.raises(anthropic.APIStatusError):
        _streamed(glm45)
    glm45.engine.script("\n你好", error=RuntimeError("engine exploded"))
    with pytest.raises(anthropic.InternalServerError) as info:
        _create(glm45)
    assert info.value.body["error"]["type"] == "api_error"


def test_disconnect_aborts_the_engine_request(tokenizers: dict[str, Any]) -> None:
    for live in start_server(tokenizers["glm45"], "glm45", piece_delay=0.05):
        live.engine.script(["\n"] + ["字"] * 200)
        body = {"model": "glm-test-glm45", "max_tokens": 300, "messages": USER, "stream": True}
        with httpx.stream("POST", live.url + "/v1/messages", json=body, timeout=30) as response:
            for n, _ in enumerate(response.iter_lines()):
                if n > 8:
                    break
        import time

        deadline = time.monotonic() + 10
        while not live.engine.aborted and time.monotonic() < deadline:
            time.sleep(0.05)
        assert live.engine.aborted == [live.engine.requests[-1]["request_id"]]


@pytest.fixture(scope="module")
def keyed(tokenizers: dict[str, Any]) -> Iterator[LiveServer]:
    yield from start_server(tokenizers["glm45"], "glm45", api_key="sk-test")


def test_api_key_as_x_api_key_or_bearer(keyed: LiveServer) -> None:
    keyed.engine.script(PLAIN["glm45"])
    assert _create(keyed).stop_reason == "end_turn"  # the SDK sends x-api-key
    bearer = anthropic.Anthropic(base_url=keyed.url, auth_token="sk-test", max_retries=0, timeout=30)
    assert bearer.messages.create(model="glm-test-glm45", max_tokens=16, messages=USER).content
    with pytest.raises(anthropic.AuthenticationError) as info:
        anthropic.Anthropic(base_url=keyed.url, api_key="wrong", max_retries=0).messages.create(model="glm-test-glm45", max_tokens=16, messages=USER)
    assert info.value.body == {"type": "error", "error": {"type": "authentication_error", "message": info.value.body["error"]["message"]}}
    assert httpx.post(keyed.url + "/v1/chat/completions", json={"messages": USER}, headers={"x-api-key": "sk-test"}).status_code == 200
    assert httpx.post(keyed.url + "/v1/chat/completions", json={"messages": USER}, headers={"x-api-key": "nope"}).status_code == 401
