"""The HTTP server end to end over real HTTP with the official openai client,
driven by the replay engine double (deterministic GLM outputs)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import MAX_MODEL_LEN, LiveServer

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "查询天气",
        "parameters": {
            "type": "object",
            "properties": {"location": {"type": "string"}, "days": {"type": "integer"}},
            "required": ["location"],
        },
    },
}
TIME = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}}

# Raw model outputs per family: a reasoning + one call with Chinese and an int argument.
CALLS = {
    "glm4": 'get_weather\n{"location": "北京", "days": 3}',
    "glm45": "\n<think>用户想查北京天气</think>\n<tool_call>get_weather\n<arg_key>location</arg_key>\n<arg_value>北京</arg_value>\n<arg_key>days</arg_key>\n<arg_value>3</arg_value>\n</tool_call>",
    "glm47": "用户想查北京天气</think><tool_call>get_weather<arg_key>location</arg_key><arg_value>北京</arg_value><arg_key>days</arg_key><arg_value>3</arg_value></tool_call>",
}
REASONING = {"glm4": None, "glm45": "用户想查北京天气", "glm47": "用户想查北京天气"}
PLAIN = {"glm4": "\n你好！我是GLM。", "glm45": "\n<think>打个招呼</think>\n你好！我是GLM。", "glm47": "打个招呼</think>你好！我是GLM。"}
# GLM-4.7-Flash and the GLM-5 generation write GLM-4.7's text after a prompt that opens <think>.
for _family in ("glm47_flash", "glm5", "glm52", "glm53"):
    CALLS[_family], REASONING[_family], PLAIN[_family] = CALLS["glm47"], REASONING["glm47"], PLAIN["glm47"]
USER = [{"role": "user", "content": "北京天气怎么样？"}]


def _message(server: LiveServer, **kwargs: Any) -> Any:
    return server.client().chat.completions.create(model=server.state.engine.served_names[0], messages=USER, **kwargs)


def test_models_lists_the_served_names(server: LiveServer) -> None:
    models = server.client().models.list()
    assert [m.id for m in models.data] == [f"glm-test-{server.family}"]


def test_plain_answer(server: LiveServer) -> None:
    server.engine.script(PLAIN[server.family])
    response = _message(server)
    message = response.choices[0].message
    assert message.content == "你好！我是GLM。"
    assert getattr(message, "reasoning_content", None) == ({"glm4": None}.get(server.family, "打个招呼"))
    assert response.choices[0].finish_reason == "stop"
    assert response.usage.completion_tokens == len(PLAIN[server.family])
    assert response.usage.prompt_tokens > 0


def test_tool_call_with_reasoning_and_chinese(server: LiveServer) -> None:
    server.engine.script(CALLS[server.family])
    response = _message(server, tools=[WEATHER, TIME])
    choice = response.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    (call,) = choice.message.tool_calls
    assert call.type == "function" and call.id.startswith("call_")
    assert call.function.name == "get_weather"
    assert call.function.arguments == '{"location": "北京", "days": 3}'
    assert json.loads(call.function.arguments) == {"location": "北京", "days": 3}
    extra = choice.message.model_extra or {}
    assert extra.get("reasoning_content") == REASONING[server.family]
    assert extra.get("reasoning") == REASONING[server.family]


def _streamed(server: LiveServer, **kwargs: Any) -> Any:
    with server.client().chat.completions.stream(model=server.state.engine.served_names[0], messages=USER, **kwargs) as stream:
        for _ in stream:
            pass
        return stream.current_completion_snapshot


def _same_message(a: Any, b: Any) -> None:
    assert (a.content or "") == (b.content or "")
    calls_a = [(c.id[:5], c.function.name, c.function.arguments) for c in a.tool_calls or []]
    calls_b = [(c.id[:5], c.function.name, c.function.arguments) for c in b.tool_calls or []]
    assert calls_a == calls_b


@pytest.mark.parametrize("raw_kind", ["call", "plain"])
def test_stream_assembles_to_the_non_streamed_message(server: LiveServer, raw_kind: str) -> None:
    raw = CALLS[server.family] if raw_kind == "call" else PLAIN[server.family]
    server.engine.script(raw)
    full = _message(server, tools=[WEATHER]).choices[0]
    server.engine.script(raw)
    streamed = _streamed(server, tools=[WEATHER]).choices[0]
    _same_message(full.message, streamed.message)
    assert streamed.finish_reason == full.finish_reason


SETTINGS = settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))


@SETTINGS
@given(data=st.data())
def test_any_split_streams_to_the_same_message(glm45: LiveServer, data: st.DataObject) -> None:
    raw = "先查一下。" + CALLS["glm45"] + "\n<tool_call>get_time\n</tool_call>"
    cuts = sorted(data.draw(st.sets(st.integers(1, len(raw) - 1), max_size=12)))
    pieces = [raw[i:j] for i, j in zip([0, *cuts], [*cuts, len(raw)])]
    glm45.engine.script(raw)
    full = _message(glm45, tools=[WEATHER, TIME]).choices[0].message
    glm45.engine.script(pieces)
    streamed = _streamed(glm45, tools=[WEATHER, TIME]).choices[0].message
    _same_message(full, streamed)
    assert [c.function.name for c in full.tool_calls] == ["get_weather", "get_time"]
    assert full.tool_calls[1].function.arguments == "{}"


def _raw_events(server: LiveServer, body: dict[str, Any]) -> list[Any]:
    body = {"model": server.state.engine.served_names[0], "messages": USER, "stream": True, **body}
    events = []
    with httpx.stream("POST", server.url + "/v1/chat/completions", json=body, timeout=30) as response:
        for line in response.iter_lines():
            if line.startswith("data: "):
                payload = line[len("data: ") :]
                events.append(payload if payload == "[DONE]" else json.loads(payload))
    return events


def test_stream_wire_contract(glm45: LiveServer) -> None:
    """First delta has the role; one id per call (first delta only); text before a call is not held back; [DONE] last."""
    glm45.engine.script("\n<think>想一想</think>\n我来查询。" + CALLS["glm45"].split("\n", 2)[2])
    events = _raw_events(glm45, {"tools": [WEATHER], "stream_options": {"include_usage": True}})
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    texts = "".join(d.get("content") or "" for d in deltas)
    assert texts == "我来查询。"
    call_deltas = [tc for d in deltas for tc in d.get("tool_calls", [])]
    assert "id" in call_deltas[0] and call_deltas[0]["type"] == "function" and call_deltas[0]["function"]["name"] == "get_weather"
    assert all("id" not in tc and "name" not in tc.get("function", {}) for tc in call_deltas[1:])
    first_call = next(i for i, d in enumerate(deltas) if d.get("tool_calls"))
    first_text = next(i for i, d in enumerate(deltas) if d.get("content"))
    assert first_text < first_call
    finals = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]]
    assert finals[-1] == "tool_calls" and all(f is None for f in finals[:-1])
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] > 0


def test_n_choices_and_usage(glm4: LiveServer) -> None:
    glm4.engine.script("\n好的")
    response = _message(glm4, n=2)
    assert [c.index for c in response.choices] == [0, 1]
    assert all(c.message.content == "好的" for c in response.choices)
    assert response.usage.completion_tokens == 2 * 3


def test_max_tokens_unset_means_up_to_the_context(glm45: LiveServer) -> None:
    _message(glm45)
    request = glm45.engine.requests[-1]
    prompt_len = len(request["prompt"]["prompt_token_ids"])
    assert request["sampling_params"].max_tokens == MAX_MODEL_LEN - prompt_len


def test_stop_ids_come_from_the_tokenizer(glm45: LiveServer) -> None:
    _message(glm45, extra_body={"stop_token_ids": [7]})
    tok = glm45.state.engine.tokenizer
    expected = [7] + [tok.convert_tokens_to_ids(t) for t in ("<|endoftext|>", "<|user|>", "<|observation|>")]
    assert glm45.engine.requests[-1]["sampling_params"].stop_token_ids == expected


def test_ignore_eos_also_ignores_the_glm_end_of_turn_ids(glm45: LiveServer) -> None:
    """They are EOS ids (generation_config.json); vLLM drops them from the stop set with ignore_eos too."""
    _message(glm45, extra_body={"stop_token_ids": [7], "ignore_eos": True})
    assert glm45.engine.requests[-1]["sampling_params"].stop_token_ids == [7]


def test_sampling_fields_reach_the_engine(glm45: LiveServer) -> None:
    _message(
        glm45,
        temperature=0.3,
        top_p=0.9,
        presence_penalty=0.5,
        frequency_penalty=0.25,
        seed=11,
        stop=["###"],
        max_tokens=7,
        extra_body={"top_k": 5, "min_p": 0.1, "repetition_penalty": 1.1, "min_tokens": 2, "ignore_eos": True, "guided_regex": "[ab]+"},
    )
    sp = glm45.engine.requests[-1]["sampling_params"]
    got = {k: getattr(sp, k) for k in ("temperature", "top_p", "presence_penalty", "frequency_penalty", "seed", "stop", "max_tokens", "top_k", "min_p", "repetition_penalty", "min_tokens", "ignore_eos")}
    assert got == {"temperature": 0.3, "top_p": 0.9, "presence_penalty": 0.5, "frequency_penalty": 0.25, "seed": 11, "stop": ["###"], "max_tokens": 7, "top_k": 5, "min_p": 0.1, "repetition_penalty": 1.1, "min_tokens": 2, "ignore_eos": True}
    constraint = getattr(sp, "structured_outputs", None) or getattr(sp, "guided_decoding", None)
    assert constraint.regex == "[ab]+"


def test_response_format_json_schema(glm45: LiveServer) -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    _message(glm45, response_format={"type": "json_schema", "json_schema": {"name": "c", "schema": schema}})
    sp = glm45.engine.requests[-1]["sampling_params"]
    assert (getattr(sp, "structured_outputs", None) or sp.guided_decoding).json == schema


def test_glm4_tools_are_rendered_into_the_prompt(glm4: LiveServer) -> None:
    _message(glm4, tools=[WEATHER])
    prompt = glm4.state.engine.decode(glm4.engine.requests[-1]["prompt"]["prompt_token_ids"])
    assert prompt.startswith("[gMASK]<sop>") and prompt.count("[gMASK]") == 1
    assert "get_weather" in prompt and "查询天气" in prompt and prompt.endswith("<|assistant|>")


def test_named_tool_choice_forces_the_call(glm45: LiveServer) -> None:
    glm45.engine.script("<arg_key>location</arg_key>\n<arg_value>上海</arg_value>\n</tool_call>")
    response = _message(glm45, tools=[WEATHER, TIME], tool_choice={"type": "function", "function": {"name": "get_weather"}})
    (call,) = response.choices[0].message.tool_calls
    assert (call.function.name, call.function.arguments) == ("get_weather", '{"location": "上海"}')
    prompt = glm45.state.engine.decode(glm45.engine.requests[-1]["prompt"]["prompt_token_ids"])
    assert prompt.endswith("<tool_call>get_weather\n")


def test_required_tool_choice_constrains_decoding(glm45: LiveServer) -> None:
    glm45.engine.script(CALLS["glm45"])
    response = _message(glm45, tools=[WEATHER, TIME], tool_choice="required")
    assert response.choices[0].message.tool_calls[0].function.name == "get_weather"
    sp = glm45.engine.requests[-1]["sampling_params"]
    regex = (getattr(sp, "structured_outputs", None) or sp.guided_decoding).regex
    assert "get_weather|get_time" in regex and "<tool_call>" in regex


def test_tool_choice_none_renders_no_tools_and_parses_nothing(glm45: LiveServer) -> None:
    glm45.engine.script("<tool_call>get_weather\n</tool_call>")
    response = _message(glm45, tools=[WEATHER], tool_choice="none")
    assert response.choices[0].message.tool_calls is None
    assert response.choices[0].message.content == "<tool_call>get_weather\n</tool_call>"
    prompt = glm45.state.engine.decode(glm45.engine.requests[-1]["prompt"]["prompt_token_ids"])
    assert "get_weather" not in prompt


def test_parallel_tool_calls_false_keeps_the_first(glm45: LiveServer) -> None:
    glm45.engine.script("<tool_call>get_time\n</tool_call>" + CALLS["glm45"])
    response = _message(glm45, tools=[WEATHER, TIME], parallel_tool_calls=False)
    assert [c.function.name for c in response.choices[0].message.tool_calls] == ["get_time"]


def test_logprobs(glm4: LiveServer) -> None:
    glm4.engine.script(["\n", "你", "好"])
    response = _message(glm4, logprobs=True, top_logprobs=1)
    content = response.choices[0].logprobs.content
    assert [c.token for c in content] == ["\n", "你", "好"]
    assert all(c.logprob == -0.25 and len(c.top_logprobs) == 1 for c in content)


def test_completions_are_raw_continuations(glm4: LiveServer) -> None:
    glm4.engine.script("的天气很好")
    client = glm4.client()
    response = client.completions.create(model="glm-test-glm4", prompt="北京", max_tokens=16)
    assert response.choices[0].text == "的天气很好"
    prompt_ids = glm4.engine.requests[-1]["prompt"]["prompt_token_ids"]
    assert glm4.state.engine.decode(prompt_ids) == "北京"  # no chat template applied
    glm4.engine.script("的天气")
    stream = client.completions.create(model="glm-test-glm4", prompt="北京", max_tokens=16, stream=True, echo=False)
    assert "".join(c.choices[0].text for c in stream if c.choices) == "的天气"


def test_completions_several_prompts(glm4: LiveServer) -> None:
    glm4.engine.script("甲")
    response = glm4.client().completions.create(model="glm-test-glm4", prompt=["a", "b"], max_tokens=4, n=2)
    assert [c.index for c in response.choices] == [0, 1, 2, 3]


def test_tokenize_and_detokenize(glm45: LiveServer) -> None:
    http = httpx.Client(base_url=glm45.url, timeout=10)
    tokens = http.post("/tokenize", json={"prompt": "你好 GLM"}).json()
    assert tokens["count"] == len(tokens["tokens"]) and tokens["max_model_len"] == MAX_MODEL_LEN
    assert http.post("/detokenize", json={"tokens": tokens["tokens"]}).json()["prompt"] == "你好 GLM"
    chat = http.post("/tokenize", json={"messages": USER}).json()
    assert glm45.state.engine.decode(chat["tokens"]).startswith("[gMASK]<sop>")
    assert http.get("/version").json()["version"]
    assert http.get("/health").status_code == 200


def test_concurrent_requests_get_distinct_ids(glm45: LiveServer) -> None:
    async def run() -> None:
        client = glm45.async_client()
        await asyncio.gather(*(client.chat.completions.create(model="glm-test-glm45", messages=USER) for _ in range(8)))

    asyncio.run(run())
    ids = [r["request_id"] for r in glm45.engine.requests]
    assert len(ids) == 8 and len(set(ids)) == 8
