"""``serve`` without a MODEL: which tiny GLM it builds for the installed vLLM, and how it loads it."""

from __future__ import annotations

import argparse
import pathlib

import pytest

from glm_vllm_compat import _engine
from glm_vllm_compat.server import _cli
from glm_vllm_compat.server._server_flags import resolved
from glm_vllm_compat.testing import _tiny_model


@pytest.mark.parametrize(
    ("registry", "expected"),
    [
        ({"Glm4MoeForCausalLM", "Glm4ForCausalLM", "GlmForCausalLM", "ChatGLMModel"}, "Glm4MoeForCausalLM"),
        ({"Glm4ForCausalLM", "GlmForCausalLM", "ChatGLMModel"}, "Glm4ForCausalLM"),
        ({"GlmForCausalLM", "ChatGLMModel"}, "GlmForCausalLM"),  # vLLM 0.7
        ({"ChatGLMModel", "LlamaForCausalLM"}, "ChatGLMModel"),  # vLLM 0.4 - 0.6
        (set(), "GlmForCausalLM"),  # registry unreadable: the fallback
    ],
)
def test_newest_supported_arch(monkeypatch: pytest.MonkeyPatch, registry: set[str], expected: str) -> None:
    monkeypatch.setattr(_engine, "supported_architectures", lambda: frozenset(registry))
    assert _cli._newest_supported_arch() == expected


@pytest.mark.parametrize(
    ("arch", "name", "remote_code"),
    [
        ("ChatGLMModel", "glm-4-9b-chat-tiny", True),  # its config class is the project's own remote code
        ("Glm4ForCausalLM", "glm-4-0414-tiny", False),
    ],
)
def test_tiny_model_flags(
    monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path, arch: str, name: str, remote_code: bool
) -> None:
    monkeypatch.setattr(_tiny_model, "build_tiny_model", lambda a, progress=None: tmp_path / a)
    monkeypatch.setattr(_cli, "generation_defaults", lambda *args: {})
    options = argparse.Namespace(**resolved(_cli.build_parser([]).parse_args(["--tiny-arch", arch])))
    engine: dict[str, object] = {}
    assert _cli._resolve_model(options, engine) == str(tmp_path / arch)
    assert options.served_model_name == [name]
    assert bool(engine.get("trust_remote_code", False)) is remote_code
    assert engine["dtype"] == "float32" and engine["enforce_eager"] is True
