"""The real-engine tier's helpers work where vLLM is absent (the surface tier collects tests/engine without it)."""

from __future__ import annotations

import pytest

from glm_vllm_compat import _detect
from glm_vllm_compat._errors import VllmNotInstalled

from .engine import conftest


def _no_vllm() -> object:
    raise VllmNotInstalled("vLLM is not installed")


def test_runs_v0_engine_is_false_without_vllm(monkeypatch: pytest.MonkeyPatch) -> None:
    # evaluated in xfail conditions at import time: raising here broke collection (CI, surface tier)
    monkeypatch.setattr(conftest, "HAS_VLLM", False)
    monkeypatch.setattr(_detect, "detect", _no_vllm)
    assert conftest.runs_v0_engine() is False


def test_async_engine_forks_its_worker_is_false_without_vllm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(conftest, "HAS_VLLM", False)
    assert conftest.async_engine_forks_its_worker() is False


@pytest.mark.parametrize(
    ("names", "forks"),
    [
        ({"CPUExecutorAsync", "ProcessWorkerWrapper"}, True),  # vLLM 0.5.x - 0.6.x: the async driver worker is a child
        ({"CPUExecutorAsync"}, False),  # 0.4.x: in-process driver worker
        (set(), False),  # 0.7+: no CPU executor module of its own
    ],
)
def test_async_engine_forks_its_worker_reads_the_cpu_executor(
    monkeypatch: pytest.MonkeyPatch, names: set[str], forks: bool
) -> None:
    """The engine suite's aengine fixture spawns that worker where the CPU async executor would fork it."""
    import sys
    import types

    vllm = types.ModuleType("vllm")
    executor = types.ModuleType("vllm.executor")
    cpu_executor = types.ModuleType("vllm.executor.cpu_executor")
    for name in names:
        setattr(cpu_executor, name, object)
    executor.cpu_executor = cpu_executor  # type: ignore[attr-defined]
    vllm.executor = executor  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "vllm", vllm)
    monkeypatch.setitem(sys.modules, "vllm.executor", executor)
    monkeypatch.setitem(sys.modules, "vllm.executor.cpu_executor", cpu_executor)
    monkeypatch.setattr(conftest, "HAS_VLLM", True)
    assert conftest.async_engine_forks_its_worker() is forks
