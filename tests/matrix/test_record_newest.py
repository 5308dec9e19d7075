"""``matrix/record.py --check-newest`` and ``--new`` against a package-index listing made here (no network)."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest

from glm_vllm_compat import _matrix_diff


@pytest.fixture()
def recorder() -> ModuleType:
    return _matrix_diff._recorder()


def _file(version: str, *, yanked: bool = False, kind: str = "sdist") -> dict[str, Any]:
    name = f"vllm-{version}.tar.gz" if kind == "sdist" else f"vllm-{version}-cp38-abi3-manylinux1_x86_64.whl"
    return {
        "packagetype": kind, "filename": name, "yanked": yanked, "size": 1,
        "url": f"https://files.pythonhosted.org/packages/00/00/{name}", "digests": {"sha256": "0" * 64},
    }


def _index(recorder: ModuleType, *extra: str, **odd: list[dict[str, Any]]) -> dict[str, Any]:
    """The recorded releases, the ``extra`` ones, and releases the routine must not count (odd)."""
    releases: dict[str, list[dict[str, Any]]] = {v: [_file(v)] for v in recorder.load_surfaces()}
    releases.update({v: [_file(v)] for v in extra})
    releases.update(odd)
    return {"releases": releases}


ODD = {
    "0.3.3": [_file("0.3.3")],  # older than the oldest supported release
    "0.36.0rc1": [_file("0.36.0rc1")],  # a pre-release
    "0.36.0.dev0": [_file("0.36.0.dev0")],
    "0.35.1": [],  # no files
    "not-a-version": [_file("x")],
}


def test_up_to_date_when_the_index_has_nothing_new(recorder: ModuleType, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(recorder, "fetch_index", lambda: _index(recorder, **ODD))
    assert recorder.cmd_check_newest() == 0
    newest = list(recorder.load_surfaces())[-1]
    assert capsys.readouterr().err == f"up to date: newest release on the index {newest} is recorded\n"


def test_behind_the_index_names_the_missing_releases(recorder: ModuleType, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(recorder, "fetch_index", lambda: _index(recorder, "0.35.0", "0.35.0.post1", **ODD))
    assert recorder.cmd_check_newest() == 1
    said = capsys.readouterr().err
    assert "newest on the index 0.35.0.post1" in said
    assert "not recorded: 0.35.0, 0.35.0.post1. Run: python matrix/record.py --new" in said


def test_unrecorded_keeps_index_order_and_skips_what_is_recorded(recorder: ModuleType) -> None:
    releases = recorder.releases_from_index(_index(recorder, "0.35.0", **ODD))
    assert [r.version for r in recorder.unrecorded(releases, recorder.load_surfaces())] == ["0.35.0"]
    assert [r.version for r in recorder.unrecorded(releases, [])] == [r.version for r in releases]
    assert releases[-1].kind == "sdist" and releases[-1].filename == "vllm-0.35.0.tar.gz"


def test_a_yanked_release_with_a_replacement_is_not_counted(recorder: ModuleType) -> None:
    releases = recorder.releases_from_index(_index(recorder, **{"0.35.0": [_file("0.35.0", yanked=True)]}))
    assert "0.35.0" not in [r.version for r in releases]


def test_new_records_only_the_missing_releases_then_regenerates(recorder: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Any] = []
    monkeypatch.setattr(recorder, "fetch_index", lambda: _index(recorder, "0.35.0", **ODD))
    monkeypatch.setattr(recorder, "record_release", lambda release: {"version": release.version})
    monkeypatch.setattr(recorder, "write_outputs", lambda surfaces: calls.append(("write", sorted(surfaces))))
    monkeypatch.setattr(recorder, "regenerate_indexes", lambda: calls.append(("indexes",)))
    monkeypatch.setattr(recorder, "regenerate_tables", lambda: calls.append(("tables",)) or 0)
    assert recorder.cmd_new() == 0
    assert calls == [("write", ["0.35.0"]), ("indexes",), ("tables",)]


def test_new_with_nothing_missing_records_nothing(recorder: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(recorder, "fetch_index", lambda: _index(recorder, **ODD))
    monkeypatch.setattr(recorder, "record_release", lambda release: pytest.fail(f"recorded {release.version}"))
    assert recorder.cmd_new() == 0
