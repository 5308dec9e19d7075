"""Real-engine tests: a real vLLM (here: vllm-cpu) and the tiny GLM models built locally.

Skipped, with the reason, when vLLM is not installed. Engines are expensive
(import ~8 s, build ~20-40 s on 2 cores), so each module builds its engine once.
"""

from __future__ import annotations

import functools
import importlib.util
import os

import pytest

HAS_VLLM = importlib.util.find_spec("vllm") is not None

# Small-machine defaults for the CPU engine (scripts/cpu_defaults.sh sets the same).
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", f"0-{(os.cpu_count() or 1) - 1}")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("VLLM_NO_USAGE_STATS", "1")

ENGINE_ARGS = {"enforce_eager": True, "max_model_len": 1024, "dtype": "float32"}

# Which tiny GLM the engine tests load.  vLLM 0.4 - 0.6 (built from source, see
# scripts/cpu_src_build.py) register no GlmForCausalLM/Glm4ForCausalLM, and their
# CPU attention needs head sizes >= 64: they get GLM-4-9B-chat's own layout
# (ChatGLMModel, head_dim 64).  $GLM_TEST_TINY_ARCH overrides the choice.
TINY_ARCH_ENV = "GLM_TEST_TINY_ARCH"
_TINY_ORDER = ("Glm4ForCausalLM", "GlmForCausalLM", "ChatGLMModel")


@functools.lru_cache(maxsize=None)
def tiny_arch() -> str:
    """The tiny-model architecture for this vLLM: the env override, else the first of _TINY_ORDER it registers."""
    if os.environ.get(TINY_ARCH_ENV):
        return os.environ[TINY_ARCH_ENV]
    from glm_vllm_compat._engine import supported_architectures

    supported = supported_architectures()
    return next((arch for arch in _TINY_ORDER if arch in supported), _TINY_ORDER[0])


def first_registered(archs: tuple[str, ...]) -> str:
    """The first of ``archs`` the installed vLLM's model registry has; skip when it has none."""
    from glm_vllm_compat._engine import supported_architectures

    supported = supported_architectures()
    found = next((arch for arch in archs if arch in supported), None)
    if found is None:
        pytest.skip(f"none of {', '.join(archs)} is in this vLLM's model registry")
    return found


def require_arch(arch: str) -> None:
    """Skip unless the installed vLLM's model registry has ``arch`` (Glm4MoeForCausalLM arrived in 0.10)."""
    first_registered((arch,))


def runs_v0_engine() -> bool:
    """The installed vLLM runs its V0 engine here (the V0 line of the CPU tier); False without vLLM.

    Called at collection time (in ``xfail`` conditions), so it must not raise
    where vLLM is absent: the surface tier collects these modules without it.
    """
    if not HAS_VLLM:
        return False
    from glm_vllm_compat import _detect

    return _detect.detect().generation.lower() == "v0"


def engine_args() -> dict[str, object]:
    """ENGINE_ARGS for tiny_arch(): ChatGLMModel's config class is remote code (the project's own), as on the real model."""
    return {**ENGINE_ARGS, "trust_remote_code": True} if tiny_arch() == "ChatGLMModel" else dict(ENGINE_ARGS)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip = pytest.mark.skip(reason="vLLM is not installed (pip install 'glm-vllm-compat[cpu]' for the CPU engine)")
    for item in items:
        if "tests/engine/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.engine)
            if not HAS_VLLM:
                item.add_marker(skip)
