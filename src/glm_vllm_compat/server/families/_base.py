"""``GlmFamily``: everything that makes one GLM generation different, in one object.

The request path asks the family (``state.family``) and never compares family
names: prompt conversion (history dialect), template variables and thinking
controls, the forced-call opening and the ``required`` constraint, whether
tool tags need ``skip_special_tokens=False``, the stop tokens, the parsers.
Families differing only in data are instances of one class; a format change
is a subclass overriding one method.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

from ..protocol import ChatCompletionRequest, InvalidRequest, Tool, message_text
from ._messages import MessageLike, as_dict, history_calls, reasoning_of, template_tools

__all__ = ["COMPACT_GENERATION_PROMPT", "EFFORT_SCALE", "GLM_STOP_TOKENS", "GlmFamily", "ThinkingControls", "call_style", "stop_token_ids"]

logger = logging.getLogger("glm_vllm_compat.server")

#: Tokens that end a GLM assistant turn (GLM-4 through GLM-5.3); ids come from the tokenizer.
GLM_STOP_TOKENS = ("<|endoftext|>", "<|user|>", "<|observation|>")

#: GLM-5.3's fixed generation prompt (thinking always on): its template's marker.
COMPACT_GENERATION_PROMPT = "<|assistant|><think>"

# The first <arg_key> after <tool_call> and the name in a template's tool-call example.
_CALL_EXAMPLE = re.compile(r"<tool_call>(.{0,200}?)<arg_key>", re.DOTALL)


def stop_token_ids(tokenizer: Any, tokens: Sequence[str] = GLM_STOP_TOKENS) -> list[int]:
    """Ids of ``tokens`` this tokenizer knows (never hard-coded)."""
    vocab = tokenizer.get_vocab() if hasattr(tokenizer, "get_vocab") else {}
    return [vocab[t] for t in tokens if t in vocab]


def call_style(chat_template: str | None) -> str | None:
    """``"newline"`` (GLM-4.5) or ``"inline"`` (GLM-4.7+) from a template's tool-call example."""
    if not chat_template or "<tool_call>" not in chat_template or "<arg_key>" not in chat_template:
        return None
    match = _CALL_EXAMPLE.search(chat_template)
    if match is None:
        return None
    between = match.group(1)
    return "newline" if "\n" in between or "\\n" in between else "inline"


@dataclasses.dataclass(frozen=True)
class ThinkingControls:
    """How a family's thinking is switched and tuned through request fields."""

    switch_keys: tuple[str, ...] = ()
    """``chat_template_kwargs`` keys that turn thinking on/off (``enable_thinking``, ``thinking``)."""
    can_disable: bool = False
    """False: a request to turn thinking off is logged as a warning and thinking stays on."""
    clear_thinking: bool | None = None
    """The template's default for ``clear_thinking`` (``None``: not a control of this family);
    ``False`` means earlier turns' reasoning is kept in the prompt by default."""
    efforts: tuple[str, ...] = ()
    """Accepted ``reasoning_effort`` values (empty: not a control of this family)."""
    default_effort: str | None = None
    has_reasoning: bool = True
    delimiters: tuple[str, str] = ("<think>", "</think>")
    """The text that opens and closes reasoning (what the engine's reasoning config counts between)."""


_SWITCHES = ("enable_thinking", "thinking")

#: Effort levels of the client APIs (OpenAI's ``reasoning.effort``, Anthropic's
#: ``output_config.effort``) and of GLM's ``reasoning_effort``, least to most.
EFFORT_SCALE = ("minimal", "low", "medium", "high", "xhigh", "max")


@dataclasses.dataclass(frozen=True)
class GlmFamily:
    """One GLM format family (see the module docs). Instances live in one module each."""

    name: str
    title: str
    architectures: frozenset[str]
    tool_parser: str
    reasoning_parser: str
    thinking: ThinkingControls
    newline_calls: bool = False
    """GLM-4.5 writes ``<tool_call>name\\n<arg_key>..`` with newlines; GLM-4.7+ without."""
    stop_tokens: tuple[str, ...] = GLM_STOP_TOKENS
    tool_tags_special: bool = True
    """Tool-call tags are tokens ``skip_special_tokens`` would remove: keep them when tools are on."""

    # -- detection ------------------------------------------------------------

    def matches_template(self, template: str) -> bool:
        """True when ``template`` has this family's markers (tool-call style, controls)."""
        style = "newline" if self.newline_calls else "inline"
        if call_style(template) != style or COMPACT_GENERATION_PROMPT in template:
            return False
        return ("reasoning_effort" in template) == bool(self.thinking.efforts)

    # -- forced calls -----------------------------------------------------------

    def call_opening(self, name: str) -> str:
        """The text that starts a call of ``name`` (forced for a named ``tool_choice``)."""
        return f"<tool_call>{name}" + ("\n" if self.newline_calls else "")

    def required_regex(self, names: Sequence[str], opened: bool) -> str:
        """A regex that forces at least one call (``tool_choice="required"``)."""
        alternation = "|".join(re.escape(n) for n in names)
        think = r"[^<]*</think>\n?" if opened else r"(<think>[^<]*</think>\n?)?"
        sep = "\n" if self.newline_calls else ""
        pair = rf"<arg_key>[^<]+</arg_key>{sep}<arg_value>[^<]*</arg_value>{sep}"
        return rf"{think}<tool_call>({alternation}){sep}({pair})*</tool_call>"

    # -- history dialect ---------------------------------------------------------

    def template_messages(
        self, messages: Sequence[MessageLike], *, tools: Sequence[Tool | Mapping[str, Any]] | None = None
    ) -> list[dict[str, Any]]:
        """OpenAI messages -> the messages this family's template expects (input untouched)."""
        out: list[dict[str, Any]] = []
        for index, message in enumerate(messages):
            out.extend(self._convert(as_dict(message), index))
        return out

    def _convert(self, message: dict[str, Any], index: int) -> list[dict[str, Any]]:
        role = message.get("role")
        if role == "assistant":
            return self._assistant(message, index)
        text = message_text(message.get("content"))
        if role in ("system", "developer"):
            return [{"role": "system", "content": text}]
        if role == "user":
            return [{"role": "user", "content": text}]
        if role == "tool":
            return self._tool_result(message, text)
        raise InvalidRequest(f"unknown role {role!r}", f"messages[{index}].role")

    def _assistant(self, message: dict[str, Any], index: int) -> list[dict[str, Any]]:
        converted: dict[str, Any] = {"role": "assistant", "content": message_text(message.get("content"))}
        reasoning = reasoning_of(message)
        if reasoning is not None:  # templates read either name
            converted["reasoning_content"] = converted["reasoning"] = reasoning
        calls = history_calls(message, index)
        if calls:
            converted["tool_calls"] = calls
        return [converted]

    def _tool_result(self, message: dict[str, Any], text: str) -> list[dict[str, Any]]:
        converted: dict[str, Any] = {"role": "tool", "content": text}
        if message.get("tool_call_id") is not None:
            converted["tool_call_id"] = message["tool_call_id"]
        return [converted]

    def template_tools(self, request: ChatCompletionRequest) -> list[dict[str, Any]] | None:
        """The request's tools as the template renders them."""
        return template_tools(request)

    # -- thinking controls -------------------------------------------------------

    def template_kwargs(
        self, request: ChatCompletionRequest, defaults: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Template variables besides ``messages``: defaults < client kwargs < request fields.

        ``tools`` from the request always wins; the thinking switch is
        mirrored into ``enable_thinking`` (the variable templates read) and
        ``reasoning_effort`` is validated and defaulted. Raises
        :class:`InvalidRequest` for a control this family does not have.
        """
        kwargs = {**(defaults or {}), **(request.chat_template_kwargs or {})}
        kwargs.pop("tools", None)
        tools = self.template_tools(request)
        if tools:
            kwargs["tools"] = tools
        self._apply_effort(request, kwargs)
        self._check_clear_thinking(kwargs)
        # templates read `enable_thinking` as a truth value: give them the verdict, not `thinking` or a
        # {"type": "disabled"} object (truthy to Jinja, which would open <think> against the request)
        switch = kwargs.get("enable_thinking", kwargs.get("thinking"))
        if self.thinking.switch_keys and ("enable_thinking" not in kwargs and "thinking" in kwargs or isinstance(switch, Mapping)):
            kwargs["enable_thinking"] = self.thinking_on(kwargs)
        return kwargs

    def _apply_effort(self, request: ChatCompletionRequest, kwargs: dict[str, Any]) -> None:
        top = getattr(request, "reasoning_effort", None)
        inner = kwargs.get("reasoning_effort")
        if top is not None and inner is not None and top != inner:
            raise InvalidRequest(
                f"reasoning_effort {top!r} and chat_template_kwargs.reasoning_effort {inner!r} disagree; give one",
                "reasoning_effort",
            )
        effort = top if top is not None else inner
        if effort is None:
            if self.thinking.default_effort is not None:
                kwargs["reasoning_effort"] = self.thinking.default_effort
            return
        if not self.thinking.efforts:
            raise InvalidRequest(
                f"reasoning_effort is not a thinking control of {self.title}; "
                + (f"use chat_template_kwargs.{self.thinking.switch_keys[0]}" if self.thinking.switch_keys else "it has no thinking"),
                "reasoning_effort",
            )
        if effort not in self.thinking.efforts:
            raise InvalidRequest(
                f"reasoning_effort {effort!r} is not one of {', '.join(self.thinking.efforts)} ({self.title})",
                "reasoning_effort",
            )
        kwargs["reasoning_effort"] = effort

    def effort_for(self, level: str) -> str | None:
        """A client API's effort ``level`` as this family's ``reasoning_effort``: the same
        name when it has it, else the nearest above (never less thinking than asked; past
        the top, the top). ``None``: effort is not a control of this family."""
        efforts = self.thinking.efforts
        if not efforts:
            return None
        if level in efforts:
            return level
        rank = EFFORT_SCALE.index(level)
        return next((e for e in efforts if e in EFFORT_SCALE and EFFORT_SCALE.index(e) >= rank), efforts[-1])

    def _check_clear_thinking(self, kwargs: dict[str, Any]) -> None:
        if "clear_thinking" in kwargs and self.thinking.clear_thinking is None:
            raise InvalidRequest(
                f"chat_template_kwargs.clear_thinking is not a control of {self.title}'s template",
                "chat_template_kwargs.clear_thinking",
            )

    def thinking_requested(self, kwargs: Mapping[str, Any]) -> bool | None:
        """What the request's switches ask for (``None``: nothing asked)."""
        for key in _SWITCHES:
            if key in kwargs:
                value = kwargs[key]
                if isinstance(value, Mapping):  # {"type": "disabled"} (Z.ai API style)
                    return value.get("type") != "disabled"
                return bool(value)
        return None

    def thinking_on(self, kwargs: Mapping[str, Any]) -> bool:
        """Whether the answer starts with reasoning, given the resolved template kwargs."""
        if not self.thinking.has_reasoning:
            return False
        asked = self.thinking_requested(kwargs)
        if asked is False and not self.thinking.can_disable:
            logger.warning(
                "%s cannot turn thinking off; the request asked to (enable_thinking/thinking=false), "
                "thinking stays on (use include_reasoning=false to hide it, reasoning_effort to shorten it)",
                self.title,
            )
            return True
        return asked is not False

    # -- engine ------------------------------------------------------------------

    def stop_token_ids(self, tokenizer: Any) -> list[int]:
        return stop_token_ids(tokenizer, self.stop_tokens)

    def describe(self) -> str:
        return f"{self.name} ({self.title})"


def dump_arguments(arguments: Mapping[str, Any]) -> str:
    return json.dumps(dict(arguments), ensure_ascii=False)
