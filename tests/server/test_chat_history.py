"""OpenAI messages -> GLM template messages and template variables, per family."""

from __future__ import annotations

import copy
import json
from typing import Any

import jinja2
import pytest

from glm_vllm_compat.server._chat_history import (
    template_kwargs,
    template_tools,
    thinking_enabled,
    to_template_messages,
)
from glm_vllm_compat.server.protocol import ChatCompletionRequest, InvalidRequest, parse_request

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "查询天气",
            "parameters": {"type": "object", "properties": {"location": {"type": "string"}}},
        },
    },
    {"type": "function", "function": {"name": "get_time"}},
]

CONVERSATION: list[dict[str, Any]] = [
    {"role": "system", "content": "你是一个天气助手。"},
    {"role": "user", "content": [{"type": "text", "text": "北京"}, {"type": "text", "text": "天气？"}]},
    {
        "role": "assistant",
        "content": None,
        "reasoning_content": "用户想查北京天气",
        "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"location": "北京"}'}},
            {"id": "call_2", "type": "function", "function": {"name": "get_time", "arguments": ""}},
        ],
    },
    {"role": "tool", "tool_call_id": "call_1", "content": "晴，25度"},
    {"role": "tool", "tool_call_id": "call_2", "content": "10:00"},
    {"role": "assistant", "content": "北京今天晴，25度。"},
    {"role": "user", "content": "谢谢"},
]

EXPECTED_GLM45 = [
    {"role": "system", "content": "你是一个天气助手。"},
    {"role": "user", "content": "北京\n天气？"},
    {
        "role": "assistant",
        "content": "",
        "reasoning_content": "用户想查北京天气",
        "reasoning": "用户想查北京天气",
        "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": {"location": "北京"}}},
            {"id": "call_2", "type": "function", "function": {"name": "get_time", "arguments": {}}},
        ],
    },
    {"role": "tool", "tool_call_id": "call_1", "content": "晴，25度"},
    {"role": "tool", "tool_call_id": "call_2", "content": "10:00"},
    {"role": "assistant", "content": "北京今天晴，25度。"},
    {"role": "user", "content": "谢谢"},
]

EXPECTED_GLM4 = [
    {"role": "system", "content": "你是一个天气助手。"},
    {"role": "user", "content": "北京\n天气？"},
    {"role": "assistant", "metadata": "get_weather", "content": '{"location": "北京"}'},
    {"role": "assistant", "metadata": "get_time", "content": "{}"},
    {"role": "observation", "content": "晴，25度"},
    {"role": "observation", "content": "10:00"},
    {"role": "assistant", "metadata": "", "content": "北京今天晴，25度。"},
    {"role": "user", "content": "谢谢"},
]


def req(**extra: Any) -> ChatCompletionRequest:
    return parse_request(ChatCompletionRequest, {"model": "glm", "messages": CONVERSATION, **extra})


@pytest.mark.parametrize(("family", "expected"), [("glm45", EXPECTED_GLM45), ("glm47", EXPECTED_GLM45), ("glm4", EXPECTED_GLM4)])
def test_conversation_from_dicts(family: str, expected: list[dict[str, Any]]) -> None:
    assert to_template_messages(CONVERSATION, family) == expected


@pytest.mark.parametrize(("family", "expected"), [("glm45", EXPECTED_GLM45), ("glm4", EXPECTED_GLM4)])
def test_conversation_from_request_models(family: str, expected: list[dict[str, Any]]) -> None:
    assert to_template_messages(req(tools=TOOLS).messages, family) == expected


def test_input_is_not_modified() -> None:
    before = copy.deepcopy(CONVERSATION)
    to_template_messages(CONVERSATION, "glm4", tools=TOOLS)
    to_template_messages(CONVERSATION, "glm45")
    assert CONVERSATION == before


@pytest.mark.parametrize("family", ["glm4", "glm45", "glm47"])
@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ({"role": "developer", "content": "Be brief."}, {"role": "system", "content": "Be brief."}),
        ({"role": "system", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}, {"role": "system", "content": "a\nb"}),
        ({"role": "user", "content": ""}, {"role": "user", "content": ""}),
    ],
)
def test_simple_roles(family: str, message: dict[str, Any], expected: dict[str, Any]) -> None:
    assert to_template_messages([message], family) == [expected]


def test_tool_role_per_family() -> None:
    """The 9B template would print a non-existent <|tool|> token; GLM-4.5 groups `tool` itself."""
    tool = {"role": "tool", "content": "42"}
    assert to_template_messages([tool], "glm4") == [{"role": "observation", "content": "42"}]
    assert to_template_messages([tool], "glm45") == [{"role": "tool", "content": "42"}]


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ({"role": "assistant", "content": "x", "reasoning_content": "r1", "reasoning": "r2"}, "r1"),
        ({"role": "assistant", "content": "x", "reasoning": "r2"}, "r2"),
        ({"role": "assistant", "content": "x", "reasoning_content": ""}, ""),
        ({"role": "assistant", "content": "x"}, None),
    ],
)
def test_reasoning_history(message: dict[str, Any], expected: str | None) -> None:
    converted = to_template_messages([message], "glm45")[0]
    assert converted.get("reasoning_content") == expected
    assert converted.get("reasoning") == expected  # templates read either name
    assert "reasoning_content" not in to_template_messages([message], "glm4")[0]


def test_glm4_assistant_text_and_calls() -> None:
    message = {
        "role": "assistant",
        "content": "我来查。",
        "tool_calls": [{"id": "c", "type": "function", "function": {"name": "get_weather", "arguments": {"location": "上海"}}}],
    }
    assert to_template_messages([message], "glm4") == [
        {"role": "assistant", "metadata": "", "content": "我来查。"},
        {"role": "assistant", "metadata": "get_weather", "content": '{"location": "上海"}'},
    ]


def test_arguments_json_string_becomes_a_dict() -> None:
    """The GLM-4.5 template iterates arguments.items(); OpenAI clients send a JSON string."""
    converted = to_template_messages(CONVERSATION, "glm45")[2]
    assert converted["tool_calls"][0]["function"]["arguments"] == {"location": "北京"}


@pytest.mark.parametrize("arguments", ["{not json", "[1, 2]", '"text"'])
def test_bad_history_arguments_are_a_client_error(arguments: str) -> None:
    message = {"role": "assistant", "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": arguments}}]}
    with pytest.raises(InvalidRequest) as info:
        to_template_messages([{"role": "user", "content": "hi"}, message], "glm45")
    assert info.value.param == "messages[1].tool_calls[0].function.arguments"


def test_unknown_role_and_family() -> None:
    with pytest.raises(InvalidRequest):
        to_template_messages([{"role": "function", "content": "x"}], "glm45")
    with pytest.raises(ValueError, match="glm4, glm45, glm47"):
        to_template_messages([], "glm9")
    with pytest.raises(ValueError):
        template_kwargs(req(), "llama")


# --- system prompt and tools ----------------------------------------------------------


def test_user_system_prompt_is_kept_with_tools() -> None:
    """GLM-4 demo bug 7: the user's system prompt was replaced when tools were present."""
    for family in ("glm45", "glm47"):
        messages = to_template_messages(CONVERSATION, family, tools=TOOLS)
        assert messages[0] == {"role": "system", "content": "你是一个天气助手。"}
    glm4 = to_template_messages(CONVERSATION, "glm4", tools=TOOLS)
    assert glm4[0]["content"] == "你是一个天气助手。" and glm4[0]["tools"] == TOOLS
    assert sum(m["role"] == "system" for m in glm4) == 1


def test_glm4_tools_without_a_system_message() -> None:
    messages = to_template_messages([{"role": "user", "content": "hi"}], "glm4", tools=TOOLS)
    assert messages == [{"role": "system", "content": "", "tools": TOOLS}, {"role": "user", "content": "hi"}]


@pytest.mark.parametrize("tools", [None, []])
def test_no_tools(tools: Any) -> None:
    """GLM-4 demo bug 5: tools=None must work."""
    messages = to_template_messages([{"role": "user", "content": "hi"}], "glm4", tools=tools)
    assert messages == [{"role": "user", "content": "hi"}]
    assert "tools" not in template_kwargs(req(tools=None), "glm45")


def test_template_kwargs_tools() -> None:
    assert template_kwargs(req(tools=TOOLS), "glm45")["tools"] == TOOLS
    assert "tools" not in template_kwargs(req(tools=TOOLS, tool_choice="none"), "glm45")
    named = req(tools=TOOLS, tool_choice={"type": "function", "function": {"name": "get_time"}})
    assert template_tools(named) == [TOOLS[1]]
    assert template_kwargs(req(tools=TOOLS, chat_template_kwargs={"tools": "x"}), "glm45")["tools"] == TOOLS
    assert "tools" not in template_kwargs(req(chat_template_kwargs={"tools": "x"}), "glm45")


def test_template_kwargs_thinking() -> None:
    assert template_kwargs(req(chat_template_kwargs={"enable_thinking": False, "x": 1}), "glm45") == {
        "enable_thinking": False,
        "x": 1,
    }
    assert template_kwargs(req(chat_template_kwargs={"thinking": False}), "glm47") == {
        "thinking": False,
        "enable_thinking": False,
    }
    assert template_kwargs(req(chat_template_kwargs={"thinking": False}), "glm4") == {"thinking": False}
    assert template_kwargs(req(), "glm45") == {}


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        (None, True),
        ({}, True),
        ({"enable_thinking": False}, False),
        ({"enable_thinking": True, "thinking": False}, True),
        ({"thinking": False}, False),
        ({"thinking": {"type": "disabled"}}, False),
        ({"thinking": {"type": "enabled"}}, True),
    ],
)
def test_thinking_enabled(kwargs: dict[str, Any] | None, expected: bool) -> None:
    assert thinking_enabled(req(chat_template_kwargs=kwargs)) is expected


# --- rendered through the templates' own constructs ---------------------------------------

# The parts of the GLM-4.5 template that consume these messages (tool calls, tool
# results grouped under one <|observation|>, reasoning of recent turns).
GLM45_TEMPLATE = """[gMASK]<sop>
{%- for m in messages -%}
{%- if m.role == 'system' -%}<|system|>
{{ m.content }}
{%- elif m.role == 'user' -%}<|user|>
{{ m.content }}
{%- elif m.role == 'assistant' -%}<|assistant|>
{%- if m.reasoning_content is string and m.reasoning_content -%}
{{ '\\n<think>' + m.reasoning_content.strip() + '</think>' }}
{%- else -%}
{{ '\\n<think></think>' }}
{%- endif -%}
{%- if m.content.strip() -%}{{ '\\n' + m.content.strip() }}{%- endif -%}
{%- if m.tool_calls -%}
{%- for tc in m.tool_calls -%}
{%- if tc.function %}{%- set tc = tc.function %}{%- endif -%}
{{ '\\n<tool_call>' + tc.name }}
{%- for k, v in tc.arguments.items() %}
<arg_key>{{ k }}</arg_key>
<arg_value>{{ v | tojson if v is not string else v }}</arg_value>
{%- endfor %}
</tool_call>
{%- endfor -%}
{%- endif -%}
{%- elif m.role == 'tool' -%}
{%- if loop.first or (messages[loop.index0 - 1].role != 'tool') -%}<|observation|>{%- endif -%}
{{ '\\n<tool_response>\\n' }}{{ m.content }}{{ '\\n</tool_response>' }}
{%- endif -%}
{%- endfor -%}<|assistant|>"""

# glm-4-9b-chat's template (tool descriptions shortened).
GLM4_TEMPLATE = (
    "[gMASK]<sop>{% for item in messages %}{% if item['tools'] is defined %}<|system|>\n# 可用工具"
    "{% set tools = item['tools'] %}{% for tool in tools %}{% if tool['type'] == 'function' %}\n\n## "
    "{{ tool['function']['name'] }}{% endif %}{% endfor %}{% endif %}{% if item['content'] %}"
    "<|{{ item['role'] }}|>{{ item['metadata'] }}\n{{ item['content'] }}{% endif %}{% endfor %}<|assistant|>"
)


def render(template: str, messages: list[dict[str, Any]]) -> str:
    env = jinja2.Environment()
    env.filters["tojson"] = lambda v: json.dumps(v, ensure_ascii=False)
    return env.from_string(template).render(messages=messages)


def test_renders_through_the_glm45_template() -> None:
    text = render(GLM45_TEMPLATE, to_template_messages(CONVERSATION, "glm45"))
    assert "<tool_call>get_weather\n<arg_key>location</arg_key>\n<arg_value>北京</arg_value>\n</tool_call>" in text
    assert "<tool_call>get_time\n</tool_call>" in text
    assert text.count("<|observation|>") == 1  # consecutive tool results share one
    assert "<|system|>\n你是一个天气助手。" in text
    assert "None" not in text


def test_renders_through_the_glm4_template() -> None:
    text = render(GLM4_TEMPLATE, to_template_messages(CONVERSATION, "glm4", tools=TOOLS))
    assert "<|system|>\n# 可用工具\n\n## get_weather\n\n## get_time<|system|>\n你是一个天气助手。" in text
    assert '<|assistant|>get_weather\n{"location": "北京"}' in text
    assert "<|observation|>\n晴，25度" in text
    assert "<|tool|>" not in text
    assert "<|assistant|>\n北京今天晴，25度。" in text
