"""GLM-4.7: inline XML calls (zero-argument ``<tool_call>name</tool_call>``), prompt opens ``<think>``.

Thinking: ``enable_thinking`` (or ``thinking``), on by default; the template's
``clear_thinking=false`` keeps earlier turns' reasoning (default: only turns
after the last user message show it).
"""

from __future__ import annotations

from ._base import GlmFamily, ThinkingControls

__all__ = ["FAMILY", "THINKING"]

THINKING = ThinkingControls(switch_keys=("enable_thinking", "thinking"), can_disable=True, clear_thinking=True)

FAMILY = GlmFamily(
    name="glm47",
    title="GLM-4.7",
    architectures=frozenset(),  # Glm4MoeForCausalLM, told apart from GLM-4.5 by its template
    tool_parser="glm47",
    reasoning_parser="glm47",
    thinking=THINKING,
)
