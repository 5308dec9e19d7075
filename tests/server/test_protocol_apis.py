"""The Anthropic and Responses protocol models: pure pydantic, precise 400s (no server needed)."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from glm_vllm_compat.server.protocol import InvalidRequest, parse_request
from glm_vllm_compat.server.protocol_anthropic import MessagesRequest, error_body, error_type
from glm_vllm_compat.server.protocol_responses import FunctionCallItem, MessageItem, ResponsesRequest


def test_importable_without_vllm_or_torch() -> None:
    code = (
        "import sys; import glm_vllm_compat.server.protocol_anthropic, glm_vllm_compat.server.protocol_responses; "
        "bad = [m for m in ('vllm', 'torch', 'transformers', 'starlette') if m in sys.modules]; print(bad); sys.exit(bool(bad))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


USER = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "m", "messages": USER}, "max_tokens"),
        ({"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": [{"type": "document"}]}]}, "messages[0].content[0].type"),
        ({"model": "m", "max_tokens": 1, "messages": USER, "tools": [{"name": "a b", "input_schema": {}}]}, "tools[0].name"),
        ({"model": "m", "max_tokens": 1, "messages": USER, "tools": [{"type": "bash_20250124", "name": "bash"}]}, "tools[0].type"),
        ({"model": "m", "max_tokens": 1, "messages": USER, "system": [{"type": "image"}]}, "system[0].type"),
        ({"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": "a\ud800"}]}, "messages[0].content"),
    ],
)
def test_messages_request_errors_name_the_field(body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        parse_request(MessagesRequest, body)
    assert info.value.param == param, info.value.message


@pytest.mark.parametrize(("status", "kind"), [(400, "invalid_request_error"), (401, "authentication_error"), (404, "not_found_error"), (413, "request_too_large"), (500, "api_error"), (502, "api_error"), (503, "overloaded_error")])
def test_anthropic_error_types(status: int, kind: str) -> None:
    assert error_type(status) == kind
    assert error_body(status, "m") == {"type": "error", "error": {"type": kind, "message": "m"}}


def test_responses_items() -> None:
    req = parse_request(
        ResponsesRequest,
        {
            "input": [
                {"role": "user", "content": "q"},
                {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"},
                {"type": "function_call_output", "call_id": "c", "output": [{"type": "input_text", "text": "r"}]},
            ]
        },
    )
    items = req.items()
    assert isinstance(items[0], MessageItem) and isinstance(items[1], FunctionCallItem)
    assert parse_request(ResponsesRequest, {"input": "q"}).items()[0].text() == "q"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": "q", "tools": [{"type": "file_search"}]}, "tools[0].type"),
        ({"input": "q", "tools": [{"type": "function", "function": {"name": "f"}}]}, "tools[0].function"),
        ({"input": [{"type": "computer_call"}]}, "input[0].type"),
        ({"input": "q", "store": True, "background": True}, "background"),
        ({"input": "q", "include": ["file_search_call.results"]}, "include"),
        ({"input": "q", "unknown": 1}, "unknown"),
    ],
)
def test_responses_request_errors_name_the_field(body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        parse_request(ResponsesRequest, body)
    assert info.value.param == param, info.value.message
