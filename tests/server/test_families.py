"""GLM families: registry, detection, thinking controls, history dialects, template rendering."""

from __future__ import annotations

import functools
import logging
import pathlib
import re
from typing import Any

import pytest

from glm_vllm_compat.server._registry import LazyRegistry, UnknownName
from glm_vllm_compat.server._template import render_chat
from glm_vllm_compat.server.families import (
    FAMILIES,
    GlmFamily,
    UnknownFamily,
    detect_family,
    family_names,
    get_family,
    register_family,
)
from glm_vllm_compat.server.protocol import ChatCompletionRequest, InvalidRequest, parse_request

ALL = ["glm4", "glm45", "glm47", "glm47_flash", "glm5", "glm52", "glm53"]
SRC = pathlib.Path(__file__).resolve().parents[2] / "src" / "glm_vllm_compat"


# --- the request path never compares family names ----------------------------------------

_NAMES = "|".join(sorted(ALL, key=len, reverse=True))
_COMPARISONS = [
    re.compile(rf"""(==|!=)\s*["']({_NAMES})["']"""),
    re.compile(rf"""["']({_NAMES})["']\s*(==|!=)"""),
    re.compile(rf"""\bin\s*[(\[{{]\s*["']({_NAMES})["']"""),
    re.compile(rf"""\bcase\s+["']({_NAMES})["']"""),
    re.compile(r"""\bfamily\.name\s*(==|!=|\bin\b)"""),  # dispatch on the name of a family object
    re.compile(r"""\.family\s*(==|!=)"""),
    re.compile(r"""\.(startswith|endswith)\([^)]*["']glm"""),  # a prefix test ("glm4" also matches "glm47"), tuples too
    re.compile(r"""\bfamily\.name\s*\.\s*(startswith|endswith)\("""),
    re.compile(r"""\[\s*[\w.]*\bfamily\.name\s*\]"""),  # a table keyed on the name: SOMETHING[family.name]
    re.compile(r"""\.get\(\s*[\w.]*\bfamily\.name\b"""),  # ... or SOMETHING.get(family.name, ...)
]


def _family_comparisons(root: pathlib.Path) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        if "families" in path.relative_to(root).parts:
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if any(p.search(line) for p in _COMPARISONS):
                found.append(f"{path.relative_to(root)}:{number}: {line.strip()}")
    return found


def test_no_family_name_comparison_outside_families() -> None:
    assert _family_comparisons(SRC) == []


# One sample per pattern of _COMPARISONS, in its order: each must be found, and by its own pattern.
_BAD_SAMPLES = [
    'if state.family == "glm4":',
    'if "glm45" != name:',
    'y = f in ("glm47", "x")',
    'case "glm52":',
    "z = state.family.name == n",
    "if self.state.family != other:",
    'if name.startswith("glm4"):',
    "if state.family.name.startswith(prefix):",
    "parser = PARSERS[state.family.name]",
    "effort = DEFAULT_EFFORT.get(family.name, None)",
]
_MORE_SAMPLES = [
    'if model_type.endswith(("glm47", "glm5")):',  # a tuple of prefixes
    'if name.startswith(("chatglm", "glm4")):',  # ... not only the first
    "x = TABLE[ family.name ]",
    "x = TABLE.get(self.family.name)",
    'ok = tokenizer.startswith("glm")',  # any "glm..." prefix, not only a full family name
]


def test_the_grep_finds_comparisons(tmp_path: pathlib.Path) -> None:
    assert len(_BAD_SAMPLES) == len(_COMPARISONS), "every pattern needs its sample in _BAD_SAMPLES"
    for pattern, sample in zip(_COMPARISONS, _BAD_SAMPLES):
        assert pattern.search(sample), (pattern.pattern, sample)
    (tmp_path / "bad.py").write_text("\n".join([*_BAD_SAMPLES, *_MORE_SAMPLES]) + "\n")
    (tmp_path / "ok.py").write_text(
        "if family.thinking.can_disable: pass\nname = family.name\nlabel = f'{family.name}'\nx = TABLE[name]\nif arch.startswith('Glm4'): pass\n"
    )
    (tmp_path / "families").mkdir()
    (tmp_path / "families" / "ok.py").write_text('if name == "glm4": pass\nx = TABLE[family.name]\nif name.startswith("glm4"): pass\n')
    found = _family_comparisons(tmp_path)
    assert [line.split(": ", 1)[1] for line in found] == [s.strip() for s in [*_BAD_SAMPLES, *_MORE_SAMPLES]]
    assert all(line.startswith("bad.py:") for line in found)


# --- registry ----------------------------------------------------------------------------------


def test_registry_lists_every_family_in_order() -> None:
    assert family_names() == ALL
    for name in ALL:
        family = get_family(name)
        assert isinstance(family, GlmFamily) and family.name == name
        assert get_family(family) is family


def test_unknown_family_lists_the_valid_names() -> None:
    with pytest.raises(UnknownFamily, match="glm4, glm45, glm47, glm47_flash, glm5, glm52, glm53"):
        get_family("glm9")


def test_lazy_registry_imports_on_use_and_checks_the_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    registry: LazyRegistry[type[Exception]] = LazyRegistry("thing", Exception, {"value": ("builtins", "ValueError")})
    registry.register("missing_module", "glm_vllm_compat.no_such_module", "X")
    registry.register("wrong_kind", "builtins", "len")
    assert registry.get("value") is ValueError
    assert registry.names() == ["value", "missing_module", "wrong_kind"]
    with pytest.raises(ModuleNotFoundError):
        registry.get("missing_module")
    with pytest.raises(TypeError, match="not a Exception"):
        registry.get("wrong_kind")
    with pytest.raises(UnknownName, match="valid names: missing_module, value, wrong_kind"):
        registry.get("nope")
    monkeypatch.setattr(FAMILIES, "_entries", dict(FAMILIES._entries))
    register_family("glm45_alias", "glm_vllm_compat.server.families.glm45")
    assert get_family("glm45_alias") is get_family("glm45")


# --- detection ----------------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def tiny_template(name: str) -> str:
    from glm_vllm_compat.testing._tiny_model import _template_text

    return _template_text(name)


@pytest.mark.parametrize(
    ("architectures", "template", "expected"),
    [
        (["ChatGLMModel"], None, "glm4"),
        (["GlmForCausalLM"], "glm4", "glm4"),
        (["Glm4ForCausalLM"], "glm4_9b", "glm4"),
        (["Glm4MoeForCausalLM"], "glm45", "glm45"),
        (["Glm4MoeForCausalLM"], None, "glm45"),
        (["Glm4MoeForCausalLM"], "glm47", "glm47"),
        (["Glm4MoeLiteForCausalLM"], "glm47", "glm47_flash"),
        (["Glm4MoeLiteForCausalLM"], None, "glm47_flash"),
        (["GlmMoeDsaForCausalLM"], "glm5", "glm5"),
        (["GlmMoeDsaForCausalLM"], "glm47", "glm5"),
        (["GlmMoeDsaForCausalLM"], None, "glm5"),
        (["GlmMoeDsaForCausalLM"], "glm52", "glm52"),
        (["Glm5NextForCausalLM"], "glm53", "glm53"),
        (["Glm5NextForCausalLM"], None, "glm53"),
        # tiny checkpoints: Glm4Moe weights, the template decides
        (["Glm4MoeForCausalLM"], "glm52", "glm52"),
        (["Glm4MoeForCausalLM"], "glm53", "glm53"),
        (["SomethingNew"], "glm53", "glm53"),
        (["SomethingNew"], "glm45", "glm45"),
        ([], "glm4", "glm4"),
    ],
)
def test_detect_family(architectures: list[str], template: str | None, expected: str) -> None:
    assert detect_family(architectures, tiny_template(template) if template else None).name == expected


def test_detect_family_unknown_model() -> None:
    with pytest.raises(ValueError, match="pass one of: glm4, glm45"):
        detect_family(["LlamaForCausalLM"], "{{ messages }}")


# --- per-family data ------------------------------------------------------------------------------

FACTS = {
    # family: (tool parser, reasoning parser, call opening of "f", tool tags need skip_special_tokens=False)
    "glm4": ("glm4", "none", "f\n", False),
    "glm45": ("glm45", "glm45", "<tool_call>f\n", True),
    "glm47": ("glm47", "glm47", "<tool_call>f", True),
    "glm47_flash": ("glm47", "glm47", "<tool_call>f", True),
    "glm5": ("glm47", "glm47", "<tool_call>f", True),
    "glm52": ("glm47", "glm47", "<tool_call>f", True),
    "glm53": ("glm47", "glm47", "<tool_call>f", True),
}


@pytest.mark.parametrize("name", ALL)
def test_family_facts(name: str) -> None:
    family = get_family(name)
    assert (family.tool_parser, family.reasoning_parser, family.call_opening("f"), family.tool_tags_special) == FACTS[name]
    assert family.stop_tokens == ("<|endoftext|>", "<|user|>", "<|observation|>")


@pytest.mark.parametrize(
    ("name", "text", "matches"),
    [
        ("glm4", 'get_weather\n{"location": "北京"}', True),
        ("glm4", "get_weather\nnot json", False),
        ("glm45", "<tool_call>get_weather\n<arg_key>location</arg_key>\n<arg_value>北京</arg_value>\n</tool_call>", True),
        ("glm45", "<tool_call>get_weather<arg_key>location</arg_key><arg_value>北京</arg_value></tool_call>", False),
        ("glm53", "<tool_call>get_weather<arg_key>location</arg_key><arg_value>北京</arg_value></tool_call>", True),
        ("glm53", "<tool_call>get_weather</tool_call>", True),
        ("glm53", "</think><tool_call>get_weather</tool_call>", False),
        ("glm47", "abc</think><tool_call>get_weather</tool_call>", True),
        ("glm45", "<think>abc</think>\n<tool_call>get_weather\n</tool_call>", True),
    ],
)
def test_required_regex(name: str, text: str, matches: bool) -> None:
    family = get_family(name)
    opened = name in ("glm47", "glm53") and text.find("</think>") > 0
    assert bool(re.fullmatch(family.required_regex(["get_weather", "get_time"], opened), text)) is matches


# --- thinking controls ------------------------------------------------------------------------------


def chat(**extra: Any) -> ChatCompletionRequest:
    return parse_request(ChatCompletionRequest, {"messages": [{"role": "user", "content": "hi"}], **extra})


@pytest.mark.parametrize(
    ("name", "fields", "thinking", "kwargs"),
    [
        ("glm4", {}, False, {}),
        ("glm45", {}, True, {}),
        ("glm45", {"chat_template_kwargs": {"enable_thinking": False}}, False, {"enable_thinking": False}),
        ("glm45", {"chat_template_kwargs": {"thinking": False}}, False, {"thinking": False, "enable_thinking": False}),
        ("glm47", {"chat_template_kwargs": {"thinking": {"type": "disabled"}}}, False, {"thinking": {"type": "disabled"}, "enable_thinking": False}),
        # the Z.ai object under enable_thinking itself: the template gets the boolean verdict
        ("glm47", {"chat_template_kwargs": {"enable_thinking": {"type": "disabled"}}}, False, {"enable_thinking": False}),
        ("glm45", {"chat_template_kwargs": {"enable_thinking": {"type": "disabled"}}}, False, {"enable_thinking": False}),
        ("glm5", {"chat_template_kwargs": {"enable_thinking": {"type": "enabled"}}}, True, {"enable_thinking": True}),
        ("glm5", {"chat_template_kwargs": {"clear_thinking": False}}, True, {"clear_thinking": False}),
        ("glm52", {"reasoning_effort": "max"}, True, {"reasoning_effort": "max"}),
        ("glm52", {"chat_template_kwargs": {"reasoning_effort": "high"}}, True, {"reasoning_effort": "high"}),
        ("glm53", {}, True, {"reasoning_effort": "max"}),
        ("glm53", {"reasoning_effort": "low"}, True, {"reasoning_effort": "low"}),
        ("glm53", {"reasoning_effort": "high", "chat_template_kwargs": {"reasoning_effort": "high"}}, True, {"reasoning_effort": "high"}),
        ("glm53", {"chat_template_kwargs": {"clear_thinking": True}}, True, {"clear_thinking": True, "reasoning_effort": "max"}),
    ],
)
def test_thinking_controls(name: str, fields: dict[str, Any], thinking: bool, kwargs: dict[str, Any]) -> None:
    family = get_family(name)
    resolved = family.template_kwargs(chat(**fields))
    assert resolved == kwargs
    assert family.thinking_on(resolved) is thinking


@pytest.mark.parametrize(
    ("name", "fields", "param"),
    [
        ("glm45", {"reasoning_effort": "high"}, "reasoning_effort"),
        ("glm4", {"reasoning_effort": "low"}, "reasoning_effort"),
        ("glm5", {"chat_template_kwargs": {"reasoning_effort": "max"}}, "reasoning_effort"),
        ("glm52", {"reasoning_effort": "low"}, "reasoning_effort"),
        ("glm53", {"reasoning_effort": "medium"}, "reasoning_effort"),
        ("glm53", {"reasoning_effort": "low", "chat_template_kwargs": {"reasoning_effort": "max"}}, "reasoning_effort"),
        ("glm45", {"chat_template_kwargs": {"clear_thinking": False}}, "chat_template_kwargs.clear_thinking"),
    ],
)
def test_controls_a_family_does_not_have_are_refused(name: str, fields: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        get_family(name).template_kwargs(chat(**fields))
    assert info.value.param == param


def test_defaults_yield_to_the_request() -> None:
    family = get_family("glm45")
    defaults = {"enable_thinking": False, "custom": 1}
    assert family.template_kwargs(chat(), defaults) == {"enable_thinking": False, "custom": 1}
    assert family.template_kwargs(chat(chat_template_kwargs={"enable_thinking": True}), defaults)["enable_thinking"] is True
    assert defaults == {"enable_thinking": False, "custom": 1}


@pytest.mark.parametrize("name", ["glm53", "glm52"])
def test_thinking_cannot_be_turned_off_warns(name: str, caplog: pytest.LogCaptureFixture) -> None:
    family = get_family(name)
    with caplog.at_level(logging.WARNING, logger="glm_vllm_compat.server"):
        on = family.thinking_on(family.template_kwargs(chat(chat_template_kwargs={"enable_thinking": False})))
    assert on is True
    assert "cannot turn thinking off" in caplog.text and family.title in caplog.text


# --- history dialects and rendering ------------------------------------------------------------------

WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"location": {"type": "string"}}}}}


def render(name: str, template: str, messages: list[dict[str, Any]], **fields: Any) -> str:
    family = get_family(name)
    request = chat(**fields)
    request.messages = parse_request(ChatCompletionRequest, {"messages": messages}).messages
    kwargs = family.template_kwargs(request)
    tools = kwargs.pop("tools", None)
    return render_chat(tiny_template(template), family.template_messages(request.messages, tools=tools), tools=tools, template_kwargs=kwargs)


TEMPLATES = {"glm4": "glm4", "glm45": "glm45", "glm47": "glm47", "glm47_flash": "glm47", "glm5": "glm5", "glm52": "glm52", "glm53": "glm53"}


def _conversation(parts: bool) -> list[dict[str, Any]]:
    def content(text: str) -> Any:
        return [{"type": "text", "text": text}] if parts else text

    call = {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": '{"location": "北京"}'}}
    return [
        {"role": "system", "content": content("你是助手")},
        {"role": "user", "content": content("北京天气？")},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c1", "content": content("晴，25度")},
    ]


@pytest.mark.parametrize("name", ALL)
def test_string_and_text_parts_render_identically(name: str) -> None:
    """recipes#327: tool results given as a list of text parts rendered empty."""
    as_string = render(name, TEMPLATES[name], _conversation(False), tools=[WEATHER])
    as_parts = render(name, TEMPLATES[name], _conversation(True), tools=[WEATHER])
    assert as_string == as_parts
    assert "晴，25度" in as_parts and "你是助手" in as_parts


THREE_TURNS = [
    {"role": "user", "content": "q1"},
    {"role": "assistant", "content": "a1", "reasoning_content": "r-one"},
    {"role": "user", "content": "q2"},
    {"role": "assistant", "content": "a2", "reasoning": "r-two"},
    {"role": "user", "content": "q3"},
    {"role": "assistant", "content": "a3", "reasoning": "r-three"},
]


@pytest.mark.parametrize(
    ("name", "fields", "kept"),
    [
        ("glm5", {}, ["r-three"]),  # only turns after the last user message
        ("glm5", {"chat_template_kwargs": {"clear_thinking": False}}, ["r-one", "r-two", "r-three"]),
        ("glm47", {"chat_template_kwargs": {"clear_thinking": False}}, ["r-one", "r-two", "r-three"]),
        ("glm52", {"chat_template_kwargs": {"clear_thinking": False}}, ["r-one", "r-two", "r-three"]),
        ("glm53", {}, ["r-one", "r-two", "r-three"]),  # kept by default
        ("glm53", {"chat_template_kwargs": {"clear_thinking": True}}, ["r-three"]),
        ("glm45", {}, ["r-three"]),
    ],
)
def test_preserved_thinking(name: str, fields: dict[str, Any], kept: list[str]) -> None:
    """vllm#38488: history reasoning (either field name) is rendered where the family keeps it."""
    prompt = render(name, TEMPLATES[name], THREE_TURNS, **fields)
    assert [r for r in ("r-one", "r-two", "r-three") if r in prompt] == kept


def test_glm53_prompt_is_compact() -> None:
    prompt = render("glm53", "glm53", [{"role": "user", "content": "hi"}], reasoning_effort="low")
    assert prompt == "[gMASK]<sop><|system|>Reasoning Effort: Low<|user|>hi<|assistant|><think>"
    assert render("glm53", "glm53", [{"role": "user", "content": "hi"}]).startswith("[gMASK]<sop><|system|>Reasoning Effort: Max<|user|>")


def test_glm53_reorders_tool_results_by_call_id_and_drops_tool_keys() -> None:
    calls = [
        {"id": "a", "type": "function", "function": {"name": "get_weather", "arguments": '{"location": "A"}'}},
        {"id": "b", "type": "function", "function": {"name": "get_weather", "arguments": '{"location": "B"}'}},
    ]
    messages = [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": "", "tool_calls": calls},
        {"role": "tool", "tool_call_id": "b", "content": "result-b"},
        {"role": "tool", "tool_call_id": "a", "content": "result-a"},
    ]
    tool = {"type": "function", "function": {**WEATHER["function"], "strict": True, "defer_loading": True}}
    prompt = render("glm53", "glm53", messages, tools=[tool])
    assert prompt.index("result-a") < prompt.index("result-b")
    assert "strict" not in prompt and "defer_loading" not in prompt
    glm5 = render("glm5", "glm5", messages, tools=[tool])
    assert glm5.index("result-b") < glm5.index("result-a")  # other families keep the client's order


def test_glm4_dialect_keeps_its_shape() -> None:
    family = get_family("glm4")
    out = family.template_messages(_conversation(True), tools=[WEATHER])
    assert out[0] == {"role": "system", "content": "你是助手", "tools": [WEATHER]}
    assert out[2] == {"role": "assistant", "metadata": "get_weather", "content": '{"location": "北京"}'}
    assert out[3] == {"role": "observation", "content": "晴，25度"}


@pytest.mark.parametrize(
    ("family", "level", "expected"),
    [
        ("glm53", "minimal", "low"), ("glm53", "low", "low"), ("glm53", "medium", "high"), ("glm53", "high", "high"),
        ("glm53", "xhigh", "max"), ("glm53", "max", "max"),
        ("glm52", "minimal", "high"), ("glm52", "medium", "high"), ("glm52", "xhigh", "max"), ("glm52", "max", "max"),
        ("glm45", "high", None), ("glm47", "low", None), ("glm5", "max", None), ("glm4", "medium", None),
    ],
)
def test_client_effort_levels_map_to_the_familys_reasoning_effort(family: str, level: str, expected: str | None) -> None:
    """OpenAI's and Anthropic's effort scales, never rounded down: GLM-5.2 has no "low"."""
    assert get_family(family).effort_for(level) == expected
