"""GLM-4 (glm-4-9b-chat, -hf, GLM-4-0414): ``name\\n{json}`` calls, ``observation`` results, no reasoning.

History dialect: an assistant tool call goes back as one ``{"role":
"assistant", "metadata": name, "content": arguments_json}`` message per call
(after the text, if any); OpenAI role ``tool`` becomes ``observation`` (the 9B
template would print a non-existent ``<|tool|>`` token, the 0414 one drops
it); the tools are also attached to the first system message (inserted when
missing), where the glm-4-9b-chat template reads them.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from typing import Any

from ..protocol import Tool, message_text
from ._base import GlmFamily, ThinkingControls, dump_arguments
from ._messages import MessageLike, history_calls, tool_dicts

__all__ = ["FAMILY", "Glm4Family"]


@dataclasses.dataclass(frozen=True)
class Glm4Family(GlmFamily):
    def matches_template(self, template: str) -> bool:
        has_turns = "<|assistant|>" in template or "metadata" in template
        return "<|observation|>" in template and "<tool_call>" not in template and has_turns

    def call_opening(self, name: str) -> str:
        return f"{name}\n"

    def required_regex(self, names: Sequence[str], opened: bool) -> str:
        alternation = "|".join(re.escape(n) for n in names)
        return rf"({alternation})\n\{{[^\n]*\}}"

    def template_messages(
        self, messages: Sequence[MessageLike], *, tools: Sequence[Tool | Mapping[str, Any]] | None = None
    ) -> list[dict[str, Any]]:
        out = super().template_messages(messages, tools=tools)
        if tools:
            _attach_tools(out, tool_dicts(tools))
        return out

    def _assistant(self, message: dict[str, Any], index: int) -> list[dict[str, Any]]:
        text = message_text(message.get("content"))
        calls = history_calls(message, index)
        out = [{"role": "assistant", "metadata": "", "content": text}] if text or not calls else []
        for call in calls:
            function = call["function"]
            out.append({"role": "assistant", "metadata": function["name"], "content": dump_arguments(function["arguments"])})
        return out

    def _tool_result(self, message: dict[str, Any], text: str) -> list[dict[str, Any]]:
        return [{"role": "observation", "content": text}]


def _attach_tools(messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> None:
    for message in messages:
        if message["role"] == "system":
            message["tools"] = tools
            return
    messages.insert(0, {"role": "system", "content": "", "tools": tools})


FAMILY = Glm4Family(
    name="glm4",
    title="GLM-4 (glm-4-9b-chat, GLM-4-0414)",
    architectures=frozenset({"ChatGLMModel", "ChatGLMForConditionalGeneration", "GlmForCausalLM", "Glm4ForCausalLM"}),
    tool_parser="glm4",
    reasoning_parser="none",
    thinking=ThinkingControls(has_reasoning=False),
    tool_tags_special=False,
)
