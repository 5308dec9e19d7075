"""GLM-5 / GLM-5.1 (``GlmMoeDsaForCausalLM``, vLLM 0.16+): GLM-4.7's call text and prompt shape.

Thinking: ``enable_thinking`` plus ``clear_thinking`` (default true; false
keeps earlier turns' reasoning in the prompt: "preserved thinking").
"""

from __future__ import annotations

from ._base import GlmFamily, ThinkingControls

__all__ = ["FAMILY"]

FAMILY = GlmFamily(
    name="glm5",
    title="GLM-5 / GLM-5.1",
    architectures=frozenset({"GlmMoeDsaForCausalLM"}),
    tool_parser="glm47",
    reasoning_parser="glm47",
    thinking=ThinkingControls(switch_keys=("enable_thinking", "thinking"), can_disable=True, clear_thinking=True),
)
