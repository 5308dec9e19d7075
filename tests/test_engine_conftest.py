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
