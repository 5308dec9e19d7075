"""GLM-5.2 (``GlmMoeDsaForCausalLM``): ``reasoning_effort`` (high, max) replaces ``enable_thinking``.

Told apart from GLM-5/5.1 by its template, which reads ``reasoning_effort``.
Thinking cannot be switched off: ``enable_thinking``/``thinking`` false is
logged as a warning and thinking stays on.
"""

from __future__ import annotations

from ._base import GlmFamily, ThinkingControls

__all__ = ["FAMILY"]

FAMILY = GlmFamily(
    name="glm52",
    title="GLM-5.2",
    architectures=frozenset({"GlmMoeDsaForCausalLM"}),
    tool_parser="glm47",
    reasoning_parser="glm47",
    thinking=ThinkingControls(can_disable=False, clear_thinking=True, efforts=("high", "max")),
)
