"""Wire protocol: request validation, error objects, sampling-field mapping."""

from __future__ import annotations

import json
from typing import Any

import pytest
from openai.types.chat import ChatCompletionChunk as SdkChunk
from openai.types.completion import Completion as SdkCompletion

from glm_vllm_compat.server.protocol import (
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatCompletionStreamChoice,
    CompletionChoice,
    CompletionRequest,
    CompletionResponse,
    DeltaMessage,
    DetokenizeRequest,
    ErrorResponse,
    InvalidRequest,
    ModelCard,
    ModelList,
    NamedToolChoice,
    TokenizeRequest,
    message_text,
    new_id,
    parse_request,
    request_sampling_fields,
)

TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "天气",
        "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]},
    },
}
MSGS = [{"role": "user", "content": "hi"}]


def chat(**extra: Any) -> ChatCompletionRequest:
    body: dict[str, Any] = {"model": "glm", "messages": MSGS}
    body.update(extra)
    return parse_request(ChatCompletionRequest, body)


def completion(**extra: Any) -> CompletionRequest:
    body: dict[str, Any] = {"model": "glm", "prompt": "你好"}
    body.update(extra)
    return parse_request(CompletionRequest, body)


# --- accepted requests -------------------------------------------------------------------

ACCEPTED: list[tuple[str, dict[str, Any]]] = [
    ("minimal-no-model", {"messages": MSGS}),
    ("all-roles", {"messages": [
        {"role": "system", "content": "s"},
        {"role": "developer", "content": "d"},
        {"role": "user", "content": [{"type": "text", "text": "u"}]},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c", "type": "function", "function": {"name": "get_weather", "arguments": '{"location": "北京"}'}}]},
        {"role": "tool", "tool_call_id": "c", "content": "晴"},
        {"role": "assistant", "content": "ok", "reasoning_content": "r", "name": "bot"},
    ]}),
    ("tools-none", {"messages": MSGS, "tools": None}),
    ("tools-none-auto", {"messages": MSGS, "tools": None, "tool_choice": "auto"}),
    ("tool-choice-none-without-tools", {"messages": MSGS, "tool_choice": "none"}),
    ("tool-choice-required", {"messages": MSGS, "tools": [TOOL], "tool_choice": "required"}),
    ("tool-choice-named", {"messages": MSGS, "tools": [TOOL], "tool_choice": {"type": "function", "function": {"name": "get_weather"}}}),
    ("tool-without-parameters", {"messages": MSGS, "tools": [{"type": "function", "function": {"name": "now"}}]}),
    ("parameters-without-type", {"messages": MSGS, "tools": [{"type": "function", "function": {"name": "f", "parameters": {"properties": {}}}}]}),
    ("stop-string", {"messages": MSGS, "stop": "END"}),
    ("stop-list", {"messages": MSGS, "stop": ["a", "b"]}),
    ("stream-usage", {"messages": MSGS, "stream": True, "stream_options": {"include_usage": True}}),
    ("sampling", {"messages": MSGS, "n": 2, "temperature": 0, "top_p": 1, "seed": -5, "presence_penalty": 2,
                  "frequency_penalty": -2, "top_k": -1, "min_p": 0.1, "repetition_penalty": 1.1}),
    ("logprobs", {"messages": MSGS, "logprobs": True, "top_logprobs": 5}),
    ("top-logprobs-zero", {"messages": MSGS, "top_logprobs": 0}),
    ("json-object", {"messages": MSGS, "response_format": {"type": "json_object"}}),
    ("json-schema", {"messages": MSGS, "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}}),
    ("text-format", {"messages": MSGS, "response_format": {"type": "text"}, "guided_regex": "a+"}),
    ("max-tokens", {"messages": MSGS, "max_tokens": 1, "max_completion_tokens": 5, "min_tokens": 1}),
    ("template-kwargs", {"messages": MSGS, "chat_template_kwargs": {"enable_thinking": False}}),
    ("vllm-extras", {"messages": MSGS, "stop_token_ids": [151329], "skip_special_tokens": False,
                     "include_stop_str_in_output": True, "ignore_eos": True}),
    ("unknown-fields", {"messages": MSGS, "logit_bias": {"1": 2}, "metadata": {"a": "b"}}),
]


@pytest.mark.parametrize("body", [a[1] for a in ACCEPTED], ids=[a[0] for a in ACCEPTED])
def test_accepted(body: dict[str, Any]) -> None:
    parse_request(ChatCompletionRequest, body)


def test_unknown_fields_are_kept_reachable() -> None:
    request = chat(logit_bias={"1": 2}, foo=1)
    assert request.unknown_fields() == {"foo": 1}
    assert request.logit_bias == {"1": 2}
    assert chat().unknown_fields() == {}


def test_tool_choice_defaults_follow_openai() -> None:
    """GLM-4 demo bug 4: the default was the string "None", which never equals "none"."""
    assert chat().tool_choice == "none"
    assert chat(tools=[TOOL]).tool_choice == "auto"
    assert chat(tools=None, tool_choice="auto").tool_choice == "none"
    assert not chat().tools_enabled and chat(tools=[TOOL]).tools_enabled
    assert not chat(tools=[TOOL], tool_choice="none").tools_enabled
    named = chat(tools=[TOOL], tool_choice={"type": "function", "function": {"name": "get_weather"}})
    assert isinstance(named.tool_choice, NamedToolChoice) and named.named_tool == "get_weather"


def test_conveniences() -> None:
    assert chat().num_choices == 1 and chat(n=3).num_choices == 3
    assert chat(stream=True, stream_options={"include_usage": True}).include_usage_in_stream
    assert not chat(stream=True).include_usage_in_stream
    assert message_text([{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]) == "a\nb"
    assert message_text(None) == ""


# --- rejected requests -------------------------------------------------------------------

REJECTED: list[tuple[str, dict[str, Any], str, str]] = [
    ("no-messages", {}, "messages", "messages is required"),
    ("empty-messages", {"messages": []}, "messages", "at least one message"),
    ("unknown-role", {"messages": [{"role": "robot", "content": "x"}]}, "messages[0].role", "unknown role 'robot'"),
    ("function-role", {"messages": [{"role": "function", "content": "x"}]}, "messages[0].role", "unknown role"),
    ("message-not-object", {"messages": ["hi"]}, "messages[0]", "JSON object"),
    ("missing-content", {"messages": [{"role": "user"}]}, "messages[0].content", "Field required"),
    ("image-part", {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]},
     "messages[0].content[0]", "'image_url' is not supported"),
    ("bad-history-arguments", {"messages": [{"role": "assistant", "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{oops"}}]}]},
     "messages[0].tool_calls[0].function.arguments", "invalid JSON"),
    ("history-arguments-array", {"messages": [{"role": "assistant", "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": "f", "arguments": "[1]"}}]}]},
     "messages[0].tool_calls[0].function.arguments", "must be a JSON object"),
    ("max-tokens-zero", {"max_tokens": 0}, "max_tokens", "max_tokens must be at least 1, got 0"),
    ("max-tokens-negative", {"max_tokens": -5}, "max_tokens", "at least 1"),
    ("max-completion-tokens-zero", {"max_completion_tokens": 0}, "max_completion_tokens", "at least 1"),
    ("n-zero", {"n": 0}, "n", "n must be at least 1"),
    ("temperature-negative", {"temperature": -0.1}, "temperature", "temperature must be >= 0"),
    ("temperature-string", {"temperature": "hot"}, "temperature", "valid number"),
    ("top-p-zero", {"top_p": 0}, "top_p", "top_p must be in (0, 1]"),
    ("top-p-above-one", {"top_p": 1.5}, "top_p", "(0, 1]"),
    ("presence-penalty", {"presence_penalty": 3}, "presence_penalty", "[-2, 2]"),
    ("frequency-penalty", {"frequency_penalty": -2.5}, "frequency_penalty", "[-2, 2]"),
    ("repetition-penalty", {"repetition_penalty": 0}, "repetition_penalty", "> 0"),
    ("top-k", {"top_k": -2}, "top_k", "top_k"),
    ("min-p", {"min_p": 1.5}, "min_p", "[0, 1]"),
    ("min-tokens-negative", {"min_tokens": -1}, "min_tokens", ">= 0"),
    ("min-above-max", {"min_tokens": 10, "max_tokens": 5}, "min_tokens", "must not exceed max_tokens (5)"),
    ("min-above-max-completion", {"min_tokens": 10, "max_tokens": 50, "max_completion_tokens": 5}, "min_tokens", "(5)"),
    ("seed-too-big", {"seed": 2**64}, "seed", "64-bit"),
    ("empty-stop", {"stop": ["a", ""]}, "stop", "non-empty"),
    ("negative-stop-token", {"stop_token_ids": [-1]}, "stop_token_ids[0]", "non-negative"),
    ("stream-options-without-stream", {"stream_options": {"include_usage": True}}, "stream_options", "only allowed when stream"),
    ("top-logprobs-without-logprobs", {"top_logprobs": 3}, "top_logprobs", "requires logprobs"),
    ("top-logprobs-negative", {"logprobs": True, "top_logprobs": -2}, "top_logprobs", ">= 0"),
    ("tools-empty", {"tools": []}, "tools", "must not be an empty array"),
    ("tool-parameters-array", {"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "array"}}}]},
     "tools[0].function.parameters", 'type "object"'),
    ("tool-parameters-string", {"tools": [{"type": "function", "function": {"name": "f", "parameters": "{}"}}]},
     "tools[0].function.parameters", "JSON-schema object"),
    ("tool-properties-not-object", {"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": [1]}}}]},
     "tools[0].function.parameters", "properties must be an object"),
    ("tool-property-not-schema", {"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {"a": 1}}}}]},
     "tools[0].function.parameters", "properties.a"),
    ("tool-required-not-list", {"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "required": "a"}}}]},
     "tools[0].function.parameters", "required"),
    ("tool-name-with-space", {"tools": [{"type": "function", "function": {"name": "get weather"}}]}, "tools[0].function.name", "invalid function name"),
    ("tool-name-with-tag", {"tools": [{"type": "function", "function": {"name": "a<b"}}]}, "tools[0].function.name", "invalid function name"),
    ("tool-type", {"tools": [{"type": "code_interpreter"}]}, "tools[0].type", "'function'"),
    ("duplicate-tools", {"tools": [TOOL, TOOL]}, "tools[1].function.name", "duplicate tool name"),
    ("tool-choice-capitalised-none", {"tools": [TOOL], "tool_choice": "None"}, "tool_choice", "invalid tool_choice 'None'"),
    ("tool-choice-unknown", {"tool_choice": "any"}, "tool_choice", "invalid tool_choice"),
    ("required-without-tools", {"tool_choice": "required"}, "tool_choice", '"required" needs a non-empty tools list'),
    ("named-without-tools", {"tool_choice": {"type": "function", "function": {"name": "f"}}}, "tool_choice", "needs a non-empty tools list"),
    ("named-not-declared", {"tools": [TOOL], "tool_choice": {"type": "function", "function": {"name": "nope"}}},
     "tool_choice.function.name", "'nope', which is not in tools (declared: get_weather)"),
    ("named-malformed", {"tools": [TOOL], "tool_choice": {"type": "function"}}, "tool_choice", "invalid named tool_choice"),
    ("named-wrong-type", {"tools": [TOOL], "tool_choice": {"type": "x", "function": {"name": "get_weather"}}}, "tool_choice", "type must be"),
    ("json-schema-without-schema", {"response_format": {"type": "json_schema", "json_schema": {"name": "x"}}},
     "response_format", "needs json_schema.schema"),
    ("response-format-unknown", {"response_format": {"type": "yaml"}}, "response_format", "yaml"),
    ("conflict-rf-guided", {"response_format": {"type": "json_object"}, "guided_regex": "a+"}, "guided_regex",
     "response_format (json_object) and guided_regex"),
    ("conflict-guided-guided", {"guided_json": {"type": "object"}, "guided_choice": ["a"]}, "guided_choice", "give only one"),
    ("conflict-structured", {"structured_outputs": {"regex": "a", "choice": ["b"]}}, "structured_outputs.choice", "give only one"),
    ("guided-json-invalid", {"guided_json": "{nope"}, "guided_json", "must be a JSON schema"),
    ("guided-choice-empty", {"guided_choice": []}, "guided_choice", "at least one choice"),
    ("structured-with-required-tool", {"tools": [TOOL], "tool_choice": "required", "guided_regex": "a"}, "tool_choice",
     "cannot be combined"),
]


@pytest.mark.parametrize(("body", "param", "fragment"), [r[1:] for r in REJECTED], ids=[r[0] for r in REJECTED])
def test_rejected(body: dict[str, Any], param: str, fragment: str) -> None:
    full = {"messages": MSGS, **body}
    if "messages" not in body and body == {}:
        full = {}
    with pytest.raises(InvalidRequest) as info:
        parse_request(ChatCompletionRequest, full)
    assert info.value.param == param, info.value.message
    assert fragment in info.value.message
    error = info.value.to_response().model_dump()
    assert error == {"error": {"message": info.value.message, "type": "invalid_request_error", "param": param, "code": "invalid_value"}}


def test_body_must_be_an_object() -> None:
    for body in ([], "x", None, 3):
        with pytest.raises(InvalidRequest, match="JSON object"):
            parse_request(ChatCompletionRequest, body)


def test_error_response_shape() -> None:
    error = ErrorResponse.build("boom", type="internal_server_error", code=500).model_dump()
    assert error == {"error": {"message": "boom", "type": "internal_server_error", "param": None, "code": 500}}


# --- sampling fields ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({}, {}),
        ({"temperature": 0.7, "top_p": 0.9}, {"temperature": 0.7, "top_p": 0.9}),
        ({"n": 2, "seed": 1, "top_k": 5, "min_p": 0.05}, {"n": 2, "seed": 1, "top_k": 5, "min_p": 0.05}),
        ({"presence_penalty": 0.5, "frequency_penalty": 0.1, "repetition_penalty": 1.05},
         {"presence_penalty": 0.5, "frequency_penalty": 0.1, "repetition_penalty": 1.05}),
        ({"stop": "END"}, {"stop": ["END"]}),
        ({"stop": ["a", "b"]}, {"stop": ["a", "b"]}),
        ({"stop_token_ids": [151329, 151336]}, {"stop_token_ids": [151329, 151336]}),
        ({"max_tokens": 10}, {"max_tokens": 10}),
        ({"max_completion_tokens": 20, "max_tokens": 10}, {"max_tokens": 20}),
        ({"min_tokens": 2, "ignore_eos": True}, {"min_tokens": 2, "ignore_eos": True}),
        ({"skip_special_tokens": False, "include_stop_str_in_output": True},
         {"skip_special_tokens": False, "include_stop_str_in_output": True}),
        ({"logprobs": True}, {"logprobs": 0}),
        ({"logprobs": True, "top_logprobs": 3}, {"logprobs": 3}),
        ({"logprobs": False, "top_logprobs": 0}, {}),
        ({"response_format": {"type": "text"}}, {}),
        ({"response_format": {"type": "json_object"}}, {"structured_outputs": {"json_object": True}}),
        ({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}},
         {"structured_outputs": {"json": {"type": "object"}}}),
        ({"guided_json": {"type": "object"}}, {"structured_outputs": {"json": {"type": "object"}}}),
        ({"guided_json": '{"type": "object"}'}, {"structured_outputs": {"json": {"type": "object"}}}),
        ({"guided_regex": "[a-z]+"}, {"structured_outputs": {"regex": "[a-z]+"}}),
        ({"guided_choice": ["是", "否"]}, {"structured_outputs": {"choice": ["是", "否"]}}),
        ({"guided_grammar": "root ::= 'a'"}, {"structured_outputs": {"grammar": "root ::= 'a'"}}),
        ({"structured_outputs": {"choice": ["x"]}}, {"structured_outputs": {"choice": ["x"]}}),
        ({"structured_outputs": {"json_object": True}}, {"structured_outputs": {"json_object": True}}),
        ({"structured_outputs": {"json_object": False}}, {}),
        ({"structured_outputs": {"json": {"type": "string"}}}, {"structured_outputs": {"json": {"type": "string"}}}),
        ({"user": "u", "stream": True, "chat_template_kwargs": {"a": 1}}, {}),
    ],
)
def test_request_sampling_fields_chat(extra: dict[str, Any], expected: dict[str, Any]) -> None:
    assert request_sampling_fields(chat(**extra)) == expected


def test_max_tokens_unset_means_no_limit_field() -> None:
    """Unset max_tokens must not become vLLM's SamplingParams default of 16."""
    assert "max_tokens" not in request_sampling_fields(chat())
    assert "max_tokens" not in request_sampling_fields(completion())


def test_explicit_null_is_not_a_setting() -> None:
    assert request_sampling_fields(chat(temperature=None, stop=None, n=None)) == {}


# --- completions -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("你好", ["你好"]),
        (["a", "b"], ["a", "b"]),
        ([1, 2, 3], [[1, 2, 3]]),
        ([[1, 2], [3]], [[1, 2], [3]]),
    ],
)
def test_completion_prompt_forms(prompt: Any, expected: list[Any]) -> None:
    assert completion(prompt=prompt).prompts() == expected


@pytest.mark.parametrize(
    ("extra", "param", "fragment"),
    [
        ({"suffix": "tail"}, "suffix", "suffix is not supported"),
        ({"prompt": ""}, "prompt", "empty"),
        ({"prompt": []}, "prompt", "empty"),
        ({"prompt": ["a", ""]}, "prompt", "empty prompt"),
        ({"prompt": [1, -1]}, "prompt[1]", "non-negative"),
        ({"prompt": [[1], []]}, "prompt", "empty prompt"),
        ({"prompt": {"x": 1}}, "prompt", "valid"),
        ({"logprobs": -1}, "logprobs", ">= 0"),
        ({"max_tokens": 0}, "max_tokens", "at least 1"),
        ({"temperature": -1}, "temperature", ">= 0"),
        ({"response_format": {"type": "json_object"}, "guided_choice": ["a"]}, "guided_choice", "give only one"),
    ],
)
def test_completion_rejected(extra: dict[str, Any], param: str, fragment: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        completion(**extra)
    assert info.value.param == param and fragment in info.value.message


def test_completion_requires_prompt() -> None:
    with pytest.raises(InvalidRequest, match="prompt is required"):
        parse_request(CompletionRequest, {"model": "glm"})


def test_completion_sampling_fields() -> None:
    request = completion(max_tokens=7, logprobs=2, echo=True, stop="x", temperature=0, suffix="")
    assert request_sampling_fields(request) == {"max_tokens": 7, "logprobs": 2, "stop": ["x"], "temperature": 0}
    assert request.echo is True


# --- responses ---------------------------------------------------------------------------


def test_chunk_wire_format_is_openai_compatible() -> None:
    chunk = ChatCompletionChunk(
        id=new_id("chatcmpl"),
        model="glm",
        choices=[ChatCompletionStreamChoice(index=0, delta=DeltaMessage(role="assistant", content=""))],
    )
    wire = chunk.to_wire()
    assert wire["choices"][0] == {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}
    assert "usage" not in wire
    SdkChunk.model_validate(wire)


def test_completion_response_is_openai_compatible() -> None:
    response = CompletionResponse(model="glm", choices=[CompletionChoice(index=0, text="续写", finish_reason="length")])
    parsed = SdkCompletion.model_validate(json.loads(response.model_dump_json()))
    assert parsed.choices[0].text == "续写" and parsed.object == "text_completion"


def test_ids_are_unique() -> None:
    """GLM-4 demo bug 2: one shared request id, later time.time(), which collides."""
    ids = {new_id("chatcmpl") for _ in range(1000)}
    assert len(ids) == 1000 and all(i.startswith("chatcmpl-") for i in ids)


def test_model_list() -> None:
    data = ModelList(data=[ModelCard(id="THUDM/glm-4-9b-chat", max_model_len=8192)]).model_dump()
    assert data["object"] == "list" and data["data"][0]["object"] == "model"


# --- tokenize / detokenize --------------------------------------------------------------------


def test_tokenize_requests() -> None:
    assert parse_request(TokenizeRequest, {"prompt": "你好"}).prompt == "你好"
    chat_form = parse_request(TokenizeRequest, {"messages": MSGS, "add_generation_prompt": False})
    assert chat_form.messages is not None and not chat_form.add_generation_prompt
    for body in ({}, {"prompt": "a", "messages": MSGS}):
        with pytest.raises(InvalidRequest, match="exactly one of prompt or messages"):
            parse_request(TokenizeRequest, body)
    with pytest.raises(InvalidRequest, match="unknown role"):
        parse_request(TokenizeRequest, {"messages": [{"role": "x", "content": "y"}]})


def test_detokenize_requests() -> None:
    assert parse_request(DetokenizeRequest, {"tokens": [1, 2]}).tokens == [1, 2]
    with pytest.raises(InvalidRequest) as info:
        parse_request(DetokenizeRequest, {"tokens": [1, -2]})
    assert info.value.param == "tokens[1]"
    with pytest.raises(InvalidRequest):
        parse_request(DetokenizeRequest, {})
