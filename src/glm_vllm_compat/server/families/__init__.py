"""GLM families: one module per family, one registry row each.

Adding a family: write ``families/<name>.py`` defining ``FAMILY`` (a
:class:`GlmFamily`, or a subclass where a format differs) and add its row to
:data:`FAMILIES`. Nothing else in the server names a family.

Detection (:func:`detect_family`): each family scores 2 when the chat template
has its markers (tool-call example with or without newlines, a
``reasoning_effort`` variable, GLM-5.3's fixed ``<|assistant|><think>``
generation prompt, GLM-4's ``<|observation|>`` without XML tags) and 1 when
one of the model's architectures is its own; the best score wins, ties go to
the earlier row. So the template decides the format and the architecture
tells apart families that share a template shape (GLM-4.7 / 4.7-Flash /
GLM-5).
"""

from __future__ import annotations

from collections.abc import Sequence

from .._registry import LazyRegistry, UnknownName
from ._base import GLM_STOP_TOKENS, GlmFamily, ThinkingControls, stop_token_ids

__all__ = [
    "FAMILIES",
    "GLM_STOP_TOKENS",
    "GlmFamily",
    "ThinkingControls",
    "UnknownFamily",
    "detect_family",
    "family_names",
    "get_family",
    "register_family",
    "stop_token_ids",
]


class UnknownFamily(UnknownName):
    """No GLM family of that name; the message lists the valid names."""


FAMILIES: LazyRegistry[GlmFamily] = LazyRegistry(
    "GLM family",
    GlmFamily,
    {name: (f"{__name__}.{name}", "FAMILY") for name in ("glm4", "glm45", "glm47", "glm47_flash", "glm5", "glm52", "glm53")},
    instances=True,
    error=UnknownFamily,
)


def register_family(name: str, module: str, attribute: str = "FAMILY") -> None:
    FAMILIES.register(name, module, attribute)


def family_names() -> list[str]:
    return FAMILIES.names()


def get_family(name: str | GlmFamily) -> GlmFamily:
    """The family ``name`` (a family object is returned as is)."""
    return name if isinstance(name, GlmFamily) else FAMILIES.get(name)


def detect_family(architectures: Sequence[str], chat_template: str | None) -> GlmFamily:
    """The family of a model, from its architectures and chat template (see the module docs).

    Raises ``ValueError`` naming the valid families when nothing matches.
    """
    best: tuple[int, GlmFamily] | None = None
    for name in FAMILIES:
        family = FAMILIES.get(name)
        score = (2 if chat_template and family.matches_template(chat_template) else 0) + (
            1 if family.architectures.intersection(architectures) else 0
        )
        if score and (best is None or score > best[0]):
            best = (score, family)
    if best is None:
        raise ValueError(
            f"cannot tell the GLM family of architectures {list(architectures)!r} from them or the chat template; "
            f"pass one of: {', '.join(family_names())}"
        )
    return best[1]
