"""Streaming equals non-streaming for any chunking, per GLM family (issue 10, item 4).

Every family of the registry (a new one is covered without editing this file)
is served the way the server serves it: its own tool and reasoning parsers,
its thinking verdict (``GlmFamily.thinking_on``: GLM-5.2/5.3 keep thinking on
whatever the request asks), ``prompt_opened_thinking`` read off its rendered
chat template as ``prepare_chat`` does (GLM-4.7+ prompts end in ``<think>``),
and the forced opening of a named ``tool_choice`` (``</think>`` + the family's
call opening) in front of what the model writes.

Generated raw outputs (reasoning with and without the prompt's ``<think>``,
text around calls, calls with and without arguments, malformed calls, output
shaped by the ``required`` regex, forced and named ``tool_choice``) go through
the public :class:`ChatOutputPipeline` twice: whole (the non-streamed response)
and split into deltas (random cuts, one character at a time, and cuts on both
sides of every tag). What a client assembles from the deltas - content,
reasoning, tool calls (name + concatenated arguments) and ``finish_reason`` -
must equal the non-streamed message.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from glm_vllm_compat.server._chat import _tool_choice_controls
from glm_vllm_compat.server._pipeline import ChatOutputPipeline
from glm_vllm_compat.server._reasoning import get_reasoning_parser, prompt_opens_thinking
from glm_vllm_compat.server._template import render_chat
from glm_vllm_compat.server.families import GlmFamily, family_names, get_family
from glm_vllm_compat.server.protocol import ChatCompletionRequest
from glm_vllm_compat.testing._tiny_model import _template_text

from .conftest import FAMILY_MODELS

EXAMPLES = 1000
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"location": {"type": "string"}, "days": {"type": "integer"}, "units": {"type": ["string", "null"]}}},
    },
}
PING = {"type": "function", "function": {"name": "ping", "parameters": {"type": "object", "properties": {}}}}
TOOL_NAMES = ["get_weather", "ping"]
TAGS = ("<tool_call>", "</tool_call>", "<arg_key>", "</arg_key>", "<arg_value>", "</arg_value>", "<think>", "</think>")
FAMILIES = family_names()  # the registry, not a hand list: a new family is covered automatically

# Text with the characters that matter: spaces, newlines, tag starts, quotes, Chinese. One string
# choice per draw (a list of single characters would be one choice per character: the generation,
# not the pipeline, is where an example's time goes).
_words = st.text(alphabet='ab 北京\n<>/"{}:,_', max_size=8)
# The same without "<": what the ``required`` regex lets through as reasoning or a value.
_plain = _words.map(lambda s: s.replace("<", ""))


# --- the server's view of one request: thinking verdict, prompt opening ------------------------


@functools.lru_cache(maxsize=None)
def _template(name: str) -> str:
    if name not in FAMILY_MODELS:
        pytest.fail(f"family {name!r} has no tiny template: add its row to FAMILY_MODELS in tests/server/conftest.py")
    return _template_text(FAMILY_MODELS[name][1])


def _body(tools: bool, fields: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {"messages": [{"role": "user", "content": "hi"}], **fields}
    if tools:
        body["tools"] = [WEATHER, PING]
    return body


@functools.lru_cache(maxsize=None)
def _served(name: str, tools: bool, fields_json: str) -> tuple[bool, bool]:
    """(thinking, prompt opened ``<think>``) as ``prepare_chat`` decides them (cached: few combinations)."""
    family = get_family(name)
    request = ChatCompletionRequest.model_validate(_body(tools, json.loads(fields_json)))
    kwargs = family.template_kwargs(request)
    thinking = family.thinking_on(kwargs)
    template_tools = kwargs.pop("tools", None)
    messages = family.template_messages(request.messages, tools=template_tools)
    prompt = render_chat(_template(name), messages, tools=template_tools, template_kwargs=kwargs)
    return thinking, prompt_opens_thinking(prompt)


@dataclass
class Case:
    family: GlmFamily
    text: str
    """The whole answer as the pipeline reads it: the forced prefix + what the model wrote."""
    request: ChatCompletionRequest
    opened: bool
    thinking: bool
    fields: dict[str, Any]

    def __repr__(self) -> str:  # what a failure report needs, not every request field
        tools = "tools" if self.request.tools else "no tools"
        return f"Case({self.family.name}, {self.text!r}, {self.fields!r}, {tools}, opened={self.opened}, thinking={self.thinking})"


def _case(name: str, fields: dict[str, Any], written: str, *, tools: bool = True) -> Case:
    family = get_family(name)
    request = ChatCompletionRequest.model_validate(_body(tools, fields))
    thinking, opened = _served(name, tools, json.dumps(fields, sort_keys=True))
    prefix, _ = _tool_choice_controls(SimpleNamespace(family=family), request, opened) if request.named_tool else ("", {})  # type: ignore[arg-type]
    return Case(family, prefix + written, request, opened, thinking, fields)


# --- generated output -------------------------------------------------------------------------
# Strategies are module constants and the helpers take ``draw``: building strategy objects per
# example (nested ``@st.composite`` calls, ``st.sampled_from`` inside them) cost more than the
# pipeline runs themselves.

Draw = Callable[[st.SearchStrategy[Any]], Any]

_BOOL = st.booleans()
_COUNT = st.integers(0, 2)
_PARTS = st.integers(1, 4)
_PAIR_KIND = st.sampled_from(["pair", "pair", "key_only", "junk", "open_value"])
_KEYS = st.sampled_from(["location", "days", "units", "other", ""])
_VALUES = st.sampled_from(["北京", " hello big world ", "3", "null", '{"a": 1}', "x<y", ""])
_CALL_END = st.sampled_from(["</tool_call>", "</tool_call>", "</tool_", ""])
_CALL_NAME = st.sampled_from(["get_weather", "ping", "ping", "unknown_tool", "", "get_weath"])
_AFTER_NAME = st.sampled_from([None, None, " "])  # None: the call style's separator
_NATIVE_STYLE = st.sampled_from([True, True, True, False])
_ANSWER_PART = st.sampled_from(["text", "call", "call", "think", "tag"])
_THINK_PART = st.sampled_from(["</think>", "</think>\n", "<think>", "<think>r</think>"])
_TAG = st.sampled_from(TAGS)
_GLM4_ARGS = st.sampled_from([{}, {"location": "北京"}, {"location": "a b", "days": 3}])
_GLM4_BODY = st.sampled_from(["{}", "cut", "not json", "spaced", "[1]", "text"])
_GLM4_HEAD = st.sampled_from([None, None, *TOOL_NAMES, "unknown_tool"])
# Reasoning shapes by what the prompt left open; "R" stands for generated reasoning text.
_NO_REASONING = st.sampled_from(["\n", "", " "])
_OPENED = st.sampled_from(["R</think>", "R</think>\n", "<think>R</think>", "</think>", "R", "\nR</think>\n", ""])
_SELF_OPENED = st.sampled_from(["\n<think>R</think>\n", "<think>R</think>", "\n<think>R", "\nR", "\n", ""])
_CLOSED = st.sampled_from(["\n", "", "\n<think>R</think>\n"])
_REQUIRED_THINK = st.sampled_from(["", "<think>R</think>", "<think>R</think>\n"])
_REQUIRED_KEY = st.sampled_from(["location", "days", "units", "other", " k "])
_TOOL_NAME = st.sampled_from(TOOL_NAMES)
_NEWLINE = st.sampled_from(["", "\n"])
_SWITCH = st.sampled_from(["none", "enable_thinking", "thinking", "thinking_object"])
_THINKING_TYPE = st.sampled_from(["enabled", "disabled"])
_INCLUDE = st.sampled_from([None, None, True, False])
_CHOICE = st.sampled_from(["auto", "auto", "named", "named", "required", "required", "none", "no_tools"])
_CUTS = st.lists(st.integers(0, 4096), max_size=12)
_ENGINE_REASON = st.sampled_from(["stop", "length"])


def _xml_args(draw: Draw, sep: str) -> str:
    """The rest of a call after its name: pairs, junk, unfinished pairs, a closing tag or not."""
    out = ""
    for _ in range(draw(_COUNT)):
        kind = draw(_PAIR_KIND)
        if kind == "junk":
            out += draw(_words)
            continue
        out += f"<arg_key>{draw(_KEYS)}</arg_key>{sep}"
        if kind != "key_only":
            out += f"<arg_value>{draw(_VALUES)}" + ("" if kind == "open_value" else f"</arg_value>{sep}")
    return out + str(draw(_CALL_END))


def _xml_call(draw: Draw, sep: str) -> str:
    """A whole call (with or without arguments; unknown, empty or cut names; odd separators)."""
    return f"<tool_call>{draw(_CALL_NAME)}" + (draw(_AFTER_NAME) or sep) + _xml_args(draw, sep)


def _glm4_body(draw: Draw) -> str:
    """GLM-4 call arguments: a JSON object, cut short, not JSON, padded, not an object, text."""
    shape = draw(_GLM4_BODY)
    if shape == "text":
        return str(draw(_words))
    body = json.dumps(draw(_GLM4_ARGS), ensure_ascii=False)
    return str({"{}": body, "cut": body[:-1], "spaced": f" {body}\n"}.get(shape, shape))


def _lead(draw: Draw, family: GlmFamily, thinking: bool, opened: bool) -> str:
    """What a model writes before its answer, given what the prompt already opened."""
    if not family.thinking.has_reasoning:
        shape = draw(_NO_REASONING)
    elif opened:  # the prompt ends in <think>: "R</think>C", or cut short, or a redundant <think>
        shape = draw(_OPENED)
    elif thinking:  # GLM-4.5: the model opens <think> itself
        shape = draw(_SELF_OPENED)
    else:  # the prompt closed thinking ("<think></think>" / "</think>")
        shape = draw(_CLOSED)
    return str(shape.replace("R", draw(_words)) if "R" in shape else shape)


def _xml_answer(draw: Draw, sep: str, named: bool) -> str:
    """Text, calls, stray think tags and lone tags in any order (a forced call's arguments first)."""
    parts = [_xml_args(draw, sep)] if named else []
    for _ in range(draw(_COUNT) if named else draw(_PARTS)):
        kind = draw(_ANSWER_PART)
        if kind == "text":
            parts.append(draw(_words))
        elif kind == "call":
            parts.append(_xml_call(draw, sep))
        elif kind == "think":
            parts.append(draw(_THINK_PART))
        else:
            parts.append(draw(_TAG))
    return "".join(parts)


def _required_output(draw: Draw, family: GlmFamily, opened: bool) -> str:
    """Output the ``required`` regex lets through (checked against the family's own regex)."""
    name = draw(_TOOL_NAME)
    if family.tool_parser == "glm4":
        text = f"{name}\n" + json.dumps(draw(_GLM4_ARGS), ensure_ascii=False)
    else:
        sep = "\n" if family.newline_calls else ""
        think = ("R</think>" + draw(_NEWLINE)) if opened else draw(_REQUIRED_THINK)
        think = think.replace("R", draw(_plain)) if "R" in think else think
        pairs = "".join(f"<arg_key>{draw(_REQUIRED_KEY)}</arg_key>{sep}<arg_value>{draw(_plain)}</arg_value>{sep}" for _ in range(draw(_COUNT)))
        text = f"{think}<tool_call>{name}{sep}{pairs}</tool_call>"
    assert re.fullmatch(family.required_regex(TOOL_NAMES, opened), text), text
    return text


@functools.lru_cache(maxsize=None)
def _efforts(name: str) -> st.SearchStrategy[str | None]:
    return st.sampled_from([None, *get_family(name).thinking.efforts])


def _fields(draw: Draw, name: str) -> tuple[dict[str, Any], bool]:
    """Request fields (thinking switches, effort, tool_choice, ...) valid for the family; and whether tools are sent."""
    fields: dict[str, Any] = {}
    kwargs: dict[str, Any] = {}
    switch = draw(_SWITCH)
    if switch in ("enable_thinking", "thinking"):
        kwargs[switch] = draw(_BOOL)
    elif switch == "thinking_object":  # Z.ai API style
        kwargs["thinking"] = {"type": draw(_THINKING_TYPE)}
    effort = draw(_efforts(name))
    if effort is not None:  # GLM-5.2 / 5.3: top-level or as a template variable
        (fields if draw(_BOOL) else kwargs)["reasoning_effort"] = effort
    if kwargs:
        fields["chat_template_kwargs"] = kwargs
    include = draw(_INCLUDE)
    if include is not None:
        fields["include_reasoning"] = include
    choice = draw(_CHOICE)
    if choice == "no_tools":
        return fields, False
    fields["tool_choice"] = {"type": "function", "function": {"name": "get_weather"}} if choice == "named" else choice
    fields["parallel_tool_calls"] = draw(_BOOL)
    return fields, True


@st.composite
def _cases(draw: Draw, name: str) -> Case:
    family = get_family(name)
    fields, tools = _fields(draw, name)
    thinking, opened = _served(name, tools, json.dumps(fields, sort_keys=True))
    named = isinstance(fields.get("tool_choice"), dict)
    if fields.get("tool_choice") == "required" and draw(_BOOL):
        written = _required_output(draw, family, opened)
    elif family.tool_parser == "glm4":
        if named:  # after the forced "get_weather\n": the arguments
            written = _glm4_body(draw)
        else:
            head = draw(_GLM4_HEAD)
            written = _lead(draw, family, thinking, opened) + ("" if head is None else f"{head}\n") + _glm4_body(draw)
    else:
        native = "\n" if family.newline_calls else ""
        sep = native if draw(_NATIVE_STYLE) else ("" if native else "\n")  # the parser reads both styles
        written = ("" if named else _lead(draw, family, thinking, opened)) + _xml_answer(draw, sep, named)
    return _case(name, fields, written, tools=tools)


CASES = {name: _cases(name) for name in FAMILIES}
SALTS = {name: st.lists(st.integers(0, 255), min_size=i, max_size=i) for i, name in enumerate(FAMILIES)}


# --- both ways through the pipeline -----------------------------------------------------------------


def _pipeline(case: Case) -> ChatOutputPipeline:
    """As ``PreparedChat.pipelines`` builds it (the family's parsers, its thinking verdict)."""
    return ChatOutputPipeline.for_request(
        case.request,
        tool_parser=case.family.tool_parser if case.request.tools_enabled else None,
        reasoning_parser=case.family.reasoning_parser,
        prompt_opened_thinking=case.opened,
        enable_thinking=case.thinking,
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


@pytest.mark.parametrize("family", FAMILIES)
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_streamed_equals_non_streamed(family: str, data: Any) -> None:
    # Under HYPOTHESIS_PROFILE=ci (derandomize) every parametrization of this test gets the same seed, so
    # families the pipeline treats alike (GLM-4.7 / 4.7-Flash / 5) would replay the same examples; a
    # per-family number of throwaway draws first gives each family examples of its own.
    data.draw(SALTS[family], label="per-family salt")
    case = data.draw(CASES[family])
    cuts = [c % (len(case.text) + 1) for c in data.draw(_CUTS)]
    _check(case, cuts, data.draw(_ENGINE_REASON))


NAMED = {"tool_choice": {"type": "function", "function": {"name": "get_weather"}}}
OFF = {"chat_template_kwargs": {"enable_thinking": False}}
# (family, request fields, what the model wrote; a named call's forced opening is added as the server does)
RECORDED = [
    ("glm45", {}, "\n<think>用户想知道天气</think>\n我来查一下。\n<tool_call>get_weather\n<arg_key>location</arg_key>\n<arg_value>北京</arg_value>\n<arg_key>days</arg_key>\n<arg_value>3</arg_value>\n</tool_call>"),
    ("glm45", NAMED, "hello big world<arg_key>location</arg_key>\n<arg_value>a b</arg_value>\n</tool_call>"),
    ("glm45", OFF, "\n北京今天晴。"),
    ("glm47", {}, "<think>思考</think>好的<tool_call>get_weather<arg_key>location</arg_key><arg_value>上海</arg_value></tool_call><tool_call>ping</tool_call>"),
    ("glm47", NAMED, "<arg_key>location</arg_key><arg_value>上海</arg_value></tool_call>"),
    ("glm47_flash", {}, "想一想</think>\n<tool_call>ping</tool_call>"),
    ("glm47_flash", OFF, "直接回答"),
    ("glm5", {}, "用户问天气<tool_call>get_weather<arg_key>location</arg_key><arg_value>北京</arg_value></tool_call>"),
    ("glm5", {"chat_template_kwargs": {"thinking": {"type": "disabled"}}}, "好<tool_call>ping</tool_call>"),
    ("glm52", {"reasoning_effort": "max"}, "想</think>我来查。<tool_call>get_weather<arg_key>days</arg_key><arg_value>3</arg_value></tool_call>"),
    ("glm52", NAMED, "<arg_key>location</arg_key><arg_value>北京</arg_value></tool_call>"),
    ("glm53", {"reasoning_effort": "low"}, "<think>想</think>北京晴<tool_call>ping</tool_call>"),
    ("glm53", {**NAMED, **OFF}, "<arg_key>location</arg_key><arg_value>北京"),
    ("glm4", {}, 'get_weather\n{"location": "北京"}'),
    ("glm4", {}, "\n北京今天晴。"),
    ("glm4", NAMED, '{"location": "北京"}'),
]


@pytest.mark.parametrize(("family", "fields", "written"), RECORDED)
def test_recorded_outputs_stream_like_they_parse(family: str, fields: dict[str, Any], written: str) -> None:
    case = _case(family, fields, written)
    _check(case, list(range(0, len(case.text), 3)), "stop")


@pytest.mark.parametrize("family", FAMILIES)
def test_served_like_the_server(family: str) -> None:
    """The test's view of a family is the server's: GLM-4.7+ prompts open ``<think>`` (GLM-5.2/5.3 always),
    a named call is forced behind ``</think>`` there, GLM-4 has no reasoning."""
    default = _case(family, NAMED, "")
    off = _case(family, OFF, "")
    assert default.thinking is get_family(family).thinking.has_reasoning
    assert off.thinking is (default.thinking and not get_family(family).thinking.can_disable)
    # the family's reasoning parser assumes by default what its template does (GLM-4.7+: the prompt opens <think>)
    assumed = get_reasoning_parser(get_family(family).reasoning_parser).default_prompt_opened
    assert default.opened is (default.thinking and assumed)
    assert off.opened is (off.thinking and assumed)
    assert default.text == ("</think>" if default.opened else "") + get_family(family).call_opening("get_weather")


def test_named_call_keeps_spaces_in_stray_text() -> None:
    """The reported bug: "hello big world" streamed inside an open GLM-4.5 call became "hellobigworld"."""
    case = _case("glm45", NAMED, RECORDED[1][2])
    assert _streamed(case, list(case.text), "stop")["content"] == "hello big world"
