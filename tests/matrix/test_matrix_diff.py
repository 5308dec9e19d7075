"""``glm-vllm-compat matrix diff A B`` on recorded pairs of releases."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from glm_vllm_compat import _matrix_diff
from glm_vllm_compat._capabilities import FLAGS, capabilities_for
from glm_vllm_compat._matrix_diff import Change, diff_releases, diff_surfaces, render
from glm_vllm_compat.testing import fake_vllm

ROOT = Path(__file__).resolve().parents[2]

W, F, P, R, G, E, C = (
    "wrapped calls", "fields", "prompt types", "parsers", "GLM architectures", "environment", "capability flags",
)

# (A, B, changes that must be reported, changes that must not be)
KNOWN_PAIRS: list[tuple[str, str, list[Change], list[Change]]] = [
    ("0.4.2", "0.4.3", [
        Change(W, "AsyncLLMEngine.generate(prompt_token_ids)", "removed", "(positional_or_keyword, default None)"),
        Change(W, "AsyncLLMEngine.generate(inputs)", "added", "(positional_or_keyword)"),
        Change(P, "TextPrompt", "added"),
        Change(P, "TokensPrompt", "added"),
        Change(F, "EngineArgs.distributed_executor_backend", "added", "(default None)"),
        Change(C, "prompt_dicts", "flag", "False -> True (TextPrompt/TokensPrompt prompt dicts)"),
        Change(C, "async_generate_legacy_kwargs", "flag",
               "True -> False (AsyncLLMEngine.generate(prompt=..., prompt_token_ids=...))"),
        Change(C, "distributed_executor_backend", "flag", "False -> True (distributed_executor_backend=)"),
    ], []),
    ("0.6.2", "0.6.3", [
        Change(F, "SamplingParams.use_beam_search", "removed", "(default was False)"),
        Change(F, "SamplingParams.length_penalty", "removed", "(default was 1.0)"),
        Change(F, "SamplingParams.early_stopping", "removed", "(default was False)"),
        Change(F, "SamplingParams.guided_decoding", "added", "(default None)"),
        Change(F, "GuidedDecodingParams", "added"),
        Change(W, "AsyncLLMEngine.generate(inputs)", "removed", "(positional_or_keyword)"),
        Change(W, "AsyncLLMEngine.generate(prompt)", "added", "(positional_or_keyword)"),
        Change(P, "PromptType", "added"),
        Change(C, "sampling_use_beam_search", "flag", "True -> False (SamplingParams(use_beam_search=...))"),
        Change(C, "guided_decoding", "flag",
               "False -> True (SamplingParams(guided_decoding=GuidedDecodingParams(...)))"),
        Change(C, "async_generate_priority", "flag", "False -> True (priority= on async engine generate())"),
    ], []),
    ("0.6.6.post1", "0.7.0", [
        Change(F, "EngineArgs.worker_use_ray", "removed", "(default was False)"),
        Change(C, "worker_use_ray", "flag", "True -> False (worker_use_ray=)"),
    ], []),
    ("0.7.3", "0.8.0", [
        Change(E, "VLLM_USE_V1 default", "changed", "0 -> 1"),
        Change(C, "v1_default", "flag", "False -> True (V1 engine by default)"),
    ], []),
    ("0.8.5.post1", "0.9.0", [
        Change(F, "SamplingParams.top_k", "re-defaulted", "-1 -> 0"),
        Change(C, "top_k_zero_disables", "flag", "False -> True (top_k=0 disables top-k)"),
    ], []),
    ("0.10.0", "0.10.1", [
        Change(R, "tool parser 'glm45'", "added", "(GLM)"),
        Change(R, "reasoning parser 'glm45'", "added", "(GLM)"),
        Change(F, "AsyncEngineArgs.enable_log_requests", "added", "(default False)"),
        Change(C, "vllm_glm45_parsers", "flag", "False -> True (vLLM's glm45 tool/reasoning parsers)"),
        Change(C, "enable_log_requests", "flag", "False -> True (enable_log_requests=)"),
    ], []),
    ("0.10.1.1", "0.10.2", [
        Change(W, "LLM.generate(prompt_token_ids)", "removed", "(positional_or_keyword, default None)"),
        Change(W, "LLM.generate(prompts)", "re-defaulted", "None -> (no default)"),
        Change(W, "LLM.generate(use_tqdm)", "changed", "kind positional_or_keyword -> keyword_only"),
        Change(P, "TokensPrompt['prompt']", "added"),
        Change(C, "llm_prompt_token_ids_kwarg", "flag", "True -> False (LLM.generate(prompt_token_ids=...))"),
    ], []),
    ("0.10.2", "0.11.0", [
        Change(W, "AsyncLLMEngine", "changed",
               "alias of None -> vllm.v1.engine.async_llm:AsyncLLM"),
        Change(C, "v0_removed", "flag", "False -> True (V0 engine removed)"),
    ], []),
    ("0.13.0", "0.14.0", [
        Change(R, "tool parser 'glm47'", "added", "(GLM)"),
        Change(C, "vllm_glm47_tool_parser", "flag", "False -> True (vLLM's glm47 tool parser)"),
        Change(C, "abort_many", "flag", "False -> True (abort() of several request ids)"),
    ], []),
    ("0.33.0", "0.34.0", [
        Change(W, "LLM.__init__(enable_extensible_kv_cache)", "added", "(keyword_only, default None)"),
        Change(W, "LLM.__init__(gpu_memory_utilization)", "re-defaulted", "0.92 -> None"),
        Change(F, "EngineArgs.enable_extensible_kv_cache", "added", "(default CacheConfig.enable_extensible_kv_cache)"),
        Change(F, "AsyncEngineArgs.shuffle_safetensors_files", "added", "(default LoadConfig.shuffle_safetensors_files)"),
        Change(R, "tool parser 'musespark1x'", "removed"),
        Change(R, "tool parser 'zaya'", "added"),
    ], []),
]


@pytest.mark.parametrize(("a", "b", "present", "absent"), KNOWN_PAIRS, ids=[f"{a}-{b}" for a, b, _, _ in KNOWN_PAIRS])
def test_known_pairs(a: str, b: str, present: list[Change], absent: list[Change]) -> None:
    changes = diff_releases(fake_vllm.load_surface(a), fake_vllm.load_surface(b))
    missing = [c for c in present if c not in changes]
    assert not missing, "\n".join(c.line() for c in changes)
    assert not [c for c in absent if c in changes]


def test_flag_changes_are_exactly_the_version_table_between_neighbours() -> None:
    """On every recorded neighbouring pair, the reported flag changes are those of FLAGS."""
    versions = fake_vllm.known_versions()
    for a, b in zip(versions, versions[1:]):
        ca, cb = capabilities_for(a), capabilities_for(b)
        want = {n for n in FLAGS if ca[n] != cb[n]}
        got = _matrix_diff.flag_changes(fake_vllm.load_surface(a), fake_vllm.load_surface(b))
        assert {c.subject for c in got if c.kind == "flag"} == want, (a, b)
        assert not [c for c in got if c.kind == "changed"], (a, b, got)


def test_0_33_to_0_34_has_no_change_in_the_calls_the_adapter_makes() -> None:
    a, b = fake_vllm.load_surface("0.33.0"), fake_vllm.load_surface("0.34.0")
    changes = diff_releases(a, b)
    touched = {c.subject.split("(")[0] for c in changes if c.section == W}
    assert touched == {"LLM.__init__"}
    assert not [c for c in changes if c.section in (P, G, E, C)]
    assert not [c for c in changes if c.subject.startswith("SamplingParams")]
    assert not [c for c in changes if c.section == R and "glm" in c.subject]
    assert len([c for c in changes if c.subject.startswith("EngineArgs.")]) == 6


def test_a_contradicting_flag_is_reported() -> None:
    """A release whose recorded code disagrees with its version number (a fork, a backport)."""
    surface = fake_vllm.load_surface("0.34.0")
    forked = {**surface, "version": "0.34.0", "tool_parsers": {**surface["tool_parsers"], "parsers": {}}}
    changes = _matrix_diff.flag_changes(surface, forked)
    assert Change(C, "vllm_glm47_tool_parser", "flag", "True -> False (vLLM's glm47 tool parser)") in changes
    assert any(c.kind == "changed" and c.subject == "vllm_glm47_tool_parser" and "update FLAGS" in c.detail
               for c in changes)


def test_same_release_has_no_changes() -> None:
    surface = fake_vllm.load_surface("0.8.5")
    assert diff_surfaces(surface, surface) == []


def test_render_lists_every_section() -> None:
    a, b = fake_vllm.load_surface("0.33.0"), fake_vllm.load_surface("0.34.0")
    text = render(a, b, diff_releases(a, b))
    assert text.startswith("vLLM 0.33.0 -> 0.34.0")
    for section in _matrix_diff.SECTIONS:
        assert f"\n{section}: " in text
    assert "unchanged: " in text and "LLM.generate" in text.split("unchanged: ")[1].splitlines()[0]
    assert "capability flags: no changes" in text


def test_cli(capsys: pytest.CaptureFixture[str]) -> None:
    from glm_vllm_compat.__main__ import main

    assert main(["matrix", "diff", "0.6.2", "0.6.3", "--no-flags"]) == 0
    out = capsys.readouterr().out
    assert "SamplingParams.use_beam_search: removed" in out and "capability flags" not in out
    with pytest.raises(SystemExit):
        main(["matrix", "diff", "0.6.2", "9.9.9"])
    assert "no recorded vLLM surface" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["matrix", "diff", "0.6.2"])
    assert main(["matrix"]) == 2


def test_docs_show_the_current_0_33_to_0_34_output() -> None:
    """docs/matrix.md quotes the command's output verbatim."""
    a, b = fake_vllm.load_surface("0.33.0"), fake_vllm.load_surface("0.34.0")
    assert render(a, b, diff_releases(a, b)) in (ROOT / "docs" / "matrix.md").read_text(encoding="utf-8")


def test_module_imports_without_vllm() -> None:
    code = "import sys, glm_vllm_compat._matrix_diff; assert 'vllm' not in sys.modules and 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


class _Recorder:
    def __init__(self, rc: int = 0) -> None:
        self.rc, self.calls = rc, 0

    def cmd_new(self) -> int:
        self.calls += 1
        return self.rc


def test_new_records_first_then_diffs_the_new_newest(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """``--new``: matrix/record.py --new runs first; with no versions, old newest -> new newest."""
    every = fake_vllm.known_versions()
    recorder = _Recorder()
    seen = iter([every[:-1], every, every, every])
    monkeypatch.setattr(_matrix_diff, "_recorder", lambda: recorder)
    monkeypatch.setattr(fake_vllm, "known_versions", lambda: next(seen))
    assert _matrix_diff.main(["--new", "--no-flags"]) == 0
    assert recorder.calls == 1
    assert capsys.readouterr().out.startswith(f"vLLM {every[-2]} -> {every[-1]}")


def test_new_with_nothing_new(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    recorder = _Recorder()
    monkeypatch.setattr(_matrix_diff, "_recorder", lambda: recorder)
    assert _matrix_diff.main(["--new"]) == 0
    assert "nothing new" in capsys.readouterr().out
    failing = _Recorder(rc=1)
    monkeypatch.setattr(_matrix_diff, "_recorder", lambda: failing)
    assert _matrix_diff.main(["--new", "0.33.0", "0.34.0"]) == 1


def test_recorder_is_matrix_record_py() -> None:
    module = _matrix_diff._recorder()
    assert callable(module.cmd_new) and callable(module.cmd_check_newest)
    assert [r.version for r in module.unrecorded([], ["0.4.0"])] == []
