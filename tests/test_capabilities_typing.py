"""Capabilities is typed per flag: a misspelled flag name fails mypy, and the typed names are FLAGS."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from glm_vllm_compat import _capabilities
from glm_vllm_compat._capabilities import FLAGS, Capabilities, capabilities_for

ROOT = Path(__file__).resolve().parents[1]


def test_typed_names_are_exactly_the_flags() -> None:
    assert list(_capabilities._FlagNames.__annotations__) == list(FLAGS)
    assert all(t == "bool" for t in _capabilities._FlagNames.__annotations__.values())


def test_runtime_attribute_access_unchanged() -> None:
    caps = capabilities_for("0.11.0")
    assert caps.structured_outputs is True and caps.guided_decoding is True
    assert caps.replace(structured_outputs=False).structured_outputs is False
    with pytest.raises(AttributeError):
        caps.structured_output  # noqa: B018
    assert [f.name for f in __import__("dataclasses").fields(Capabilities)] == ["version", "flags"]


@pytest.mark.skipif(shutil.which("mypy") is None and not (Path(sys.executable).parent / "mypy").exists(), reason="mypy is not installed")
def test_misspelled_flag_fails_mypy(tmp_path: Path) -> None:
    snippet = tmp_path / "snippet.py"
    snippet.write_text(textwrap.dedent("""
        from glm_vllm_compat._capabilities import capabilities_for
        caps = capabilities_for("0.11.0")
        ok: bool = caps.structured_outputs
        bad = caps.structured_output
    """))
    result = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--config-file", str(ROOT / "pyproject.toml"), str(snippet)],
                            cwd=ROOT, capture_output=True, text=True, timeout=600)
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert 'has no attribute "structured_output"' in out and "snippet.py:5" in out, out
    assert "snippet.py:4" not in out, out
