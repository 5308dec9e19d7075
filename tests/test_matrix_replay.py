"""Replay the adapter against the recorded API surface of every vLLM release.

For each release in matrix/surfaces/, a fake ``vllm`` with exactly that
release's signatures and fields is installed (no import of the real vLLM, no
GPU) and every adapter path is checked to bind to the recorded signature and
deliver the right values.
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from packaging.version import Version

import glm_vllm_compat as gvc
from glm_vllm_compat import _live
from glm_vllm_compat._sampling import translate_sampling_fields, v0_engine_span
from glm_vllm_compat.testing import fake_vllm

VERSIONS = fake_vllm.known_versions()


def V(text: str) -> Version:
    return Version(text)


@pytest.fixture(scope="module", params=VERSIONS)
def fake(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[fake_vllm.FakeVllm]:
    with fake_vllm.installed(request.param, tmp_path_factory.mktemp("vllm")) as installed:
        yield installed


@pytest.fixture
def version(fake: fake_vllm.FakeVllm) -> Version:
    fake.clear()
    return Version(fake.version)


def _consume(agen: Any) -> list[Any]:
    async def run() -> list[Any]:
        return [out async for out in agen]

    return asyncio.run(run())


def test_detects_the_release(fake: fake_vllm.FakeVllm, version: Version) -> None:
    info = gvc.detect()
    assert (info.distribution, info.raw_version, info.is_dev) == ("vllm", fake.version, False)


def test_every_flag_is_confirmed_by_the_recorded_code(version: Version) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", gvc.CapabilityMismatchWarning)
        lv = _live.live()
    assert lv.caps.flags == lv.info.capabilities.flags


def test_offline_text_prompts(fake: fake_vllm.FakeVllm, version: Version) -> None:
    llm = gvc.build_llm("/models/glm", enforce_eager=True)
    outputs = gvc.generate(llm, ["你好", "hi"], max_tokens=4, temperature=0.0)
    assert len(outputs) == 2
    call = fake.calls_to("LLM.generate")[-1]
    assert call.arguments["prompts"] == ["你好", "hi"]
    assert call.arguments["sampling_params"].max_tokens == 4


def test_offline_token_prompts(fake: fake_vllm.FakeVllm, version: Version) -> None:
    llm = gvc.build_llm("/models/glm")
    gvc.generate(llm, [[1, 2, 3], [4]], max_tokens=2)
    args = fake.calls_to("LLM.generate")[-1].arguments
    if version < V("0.4.3"):
        assert args["prompt_token_ids"] == [[1, 2, 3], [4]]
        assert args.get("prompts") is None
    else:
        assert args["prompts"] == [{"prompt_token_ids": [1, 2, 3]}, {"prompt_token_ids": [4]}]
        assert "prompt_token_ids" not in args


def test_offline_mixed_batch(fake: fake_vllm.FakeVllm, version: Version) -> None:
    llm = gvc.build_llm("/models/glm")
    if version < V("0.4.3"):  # two aligned lists: 0.4.0 - 0.4.2 tokenize prompts[i] where prompt_token_ids[i] is None
        outputs = gvc.generate(llm, ["a", [1], {"prompt": "b"}])
        args = fake.calls_to("LLM.generate")[-1].arguments
        assert (args["prompts"], args["prompt_token_ids"]) == (["a", None, "b"], [None, [1], None])
        assert [list(o.prompt_token_ids) for o in outputs][1] == [1]
    else:
        gvc.generate(llm, ["a", [1]])
        assert fake.calls_to("LLM.generate")[-1].arguments["prompts"] == ["a", {"prompt_token_ids": [1]}]


def _async_call(fake: fake_vllm.FakeVllm) -> Any:
    calls = [c for c in fake.calls if c.qualname.endswith(".generate") and not c.qualname.startswith("LLM.")]
    return calls[-1]


def test_async_token_prompt_binds(fake: fake_vllm.FakeVllm, version: Version) -> None:
    engine = gvc.build_async_engine("/models/glm")
    outs = _consume(gvc.generate(engine, [1, 2, 3], max_tokens=4, request_id="req-1"))
    assert outs[-1].finished
    call = _async_call(fake)
    args = call.arguments
    assert args["request_id"] == "req-1"
    assert args["sampling_params"].max_tokens == 4
    if version < V("0.4.3"):
        assert (args.get("prompt"), args["prompt_token_ids"]) == (None, [1, 2, 3])
    elif version < V("0.6.3") and call.qualname.startswith("AsyncLLMEngine"):
        assert args["inputs"] == {"prompt_token_ids": [1, 2, 3]}
    else:
        assert args["prompt"] == {"prompt_token_ids": [1, 2, 3]}


def test_async_text_prompt_and_fresh_request_ids(fake: fake_vllm.FakeVllm, version: Version) -> None:
    engine = gvc.build_async_engine("/models/glm")
    _consume(gvc.generate(engine, "你好", max_tokens=1))
    _consume(gvc.generate(engine, "你好", max_tokens=1))
    calls = [c for c in fake.calls if c.qualname.endswith(".generate") and not c.qualname.startswith("LLM.")]
    first, second = (c.arguments for c in calls[-2:])
    prompt_key = "inputs" if "inputs" in first else "prompt"
    assert first[prompt_key] == "你好"
    assert first["request_id"] != second["request_id"]
    assert len(first["request_id"]) == 32


def test_lora_request_always_by_keyword(fake: fake_vllm.FakeVllm, version: Version) -> None:
    engine = gvc.build_async_engine("/models/glm")
    marker = object()
    _consume(gvc.generate(engine, "x", lora_request=marker))
    assert _async_call(fake).arguments["lora_request"] is marker


def test_priority(fake: fake_vllm.FakeVllm, version: Version) -> None:
    engine = gvc.build_async_engine("/models/glm")
    llm = gvc.build_llm("/models/glm")
    _consume(gvc.generate(engine, "x", priority=0))  # the default priority is always fine
    if version < V("0.6.3"):
        with pytest.raises(gvc.UnsupportedFeature) as info:
            gvc.generate(engine, "x", priority=3)
        assert (info.value.field, info.value.installed, info.value.supported) == ("priority", fake.version, ">=0.6.3")
    else:
        _consume(gvc.generate(engine, "x", priority=3))
        assert _async_call(fake).arguments["priority"] == 3
    if version < V("0.6.2"):
        with pytest.raises(gvc.UnsupportedFeature, match=r"priority.*>=0\.6\.2"):
            gvc.generate(llm, "x", priority=3)
    else:
        gvc.generate(llm, "x", priority=3)
        assert fake.calls_to("LLM.generate")[-1].arguments["priority"] == 3


def test_structured_outputs(fake: fake_vllm.FakeVllm, version: Version) -> None:
    spec = {"regex": "[ab]+"}
    if version < V("0.6.3"):
        with pytest.raises(gvc.UnsupportedFeature, match="structured_outputs"):
            gvc.sampling_params(structured_outputs=spec)
        return
    sp = gvc.sampling_params(structured_outputs=spec, max_tokens=3)
    if version < V("0.11.0"):
        assert type(sp.guided_decoding).__name__ == "GuidedDecodingParams"
        assert sp.guided_decoding.regex == "[ab]+"
    else:
        assert type(sp.structured_outputs).__name__ == "StructuredOutputsParams"
        assert sp.structured_outputs.regex == "[ab]+"


def test_best_of(fake: fake_vllm.FakeVllm, version: Version, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VLLM_USE_V1", raising=False)
    if version >= V("0.12.0"):
        with pytest.raises(gvc.UnsupportedFeature) as info:
            gvc.sampling_params(best_of=2, n=1)
        assert info.value.field == "best_of" and info.value.supported == v0_engine_span()
        return
    if version < V("0.8.0"):  # V0 is the default engine
        assert gvc.sampling_params(best_of=2, n=1).best_of == 2
        return
    # 0.8 .. 0.11 still have the field, but their default V1 engine refuses best_of > 1 per request
    with pytest.raises(gvc.UnsupportedFeature) as info:
        gvc.sampling_params(best_of=2, n=1)
    assert (info.value.field, info.value.installed) == ("best_of", fake.version)
    assert info.value.supported == v0_engine_span() == "0.4.0 .. 0.10.2 with the V0 engine (the default before 0.8.0, VLLM_USE_V1=0 after)"
    assert "best_of" not in translate_sampling_fields({"n": 2, "best_of": 2})  # the same request on V1
    assert gvc.sampling_params(best_of=1, n=1).n == 1
    if version < V("0.11.0"):  # the V0 engine is still there to ask for
        monkeypatch.setenv("VLLM_USE_V1", "0")
        assert gvc.sampling_params(best_of=2, n=1).best_of == 2


def test_per_request_logits_processors(fake: fake_vllm.FakeVllm, version: Version, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VLLM_USE_V1", raising=False)

    def processor(token_ids: list[int], logits: Any) -> Any:
        return logits

    if version < V("0.8.0"):
        assert gvc.sampling_params(logits_processors=[processor]).logits_processors == [processor]
        return
    with pytest.raises(gvc.UnsupportedFeature) as info:
        gvc.sampling_params(logits_processors=[processor])
    assert info.value.field == "logits_processors" and "logits_processors engine argument" in str(info.value)
    if version < V("0.11.0"):
        monkeypatch.setenv("VLLM_USE_V1", "0")
        assert gvc.sampling_params(logits_processors=[processor]).logits_processors == [processor]


def test_top_k_disabled(fake: fake_vllm.FakeVllm, version: Version) -> None:
    expected = -1 if version < V("0.9.0") else 0
    assert gvc.sampling_params(top_k=0).top_k == expected
    assert gvc.sampling_params(top_k=-1).top_k == expected
    assert gvc.sampling_params(top_k=5).top_k == 5


def test_unknown_sampling_field_suggests(version: Version) -> None:
    with pytest.raises(gvc.UnknownParameter, match="temperature"):
        gvc.sampling_params(temprature=0.5)


def test_newer_field_on_older_release(fake: fake_vllm.FakeVllm, version: Version) -> None:
    # thinking_token_budget appeared in 0.19.0
    if version >= V("0.19.0"):
        assert gvc.sampling_params(thinking_token_budget=8).thinking_token_budget == 8
        return
    with pytest.raises(gvc.UnsupportedFeature) as info:
        gvc.sampling_params(thinking_token_budget=8)
    assert info.value.installed == fake.version and info.value.supported.startswith(">=0.19")
    gvc.sampling_params(thinking_token_budget=None)  # unset is not a request


def test_get_tokenizer_sync_or_async(version: Version) -> None:
    engine = gvc.build_async_engine("/models/glm")
    tokenizer = asyncio.run(gvc.get_tokenizer(engine))
    assert hasattr(tokenizer, "encode")


def test_abort(fake: fake_vllm.FakeVllm, version: Version) -> None:
    engine = gvc.build_async_engine("/models/glm")
    asyncio.run(gvc.abort(engine, "req-9"))
    assert fake.calls[-1].qualname.endswith(".abort")
    assert "req-9" in fake.calls[-1].arguments.values()


def test_renamed_engine_args(fake: fake_vllm.FakeVllm, version: Version) -> None:
    gvc.build_async_engine("/models/glm", disable_log_requests=True, worker_use_ray=True)
    (call,) = [c for c in fake.calls if c.qualname.endswith(".from_engine_args")]
    args = call.arguments["engine_args"]
    if version >= V("0.10.1"):
        assert args.enable_log_requests is False
    else:
        assert args.disable_log_requests is True
    if version >= V("0.7.0"):
        assert args.distributed_executor_backend == "ray"
    else:
        assert args.worker_use_ray is True


def test_v1_engine_is_served_like_v0(fake: fake_vllm.FakeVllm, version: Version, monkeypatch: pytest.MonkeyPatch) -> None:
    """The V1 `isinstance(engine, AsyncLLMEngine)` trap: generate() dispatches on the object, not on isinstance."""
    engine = gvc.build_async_engine("/models/glm")
    expected = "AsyncLLM" if gvc.detect().generation == "v1" else "AsyncLLMEngine"
    assert type(engine).__name__ == expected
    _consume(gvc.generate(engine, "x"))
    assert _async_call(fake).qualname.startswith(expected + ".")


def test_native_kwargs_pass_through(fake: fake_vllm.FakeVllm, version: Version) -> None:
    llm = gvc.build_llm("/models/glm")
    gvc.generate(llm, "x", native_kwargs={"use_tqdm": False})
    assert fake.calls_to("LLM.generate")[-1].arguments["use_tqdm"] is False
    with pytest.raises(TypeError):
        gvc.generate(llm, "x", native_kwargs={"no_such_argument": 1})
