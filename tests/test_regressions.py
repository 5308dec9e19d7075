"""One regression test per breakage users hit (shared/research: vllm-api-history, peers).

Each runs the same user code on the releases on both sides of the break, each
a fake vLLM built from that release's recorded surface.
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

import glm_vllm_compat as gvc
from glm_vllm_compat.testing import fake_vllm


@pytest.fixture
def release(tmp_path: Path) -> Callable[[str], Any]:
    @contextmanager
    def use(version: str) -> Iterator[fake_vllm.FakeVllm]:
        with fake_vllm.installed(version, tmp_path / version) as fake:
            gvc.reset()
            yield fake
        gvc.reset()

    return use


def _drain(agen: Any) -> list[Any]:
    async def run() -> list[Any]:
        return [o async for o in agen]

    return asyncio.run(run())


def _async_args(fake: fake_vllm.FakeVllm) -> dict[str, Any]:
    return [c for c in fake.calls if c.qualname.endswith(".generate") and not c.qualname.startswith("LLM")][-1].arguments


@pytest.mark.parametrize("version", ["0.4.2", "0.4.3", "0.6.2", "0.6.3", "0.10.2", "0.33.0"])
def test_generate_inputs_vs_prompt_keyword(release: Any, version: str) -> None:
    """GLM-4 #33, openchat #225, LLaMA-Factory #4022/#5973: generate() got an unexpected keyword argument 'inputs'."""
    with release(version) as fake:
        engine = gvc.build_async_engine("m")
        assert _drain(gvc.generate(engine, "你好", request_id="r"))[-1].finished
        args = _async_args(fake)
        assert "你好" in args.values() and args["request_id"] == "r"


@pytest.mark.parametrize("version", ["0.10.1.1", "0.10.2", "0.33.0"])
def test_llm_generate_prompt_token_ids_removed(release: Any, version: str) -> None:
    """vLLM #18800, lm-eval, OpenRLHF #926: LLM.generate(prompt_token_ids=) removed in 0.10.2."""
    with release(version) as fake:
        llm = gvc.build_llm("m")
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # and no DeprecationWarning path taken before the removal
            gvc.generate(llm, [[1, 2, 3]])
        args = fake.calls_to("LLM.generate")[-1].arguments
        assert args["prompts"] == [{"prompt_token_ids": [1, 2, 3]}] and "prompt_token_ids" not in args


@pytest.mark.parametrize(("version", "use_v1", "supported"), [("0.10.2", "0", True), ("0.10.2", "", False), ("0.11.2", "", False), ("0.12.0", "", False)])
def test_best_of_removed(release: Any, version: str, use_v1: str, supported: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """ms-swift #6831, llama_index #21371: best_of removed from SamplingParams in 0.12 (a TypeError
    there); before that the V1 engine (default from 0.8, the only one from 0.11) refused best_of > 1
    per request. Both are refused up front, naming where best_of works: the V0 engine."""
    monkeypatch.setenv("VLLM_USE_V1", use_v1)
    with release(version):
        if supported:
            assert gvc.sampling_params(best_of=2).best_of == 2
        else:
            pattern = rf"'best_of'.*{version}.*0\.4\.0 \.\. 0\.10\.2 with the V0 engine"
            with pytest.raises(gvc.UnsupportedFeature, match=pattern):
                gvc.sampling_params(best_of=2)


@pytest.mark.parametrize(("version", "field"), [("0.10.2", "guided_decoding"), ("0.11.0", "structured_outputs"), ("0.12.0", "structured_outputs")])
def test_guided_decoding_to_structured_outputs(release: Any, version: str, field: str) -> None:
    """vLLM PR #22772/#29326: guided_decoding → structured_outputs (0.11), old names removed (0.12).
    From 0.12 vLLM's own server silently ignores guided_choice; here it is always translated."""
    with release(version):
        for name in ("structured_outputs", "guided_decoding"):
            sp = gvc.sampling_params(**{name: {"choice": ["晴", "雨"]}})
            assert getattr(sp, field).choice == ["晴", "雨"]


@pytest.mark.parametrize("version", ["0.14.1", "0.15.0"])
def test_get_tokenizer_sync_or_async(release: Any, version: str) -> None:
    """xorbitsai/inference #4577: AsyncLLM.get_tokenizer became synchronous in 0.15 (await raised TypeError)."""
    with release(version):
        engine = gvc.build_async_engine("m")
        assert asyncio.run(gvc.get_tokenizer(engine)) is not None


@pytest.mark.parametrize("version", ["0.7.3", "0.8.0", "0.10.2"])
def test_v1_isinstance_trap(release: Any, version: str) -> None:
    """Peers #9: from 0.8, from_engine_args returns a V1 AsyncLLM, not an AsyncLLMEngine; code
    that dispatched on isinstance(engine, AsyncLLMEngine) broke. generate() dispatches on the object."""
    with release(version) as fake:
        engine = gvc.build_async_engine("m")
        from vllm.engine.async_llm_engine import AsyncLLMEngine

        assert isinstance(engine, AsyncLLMEngine) == (version == "0.7.3")
        _drain(gvc.generate(engine, [1, 2]))
        assert _async_args(fake)["prompt"] == {"prompt_token_ids": [1, 2]}


@pytest.mark.parametrize(("version", "field", "value"), [("0.6.6", "worker_use_ray", True), ("0.7.0", "distributed_executor_backend", "ray")])
def test_worker_use_ray(release: Any, version: str, field: str, value: Any) -> None:
    """GLM-4 #712, OpenRLHF #702: worker_use_ray gone in 0.7 (distributed_executor_backend='ray')."""
    with release(version) as fake:
        gvc.build_async_engine("m", worker_use_ray=True)
        args = fake.calls_to([c.qualname for c in fake.calls if c.qualname.endswith("from_engine_args")][0])[0].arguments["engine_args"]
        assert getattr(args, field) == value


@pytest.mark.parametrize(("version", "field", "value"), [("0.10.0", "disable_log_requests", True), ("0.10.1", "enable_log_requests", False)])
def test_disable_log_requests(release: Any, version: str, field: str, value: bool) -> None:
    """LLaMA-Factory #9503: AsyncEngineArgs(disable_log_requests=) is a TypeError from 0.10.1."""
    with release(version) as fake:
        gvc.build_async_engine("m", disable_log_requests=True)
        args = [c for c in fake.calls if c.qualname.endswith("from_engine_args")][0].arguments["engine_args"]
        assert getattr(args, field) is value


@pytest.mark.parametrize(("version", "task_field"), [("0.10.0", "task"), ("0.13.0", "runner")])
def test_task_to_runner(release: Any, version: str, task_field: str) -> None:
    """Peers #8: task= → runner=/convert= (0.10.1), task gone in 0.13."""
    with release(version) as fake:
        gvc.build_llm("m", task="generate")
        assert fake.calls_to("LLM.__init__")[-1].arguments.get(task_field, fake.calls_to("LLM.__init__")[-1].arguments.get("kwargs", {}).get(task_field)) == "generate"


def test_prompt_adapter_request_and_logits_processors_are_refused(release: Any) -> None:
    """Peers #10/#13: per-request logits_processors removed in 0.17 — refused, never dropped silently."""
    with release("0.17.0"):
        with pytest.raises(gvc.UnsupportedFeature, match="logits_processors"):
            gvc.sampling_params(logits_processors=[lambda ids, logits: logits])


def test_request_ids_never_collide(release: Any) -> None:
    """GLM-4 demo server: one shared request_id, later time.time(); both collide."""
    with release("0.33.0"):
        ids = {gvc.new_request_id() for _ in range(10000)}
    assert len(ids) == 10000
