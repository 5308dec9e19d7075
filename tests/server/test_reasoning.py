"""``<think>`` splitting: GLM-4.5 (model opens it), GLM-4.7 (prompt opens it), none."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from glm_vllm_compat.server._reasoning import (
    Glm45ReasoningParser,
    Glm47ReasoningParser,
    NoReasoningParser,
    ReasoningParser,
    get_reasoning_parser,
    prompt_opens_thinking,
    reasoning_parser_names,
)


def run(name: str, raw: str, chunks: list[str] | None = None, **kwargs: Any) -> tuple[str, str]:
    parser = get_reasoning_parser(name)(**kwargs)
    reasoning, content = [], []
    for chunk in chunks if chunks is not None else [raw]:
        r, c = parser.feed(chunk)
        reasoning.append(r)
        content.append(c)
    r, c = parser.finish()
    return "".join(reasoning) + r, "".join(content) + c


# (id, parser, kwargs, raw output, reasoning, content)
CASES: list[tuple[str, str, dict[str, Any], str, str, str]] = [
    ("glm45-framed", "glm45", {}, "\n<think>用户想查北京天气…</think>\n北京今天晴。", "用户想查北京天气…", "北京今天晴。"),
    ("glm45-unframed", "glm45", {}, "<think>abc</think>Hello", "abc", "Hello"),
    (
        "glm45-tool-call-after-think",
        "glm45",
        {},
        "\n<think>需要调用工具</think>\n<tool_call>get_weather\n<arg_key>location</arg_key>\n<arg_value>北京</arg_value>\n</tool_call>",
        "需要调用工具",
        "<tool_call>get_weather\n<arg_key>location</arg_key>\n<arg_value>北京</arg_value>\n</tool_call>",
    ),
    ("glm45-empty-think", "glm45", {}, "\n<think></think>\nHi", "", "Hi"),
    ("glm45-no-think", "glm45", {}, "\nHello", "", "Hello"),
    ("glm45-no-think-no-newline", "glm45", {}, "Hello", "", "Hello"),
    ("glm45-only-one-framing-newline", "glm45", {}, "\n<think>r</think>\n\nHi\n", "r", "\nHi\n"),
    ("glm45-unclosed-is-reasoning", "glm45", {}, "\n<think>still thinking", "still thinking", ""),
    ("glm45-partial-end-tag-at-eof", "glm45", {}, "<think>abc</thi", "abc</thi", ""),
    ("glm45-brackets-in-reasoning", "glm45", {}, "<think>a<b> </th </think>c", "a<b> </th ", "c"),
    ("glm45-think-later-is-content", "glm45", {}, "Hi <think>x</think>", "", "Hi <think>x</think>"),
    ("glm45-partial-open-at-eof", "glm45", {}, "\n<thi", "", "<thi"),
    ("glm45-just-newline", "glm45", {}, "\n", "", ""),
    ("glm45-empty", "glm45", {}, "", "", ""),
    ("glm45-second-end-tag-stays", "glm45", {}, "<think>a</think>b</think>c", "a", "b</think>c"),
    ("glm45-thinking-off", "glm45", {"enable_thinking": False}, "\nHello", "", "Hello"),
    ("glm45-thinking-off-tags-kept", "glm45", {"enable_thinking": False}, "<think>x</think>y", "", "<think>x</think>y"),
    ("glm45-prompt-opened", "glm45", {"prompt_opened_thinking": True}, "abc</think>\nHi", "abc", "Hi"),
    ("glm47-default-opened", "glm47", {}, "用户问天气</think>北京晴", "用户问天气", "北京晴"),
    ("glm47-redundant-open-tag", "glm47", {}, "<think>abc</think>Hello", "abc", "Hello"),
    ("glm47-framed", "glm47", {}, "\nabc</think>\nHello", "abc", "Hello"),
    ("glm47-unclosed-is-reasoning", "glm47", {}, "abc", "abc", ""),
    ("glm47-partial-open-at-eof", "glm47", {}, "<thi", "<thi", ""),
    (
        "glm47-tool-call",
        "glm47",
        {},
        "想想</think><tool_call>get_time</tool_call>",
        "想想",
        "<tool_call>get_time</tool_call>",
    ),
    ("glm47-not-opened", "glm47", {"prompt_opened_thinking": False}, "Hello", "", "Hello"),
    ("glm47-thinking-off", "glm47", {"enable_thinking": False}, "Hello</think>", "", "Hello</think>"),
    ("none-strips-framing", "none", {}, "\nHello\n", "", "Hello\n"),
    ("none-keeps-think", "none", {}, "<think>x</think>", "", "<think>x</think>"),
    ("none-only-first-newline", "none", {}, "\n\nHello", "", "\nHello"),
    ("none-prompt-opened-ignored", "none", {"prompt_opened_thinking": True}, "abc</think>", "", "abc</think>"),
]


@pytest.mark.parametrize(
    ("name", "kwargs", "raw", "reasoning", "content"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_whole_output(name: str, kwargs: dict[str, Any], raw: str, reasoning: str, content: str) -> None:
    assert run(name, raw, **kwargs) == (reasoning, content)


@pytest.mark.parametrize(
    ("name", "kwargs", "raw", "reasoning", "content"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_char_by_char(name: str, kwargs: dict[str, Any], raw: str, reasoning: str, content: str) -> None:
    assert run(name, raw, list(raw), **kwargs) == (reasoning, content)


@st.composite
def case_and_split(draw: st.DrawFn) -> tuple[str, dict[str, Any], str, list[str]]:
    _, name, kwargs, raw, _, _ = draw(st.sampled_from(CASES))
    cuts = sorted(draw(st.sets(st.integers(min_value=0, max_value=len(raw)), max_size=10)))
    bounds = [0, *cuts, len(raw)]
    return name, kwargs, raw, [raw[a:b] for a, b in zip(bounds, bounds[1:])]


@settings(max_examples=300, deadline=None)
@given(case_and_split())
def test_any_split_gives_the_whole_output_result(case: tuple[str, dict[str, Any], str, list[str]]) -> None:
    name, kwargs, raw, chunks = case
    assert run(name, raw, chunks, **kwargs) == run(name, raw, **kwargs)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.sampled_from(["<think>", "</think>", "<", "</", "think", ">", "\n", "a", "北", " "]), max_size=25),
    st.sampled_from(["glm45", "glm47", "none"]),
    st.booleans(),
    st.data(),
)
def test_token_soup_is_split_invariant_and_loses_nothing(
    tokens: list[str], name: str, enable: bool, data: st.DataObject
) -> None:
    raw = "".join(tokens)
    whole = run(name, raw, enable_thinking=enable)
    cuts = sorted(data.draw(st.sets(st.integers(min_value=0, max_value=len(raw)), max_size=8)))
    bounds = [0, *cuts, len(raw)]
    assert run(name, raw, [raw[a:b] for a, b in zip(bounds, bounds[1:])], enable_thinking=enable) == whole
    # Only tags and framing newlines are removed, never other text. Each part is stripped on its own, in one
    # pass: removing tags from a joined or half-stripped text can form new ones ("<" + "think>", "<</think>think>").
    reasoning, content = whole
    assert _untagged(reasoning) + _untagged(content) == _untagged(raw)


def _untagged(text: str) -> str:
    return re.sub(r"</?think>|\n", "", text)


def test_reasoning_streams_immediately_and_holds_only_a_partial_tag() -> None:
    parser = Glm45ReasoningParser()
    assert parser.feed("\n<think>用户") == ("用户", "")
    assert parser.feed("想</th") == ("想", "")
    assert parser.feed("ink>") == ("", "")
    assert not parser.feed("\n")[1]  # the framing newline after </think>
    assert parser.feed("答") == ("", "答")
    assert parser.reasoning_ended


def test_glm45_waits_only_while_think_may_follow() -> None:
    parser = Glm45ReasoningParser()
    assert parser.feed("\n") == ("", "")
    assert parser.feed("<") == ("", "")
    assert parser.feed("b>") == ("", "<b>")


def test_thinking_off_means_no_reasoning() -> None:
    for cls in (Glm45ReasoningParser, Glm47ReasoningParser):
        parser = cls(enable_thinking=False)
        assert parser.reasoning_ended and not parser.thinking and not parser.prompt_opened_thinking
        assert parser.feed("abc</think>") == ("", "abc</think>")


def test_defaults() -> None:
    assert Glm47ReasoningParser().prompt_opened_thinking
    assert not Glm45ReasoningParser().prompt_opened_thinking
    assert not NoReasoningParser(prompt_opened_thinking=True).prompt_opened_thinking


def test_feed_after_finish_is_an_error() -> None:
    parser = Glm45ReasoningParser()
    parser.finish()
    assert parser.finish() == ("", "")
    with pytest.raises(RuntimeError):
        parser.feed("x")


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("[gMASK]<sop><|user|>\nhi<|assistant|><think>", True),  # GLM-4.7, thinking on
        ("[gMASK]<sop><|user|>\nhi<|assistant|></think>", False),  # GLM-4.7, thinking off
        ("[gMASK]<sop><|user|>\nhi<|assistant|>", False),  # GLM-4.5, thinking on
        ("[gMASK]<sop><|user|>\nhi/nothink<|assistant|>\n<think></think>", False),  # GLM-4.5 off
        # vLLM #27703: markers of earlier turns must not decide the current one.
        ("<|user|>a<|assistant|><think>x</think>y<|user|>b<|assistant|><think>", True),
        ("<|user|>a<|assistant|>\n<think>x</think>\ny<|observation|>r<|assistant|>", False),
        ("<|user|>a<|assistant|><think>x<|user|>b<|assistant|>", False),
        ("no markers at all", False),
    ],
)
def test_prompt_opens_thinking(prompt: str, expected: bool) -> None:
    assert prompt_opens_thinking(prompt) is expected


def test_registry() -> None:
    assert reasoning_parser_names() == ["glm45", "glm47", "none"]
    for name in reasoning_parser_names():
        cls = get_reasoning_parser(name)
        assert issubclass(cls, ReasoningParser) and cls.name == name
    with pytest.raises(KeyError, match="glm45, glm47, none"):
        get_reasoning_parser("deepseek_r1")


def test_family_reasoning_parsers() -> None:
    from glm_vllm_compat.server.families import get_family

    assert [get_family(f).reasoning_parser for f in ("glm4", "glm45", "glm47", "glm53")] == ["none", "glm45", "glm47", "glm47"]


def test_text_that_looks_like_a_tag_once_tags_are_removed_is_kept() -> None:
    """Found by the token-soup property: "<" as reasoning and "think>" as content, nothing lost."""
    assert run("glm45", "<think><</think>think>", enable_thinking=True) == ("<", "think>")
