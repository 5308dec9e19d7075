"""scripts/cpu_tier_report.py: the source-built lines' table, results.json's source_lines layout, the README."""

from __future__ import annotations

import json
from types import ModuleType

import pytest

from .conftest import ROOT, load_script


@pytest.fixture(scope="module")
def report() -> ModuleType:
    return load_script("cpu_tier_report")


def _rows(lines: list[str], ver: str) -> list[str]:
    return [ln for ln in lines if ln.startswith(f"| {ver} |")]


def _row(lines: list[str], ver: str) -> str:
    (row,) = _rows(lines, ver)
    return row


def test_a_forced_avx2_build_on_an_avx512_host_names_both(report: ModuleType) -> None:
    src = {  # schema 1 (one entry per release) is still read
        "0.4.3": {"host_isa": "avx512", "isa": "avx512", "built": True, "build": {"isa": "avx512"}},
        "0.6.3": {"host_isa": "avx512", "isa": "avx2", "built": True, "build": {"isa": "avx2"}},
        "0.7.3": {"host_isa": "avx2", "built": True, "build": {"isa": "avx2"}},  # recorded before --isa
    }
    lines = report.render_source_lines(src)
    assert _row(lines, "0.4.3").startswith("| 0.4.3 | avx512 | yes |")
    assert _row(lines, "0.6.3").startswith("| 0.6.3 | avx512 (avx2 build) | yes |")
    assert _row(lines, "0.7.3").startswith("| 0.7.3 | avx2 | yes |")


def test_one_row_and_section_per_release_and_host_isa(report: ModuleType) -> None:
    src = {"0.7.3": {
        "avx2": {"host_isa": "avx2", "built": True, "build": {"isa": "avx2"}, "status": "pass",
                 "pytest": {"summary": "26 passed in 1s", "commit": "3e0e13f"}},
        "avx512": {"host_isa": "avx512", "isa": "avx2", "built": True, "build": {"isa": "avx2"}, "status": "pass",
                   "pytest": {"summary": "45 passed, 14 skipped in 1s", "commit": "1ed96ac"}},
    }}
    lines = report.render_source_lines(src)
    first, second = _rows(lines, "0.7.3")
    assert first.startswith("| 0.7.3 | avx512 (avx2 build) | yes |") and "| 45 passed | pass | 1ed96ac |" in first
    assert second.startswith("| 0.7.3 | avx2 | yes |") and "| 26 passed | pass | 3e0e13f |" in second
    assert [ln for ln in lines if ln.startswith("### ")] == ["### 0.7.3 (source build, avx512 host)",
                                                            "### 0.7.3 (source build, avx2 host)"]


def test_nest_source_lines_migrates_schema_1_and_orders(report: ModuleType) -> None:
    flat = {"0.10.0": {"vllm": "0.10.0", "status": "pass", "host_isa": "avx2"},
            "0.7.3": {"vllm": "0.7.3", "status": "pass", "host_isa": "avx512"}}
    nested = report.nest_source_lines(flat)
    assert nested == {"0.7.3": {"avx512": flat["0.7.3"]}, "0.10.0": {"avx2": flat["0.10.0"]}}
    assert list(nested) == ["0.7.3", "0.10.0"]  # by release, not as strings
    both = {"0.7.3": {"avx2": {"status": "pass"}, "avx512": {"status": "pass"}}}
    assert list(report.nest_source_lines(both)["0.7.3"]) == ["avx512", "avx2"]
    assert report.nest_source_lines(nested) == nested  # schema 2 stays as it is


def test_recorded_results_are_schema_2_and_keep_the_avx2_hosts_runs(report: ModuleType) -> None:
    """matrix/cpu-tier/results.json: source_lines[release][host ISA], with the AVX2 host's runs of 2026-12-04
    beside the AVX512 host's (they were overwritten while results were kept per release)."""
    res = json.loads((ROOT / "matrix" / "cpu-tier" / "results.json").read_text())
    src = res["source_lines"]
    assert res["schema"] == 2 and report.nest_source_lines(src) == src
    for release, runs in src.items():
        for isa, e in runs.items():
            assert e["host_isa"] == isa and e["vllm"] == release
    assert src["0.7.3"]["avx2"]["status"] == "pass" and src["0.7.3"]["avx512"]["status"] == "pass"
    assert src["0.4.2"]["avx2"]["status"] == src["0.4.3"]["avx2"]["status"] == "skipped"


def test_cpu_tier_readme_is_current(report: ModuleType) -> None:
    """Regenerate with `python scripts/cpu_tier_report.py` when this fails."""
    assert report.main(["--check"]) == 0
