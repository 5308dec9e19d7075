"""The vLLM bug repairs (`glm_vllm_compat._fixes`), on the shapes the bug has in vLLM's sources.

The module texts below reproduce, line for line where it matters, the code of
``vllm/model_executor/layers/fused_moe/cpu_fused_moe.py`` in the published
vLLM sdists (the ``SiluAndMul`` stand-in fails on construction exactly as the
real custom op does outside a vLLM config context). The same repair runs on
the real modules in ``tests/engine/test_fixes_real.py`` and in the CPU tier.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import logging
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

from glm_vllm_compat import _fixes

SILU_AND_MUL = '''
class SiluAndMul:  # vllm.model_executor.layers.activation.SiluAndMul, a CustomOp
    def __init__(self, *, compile_native=True):
        raise AssertionError("Current vLLM config is not set.")

    @staticmethod
    def forward_native(x):
        d = len(x) // 2
        return [a * b for a, b in zip(x[:d], x[d:])]
'''

INSTANCE_SILU = SILU_AND_MUL.replace("    @staticmethod\n    def forward_native(x):", "    def forward_native(self, x):")

ENUM = '''
import enum
class MoEActivation(enum.Enum):
    SILU = "silu"
    GELU = "gelu"
'''

SHAPES: dict[str, str] = {
    # vLLM 0.20.0 .. 0.24.0: a lambda builds the custom op at forward time (the bug)
    "0.24-lambda": SILU_AND_MUL + ENUM + '''
_CPU_MOE_ACT_FN = {
    MoEActivation.SILU: lambda x: SiluAndMul(compile_native=False).forward_native(x),
    MoEActivation.GELU: lambda x: x,
}
def activate(x):
    return _CPU_MOE_ACT_FN[MoEActivation("silu")](x)
''',
    # vLLM 0.14.x: a dict that builds the custom op on first use (the bug)
    "0.14-lazy-dict": SILU_AND_MUL + '''
class _LazyActivationDict(dict):
    _factories = {"silu": SiluAndMul}
    def __missing__(self, key):
        if key not in self._factories:
            raise KeyError(f"{key} is not a supported activation")
        self[key] = self._factories[key]()
        return self[key]
_CPU_MOE_ACT = _LazyActivationDict()
def activate(x):
    return _CPU_MOE_ACT["silu"].forward_native(x)
''',
    # vLLM 0.16 .. 0.19 and 0.25 .. 0.27: fixed upstream (the static method itself)
    "0.25-fixed": SILU_AND_MUL + ENUM + '''
_CPU_MOE_ACT_FN = {MoEActivation.SILU: SiluAndMul.forward_native, MoEActivation.GELU: lambda x: x}
def activate(x):
    return _CPU_MOE_ACT_FN[MoEActivation("silu")](x)
''',
    # vLLM 0.10 / 0.11: a plain function, no custom op
    "0.10-function": '''
def silu_and_mul(x):
    d = len(x) // 2
    return [a * b for a, b in zip(x[:d], x[d:])]
def activate(x):
    return silu_and_mul(x)
''',
}

BROKEN = {"0.24-lambda", "0.14-lazy-dict"}
X = [1.0, 2.0, 3.0, 4.0]
EXPECTED = [3.0, 8.0]


@pytest.fixture(autouse=True)
def _isolated_hook() -> Iterator[None]:
    """Keep the process-wide hook and record as they were (engine tests may have installed them)."""
    pending = {k: list(v) for k, v in _fixes._hook.pending.items()}
    hooked = _fixes._hook in sys.meta_path
    done = dict(_fixes._applied)
    _fixes.uninstall()
    _fixes._applied.clear()
    yield
    _fixes.uninstall()
    _fixes._hook.pending.update(pending)
    if hooked:
        sys.meta_path.insert(0, _fixes._hook)
    _fixes._applied.clear()
    _fixes._applied.update(done)


def _module(name: str, source: str) -> ModuleType:
    module = ModuleType(name)
    exec(compile(textwrap.dedent(source), name, "exec"), module.__dict__)
    return module


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_repair_on_every_shape(shape: str) -> None:
    module = _module(f"shape_{shape}", SHAPES[shape])
    if shape in BROKEN:
        with pytest.raises(AssertionError, match="config is not set"):
            module.activate(X)
    said = _fixes._repair_cpu_moe_silu(module)
    assert (said is not None) == (shape in BROKEN)
    assert module.activate(X) == EXPECTED
    assert _fixes._repair_cpu_moe_silu(module) is None  # idempotent: nothing left to repair


def test_other_activations_are_left_alone() -> None:
    module = _module("shape_other", SHAPES["0.24-lambda"])
    gelu = module._CPU_MOE_ACT_FN[module.MoEActivation.GELU]
    _fixes._repair_cpu_moe_silu(module)
    assert module._CPU_MOE_ACT_FN[module.MoEActivation.GELU] is gelu
    assert module._CPU_MOE_ACT_FN[module.MoEActivation.SILU] is module.SiluAndMul.forward_native


@pytest.mark.parametrize("shape", sorted(BROKEN))
def test_no_repair_when_forward_native_is_not_static(shape: str) -> None:
    """Only vLLM's static SiluAndMul.forward_native is a safe stand-in; otherwise touch nothing."""
    module = _module("shape_instance", SHAPES[shape].replace(SILU_AND_MUL, INSTANCE_SILU))
    assert _fixes._repair_cpu_moe_silu(module) is None
    with pytest.raises(AssertionError):
        module.activate(X)


def _fake_package(tmp_path: Path, name: str, shape: str) -> _fixes.Fix:
    package = tmp_path / name
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "cpu_fused_moe.py").write_text(textwrap.dedent(SHAPES[shape]))
    return _fixes.Fix("cpu-moe-silu", f"{name}.cpu_fused_moe", "upstream", _fixes._repair_cpu_moe_silu)


def test_hook_repairs_the_module_when_it_is_first_imported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(tmp_path))
    fix = _fake_package(tmp_path, "fakevllm_hook", "0.24-lambda")
    _fixes.install([fix])
    _fixes.install([fix])  # plugins load several times per process
    assert _fixes._hook.pending == {fix.module: [fix]}
    assert sys.meta_path[0] is _fixes._hook
    try:
        assert importlib.util.find_spec(fix.module) is not None  # a look-up alone repairs nothing, keeps the fix pending
        assert fix.module not in sys.modules and fix.module in _fixes._hook.pending
        module = importlib.import_module(fix.module)
        assert module.activate(X) == EXPECTED
        assert "SiluAndMul.forward_native" in _fixes.applied()["cpu-moe-silu"]
        assert fix.module not in _fixes._hook.pending
        assert "lambda x: SiluAndMul" in module.__loader__.get_source(fix.module)  # loader API still answers
        importlib.import_module("fakevllm_hook")  # other modules are not touched
    finally:
        for name in ("fakevllm_hook", fix.module):
            sys.modules.pop(name, None)


def test_install_repairs_a_module_already_imported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(tmp_path))
    fix = _fake_package(tmp_path, "fakevllm_early", "0.14-lazy-dict")
    try:
        module = importlib.import_module(fix.module)
        _fixes.install([fix])
        assert fix.module not in _fixes._hook.pending
        assert module.activate(X) == EXPECTED
        assert "cpu-moe-silu" in _fixes.applied()
    finally:
        for name in ("fakevllm_early", fix.module):
            sys.modules.pop(name, None)


def test_a_failing_repair_logs_and_never_raises(caplog: pytest.LogCaptureFixture) -> None:
    def broken(module: ModuleType) -> str | None:
        raise RuntimeError("boom")

    fix = _fixes.Fix("broken", "json", "upstream", broken)
    with caplog.at_level(logging.WARNING, logger="glm_vllm_compat"):
        _fixes.install([fix])  # json is imported already: the repair runs now
    assert "fix broken could not be applied" in caplog.text
    assert "broken" not in _fixes.applied()


@pytest.mark.parametrize("value, hooked", [("0", False), ("off", False), ("false", False), ("1", True), (None, True)])
def test_plugin_switch(value: str | None, hooked: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if value is None:
        monkeypatch.delenv(_fixes.ENV_SWITCH, raising=False)
    else:
        monkeypatch.setenv(_fixes.ENV_SWITCH, value)
    _fixes.vllm_general_plugin()
    real = _fixes.FIXES[0].module
    if real in sys.modules:  # an engine test imported the real module: the repair ran instead of a hook
        return
    assert (_fixes._hook in sys.meta_path) == hooked
    assert (real in _fixes._hook.pending) == hooked


def test_plugin_is_registered_for_vllm() -> None:
    """vLLM loads the ``vllm.general_plugins`` group in every one of its processes."""
    points = {ep.name: ep for ep in importlib.metadata.entry_points(group="vllm.general_plugins")}
    assert points["glm_vllm_compat_fixes"].value == "glm_vllm_compat._fixes:vllm_general_plugin"
    assert points["glm_vllm_compat_fixes"].load() is _fixes.vllm_general_plugin


def test_fixes_table_names_the_upstream_report() -> None:
    names = [fix.name for fix in _fixes.FIXES]
    assert len(names) == len(set(names))
    for fix in _fixes.FIXES:
        assert fix.upstream.startswith("https://github.com/vllm-project/vllm/")
        assert fix.module.startswith("vllm.")
        assert fix.name in (_fixes.__doc__ or "")


def test_fixes_module_imports_no_vllm() -> None:
    code = "import sys, glm_vllm_compat._fixes as f; f.install(); print(any(m == 'vllm' or m.startswith('vllm.') for m in sys.modules))"
    import subprocess

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# -- cpu-half-dtype -----------------------------------------------------------------------------------


class _OldCpuPlatform:
    """vLLM 0.8.5's CpuPlatform in miniature: keeps float16, declares no supported dtypes."""

    seen: list[Any] = []

    @classmethod
    def check_and_update_config(cls, vllm_config: Any) -> None:
        cls.seen.append(vllm_config)


class _NewCpuPlatform(_OldCpuPlatform):
    supported_dtypes = ("bfloat16", "float32")


@pytest.mark.parametrize(
    ("checkpoint", "dtype", "expected"),
    [("float32", "float16", "float32"), ("bfloat16", "float16", "bfloat16"), ("float16", "float16", "bfloat16"),
     (None, "float16", "bfloat16"), ("float32", "float32", "float32"), ("float32", "bfloat16", "bfloat16")],
)
def test_cpu_half_dtype_runs_a_dtype_the_cpu_kernels_have(checkpoint: str | None, dtype: str, expected: str) -> None:
    torch = pytest.importorskip("torch")
    platform = type("CpuPlatform", (_OldCpuPlatform,), {"seen": []})
    module = ModuleType("fake_cpu_platform")
    module.CpuPlatform = platform  # type: ignore[attr-defined]
    assert "float16" in (_fixes._repair_cpu_half_dtype(module) or "")
    model_config = SimpleNamespace(dtype=getattr(torch, dtype), hf_config=SimpleNamespace(torch_dtype=checkpoint))
    config = SimpleNamespace(model_config=model_config)
    platform.check_and_update_config(config)
    assert platform.seen == [config]  # vLLM's own checks still run
    assert model_config.dtype == getattr(torch, expected)


def test_cpu_half_dtype_leaves_platforms_that_declare_their_dtypes() -> None:
    module = ModuleType("fake_cpu_platform_new")
    module.CpuPlatform = _NewCpuPlatform  # type: ignore[attr-defined]
    assert _fixes._repair_cpu_half_dtype(module) is None
    assert "check_and_update_config" not in _NewCpuPlatform.__dict__  # the inherited method, untouched
    assert _fixes._repair_cpu_half_dtype(ModuleType("no_platform")) is None


# -- v0-guided-errors / v0-xgrammar-regex: one client's constraint must not kill the V0 engine --------------

# The shape of vLLM 0.6 - 0.10's V0 async engine: the builder runs inside the engine loop, which
# turns only a ValueError into an error of the request.
ASYNC_ENGINE = """
class InvalidSyntax(Exception):
    pass

async def build_guided_decoding_logits_processor_async(sampling_params, **kwargs):
    if sampling_params == "bad-regex":
        raise InvalidSyntax("")
    if sampling_params == "bad-value":
        raise ValueError("vLLM's own check")
    return sampling_params

async def add_request_async(params):
    return await build_guided_decoding_logits_processor_async(params)
"""

# The V0 xgrammar backend: JSON schemas and grammars checked here, a regex only at the first decoding step.
XGRAMMAR = """
class _Grammar:
    @staticmethod
    def from_regex(regex):
        if regex.count("(") != regex.count(")"):
            raise RuntimeError("Regex parsing error at position 2: The parenthesis is not closed.")

    @staticmethod
    def from_ebnf(text):
        pass

class xgr:
    Grammar = _Grammar

class Params:
    def __init__(self, regex=None, json=None, grammar=None):
        self.regex, self.json, self.grammar = regex, json, grammar

class GrammarConfig:
    def __init__(self, **fields):
        self.fields = fields

    @classmethod
    def from_guided_params(cls, guided_params, tokenizer=None):
        if guided_params.grammar:
            xgr.Grammar.from_ebnf(guided_params.grammar)
            return cls(grammar_str=guided_params.grammar)
        elif guided_params.regex:
            return cls(regex_str=guided_params.regex)
        raise ValueError("no constraint")
"""
XGRAMMAR_CHECKED = XGRAMMAR.replace(
    "        elif guided_params.regex:\n",
    "        elif guided_params.regex:\n            xgr.Grammar.from_regex(guided_params.regex)\n",
)


def test_v0_guided_errors_become_an_error_of_the_request() -> None:
    import asyncio

    module = _module("v0_async_engine", ASYNC_ENGINE)
    with pytest.raises(module.InvalidSyntax):  # unrepaired: not a ValueError, so the V0 engine loop dies
        asyncio.run(module.add_request_async("bad-regex"))
    assert _fixes._repair_v0_guided_errors(module) is not None
    with pytest.raises(_fixes.ConstraintError, match="cannot be compiled: InvalidSyntax") as info:
        asyncio.run(module.add_request_async("bad-regex"))
    assert isinstance(info.value, ValueError) and isinstance(info.value.__cause__, module.InvalidSyntax)
    with pytest.raises(ValueError, match="vLLM's own check") as own:  # vLLM's ValueErrors pass unchanged
        asyncio.run(module.add_request_async("bad-value"))
    assert type(own.value) is ValueError
    assert asyncio.run(module.add_request_async("fine")) == "fine"
    assert _fixes._repair_v0_guided_errors(module) is None  # idempotent


def test_v0_guided_errors_leaves_engines_without_the_builder() -> None:
    assert _fixes._repair_v0_guided_errors(_module("v1_engine", "def add_request(params):\n    return params\n")) is None


def test_v0_xgrammar_regex_is_checked_when_the_request_is_added() -> None:
    module = _module("v0_xgrammar", XGRAMMAR)
    assert module.GrammarConfig.from_guided_params(module.Params(regex="(")).fields == {"regex_str": "("}  # the bug
    assert _fixes._repair_v0_xgrammar_regex(module) is not None
    with pytest.raises(_fixes.ConstraintError, match="the regex cannot be compiled: .*parenthesis is not closed") as info:
        module.GrammarConfig.from_guided_params(module.Params(regex="("))
    assert isinstance(info.value.__cause__, RuntimeError)
    assert module.GrammarConfig.from_guided_params(module.Params(regex="(a)"), tokenizer="t").fields == {"regex_str": "(a)"}
    assert module.GrammarConfig.from_guided_params(module.Params(grammar="root ::= x")).fields == {"grammar_str": "root ::= x"}
    assert _fixes._repair_v0_xgrammar_regex(module) is None  # already checked now: nothing left to repair


@pytest.mark.parametrize(
    "source",
    [XGRAMMAR_CHECKED, XGRAMMAR.replace("class xgr:\n    Grammar = _Grammar\n", ""), "x = 1\n"],
    ids=["regex-already-checked", "no-xgrammar", "no-grammar-config"],
)
def test_v0_xgrammar_regex_leaves_other_code_alone(source: str) -> None:
    module = _module("other_xgrammar", source)
    original = getattr(module, "GrammarConfig", None)
    before = original.__dict__["from_guided_params"] if original is not None else None
    assert _fixes._repair_v0_xgrammar_regex(module) is None
    if original is not None:
        assert original.__dict__["from_guided_params"] is before
