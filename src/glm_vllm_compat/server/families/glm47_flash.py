"""GLM-4.7-Flash (``Glm4MoeLiteForCausalLM``, vLLM 0.15+): GLM-4.7's formats and controls."""

from __future__ import annotations

import dataclasses

from .glm47 import FAMILY as GLM47

__all__ = ["FAMILY"]

FAMILY = dataclasses.replace(
    GLM47, name="glm47_flash", title="GLM-4.7-Flash", architectures=frozenset({"Glm4MoeLiteForCausalLM"})
)
