"""Bad input gets an OpenAI error object with a 4xx, never a 500 or a hang;
engine failures are a clean 500 (or an in-band stream error); API keys; disconnects."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from glm_vllm_compat.testing import fake_vllm

from .conftest import MAX_MODEL_LEN, LiveServer, start_server
from .test_app import USER, WEATHER, _raw_events

MODEL = "glm-test-glm45"


def _post(server: LiveServer, body: Any, path: str = "/v1/chat/completions", **kwargs: Any) -> httpx.Response:
    content = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return httpx.post(server.url + path, content=content, headers={"content-type": "application/json"}, timeout=10, **kwargs)


def _error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["message"]
    return body["error"]  # type: ignore[no-any-return]


BAD_REQUESTS: list[tuple[Any, int, str | None]] = [
    (b"{not json", 400, None),
    (b"[1, 2]", 400, None),
    ({"model": MODEL}, 400, "messages"),
    ({"model": MODEL, "messages": "hi"}, 400, "messages"),
    ({"model": MODEL, "messages": [{"role": "wizard", "content": "x"}]}, 400, None),
    ({"model": MODEL, "messages": USER, "max_tokens": -1}, 400, "max_tokens"),
    ({"model": MODEL, "messages": USER, "max_tokens": 0}, 400, "max_tokens"),
    ({"model": MODEL, "messages": USER, "max_tokens": 10**6}, 400, "max_tokens"),
    ({"model": MODEL, "messages": USER, "temperature": -1}, 400, "temperature"),
    ({"model": MODEL, "messages": USER, "n": 0}, 400, "n"),
    ({"model": MODEL, "messages": USER, "max_tokens": "many"}, 400, "max_tokens"),
    ({"model": MODEL, "messages": USER, "tools": [{"type": "function", "function": {"name": "f", "parameters": "nope"}}]}, 400, None),
    ({"model": MODEL, "messages": USER, "tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "nope"}}}, 400, None),
    ({"model": MODEL, "messages": USER, "tool_choice": "required"}, 400, "tool_choice"),
    ({"model": MODEL, "messages": USER, "top_logprobs": 2}, 400, "top_logprobs"),
    ({"model": MODEL, "messages": [{"role": "user", "content": "长" * (MAX_MODEL_LEN * 2)}]}, 400, "messages"),
    ({"model": "gpt-4", "messages": USER}, 404, "model"),
]


@pytest.mark.parametrize(("body", "status", "param"), BAD_REQUESTS)
def test_bad_chat_requests(glm45: LiveServer, body: Any, status: int, param: str | None) -> None:
    error = _error(_post(glm45, body), status)
    if param is not None:
        assert error["param"] is not None and error["param"].startswith(param)
    assert not glm45.engine.requests  # nothing reached the engine


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": MODEL}, "prompt"),
        ({"model": MODEL, "prompt": ""}, "prompt"),
        ({"model": MODEL, "prompt": "x", "suffix": "y"}, "suffix"),
        ({"model": MODEL, "prompt": [[-1]]}, "prompt"),
        ({"model": MODEL, "prompt": "x", "logprobs": -2}, "logprobs"),
    ],
)
def test_bad_completion_requests(glm45: LiveServer, body: Any, param: str) -> None:
    assert _error(_post(glm45, body, "/v1/completions"), 400)["param"].startswith(param)


def test_unknown_route_and_method(glm45: LiveServer) -> None:
    _error(httpx.get(glm45.url + "/v1/nothing"), 404)
    _error(httpx.get(glm45.url + "/v1/chat/completions"), 405)


def test_openai_client_sees_typed_errors(glm45: LiveServer) -> None:
    client = glm45.client()
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="other", messages=USER)
    with pytest.raises(openai.BadRequestError, match="max_tokens"):
        client.chat.completions.create(model=MODEL, messages=USER, max_tokens=-5)


def test_tools_null_is_fine(glm45: LiveServer) -> None:
    """Reference bug: tools=None raised "'NoneType' object is not iterable" and a 500."""
    glm45.engine.script("你好")
    response = _post(glm45, {"model": MODEL, "messages": USER, "tools": None, "tool_choice": None})
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == "你好"


def test_default_tool_choice_with_tools_is_auto(glm45: LiveServer) -> None:
    """Reference bug: tool_choice defaulted to the string "None" and tools were never parsed."""
    glm45.engine.script("<tool_call>get_weather\n<arg_key>location</arg_key>\n<arg_value>杭州</arg_value>\n</tool_call>")
    message = _post(glm45, {"model": MODEL, "messages": USER, "tools": [WEATHER]}).json()["choices"][0]["message"]
    assert message["tool_calls"][0]["function"]["arguments"] == '{"location": "杭州"}'


def test_user_system_prompt_is_kept_with_tools(glm45: LiveServer) -> None:
    """Reference bug: the user's system prompt was replaced when tools were present."""
    messages = [{"role": "system", "content": "你是一个天气助手。"}, *USER]
    _post(glm45, {"model": MODEL, "messages": messages, "tools": [WEATHER]})
    prompt = glm45.state.engine.decode(glm45.engine.requests[-1]["prompt"]["prompt_token_ids"])
    assert "你是一个天气助手。" in prompt and "get_weather" in prompt


def test_tool_history_round_trip(glm45: LiveServer) -> None:
    """OpenAI-shaped history (arguments as a JSON string, role tool) renders as GLM-4.5 expects."""
    history = [
        *USER,
        {"role": "assistant", "content": None, "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"location": "北京"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": '{"temp": 20}'},
    ]
    glm45.engine.script("北京今天20度。")
    response = _post(glm45, {"model": MODEL, "messages": history, "tools": [WEATHER]})
    assert response.status_code == 200
    prompt = glm45.state.engine.decode(glm45.engine.requests[-1]["prompt"]["prompt_token_ids"])
    assert "<arg_key>location</arg_key>" in prompt and "<arg_value>北京</arg_value>" in prompt
    assert "<|observation|>" in prompt and '{"temp": 20}' in prompt


def test_engine_failure_is_a_clean_500(glm45: LiveServer, caplog: pytest.LogCaptureFixture) -> None:
    glm45.engine.script("部分", error=RuntimeError("engine exploded"))
    with caplog.at_level(logging.ERROR):
        error = _error(_post(glm45, {"model": MODEL, "messages": USER}), 500)
    assert error["type"] == "internal_server_error"
    assert "engine exploded" not in json.dumps(error)  # the client gets a clean object; the log gets the traceback
    logged = [r for r in caplog.records if r.exc_info and "engine exploded" in str(r.exc_info[1])]
    assert logged and logged[0].levelno == logging.ERROR


def test_engine_failure_in_a_started_stream_is_an_error_event(glm45: LiveServer) -> None:
    glm45.engine.script("部分", error=RuntimeError("engine exploded"))
    events = _raw_events(glm45, {})
    assert events[-1] == "[DONE]"
    assert "error" in events[-2] and events[-2]["error"]["code"]
    assert "".join(e["choices"][0]["delta"].get("content", "") for e in events[:-2] if e.get("choices")) == "部分"


def test_client_disconnect_aborts_the_request(tokenizers: dict[str, Any]) -> None:
    for live in start_server(tokenizers["glm45"], "glm45", piece_delay=0.05):
        live.engine.script("很长的回答" * 40)
        body = {"model": MODEL, "messages": USER, "stream": True}
        with httpx.stream("POST", live.url + "/v1/chat/completions", json=body, timeout=10) as response:
            for line in response.iter_lines():
                if '"content": "很"' in line or '"content": "长"' in line:
                    break
        deadline = time.monotonic() + 5
        while live.engine.get_num_unfinished_requests() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert live.engine.get_num_unfinished_requests() == 0
        assert live.engine.aborted == [live.engine.requests[-1]["request_id"]]


@pytest.fixture(scope="module")
def keyed(tokenizers: dict[str, Any]) -> Iterator[LiveServer]:
    yield from start_server(tokenizers["glm45"], "glm45", api_key="s3cret-key")


def test_api_key(keyed: LiveServer, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret-key"}):
            error = _error(httpx.get(keyed.url + "/v1/models", headers=headers), 401)
            assert error["code"] == "invalid_api_key"
        assert httpx.get(keyed.url + "/health").status_code == 200
        assert httpx.post(keyed.url + "/tokenize", json={"prompt": "x"}).status_code == 401
        assert [m.id for m in keyed.client().models.list().data] == ["glm-test-glm45"]
    assert "s3cret-key" not in caplog.text


def test_unsupported_on_old_vllm_is_a_clear_400(glm45: LiveServer, tmp_path: Any) -> None:
    """On a vLLM without structured outputs (0.5.5, recorded surface), a constrained request is refused."""
    with fake_vllm.installed("0.5.5", tmp_path):
        import glm_vllm_compat

        glm_vllm_compat.reset()
        try:
            body = {"model": MODEL, "messages": USER, "response_format": {"type": "json_object"}}
            error = _error(_post(glm45, body), 400)
            assert "0.5.5" in error["message"] and error["param"] == "structured_outputs"
            assert error["code"] == "unsupported_on_this_vllm"
        finally:
            glm_vllm_compat.reset()


# --------------------------------------------------------------------------
# Hardening (issue 10): no 5xx for client input, every disconnect aborts
# --------------------------------------------------------------------------


class VLLMValidationError(Exception):
    """vLLM 0.32's validation error: an Exception, not a ValueError (matched by class name)."""

    def __init__(self, message: str, *, parameter: str | None = None, value: Any = None) -> None:
        super().__init__(message)
        self.parameter = parameter
        self.value = value


HUGE_OR_ODD: list[tuple[str, dict[str, Any], str]] = [
    ("/v1/chat/completions", {"model": MODEL, "messages": USER, "top_k": 2**64}, "top_k"),
    ("/v1/chat/completions", {"model": MODEL, "messages": USER, "top_k": 2**63}, "top_k"),
    ("/v1/chat/completions", {"model": MODEL, "messages": USER, "seed": 2**64}, "seed"),
    ("/v1/chat/completions", {"model": MODEL, "messages": USER, "n": 2**40}, "n"),
    ("/v1/chat/completions", {"model": MODEL, "messages": USER, "n": 129}, "n"),
    ("/v1/chat/completions", {"model": MODEL, "messages": USER, "logprobs": True, "top_logprobs": 21}, "top_logprobs"),
    ("/v1/chat/completions", {"model": MODEL, "messages": USER, "logprobs": True, "top_logprobs": -1}, "top_logprobs"),
    ("/v1/chat/completions", {"model": MODEL, "messages": USER, "stop_token_ids": [10**6]}, "stop_token_ids[0]"),
    ("/v1/chat/completions", {"model": MODEL, "messages": USER, "stop_token_ids": [2**40]}, "stop_token_ids[0]"),
    ("/v1/chat/completions", {"model": MODEL, "messages": USER, "stop": ["a", "b", "c", "d", "e"]}, "stop"),
    ("/v1/chat/completions", {"model": MODEL, "messages": USER, "stop": ["x"] * 1000}, "stop"),
    ("/v1/chat/completions", {"model": MODEL, "messages": USER, "logit_bias": {"abc": 1}}, "logit_bias.abc"),
    ("/v1/chat/completions", {"model": MODEL, "messages": USER, "logit_bias": {"1": 101}}, "logit_bias.1"),
    ("/v1/chat/completions", {"model": MODEL, "messages": USER, "logit_bias": {"999999": 1}}, "logit_bias.999999"),
    ("/v1/completions", {"model": MODEL, "prompt": "x", "logprobs": 50}, "logprobs"),
    ("/v1/completions", {"model": MODEL, "prompt": [1, 10**6]}, "prompt[1]"),
    ("/v1/completions", {"model": MODEL, "prompt": [1, 2**33]}, "prompt[1]"),
    ("/v1/completions", {"model": MODEL, "prompt": [[1], [2**70]]}, "prompt[1][0]"),
    ("/detokenize", {"model": MODEL, "tokens": [2**33]}, "tokens[0]"),
    ("/detokenize", {"model": MODEL, "tokens": [10**6]}, "tokens[0]"),
]


@pytest.mark.parametrize(("path", "body", "param"), HUGE_OR_ODD)
def test_numbers_the_engine_cannot_represent_are_400(glm45: LiveServer, path: str, body: dict[str, Any], param: str) -> None:
    """Issue 10 item 1: OverflowError / vLLM validation errors used to be 500."""
    assert _error(_post(glm45, body, path), 400)["param"] == param
    assert not glm45.engine.requests


SURROGATE = '"a\\ud800b"'
SURROGATE_BODIES = [
    ("/v1/chat/completions", '{"messages": [{"role": "user", "content": %s}]}' % SURROGATE, "messages[0].content"),
    ("/v1/chat/completions", '{"messages": [{"role": "user", "content": "x"}], "stop": [%s]}' % SURROGATE, "stop[0]"),
    ("/v1/completions", '{"prompt": %s}' % SURROGATE, "prompt"),
    ("/tokenize", '{"prompt": %s}' % SURROGATE, "prompt"),
    ("/tokenize", '{"messages": [{"role": "user", "content": %s}]}' % SURROGATE, "messages[0].content"),
]


@pytest.mark.parametrize(("path", "raw", "param"), SURROGATE_BODIES)
def test_lone_surrogates_are_400(glm45: LiveServer, path: str, raw: str, param: str) -> None:
    error = _error(_post(glm45, raw, path), 400)
    assert error["param"] == param and error["code"] == "invalid_unicode"


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/completions", "/tokenize", "/detokenize"])
def test_deep_json_is_400(glm45: LiveServer, path: str) -> None:
    assert _error(_post(glm45, b"[" * 100_000, path), 400)["code"] == "invalid_json"
    assert _error(_post(glm45, b'{"messages": ' + b"[" * 500 + b"]" * 500 + b"}", path), 400)["code"] == "invalid_json"


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/completions"])
def test_vllm_validation_errors_are_400_with_param(glm45: LiveServer, stream: bool, path: str) -> None:
    """vLLM's own rejection (raised when the engine takes the request) is a 400, streamed or not:
    a stream starts only once the engine accepted the request."""
    glm45.engine.script([], error=VLLMValidationError("Invalid regex", parameter="structured_outputs", value="("))
    body: dict[str, Any] = {"model": MODEL, "stream": stream, "guided_regex": "("}
    body.update({"messages": USER} if path.endswith("chat/completions") else {"prompt": "x"})
    error = _error(_post(glm45, body, path), 400)
    assert error["param"] == "structured_outputs" and "Invalid regex" in error["message"]


def test_engine_error_finish_is_an_error_not_an_empty_stop(glm45: LiveServer) -> None:
    """A constraint that fails to compile in the engine (finish_reason "error", nothing generated) is a 400."""
    glm45.engine.script([""], finish_reason="error")
    body = {"model": MODEL, "messages": USER, "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}}
    assert _error(_post(glm45, body), 400)["param"] == "response_format"
    glm45.engine.script(["部分"], finish_reason="error")
    assert _error(_post(glm45, {"model": MODEL, "messages": USER}), 500)["code"] == "engine_error"


def test_identical_constraints_under_both_names_are_one(glm45: LiveServer) -> None:
    body = {"model": MODEL, "messages": USER, "guided_regex": "a+", "structured_outputs": {"regex": "a+"}}
    assert _post(glm45, body).status_code == 200
    body["structured_outputs"] = {"regex": "b+"}
    assert "conflicting" in _error(_post(glm45, body), 400)["message"]


def test_logit_bias_reaches_the_engine(glm45: LiveServer) -> None:
    assert _post(glm45, {"model": MODEL, "messages": USER, "logit_bias": {"5": -100, "7": 2.5}}).status_code == 200
    assert glm45.engine.requests[-1]["sampling_params"].logit_bias == {5: -100.0, 7: 2.5}


def test_legacy_functions_become_tools(glm45: LiveServer) -> None:
    glm45.engine.script("<tool_call>get_weather\n<arg_key>location</arg_key>\n<arg_value>杭州</arg_value>\n</tool_call>")
    body = {"model": MODEL, "messages": USER, "functions": [WEATHER["function"]], "function_call": {"name": "get_weather"}}
    message = _post(glm45, body).json()["choices"][0]["message"]
    assert message["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": '{"location": "杭州"}'}
    both = {"model": MODEL, "messages": USER, "functions": [WEATHER["function"]], "tools": [WEATHER]}
    assert _error(_post(glm45, both), 400)["param"] == "functions"


def test_unknown_fields_are_logged_once_per_name(glm45: LiveServer, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="glm_vllm_compat.server"):
        for _ in range(3):
            assert _post(glm45, {"model": MODEL, "messages": USER, "frobnicate": 1}).status_code == 200
    assert caplog.text.count("frobnicate") == 1


def test_stream_engine_failure_after_start_ends_with_done(glm45: LiveServer) -> None:
    glm45.engine.script(["a", "b"], finish_reason="error")
    events = _raw_events(glm45, {})
    assert events[-1] == "[DONE]" and events[-2]["error"]["code"] == "engine_error"


def test_non_streaming_disconnect_aborts_the_request(tokenizers: dict[str, Any]) -> None:
    """Issue 10 item 2: abandoned non-streamed requests kept generating."""
    for live in start_server(tokenizers["glm45"], "glm45", piece_delay=0.05):
        for path, extra in (("/v1/chat/completions", {"messages": USER}), ("/v1/completions", {"prompt": "x"})):
            live.engine.script("很长的回答" * 40)
            with pytest.raises(httpx.ReadTimeout):
                httpx.post(live.url + path, json={"model": MODEL, **extra}, timeout=0.4)
            deadline = time.monotonic() + 5
            while live.engine.get_num_unfinished_requests() and time.monotonic() < deadline:
                time.sleep(0.05)
            assert live.engine.get_num_unfinished_requests() == 0
            assert live.engine.requests[-1]["request_id"] in live.engine.aborted


def test_metrics_has_engine_side_counts(glm45: LiveServer) -> None:
    text = httpx.get(glm45.url + "/metrics").text
    for name in ("unfinished_requests", "num_requests_running", "num_requests_waiting"):
        assert f"# TYPE glm_vllm_compat_{name} gauge" in text
    assert "glm_vllm_compat_unfinished_requests 0" in text


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
def test_bearer_scheme_is_case_insensitive(keyed: LiveServer, scheme: str) -> None:
    assert httpx.get(keyed.url + "/v1/models", headers={"Authorization": f"{scheme} s3cret-key"}).status_code == 200


def test_two_authorization_headers_are_refused(keyed: LiveServer) -> None:
    for pair in (["Bearer wrong", "Bearer s3cret-key"], ["Bearer s3cret-key", "Bearer s3cret-key"]):
        headers = [("Authorization", value) for value in pair]
        response = httpx.get(keyed.url + "/v1/models", headers=headers)
        assert response.status_code == 401 and "More than one" in response.json()["error"]["message"]


# vLLM's error classes on the lines that have them, rebuilt by name and base
# (vllm/exceptions.py 0.32: VLLMError(Exception) -> VLLMClientError / VLLMServerError).
class VLLMError(Exception):
    pass


class VLLMClientError(VLLMError):
    pass


class VLLMNotFoundError(VLLMClientError):
    pass


class VLLMUnprocessableEntityError(VLLMClientError):
    def __init__(self, message: str, *, parameter: str | None = None) -> None:
        super().__init__(message)
        self.parameter = parameter


class GracefulHTTPError(VLLMError):
    def __init__(self, message: str, http_status: int) -> None:
        super().__init__(message)
        self.message = message
        self.http_status = http_status


class QueueOverflowError(GracefulHTTPError):
    def __init__(self) -> None:
        super().__init__("The engine is currently busy", 503)


class EngineDeadError(Exception):
    pass


@pytest.mark.parametrize(
    ("exc", "status", "param"),
    [
        (VLLMValidationError("bad logprobs", parameter="logprobs", value=50), 400, "logprobs"),
        (VLLMUnprocessableEntityError("bad image", parameter="messages"), 400, "messages"),
        (VLLMClientError("client"), 400, None),
        (VLLMNotFoundError("no lora"), 404, None),
        (QueueOverflowError(), 503, None),
        (EngineDeadError("dead"), 503, None),
        (RuntimeError("boom"), 500, None),
    ],
)
def test_vllm_error_classes_of_every_line(exc: Exception, status: int, param: str | None) -> None:
    from glm_vllm_compat.server._errors import from_exception

    error = from_exception(exc)
    assert (error.status, error.param) == (status, param)


def test_param_of_a_wrapped_vllm_rejection() -> None:
    """The adapter wraps SamplingParams' rejection (InvalidParameter ... from VLLMValidationError): param kept."""
    from glm_vllm_compat._errors import InvalidParameter
    from glm_vllm_compat.server._errors import from_exception

    try:
        try:
            raise VLLMValidationError("min_tokens must be <= max_tokens", parameter="min_tokens")
        except VLLMValidationError as exc:
            raise InvalidParameter("vLLM 0.32.0 rejected the sampling parameters") from exc
    except InvalidParameter as wrapped:
        error = from_exception(wrapped)
    assert (error.status, error.param) == (400, "min_tokens")


def test_logit_bias_on_a_release_without_it_is_a_clear_400(glm45: LiveServer, tmp_path: Any) -> None:
    with fake_vllm.installed("0.5.5", tmp_path):
        import glm_vllm_compat

        glm_vllm_compat.reset()
        try:
            error = _error(_post(glm45, {"model": MODEL, "messages": USER, "logit_bias": {"5": 1}}), 400)
            assert error["param"] == "logit_bias" and "0.6.3" in error["message"] and "0.5.5" in error["message"]
        finally:
            glm_vllm_compat.reset()
