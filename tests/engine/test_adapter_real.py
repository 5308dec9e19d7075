"""The stable API on a real vLLM engine (offline LLM and async engine)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from typing import Any

import pytest

import glm_vllm_compat as gvc
from glm_vllm_compat import _engine
from glm_vllm_compat.testing import build_tiny_model

from .conftest import ENGINE_ARGS, engine_args, tiny_arch


@pytest.fixture(scope="module")
def model_path() -> str:
    return str(build_tiny_model(tiny_arch()))


@pytest.fixture(scope="module")
def llm(model_path: str) -> Iterator[Any]:
    engine = gvc.build_llm(model_path, **engine_args())
    yield engine
    _engine.shutdown(engine)


def _texts(outputs: list[Any]) -> list[str]:
    return [o.outputs[0].text for o in outputs]


def _ids(outputs: list[Any]) -> list[list[int]]:
    return [list(o.outputs[0].token_ids) for o in outputs]


def test_offline_text_and_token_prompts(llm: Any) -> None:
    tok = llm.get_tokenizer()
    ids = tok.encode("你好", add_special_tokens=False)
    outputs = gvc.generate(llm, ["你好", ids, gvc.TokensPrompt(prompt_token_ids=ids), {"prompt": "hello"}], max_tokens=6, temperature=0.0)
    assert len(outputs) == 4
    assert all(len(o.outputs[0].token_ids) == 6 for o in outputs)
    assert list(outputs[1].prompt_token_ids) == ids
    # the same prompt as text and as token ids gives the same greedy continuation
    assert _ids(outputs)[1] == _ids(outputs)[2]


def test_offline_seed_is_reproducible(llm: Any) -> None:
    sp = gvc.sampling_params(max_tokens=12, temperature=1.0, seed=1234)
    first = gvc.generate(llm, ["a", "b", "c"], sp)
    second = gvc.generate(llm, ["a", "b", "c"], sp)
    assert _ids(first) == _ids(second)
    other = gvc.generate(llm, ["a", "b", "c"], max_tokens=12, temperature=1.0, seed=99)
    assert _ids(other) != _ids(first)


def test_offline_structured_outputs_are_honoured(llm: Any) -> None:
    outputs = gvc.generate(llm, "天气", max_tokens=8, structured_outputs={"regex": "(晴|雨)天"})
    assert re.fullmatch("(晴|雨)天", outputs[0].outputs[0].text)
    choice = gvc.generate(llm, "x", max_tokens=8, structured_outputs={"choice": ["yes", "no"]})
    assert choice[0].outputs[0].text in ("yes", "no")


def test_offline_max_tokens_none_runs_to_the_limit_or_eos(llm: Any) -> None:
    """None means "up to the context limit", not vLLM's default of 16 tokens.
    (V0 0.8.5 counts the limit without the prompt: 1 + 1024 tokens; V1: 1 + 1023.)"""
    out = gvc.generate(llm, "x", max_tokens=None, temperature=0.0, ignore_eos=True)[0]
    assert len(out.outputs[0].token_ids) >= ENGINE_ARGS["max_model_len"] - len(out.prompt_token_ids)


def test_unknown_and_unsupported_fields_are_refused(llm: Any) -> None:
    with pytest.raises(gvc.UnknownParameter, match="max_tokens"):
        gvc.generate(llm, "x", max_token=3)
    if type(llm.llm_engine).__module__.startswith("vllm.v1."):  # V1 refuses these per request: refused up front
        with pytest.raises(gvc.UnsupportedFeature, match="best_of") as info:
            gvc.generate(llm, "x", best_of=3, n=1)
        assert "with the V0 engine" in info.value.supported
        with pytest.raises(gvc.UnsupportedFeature, match="logits_processors"):
            gvc.generate(llm, "x", logits_processors=[lambda ids, logits: logits])
    else:  # the V0 engine samples best_of and returns the n best
        out = gvc.generate(llm, "x", best_of=3, n=1, max_tokens=2, temperature=1.0)
        assert len(out[0].outputs) == 1
    with pytest.raises(gvc.InvalidParameter):
        gvc.sampling_params(temperature=-1.0)


# --------------------------------------------------------------------------
# async engine
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.run_until_complete(_cancel_leftovers())
    loop.close()


async def _cancel_leftovers() -> None:
    pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)


@pytest.fixture(scope="module")
def aengine(model_path: str, llm: Any, loop: asyncio.AbstractEventLoop) -> Iterator[Any]:
    _engine.shutdown(llm)  # one engine at a time on a small machine
    engine = loop.run_until_complete(_build(model_path))
    yield engine
    loop.run_until_complete(_shutdown(engine))


async def _shutdown(engine: Any) -> None:
    _engine.shutdown(engine)
    await asyncio.sleep(0)


async def _build(model_path: str) -> Any:
    return gvc.build_async_engine(model_path, disable_log_requests=True, **engine_args())


def test_async_engine_generation_matches_detection(aengine: Any) -> None:
    expected = "AsyncLLM" if gvc.detect().generation == "v1" else "AsyncLLMEngine"
    assert type(aengine).__name__ == expected


def test_async_streams_incrementally(aengine: Any, loop: asyncio.AbstractEventLoop) -> None:
    async def run() -> list[Any]:
        return [(len(o.outputs[0].token_ids), o.finished) async for o in gvc.generate(aengine, "你好", max_tokens=8, temperature=0.0, ignore_eos=True)]

    steps = loop.run_until_complete(run())
    assert len(steps) > 1 and steps[-1] == (8, True)
    assert [n for n, _ in steps] == sorted(n for n, _ in steps)


def test_async_abort_mid_stream(aengine: Any, loop: asyncio.AbstractEventLoop) -> None:
    async def run() -> int:
        seen = 0
        async for output in gvc.generate(aengine, "hello", max_tokens=500, ignore_eos=True, request_id="abort-me"):
            seen = len(output.outputs[0].token_ids)
            if seen >= 2:
                await gvc.abort(aengine, "abort-me")
                break
        for _ in range(50):
            if _engine.num_unfinished_requests(aengine) == 0:
                break
            await asyncio.sleep(0.05)
        return seen

    assert loop.run_until_complete(run()) < 500
    assert _engine.num_unfinished_requests(aengine) == 0


def test_async_get_tokenizer_and_model_config(aengine: Any, loop: asyncio.AbstractEventLoop) -> None:
    tokenizer = loop.run_until_complete(gvc.get_tokenizer(aengine))
    assert tokenizer.decode(tokenizer.encode("北京", add_special_tokens=False)) == "北京"
    config = loop.run_until_complete(_engine.get_model_config(aengine))
    assert config.max_model_len == ENGINE_ARGS["max_model_len"]


def test_async_many_concurrent_requests(aengine: Any, loop: asyncio.AbstractEventLoop) -> None:
    async def one(i: int) -> int:
        last = None
        async for last in gvc.generate(aengine, [1 + i, 2, 3], max_tokens=6, ignore_eos=True):
            pass
        return len(last.outputs[0].token_ids)

    async def run() -> list[int]:
        return await asyncio.gather(*(one(i) for i in range(16)))

    assert loop.run_until_complete(run()) == [6] * 16
    assert _engine.num_unfinished_requests(aengine) == 0


def test_async_seed_is_reproducible(aengine: Any, loop: asyncio.AbstractEventLoop) -> None:
    async def run() -> list[int]:
        last = None
        async for last in gvc.generate(aengine, "seed", max_tokens=10, temperature=1.0, seed=7):
            pass
        return list(last.outputs[0].token_ids)

    assert loop.run_until_complete(run()) == loop.run_until_complete(run())
