"""scripts/cpu_tier_report.py: the source-built lines' table."""

from __future__ import annotations

from types import ModuleType

import pytest

from .conftest import load_script


@pytest.fixture(scope="module")
def report() -> ModuleType:
    return load_script("cpu_tier_report")


def _row(lines: list[str], ver: str) -> str:
    return next(ln for ln in lines if ln.startswith(f"| {ver} |"))


def test_a_forced_avx2_build_on_an_avx512_host_names_both(report: ModuleType) -> None:
    src = {
        "0.4.3": {"host_isa": "avx512", "isa": "avx512", "built": True, "build": {"isa": "avx512"}},
        "0.6.3": {"host_isa": "avx512", "isa": "avx2", "built": True, "build": {"isa": "avx2"}},
        "0.7.3": {"host_isa": "avx2", "built": True, "build": {"isa": "avx2"}},  # recorded before --isa
    }
    lines = report.render_source_lines(src)
    assert _row(lines, "0.4.3").startswith("| 0.4.3 | avx512 | yes |")
    assert _row(lines, "0.6.3").startswith("| 0.6.3 | avx512 (avx2 build) | yes |")
    assert _row(lines, "0.7.3").startswith("| 0.7.3 | avx2 | yes |")
