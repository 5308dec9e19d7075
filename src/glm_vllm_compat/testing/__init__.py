"""Test helpers: a fake vLLM of any recorded release, and tiny GLM checkpoints.

``fake_vllm`` is imported eagerly (stdlib only); the tiny-model builder is
imported on first use, so importing this package stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import fake_vllm

if TYPE_CHECKING:
    from ._replay import ReplayEngine, ReplayScript
    from ._tiny_lora import build_tiny_lora
    from ._tiny_model import TINY_ARCHS, TINY_DTYPES, TINY_FAMILIES, build_tiny_model, default_cache_dir

__all__ = [
    "TINY_ARCHS",
    "TINY_DTYPES",
    "TINY_FAMILIES",
    "ReplayEngine",
    "ReplayScript",
    "build_tiny_lora",
    "build_tiny_model",
    "default_cache_dir",
    "fake_vllm",
]

_TINY_MODEL_NAMES = frozenset({"TINY_ARCHS", "TINY_DTYPES", "TINY_FAMILIES", "build_tiny_model",
                               "default_cache_dir"})


def __getattr__(name: str) -> Any:
    if name in ("ReplayEngine", "ReplayScript"):
        from . import _replay

        return getattr(_replay, name)
    if name == "build_tiny_lora":
        from . import _tiny_lora

        return _tiny_lora.build_tiny_lora
    if name in _TINY_MODEL_NAMES:
        from . import _tiny_model

        return getattr(_tiny_model, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
