"""GLM-4.5 / 4.5-Air / 4.6: XML calls with newlines, the model opens ``<think>`` itself.

Thinking: on by default, ``chat_template_kwargs`` ``enable_thinking`` (or
``thinking``) false makes the template append ``/nothink`` and pre-fill
``<think></think>``. Earlier turns' reasoning is rendered only after the last
user message.
"""

from __future__ import annotations

from ._base import GlmFamily, ThinkingControls

__all__ = ["FAMILY"]

FAMILY = GlmFamily(
    name="glm45",
    title="GLM-4.5 / GLM-4.6",
    architectures=frozenset({"Glm4MoeForCausalLM"}),
    tool_parser="glm45",
    reasoning_parser="glm45",
    thinking=ThinkingControls(switch_keys=("enable_thinking", "thinking"), can_disable=True),
    newline_calls=True,
)
