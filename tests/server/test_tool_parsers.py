"""GLM tool-call parsers: raw model outputs -> text + tool calls, streamed or not."""

from __future__ import annotations

import builtins
import json
import os
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from glm_vllm_compat.server.tool_parsers import (
    TextDelta,
    ToolCallArgs,
    ToolCallStart,
    ToolParser,
    UnknownToolParser,
    auto_tool_parser,
    coerce_argument,
    get_tool_parser,
    register_tool_parser,
    tool_parser_names,
)

TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "天气",
            "parameters": {
                "type": "object",
                "properties": {"location": {"type": "string"}, "days": {"type": "integer"}},
                "required": ["location"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "set_alarm",
            "parameters": {
                "type": "object",
                "properties": {
                    "hour": {"type": "integer"},
                    "ratio": {"type": "number"},
                    "enabled": {"type": "boolean"},
                    "tags": {"type": "array", "items": {"type": "string"}},
                    "config": {"type": "object"},
                    "label": {"type": ["string", "null"]},
                    "code": {"type": "string"},
                },
            },
        },
    },
    {"type": "function", "function": {"name": "get_time"}},
    {"type": "function", "function": {"name": "get_weather_v2", "parameters": {"type": "object", "properties": {}}}},
]

ID_RE = re.compile(r"^call_[0-9a-f]{24}$")


def collect(events: list[Any]) -> tuple[str, list[tuple[str, str]]]:
    """Assemble events the way a client does; checks the id/first-event rules."""
    text: list[str] = []
    calls: dict[int, list[str]] = {}
    ids: dict[int, str] = {}
    for event in events:
        if isinstance(event, TextDelta):
            text.append(event.text)
        elif isinstance(event, ToolCallStart):
            assert event.index not in calls, "a call must start exactly once"
            assert ID_RE.match(event.id), event.id
            calls[event.index] = [event.name, ""]
            ids[event.index] = event.id
        else:
            assert isinstance(event, ToolCallArgs)
            assert event.index in calls, "arguments before the call started"
            calls[event.index][1] += event.fragment
    assert sorted(calls) == list(range(len(calls))), "indices are 0, 1, 2, ..."
    assert len(set(ids.values())) == len(ids), "each call has its own id"
    return "".join(text), [(name, args) for _, (name, args) in sorted(calls.items())]


def run(name: str, raw: str, chunks: list[str] | None = None, **kwargs: Any) -> tuple[str, list[tuple[str, str]]]:
    kwargs.setdefault("tools", TOOLS)
    parser = get_tool_parser(name)(kwargs.pop("tools"), **kwargs)
    events: list[Any] = []
    for chunk in chunks if chunks is not None else [raw]:
        events += parser.feed(chunk)
    events += parser.finish()
    return collect(events)


def split_every(raw: str, size: int) -> list[str]:
    return [raw[i : i + size] for i in range(0, len(raw), size)]


W = '{"location": "北京"}'

# (id, parser, raw content (reasoning already removed), text, [(name, arguments JSON string)])
CASES: list[tuple[str, str, str, str, list[tuple[str, str]]]] = [
    # --- GLM-4.5 -----------------------------------------------------------------
    (
        "glm45-chinese",
        "glm45",
        "<tool_call>get_weather\n<arg_key>location</arg_key>\n<arg_value>北京</arg_value>\n</tool_call>",
        "",
        [("get_weather", W)],
    ),
    (
        "glm45-two-args-typed",
        "glm45",
        "<tool_call>get_weather\n<arg_key>location</arg_key>\n<arg_value>上海</arg_value>\n"
        "<arg_key>days</arg_key>\n<arg_value>3</arg_value>\n</tool_call>",
        "",
        [("get_weather", '{"location": "上海", "days": 3}')],
    ),
    (
        "glm45-several-calls-with-text",
        "glm45",
        "我来查一下。\n<tool_call>get_weather\n<arg_key>location</arg_key>\n<arg_value>北京</arg_value>\n</tool_call>"
        "\n<tool_call>get_weather\n<arg_key>location</arg_key>\n<arg_value>上海</arg_value>\n</tool_call>",
        "我来查一下。",
        [("get_weather", W), ("get_weather", '{"location": "上海"}')],
    ),
    (
        "glm45-text-between-and-after",
        "glm45",
        "First.\n<tool_call>get_time\n</tool_call>\nThen.\n<tool_call>get_time\n</tool_call>\nDone.\n",
        "First.\nThen.\nDone.",
        [("get_time", "{}"), ("get_time", "{}")],
    ),
    ("glm45-zero-arg-newline", "glm45", "<tool_call>get_time\n</tool_call>", "", [("get_time", "{}")]),
    ("glm45-zero-arg-bare", "glm45", "<tool_call>get_time</tool_call>", "", [("get_time", "{}")]),
    (
        "glm45-prefix-name-is-its-own-tool",
        "glm45",
        "<tool_call>get_weather_v2</tool_call>",
        "",
        [("get_weather_v2", "{}")],
    ),
    (
        "glm45-typed-args",
        "glm45",
        "<tool_call>set_alarm\n<arg_key>hour</arg_key>\n<arg_value>7</arg_value>\n"
        "<arg_key>ratio</arg_key>\n<arg_value>0.5</arg_value>\n"
        "<arg_key>enabled</arg_key>\n<arg_value>true</arg_value>\n"
        '<arg_key>tags</arg_key>\n<arg_value>["a", "早"]</arg_value>\n'
        '<arg_key>config</arg_key>\n<arg_value>{"x": {"y": [1, 2]}}</arg_value>\n'
        "<arg_key>code</arg_key>\n<arg_value>123</arg_value>\n</tool_call>",
        "",
        [
            (
                "set_alarm",
                '{"hour": 7, "ratio": 0.5, "enabled": true, "tags": ["a", "早"], '
                '"config": {"x": {"y": [1, 2]}}, "code": "123"}',
            )
        ],
    ),
    (
        "glm45-python-literals",
        "glm45",
        "<tool_call>set_alarm\n<arg_key>enabled</arg_key>\n<arg_value>True</arg_value>\n"
        "<arg_key>config</arg_key>\n<arg_value>{'a': None, 'b': (1, 2)}</arg_value>\n</tool_call>",
        "",
        [("set_alarm", '{"enabled": true, "config": {"a": null, "b": [1, 2]}}')],
    ),
    (
        "glm45-string-value-verbatim",
        "glm45",
        '<tool_call>set_alarm\n<arg_key>code</arg_key>\n<arg_value>  def f():\n    return "<b>"\n</arg_value>\n</tool_call>',
        "",
        [("set_alarm", json.dumps({"code": '  def f():\n    return "<b>"\n'}, ensure_ascii=False))],
    ),
    (
        "glm45-nullable-string",
        "glm45",
        "<tool_call>set_alarm\n<arg_key>label</arg_key>\n<arg_value>null</arg_value>\n</tool_call>"
        "<tool_call>set_alarm\n<arg_key>label</arg_key>\n<arg_value>42</arg_value>\n</tool_call>",
        "",
        [("set_alarm", '{"label": null}'), ("set_alarm", '{"label": "42"}')],
    ),
    (
        "glm45-undeclared-key-decoded",
        "glm45",
        "<tool_call>get_weather\n<arg_key>unit</arg_key>\n<arg_value>42</arg_value>\n"
        "<arg_key>note</arg_key>\n<arg_value>晴</arg_value>\n</tool_call>",
        "",
        [("get_weather", '{"unit": 42, "note": "晴"}')],
    ),
    (
        "glm45-bad-int-stays-text",
        "glm45",
        "<tool_call>set_alarm\n<arg_key>hour</arg_key>\n<arg_value>seven</arg_value>\n</tool_call>",
        "",
        [("set_alarm", '{"hour": "seven"}')],
    ),
    (
        "glm45-nan-not-emitted",
        "glm45",
        "<tool_call>set_alarm\n<arg_key>ratio</arg_key>\n<arg_value>NaN</arg_value>\n</tool_call>",
        "",
        [("set_alarm", '{"ratio": "NaN"}')],
    ),
    # --- GLM-4.7 (no newlines) --------------------------------------------------
    (
        "glm47-no-newlines",
        "glm47",
        "<tool_call>get_weather<arg_key>location</arg_key><arg_value>北京</arg_value>"
        "<arg_key>days</arg_key><arg_value>2</arg_value></tool_call>",
        "",
        [("get_weather", '{"location": "北京", "days": 2}')],
    ),
    ("glm47-zero-arg", "glm47", "<tool_call>get_time</tool_call>", "", [("get_time", "{}")]),
    (
        "glm47-parallel",
        "glm47",
        "<tool_call>get_time</tool_call><tool_call>get_weather<arg_key>location</arg_key>"
        "<arg_value>Paris</arg_value></tool_call>",
        "",
        [("get_time", "{}"), ("get_weather", '{"location": "Paris"}')],
    ),
    (
        "glm45-parser-reads-glm47-form",
        "glm45",
        "<tool_call>get_weather<arg_key>location</arg_key><arg_value>北京</arg_value></tool_call>",
        "",
        [("get_weather", W)],
    ),
    # --- degrade to text, never lose data ------------------------------------------
    ("plain-text", "glm45", "你好！今天天气很好。", "你好！今天天气很好。", []),
    ("angle-brackets", "glm45", "a < b and <b>bold</b> <tool>x", "a < b and <b>bold</b> <tool>x", []),
    ("partial-tag-at-end", "glm45", "see <tool_ca", "see <tool_ca", []),
    (
        "unknown-tool",
        "glm45",
        "<tool_call>delete_all\n<arg_key>x</arg_key>\n<arg_value>1</arg_value>\n</tool_call>",
        "<tool_call>delete_all\n<arg_key>x</arg_key>\n<arg_value>1</arg_value>\n</tool_call>",
        [],
    ),
    (
        "unknown-tool-glm47",
        "glm47",
        "<tool_call>rm<arg_key>x</arg_key><arg_value>1</arg_value></tool_call>ok",
        "<tool_call>rm<arg_key>x</arg_key><arg_value>1</arg_value></tool_call>ok",
        [],
    ),
    ("empty-name", "glm45", "<tool_call>\n</tool_call>", "<tool_call>\n</tool_call>", []),
    ("unclosed-name", "glm45", "Sure <tool_call>get_wea", "Sure <tool_call>get_wea", []),
    (
        "unclosed-after-pair",
        "glm45",
        "<tool_call>get_weather\n<arg_key>days</arg_key>\n<arg_value>3</arg_value>\n<arg_key>loc",
        "<arg_key>loc",
        [("get_weather", '{"days": 3}')],
    ),
    (
        "unclosed-non-string-value",
        "glm45",
        "<tool_call>set_alarm\n<arg_key>hour</arg_key>\n<arg_value>1",
        "<arg_key>hour</arg_key>\n<arg_value>1",
        [("set_alarm", "{}")],
    ),
    (
        "unclosed-string-value",
        "glm45",
        "<tool_call>get_weather\n<arg_key>location</arg_key>\n<arg_value>北",
        "",
        [("get_weather", '{"location": "北"}')],
    ),
    (
        "stray-text-inside-call",
        "glm45",
        "<tool_call>get_weather\noops\n<arg_key>location</arg_key>\n<arg_value>北京</arg_value>\n</tool_call>",
        "oops",
        [("get_weather", W)],
    ),
    # --- GLM-4 -------------------------------------------------------------------
    ("glm4-call", "glm4", 'get_weather\n{"location": "北京"}', "", [("get_weather", W)]),
    (
        "glm4-call-normalised",
        "glm4",
        'get_weather\n{"location":"\\u5317\\u4eac","days":3}\n',
        "",
        [("get_weather", '{"location": "北京", "days": 3}')],
    ),
    ("glm4-zero-arg", "glm4", "get_time\n{}", "", [("get_time", "{}")]),
    ("glm4-plain", "glm4", "你好，我是GLM-4。", "你好，我是GLM-4。", []),
    ("glm4-plain-leading-newline-kept-by-parser", "glm4", "\nHello", "\nHello", []),
    ("glm4-multiline-plain", "glm4", "Line one\nLine two", "Line one\nLine two", []),
    ("glm4-tool-name-then-prose", "glm4", "get_weather\nis a tool I have.", "get_weather\nis a tool I have.", []),
    ("glm4-bad-json", "glm4", 'get_weather\n{"location": "北京"', 'get_weather\n{"location": "北京"', []),
    ("glm4-json-array", "glm4", "get_weather\n[1, 2]", "get_weather\n[1, 2]", []),
    ("glm4-unknown-tool", "glm4", 'delete_all\n{"x": 1}', 'delete_all\n{"x": 1}', []),
    ("glm4-prefix-of-a-name", "glm4", "get", "get", []),
    ("glm4-name-with-spaces", "glm4", "get weather now\n{}", "get weather now\n{}", []),
]


@pytest.mark.parametrize(("name", "raw", "text", "calls"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_whole_output(name: str, raw: str, text: str, calls: list[tuple[str, str]]) -> None:
    assert run(name, raw) == (text, calls)


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 13])
@pytest.mark.parametrize(("name", "raw", "text", "calls"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_streamed_in_fixed_chunks(name: str, raw: str, text: str, calls: list[tuple[str, str]], size: int) -> None:
    assert run(name, raw, split_every(raw, size)) == (text, calls)


@st.composite
def case_and_split(draw: st.DrawFn) -> tuple[str, str, list[str]]:
    _, name, raw, _, _ = draw(st.sampled_from(CASES))
    cuts = sorted(draw(st.sets(st.integers(min_value=1, max_value=max(1, len(raw) - 1)), max_size=12)))
    bounds = [0, *cuts, len(raw)]
    return name, raw, [raw[a:b] for a, b in zip(bounds, bounds[1:])]


@settings(max_examples=300, deadline=None)
@given(case_and_split())
def test_any_split_gives_the_whole_output_result(case: tuple[str, str, list[str]]) -> None:
    name, raw, chunks = case
    assert "".join(chunks) == raw
    assert run(name, raw, chunks) == run(name, raw)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            ["<tool_call>", "</tool_call>", "<arg_key>", "</arg_key>", "<arg_value>", "</arg_value>",
             "get_weather", "set_alarm", "location", "hour", "北京", "7", "\n", " ", "<", ">", "x", "{", "}"]
        ),
        max_size=30,
    ),
    st.sampled_from(["glm45", "glm47", "glm4"]),
    st.data(),
)
def test_arbitrary_token_soup_never_crashes_and_is_split_invariant(
    tokens: list[str], name: str, data: st.DataObject
) -> None:
    raw = "".join(tokens)
    whole = run(name, raw)
    cuts = sorted(data.draw(st.sets(st.integers(min_value=0, max_value=len(raw)), max_size=8)))
    bounds = [0, *cuts, len(raw)]
    assert run(name, raw, [raw[a:b] for a, b in zip(bounds, bounds[1:])]) == whole
    for _, arguments in whole[1]:
        assert isinstance(json.loads(arguments), dict)


# --- streaming shape -----------------------------------------------------------------


def test_argument_fragments_one_per_completed_pair() -> None:
    parser = get_tool_parser("glm45")(TOOLS)
    raw = (
        "<tool_call>set_alarm\n<arg_key>hour</arg_key>\n<arg_value>7</arg_value>\n"
        "<arg_key>enabled</arg_key>\n<arg_value>false</arg_value>\n</tool_call>"
    )
    events = [e for ch in raw for e in parser.feed(ch)] + parser.finish()
    assert isinstance(events[0], ToolCallStart)
    assert [e.fragment for e in events[1:] if isinstance(e, ToolCallArgs)] == ['{"hour": 7', ', "enabled": false', "}"]


def test_call_starts_as_soon_as_the_name_is_complete() -> None:
    parser = get_tool_parser("glm47")(TOOLS)
    assert parser.feed("<tool_call>get_wea") == []
    events = parser.feed("ther<arg_key>")
    assert len(events) == 1 and isinstance(events[0], ToolCallStart) and events[0].name == "get_weather"


def test_long_string_values_stream_before_the_value_closes() -> None:
    """vLLM #32829: a 4000-character file argument must not arrive in one piece."""
    parser = get_tool_parser("glm45")(TOOLS)
    opened = parser.feed("<tool_call>set_alarm\n<arg_key>code</arg_key>\n<arg_value>")
    assert [e.fragment for e in opened if isinstance(e, ToolCallArgs)] == ['{"code": "']
    streamed = "".join(e.fragment for e in parser.feed("print('你好')\n" * 50) if isinstance(e, ToolCallArgs))
    assert streamed.startswith("print('你好')\\n")
    assert len(streamed) > 500


def test_partial_closing_tag_inside_a_string_value_is_held() -> None:
    parser = get_tool_parser("glm45")(TOOLS)
    parser.feed("<tool_call>get_weather\n<arg_key>location</arg_key>\n<arg_value>北京</arg_")
    events = parser.feed("value>\n</tool_call>")
    assert "".join(e.fragment for e in events if isinstance(e, ToolCallArgs)) == '"}'


def test_text_is_streamed_immediately_when_tools_are_present() -> None:
    """GLM-4 demo bug 7: with tools present, text was not streamed at all."""
    parser = get_tool_parser("glm45")(TOOLS)
    assert parser.feed("Let me ") == [TextDelta("Let me")]
    assert parser.feed("check") == [TextDelta(" check")]
    assert parser.feed(". <tool") == [TextDelta(".")]
    assert parser.feed("s> are fine") == [TextDelta(" <tools> are fine")]


def test_glm4_plain_text_streams_once_the_first_line_cannot_be_a_tool() -> None:
    parser = get_tool_parser("glm4")(TOOLS)
    assert parser.feed("get") == []  # could still be get_weather
    assert parser.feed("ting there") == [TextDelta("getting there")]


def test_ids_created_once_per_call_when_streamed_char_by_char() -> None:
    """GLM-4 demo bug 6: a fresh call_ id on every chunk broke client accumulation."""
    parser = get_tool_parser("glm45")(TOOLS)
    raw = "<tool_call>get_time</tool_call><tool_call>get_weather\n<arg_key>location</arg_key>\n<arg_value>北京</arg_value></tool_call>"
    events = [e for ch in raw for e in parser.feed(ch)] + parser.finish()
    starts = [e for e in events if isinstance(e, ToolCallStart)]
    assert [s.index for s in starts] == [0, 1]
    assert len({s.id for s in starts}) == 2


def test_id_factory_is_used() -> None:
    ids = iter(["call_a", "call_b"])
    parser = get_tool_parser("glm47")(TOOLS, id_factory=lambda: next(ids))
    events = parser.feed("<tool_call>get_time</tool_call><tool_call>get_time</tool_call>")
    assert [e.id for e in events if isinstance(e, ToolCallStart)] == ["call_a", "call_b"]


# --- arguments: typing, Chinese, no eval --------------------------------------------------


def test_chinese_arguments_are_not_escaped() -> None:
    """Reference servers returned \\uXXXX escapes; arguments use ensure_ascii=False."""
    _, calls = run("glm45", "<tool_call>get_weather\n<arg_key>location</arg_key>\n<arg_value>北京</arg_value>\n</tool_call>")
    assert calls[0][1] == '{"location": "北京"}'
    assert "\\u" not in calls[0][1]


def test_model_output_is_never_evaluated(monkeypatch: pytest.MonkeyPatch) -> None:
    """GLM-4 demo bug 3: eval() on model output. Values go through json / ast.literal_eval only."""

    def forbidden(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("model output reached eval/exec/os.system")

    monkeypatch.setattr(builtins, "eval", forbidden)
    monkeypatch.setattr(builtins, "exec", forbidden)
    monkeypatch.setattr(os, "system", forbidden)
    payload = "__import__('os').system('x')"
    raw = (
        f"<tool_call>set_alarm\n<arg_key>hour</arg_key>\n<arg_value>{payload}</arg_value>\n"
        f"<arg_key>config</arg_key>\n<arg_value>{payload}</arg_value>\n</tool_call>"
    )
    _, calls = run("glm45", raw)
    assert json.loads(calls[0][1]) == {"hour": payload, "config": payload}
    assert coerce_argument(payload, None) == payload
    assert coerce_argument("(lambda: 1)()", {"type": "integer"}) == "(lambda: 1)()"


@pytest.mark.parametrize(
    ("raw", "schema", "expected"),
    [
        ("123", {"type": "string"}, "123"),
        (" 北京 ", {"type": "string"}, " 北京 "),
        ("123", {"type": "integer"}, 123),
        ("1.5", {"type": "number"}, 1.5),
        ("true", {"type": "boolean"}, True),
        ("False", {"type": "boolean"}, False),
        ("[1, 'a']", {"type": "array"}, [1, "a"]),
        ('{"a": [1, {"b": null}]}', {"type": "object"}, {"a": [1, {"b": None}]}),
        ("{'a': (1, 2)}", {"type": "object"}, {"a": [1, 2]}),
        ("null", {"type": ["string", "null"]}, None),
        ("7", {"type": ["string", "null"]}, "7"),
        ("7", {"type": ["integer", "string"]}, 7),
        ("seven", {"type": ["integer", "string"]}, "seven"),
        ("[1]", {"type": ["integer", "string"]}, "[1]"),
        ("7", {"anyOf": [{"type": "integer"}, {"type": "null"}]}, 7),
        ("7", {"enum": ["7", "8"]}, "7"),
        ("7", None, 7),
        (" hi ", None, " hi "),  # untyped and not JSON: the raw text
        ("123_456", None, "123_456"),  # sglang#30644: never a Python-literal number
        ("123_456", {"type": "integer"}, "123_456"),
        ("1_0.5", {"type": "number"}, "1_0.5"),
        ("True", None, "True"),  # untyped: JSON or raw, no Python literals
        ('{"a": 1}', None, {"a": 1}),
        ("[1, 2]", {}, [1, 2]),
        ("{1, 2}", {"type": "array"}, "{1, 2}"),  # a set is not JSON: kept as text
        ("1e999", {"type": "number"}, "1e999"),  # inf is not JSON
        ("Infinity", {"type": "number"}, "Infinity"),
        ("[" * 5000, {"type": "array"}, "[" * 5000),
        ("9" * 5000, {"type": "integer"}, "9" * 5000),  # beyond int parsing limits: text, no crash
    ],
)
def test_coerce_argument(raw: str, schema: dict[str, Any] | None, expected: Any) -> None:
    value = coerce_argument(raw, schema)
    assert value == expected and type(value) is type(expected)


# --- tool_choice, parallel_tool_calls, no tools -----------------------------------------

TWO_CALLS = (
    "Checking.\n<tool_call>get_weather\n<arg_key>location</arg_key>\n<arg_value>北京</arg_value>\n</tool_call>"
    "\n<tool_call>get_time\n</tool_call>\nok"
)


def test_parallel_tool_calls_false_keeps_only_the_first_call() -> None:
    """vLLM keeps tool call index 0 only (maybe_filter_parallel_tool_calls); later calls are dropped."""
    text, calls = run("glm45", TWO_CALLS, parallel_tool_calls=False)
    assert calls == [("get_weather", W)]
    assert text == "Checking.\nok"
    streamed = run("glm45", TWO_CALLS, split_every(TWO_CALLS, 3), parallel_tool_calls=False)
    assert streamed == (text, calls)


def test_parallel_tool_calls_default_keeps_all() -> None:
    assert len(run("glm45", TWO_CALLS, parallel_tool_calls=None)[1]) == 2


def test_tool_choice_none_passes_everything_through() -> None:
    assert run("glm45", TWO_CALLS, tool_choice="none") == (TWO_CALLS, [])


@pytest.mark.parametrize("tools", [None, []])
def test_no_tools_passes_everything_through(tools: Any) -> None:
    """GLM-4 demo bug 5: tools=None crashed with 'NoneType' object is not iterable."""
    assert run("glm45", TWO_CALLS, tools=tools) == (TWO_CALLS, [])
    assert run("glm4", 'get_weather\n{"a": 1}', tools=tools) == ('get_weather\n{"a": 1}', [])


def test_named_tool_choice_accepts_only_that_tool() -> None:
    choice = {"type": "function", "function": {"name": "get_time"}}
    text, calls = run("glm45", TWO_CALLS, tool_choice=choice)
    assert calls == [("get_time", "{}")]
    assert "<tool_call>get_weather" in text


def test_accepts_tool_models_as_well_as_dicts() -> None:
    from glm_vllm_compat.server.protocol import Tool

    tools = [Tool.model_validate(t) for t in TOOLS]
    assert run("glm47", "<tool_call>get_time</tool_call>", tools=tools) == ("", [("get_time", "{}")])


def test_left_open_flag() -> None:
    parser = get_tool_parser("glm45")(TOOLS)
    parser.feed("<tool_call>get_weather\n<arg_key>location</arg_key>\n<arg_value>北")
    parser.finish()
    assert parser.left_open
    closed = get_tool_parser("glm45")(TOOLS)
    closed.feed("<tool_call>get_time</tool_call>")
    closed.finish()
    assert not closed.left_open


def test_feed_after_finish_is_an_error() -> None:
    parser = get_tool_parser("glm45")(TOOLS)
    parser.finish()
    assert parser.finish() == []
    with pytest.raises(RuntimeError):
        parser.feed("x")


# --- registry ------------------------------------------------------------------------------


def test_registry_names_and_classes() -> None:
    assert {"glm4", "glm45", "glm47"} <= set(tool_parser_names())
    for name in ("glm4", "glm45", "glm47"):
        cls = get_tool_parser(name)
        assert issubclass(cls, ToolParser) and cls.name == name


def test_unknown_parser_lists_valid_names() -> None:
    with pytest.raises(KeyError) as info:
        get_tool_parser("hermes")
    assert isinstance(info.value, UnknownToolParser)
    assert "glm4, glm45, glm47" in str(info.value)


def test_register_lazily(monkeypatch: pytest.MonkeyPatch) -> None:
    from glm_vllm_compat.server import tool_parsers

    monkeypatch.setattr(tool_parsers.TOOL_PARSERS, "_entries", dict(tool_parsers.TOOL_PARSERS._entries))
    register_tool_parser("glm45-alias", "glm_vllm_compat.server.tool_parsers.glm45", "Glm45ToolParser")
    assert get_tool_parser("glm45-alias") is get_tool_parser("glm45")
    register_tool_parser("broken", "glm_vllm_compat.server.tool_parsers._base", "TextDelta")
    with pytest.raises(TypeError):
        get_tool_parser("broken")


GLM45_TEMPLATE = (
    "For each function call, output the function name and arguments within the following XML format:\n"
    "<tool_call>{function-name}\n<arg_key>{arg-key-1}</arg_key>\n<arg_value>{arg-value-1}</arg_value>\n"
    "...\n</tool_call>{%- endif -%}"
)
GLM47_TEMPLATE = (
    "For each function call, output the function name and arguments within the following XML format:\n"
    "<tool_call>{function-name}<arg_key>{arg-key-1}</arg_key><arg_value>{arg-value-1}</arg_value>"
    "...</tool_call>{%- endif -%}"
)
GLM47_JINJA_ONLY = "{{- '<tool_call>' + tc.name -}}{% for k, v in _args.items() %}<arg_key>{{ k }}</arg_key>"
GLM4_TEMPLATE = "{% if item['content'] %}<|{{ item['role'] }}|>{{ item['metadata'] }}\n{{ item['content'] }}<|observation|>"


@pytest.mark.parametrize(
    ("architectures", "template", "expected"),
    [
        (["ChatGLMModel"], GLM4_TEMPLATE, "glm4"),
        (["GlmForCausalLM"], None, "glm4"),
        (["Glm4ForCausalLM"], None, "glm4"),
        (["Glm4MoeForCausalLM"], GLM45_TEMPLATE, "glm45"),
        (["Glm4MoeForCausalLM"], None, "glm45"),
        (["Glm4MoeForCausalLM"], GLM47_TEMPLATE, "glm47"),
        (["Glm4MoeForCausalLM"], GLM47_JINJA_ONLY, "glm47"),
        (["Glm4MoeLiteForCausalLM"], None, "glm47"),
        (["GlmMoeDsaForCausalLM"], None, "glm47"),
        (["Glm5NextForCausalLM"], None, "glm47"),
        (["SomethingNew"], GLM47_TEMPLATE, "glm47"),
        (["SomethingNew"], GLM45_TEMPLATE, "glm45"),
        ([], GLM4_TEMPLATE, "glm4"),
    ],
)
def test_auto_tool_parser(architectures: list[str], template: str | None, expected: str) -> None:
    assert auto_tool_parser(architectures, template) == expected


def test_auto_tool_parser_unknown_model() -> None:
    with pytest.raises(ValueError, match="glm4, glm45, glm47"):
        auto_tool_parser(["LlamaForCausalLM"], "{{ messages }}")


@pytest.mark.parametrize("name", ["glm45", "glm4"])
def test_long_values_streamed_in_small_deltas_stay_linear(name: str) -> None:
    """A 300 kB untyped value in 4-character deltas: no rescanning of the whole buffer per delta."""
    import time

    blob = "x = [1, 2, 3]  # 注释\n" * 15000
    if name == "glm45":
        raw = f"<tool_call>get_time\n<arg_key>source</arg_key>\n<arg_value>{blob}</arg_value>\n</tool_call>"
        expected = json.dumps({"source": blob}, ensure_ascii=False)  # untyped, not JSON: the raw text
    else:
        raw = "get_time\n" + json.dumps({"source": blob}, ensure_ascii=False)
        expected = json.dumps({"source": blob}, ensure_ascii=False)
    started = time.perf_counter()
    text, calls = run(name, raw, split_every(raw, 4))
    assert time.perf_counter() - started < 5.0
    assert (text, calls) == ("", [("get_time", expected)])
