"""CPU-platform defaults applied by ``serve`` itself (the same as ``scripts/cpu_defaults.sh``).

Left alone, vLLM's CPU backend sizes its KV cache from a fixed default and
binds its threads from its own guess; on small machines that is either too
much memory or one core. When the user has not set them, ``serve`` sets:

* ``VLLM_CPU_KVCACHE_SPACE``: a quarter of the available memory, in GiB,
  at least 1 and at most :data:`KV_CAP_GIB`;
* ``VLLM_CPU_OMP_THREADS_BIND``: every allowed core for one rank, or the
  cores split into one contiguous block per engine rank on this node
  (data x pipeline x tensor parallel; ``0|1`` for two ranks on two cores).

The platform is recognised from what is installed, never from a version number.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from .._detect import VllmInfo

__all__ = ["CpuDefaultsError", "KV_CAP_GIB", "cpu_defaults", "is_cpu_platform", "thread_binding"]

KV_CAP_GIB = 4


class CpuDefaultsError(ValueError):
    """A parallel layout the CPU platform cannot run (one line)."""


def is_cpu_platform(info: VllmInfo, env: Mapping[str, str]) -> bool:
    """vLLM's CPU backend: a ``*-cpu`` distribution, a ``+cpu`` build, or ``VLLM_TARGET_DEVICE=cpu``."""
    if env.get("VLLM_TARGET_DEVICE"):
        return env["VLLM_TARGET_DEVICE"].lower() == "cpu"
    return info.distribution.lower().endswith("-cpu") or "cpu" in info.raw_version.partition("+")[2].lower()


def _ranges(cores: Sequence[int]) -> str:
    """``[0, 1, 2, 5]`` -> ``0-2,5``."""
    out: list[str] = []
    start = prev = cores[0]
    for core in [*cores[1:], None]:
        if core is not None and core == prev + 1:
            prev = core
            continue
        out.append(f"{start}-{prev}" if prev != start else str(start))
        if core is not None:
            start = prev = core
    return ",".join(out)


def thread_binding(cores: Sequence[int], ranks: int) -> str:
    """One contiguous block of ``cores`` per rank, joined by ``|``."""
    cores = sorted(cores)
    if ranks > len(cores):
        raise CpuDefaultsError(
            f"{ranks} engine ranks (data x pipeline x tensor parallel size) need at least {ranks} CPU cores; "
            f"this machine gives the server {len(cores)}"
        )
    size, extra = divmod(len(cores), ranks)
    blocks, at = [], 0
    for rank in range(ranks):
        width = size + (1 if rank < extra else 0)
        blocks.append(_ranges(cores[at : at + width]))
        at += width
    return "|".join(blocks)


def _check_binding(value: str, ranks: int) -> None:
    if value in ("auto", "nobind", "all"):
        return
    given = len(value.split("|"))
    if given != ranks:
        raise CpuDefaultsError(
            f"VLLM_CPU_OMP_THREADS_BIND={value!r} has {given} core list(s) but the server runs {ranks} "
            f"engine rank(s) (data x pipeline x tensor parallel); give one list per rank, separated by '|' "
            "(e.g. '0|1'), or unset it"
        )


def cpu_defaults(env: Mapping[str, str], ranks: int, cores: Sequence[int], available_bytes: int) -> dict[str, str]:
    """The variables to set (those the user left unset) and checks of those they did set."""
    out: dict[str, str] = {}
    if "VLLM_CPU_KVCACHE_SPACE" not in env:
        out["VLLM_CPU_KVCACHE_SPACE"] = str(max(1, min(KV_CAP_GIB, available_bytes // 4 // 2**30)))
    if "VLLM_CPU_OMP_THREADS_BIND" in env:
        _check_binding(env["VLLM_CPU_OMP_THREADS_BIND"], ranks)
    else:
        out["VLLM_CPU_OMP_THREADS_BIND"] = thread_binding(cores, ranks)
    return out


def available_memory() -> int:
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES"))


def allowed_cores() -> list[int]:
    getter = getattr(os, "sched_getaffinity", None)
    return sorted(getter(0)) if getter else list(range(os.cpu_count() or 1))
