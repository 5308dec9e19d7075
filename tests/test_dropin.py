"""``glm_vllm_compat.vllm``: every historic call form on every recorded release.

For each release in matrix/surfaces/ a fake ``vllm`` with exactly that
release's signatures is installed (module-scoped, as in test_matrix_replay.py)
and each call form a legacy server uses is checked to bind to the recorded
signature (``fake.calls``), to warn once with LegacyCallWarning where it had to
be translated, and to raise UnsupportedFeature where it cannot be honoured.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import importlib
import importlib.util
import json
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from packaging.version import Version

import glm_vllm_compat as gvc
from glm_vllm_compat import vllm as dropin
from glm_vllm_compat.testing import fake_vllm
from glm_vllm_compat.vllm import (
    LLM,
    AsyncEngineArgs,
    AsyncLLMEngine,
    CompletionOutput,
    EngineArgs,
    GuidedDecodingParams,
    RequestOutput,
    SamplingParams,
    StructuredOutputsParams,
    TokenizerHandle,
    TokensPrompt,
)

VERSIONS = fake_vllm.known_versions()

# Warnings outside a legacy_forms() block are not what these tests check.
pytestmark = [
    pytest.mark.filterwarnings("ignore::glm_vllm_compat.LegacyCallWarning"),
    pytest.mark.filterwarnings("ignore::glm_vllm_compat.CapabilityMismatchWarning"),
]


def V(text: str) -> Version:
    return Version(text)


@pytest.fixture(scope="module", params=VERSIONS)
def fake(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[fake_vllm.FakeVllm]:
    with fake_vllm.installed(request.param, tmp_path_factory.mktemp("vllm")) as installed:
        yield installed


@pytest.fixture
def version(fake: fake_vllm.FakeVllm, monkeypatch: pytest.MonkeyPatch) -> Version:
    monkeypatch.delenv("VLLM_USE_V1", raising=False)
    fake.clear()
    return Version(fake.version)


@contextlib.contextmanager
def legacy_forms() -> Iterator[collections.Counter[str]]:
    """Counts the LegacyCallWarnings raised inside the block, by call form."""
    forms: collections.Counter[str] = collections.Counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield forms
    for item in caught:
        if issubclass(item.category, gvc.LegacyCallWarning):
            assert item.filename == __file__, "the warning must point at the caller's line"
            forms[str(item.message).split(" is a historic")[0]] += 1


def _consume(agen: Any) -> list[Any]:
    async def run() -> list[Any]:
        return [out async for out in agen]

    return asyncio.run(run())


def _engine() -> AsyncLLMEngine:
    return AsyncLLMEngine.from_engine_args(AsyncEngineArgs(model="/models/glm"))


def _generate_calls(fake: fake_vllm.FakeVllm) -> list[dict[str, Any]]:
    return [
        c.arguments for c in fake.calls if c.qualname.endswith(".generate") and not c.qualname.startswith("LLM.")
    ]


def _prompt_of(args: dict[str, Any]) -> Any:
    return args["inputs"] if "inputs" in args else args.get("prompt")


def _sp() -> Any:
    return SamplingParams(max_tokens=4, temperature=0.0)


def _passed(native: Any) -> dict[str, Any]:
    """The arguments a fake params/args object was built with."""
    return dict(native._fake_arguments)


# ---------------------------------------------------------------------------
# Import and isinstance
# ---------------------------------------------------------------------------


def test_importing_the_module_imports_neither_vllm_nor_torch() -> None:
    code = (
        "import sys, glm_vllm_compat.vllm as m; "
        "from glm_vllm_compat.vllm import AsyncEngineArgs, AsyncLLMEngine, SamplingParams, RequestOutput; "
        "isinstance(object(), AsyncLLMEngine); "
        "print(sorted({'vllm', 'torch'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_sampling_params_is_the_native_object(fake: fake_vllm.FakeVllm, version: Version) -> None:
    native_cls = importlib.import_module("vllm").SamplingParams
    with legacy_forms() as forms:
        sp = SamplingParams(max_tokens=3, temperature=0.0, n=1)
    assert type(sp) is native_cls
    assert isinstance(sp, SamplingParams) and issubclass(native_cls, SamplingParams)
    assert _passed(sp) == {"max_tokens": 3, "temperature": 0.0, "n": 1}
    assert not forms
    with pytest.raises(TypeError, match="keyword"):
        SamplingParams(1)
    with pytest.raises(gvc.UnknownParameter, match="temperature"):
        SamplingParams(temprature=0.5)


def test_engine_wrapper_isinstance_and_passthrough(fake: fake_vllm.FakeVllm, version: Version) -> None:
    """The V1 trap: from_engine_args gives an AsyncLLM on 0.8+, yet isinstance(engine, AsyncLLMEngine) holds."""
    engine = AsyncLLMEngine.from_engine_args(AsyncEngineArgs("/models/glm"), start_engine_loop=True)
    native = engine.native
    assert type(engine) is AsyncLLMEngine
    assert isinstance(engine, AsyncLLMEngine) and isinstance(native, AsyncLLMEngine)
    assert engine.engine_args is native.engine_args  # everything else is the native engine's
    assert native.engine_args.model == "/models/glm"
    v0_cls = importlib.import_module("vllm.engine.async_llm_engine").AsyncLLMEngine
    v1_by_default = V("0.8.0") <= version < V("0.11.0")
    assert type(native).__name__ == ("AsyncLLM" if version >= V("0.8.0") else "AsyncLLMEngine")
    assert isinstance(native, v0_cls) is not v1_by_default  # the native check fails where ours holds
    assert AsyncLLMEngine(native).native is native and AsyncLLMEngine(engine).native is native
    with pytest.raises(TypeError, match="from_engine_args"):
        AsyncLLMEngine(object())


def test_from_engine_args_options(fake: fake_vllm.FakeVllm, version: Version) -> None:
    args = AsyncEngineArgs(model="/m")
    AsyncLLMEngine.from_engine_args(args, engine_config=None, stat_loggers=None)  # unset options always bind
    call = [c for c in fake.calls if c.qualname.endswith(".from_engine_args")][-1]
    assert call.arguments["engine_args"] is args
    has_engine_config = V("0.6.2") <= version < V("0.8.0")
    assert ("engine_config" in call.arguments) is has_engine_config
    if not has_engine_config:
        with pytest.raises(gvc.UnsupportedFeature) as info:
            AsyncLLMEngine.from_engine_args(args, engine_config=object())
        assert (info.value.field, info.value.installed) == ("engine_config", fake.version)
    with pytest.raises(TypeError, match="keyword"):
        AsyncLLMEngine.from_engine_args(args, True)


def test_llm_wrapper(fake: fake_vllm.FakeVllm, version: Version) -> None:
    with legacy_forms() as forms:
        llm = LLM(model="/m", worker_use_ray=False, enforce_eager=True)
    init = fake.calls_to("LLM.__init__")[-1].arguments
    extra = {**init.get("kwargs", {}), **{k: v for k, v in init.items() if k not in ("model", "kwargs")}}
    assert init["model"] == "/m" and extra["enforce_eager"] is True
    assert ("worker_use_ray" in extra) is (version < V("0.7.0"))
    assert forms == ({} if version < V("0.7.0") else {"LLM(worker_use_ray=...)": 1})
    assert isinstance(llm, LLM) and isinstance(llm.native, LLM) and LLM(llm.native).native is llm.native
    first: Any = llm.generate("hi", _sp())[0]
    completion: Any = first.outputs[0]
    assert isinstance(first, RequestOutput) and isinstance(completion, CompletionOutput)
    assert hasattr(llm.get_tokenizer(), "encode")  # passthrough


def test_module_level_passthrough(fake: fake_vllm.FakeVllm, version: Version) -> None:
    if version >= V("0.6.3"):
        assert dropin.PromptType is importlib.import_module("vllm").PromptType
    else:
        with pytest.raises(AttributeError, match=fake.version):
            dropin.PromptType  # noqa: B018
    with pytest.raises(AttributeError):
        dropin._private  # noqa: B018


# ---------------------------------------------------------------------------
# EngineArgs / AsyncEngineArgs
# ---------------------------------------------------------------------------


def test_async_engine_args_historic_names(fake: fake_vllm.FakeVllm, version: Version) -> None:
    with legacy_forms() as forms:
        for _ in range(2):
            args = AsyncEngineArgs(model="/m", worker_use_ray=False, disable_log_requests=True, engine_use_ray=False)
    native_cls = importlib.import_module("vllm.engine.arg_utils").AsyncEngineArgs
    assert type(args) is native_cls and isinstance(args, AsyncEngineArgs) and isinstance(args, EngineArgs)
    passed = _passed(args)
    gone = {
        "worker_use_ray": version >= V("0.7.0"),
        "disable_log_requests": version >= V("0.10.1"),
        "engine_use_ray": version >= V("0.6.1.post1"),
    }
    assert ("worker_use_ray" in passed) is not gone["worker_use_ray"]
    assert "distributed_executor_backend" not in passed  # False is the default backend
    assert ("engine_use_ray" in passed) is not gone["engine_use_ray"]
    if gone["disable_log_requests"]:
        assert passed["enable_log_requests"] is False and "disable_log_requests" not in passed
    else:
        assert passed["disable_log_requests"] is True
    assert forms == {f"AsyncEngineArgs({name}=...)": 1 for name, is_gone in gone.items() if is_gone}


def test_engine_args_renamed_and_removed(fake: fake_vllm.FakeVllm, version: Version) -> None:
    if version < V("0.6.4"):
        assert _passed(EngineArgs("/m", max_context_len_to_capture=512))["max_context_len_to_capture"] == 512
    elif version < V("0.11.0"):
        with legacy_forms() as forms:
            assert _passed(EngineArgs("/m", max_context_len_to_capture=512))["max_seq_len_to_capture"] == 512
        assert forms == {"EngineArgs(max_context_len_to_capture=...)": 1}
    else:
        with pytest.raises(gvc.UnsupportedFeature) as info:
            EngineArgs("/m", max_context_len_to_capture=512)
        assert (info.value.field, info.value.installed) == ("max_context_len_to_capture", fake.version)
    with pytest.raises(gvc.UnknownParameter, match="max_model_len"):
        EngineArgs("/m", max_model_lenn=5)


def test_engine_args_task(fake: fake_vllm.FakeVllm, version: Version) -> None:
    if version < V("0.6.4"):
        with pytest.raises(gvc.UnsupportedFeature) as info:
            AsyncEngineArgs(model="/m", task="generate")
        assert (info.value.field, info.value.installed) == ("task", fake.version)
        return
    passed = _passed(AsyncEngineArgs(model="/m", task="generate"))
    if version < V("0.13.0"):
        assert passed["task"] == "generate"
    else:
        assert passed["runner"] == "generate" and "task" not in passed


# ---------------------------------------------------------------------------
# AsyncLLMEngine.generate
# ---------------------------------------------------------------------------


def test_generate_v040_keywords(fake: fake_vllm.FakeVllm, version: Version) -> None:
    engine, sp = _engine(), _sp()
    with legacy_forms() as forms:
        for rid in ("r1", "r2"):
            _consume(engine.generate(prompt=None, sampling_params=sp, request_id=rid, prompt_token_ids=[1, 2, 3]))
    args = _generate_calls(fake)[-1]
    assert args["request_id"] == "r2" and args["sampling_params"] is sp
    if version < V("0.4.3"):
        assert (args["prompt"], args["prompt_token_ids"]) == (None, [1, 2, 3])
        assert not forms
    else:
        assert _prompt_of(args) == {"prompt_token_ids": [1, 2, 3]}
        assert forms == {"AsyncLLMEngine.generate(prompt_token_ids=...)": 1}


def test_generate_v040_text_and_token_ids(fake: fake_vllm.FakeVllm, version: Version) -> None:
    _consume(_engine().generate(prompt="hi", sampling_params=_sp(), request_id="r", prompt_token_ids=[7, 8]))
    args = _generate_calls(fake)[-1]
    if version < V("0.4.3"):
        assert (args["prompt"], args["prompt_token_ids"]) == ("hi", [7, 8])
    elif version < V("0.10.2"):  # TokensPrompt has no "prompt" key there
        assert _prompt_of(args) == {"prompt_token_ids": [7, 8]}
    else:
        assert _prompt_of(args) == {"prompt_token_ids": [7, 8], "prompt": "hi"}


def test_generate_inputs_keyword(fake: fake_vllm.FakeVllm, version: Version) -> None:
    engine, sp = _engine(), _sp()
    with legacy_forms() as forms:
        _consume(engine.generate(inputs="hi", sampling_params=sp, request_id="r1"))
        _consume(engine.generate(inputs=TokensPrompt(prompt_token_ids=[4, 5]), sampling_params=sp, request_id="r2"))
    text_call, tokens_call = _generate_calls(fake)[-2:]
    native = V("0.4.3") <= version < V("0.6.3")
    assert ("inputs" in text_call) is native
    assert _prompt_of(text_call) == "hi"
    if version < V("0.4.3"):
        assert tokens_call["prompt_token_ids"] == [4, 5]
    else:
        assert _prompt_of(tokens_call) == {"prompt_token_ids": [4, 5]}
    assert forms == ({} if native else {"AsyncLLMEngine.generate(inputs=...)": 1})


def test_generate_modern_forms_never_warn(fake: fake_vllm.FakeVllm, version: Version) -> None:
    engine, sp, lora = _engine(), _sp(), object()
    with legacy_forms() as forms:
        _consume(engine.generate("hi", sp, "r1"))
        _consume(engine.generate(prompt="hi", sampling_params=sp, request_id="r2", lora_request=lora, priority=0))
        _consume(engine.generate(prompt=TokensPrompt(prompt_token_ids=[5, 6]), sampling_params=sp, request_id="r3"))
    first, second, third = _generate_calls(fake)[-3:]
    assert (_prompt_of(first), first["request_id"]) == ("hi", "r1")
    assert second["lora_request"] is lora
    if version < V("0.4.3"):
        assert third["prompt_token_ids"] == [5, 6]
    else:
        assert _prompt_of(third) == {"prompt_token_ids": [5, 6]}
    assert not forms


def test_generate_positional_lora_request(fake: fake_vllm.FakeVllm, version: Version) -> None:
    engine, sp, lora = _engine(), _sp(), object()
    with legacy_forms() as forms:
        for _ in range(2):
            _consume(engine.generate("hi", sp, "r", lora))  # 0.4.3 .. 0.11.0 layout
    assert _generate_calls(fake)[-1]["lora_request"] is lora
    native = V("0.4.3") <= version < V("0.11.1")
    form = "AsyncLLMEngine.generate(prompt, sampling_params, request_id, ..., lora_request) positional"
    assert forms == ({} if native else {form: 1})


def test_generate_v040_positional_layout(fake: fake_vllm.FakeVllm, version: Version) -> None:
    engine, sp, lora = _engine(), _sp(), object()
    with legacy_forms() as forms:
        _consume(engine.generate("hi", sp, "r1", [9, 9], lora))  # 0.4.0 .. 0.4.2: prompt_token_ids, lora_request
        _consume(engine.generate("hi", sp, "r2", None, lora))
    with_ids, without = _generate_calls(fake)[-2:]
    assert with_ids["lora_request"] is lora and without["lora_request"] is lora
    if version < V("0.4.3"):
        assert with_ids["prompt_token_ids"] == [9, 9] and not forms
    else:
        assert _prompt_of(with_ids)["prompt_token_ids"] == [9, 9]
        assert _prompt_of(without) == "hi"
        assert set(forms.values()) == {1} and len(forms) == 2


def test_generate_multi_modal_data_and_other_options(fake: fake_vllm.FakeVllm, version: Version) -> None:
    engine, sp, data = _engine(), _sp(), {"image": "pixels"}
    _consume(engine.generate(prompt="hi", sampling_params=sp, request_id="r", multi_modal_data=data))
    args = _generate_calls(fake)[-1]
    if version < V("0.4.3"):
        assert args["multi_modal_data"] is data
    else:
        assert _prompt_of(args) == {"prompt": "hi", "multi_modal_data": data}
    _consume(engine.generate("hi", sp, "r", trace_headers=None, prompt_adapter_request=None))  # unset: fine
    if version >= V("0.5.1"):
        _consume(engine.generate("hi", sp, "r", trace_headers={"traceparent": "x"}))
        assert _generate_calls(fake)[-1]["trace_headers"] == {"traceparent": "x"}
    else:
        with pytest.raises(gvc.UnsupportedFeature) as info:
            engine.generate("hi", sp, "r", trace_headers={"traceparent": "x"})
        assert (info.value.field, info.value.installed, info.value.supported) == (
            "trace_headers", fake.version, ">=0.5.1")


def test_generate_argument_errors(fake: fake_vllm.FakeVllm, version: Version) -> None:
    engine, sp = _engine(), _sp()
    with pytest.raises(TypeError, match="prompt"):
        engine.generate(sampling_params=sp, request_id="r")
    with pytest.raises(TypeError, match="both"):
        engine.generate(prompt="a", inputs="b", sampling_params=sp, request_id="r")
    with pytest.raises(TypeError, match="multiple values"):
        engine.generate("a", sp, "r", request_id="r")


# ---------------------------------------------------------------------------
# get_tokenizer / abort
# ---------------------------------------------------------------------------


def test_get_tokenizer_awaited_and_not(fake: fake_vllm.FakeVllm, version: Version) -> None:
    engine = _engine()
    handle = engine.get_tokenizer()
    assert isinstance(handle, TokenizerHandle)
    assert handle.encode("a") == [100] and handle("a") == {"input_ids": [100]}  # sync use
    assert type(handle.__wrapped__).__name__ == "FakeTokenizer"

    async def awaited() -> Any:
        return await engine.get_tokenizer()

    tokenizer = asyncio.run(awaited())
    assert type(tokenizer).__name__ == "FakeTokenizer"
    assert any(c.qualname.endswith(".get_tokenizer") for c in fake.calls)


def test_get_tokenizer_that_must_wait() -> None:
    class Engine:
        async def get_tokenizer(self) -> str:
            await asyncio.sleep(0)
            return "tok"

    handle = TokenizerHandle(Engine())
    with pytest.raises(TypeError, match="await engine.get_tokenizer"):
        handle.upper()

    async def awaited() -> Any:
        return await handle

    assert asyncio.run(awaited()) == "tok"
    assert handle.upper() == "TOK"  # fetched once, then cached


def test_abort(fake: fake_vllm.FakeVllm, version: Version) -> None:
    engine = _engine()
    asyncio.run(engine.abort("r1"))
    asyncio.run(engine.abort(["a", "b"]))
    calls = [c.arguments["request_id"] for c in fake.calls if c.qualname.endswith(".abort")]
    assert calls[0] == "r1"
    assert calls[1:] == ([["a", "b"]] if version >= V("0.14.0") else ["a", "b"])


# ---------------------------------------------------------------------------
# SamplingParams: historic fields
# ---------------------------------------------------------------------------


def test_beam_search_defaults_are_dropped(fake: fake_vllm.FakeVllm, version: Version) -> None:
    with legacy_forms() as forms:
        for _ in range(2):
            sp = SamplingParams(use_beam_search=False, length_penalty=1.0, early_stopping=False, max_tokens=2)
    passed = _passed(sp)
    if version < V("0.6.3"):
        assert (passed["use_beam_search"], passed["length_penalty"], passed["early_stopping"]) == (False, 1.0, False)
        assert not forms
    else:
        assert passed == {"max_tokens": 2}
        assert forms == {
            "SamplingParams(use_beam_search=False)": 1,
            "SamplingParams(length_penalty=1.0)": 1,
            "SamplingParams(early_stopping=False)": 1,
        }


def test_beam_search_requests_are_refused(fake: fake_vllm.FakeVllm, version: Version) -> None:
    if version < V("0.6.3"):
        assert _passed(SamplingParams(use_beam_search=True, n=2, best_of=2))["use_beam_search"] is True
        return
    with pytest.raises(gvc.UnsupportedFeature) as info:
        SamplingParams(use_beam_search=True, n=2, best_of=2)
    err = info.value
    assert (err.field, err.installed, err.supported) == ("use_beam_search", fake.version, "0.4.0 .. 0.6.2")
    assert "LLM.beam_search" in str(err)
    with pytest.raises(gvc.UnsupportedFeature, match="length_penalty"):
        SamplingParams(length_penalty=0.7)


def test_best_of(fake: fake_vllm.FakeVllm, version: Version, monkeypatch: pytest.MonkeyPatch) -> None:
    v0 = version < V("0.8.0")
    with legacy_forms() as forms:
        equal = SamplingParams(n=2, best_of=2)
    assert ("best_of" in _passed(equal)) is v0 and _passed(equal)["n"] == 2
    assert forms == ({} if v0 else {"SamplingParams(best_of=n)": 1})
    if v0:
        assert _passed(SamplingParams(n=1, best_of=3))["best_of"] == 3
    else:
        with pytest.raises(gvc.UnsupportedFeature) as info:
            SamplingParams(n=1, best_of=3)
        assert (info.value.field, info.value.installed) == ("best_of", fake.version)
        assert info.value.supported.startswith("0.4.0 .. 0.10.2 with the V0 engine")
    if V("0.8.0") <= version < V("0.11.0"):  # V0 is still there behind VLLM_USE_V1=0
        monkeypatch.setenv("VLLM_USE_V1", "0")
        assert _passed(SamplingParams(n=1, best_of=3))["best_of"] == 3


def test_guided_decoding(fake: fake_vllm.FakeVllm, version: Version) -> None:
    if version < V("0.6.3"):
        with pytest.raises(gvc.UnsupportedFeature, match="structured_outputs"):
            GuidedDecodingParams(regex="a+")
        with pytest.raises(gvc.UnsupportedFeature, match="structured_outputs"):
            SamplingParams(guided_decoding={"regex": "a+"})
        return
    with legacy_forms() as forms:
        guided = GuidedDecodingParams(regex="a+")
        from_object = SamplingParams(guided_decoding=guided, max_tokens=3)
        from_dict = SamplingParams(guided_decoding={"choice": ["x", "y"]})
    assert isinstance(guided, GuidedDecodingParams) and isinstance(guided, StructuredOutputsParams)
    if version < V("0.11.0"):
        assert type(guided).__name__ == "GuidedDecodingParams"
        assert from_object.guided_decoding is guided and from_dict.guided_decoding.choice == ["x", "y"]
        assert not forms
    else:
        assert type(guided).__name__ == "StructuredOutputsParams"
        assert from_object.structured_outputs is guided and from_dict.structured_outputs.choice == ["x", "y"]
        assert forms == {"GuidedDecodingParams(...)": 1, "SamplingParams(guided_decoding=...)": 1}


def test_top_k_minus_one(fake: fake_vllm.FakeVllm, version: Version) -> None:
    with legacy_forms() as forms:
        top_k = SamplingParams(top_k=-1).top_k
        SamplingParams(top_k=-1)
    assert top_k == (-1 if version < V("0.9.0") else 0)
    assert forms == ({} if version < V("0.9.0") else {"SamplingParams(top_k=-1)": 1})


def test_logits_processors(fake: fake_vllm.FakeVllm, version: Version) -> None:
    with legacy_forms() as forms:
        sp = SamplingParams(logits_processors=None, max_tokens=1)
    removed = version >= V("0.17.0")
    assert ("logits_processors" in _passed(sp)) is not removed
    assert forms == ({"SamplingParams(logits_processors=None)": 1} if removed else {})

    def processor(ids: list[int], logits: Any) -> Any:
        return logits

    if version < V("0.8.0"):
        assert _passed(SamplingParams(logits_processors=[processor]))["logits_processors"] == [processor]
    else:
        with pytest.raises(gvc.UnsupportedFeature) as info:
            SamplingParams(logits_processors=[processor])
        assert (info.value.field, info.value.installed) == ("logits_processors", fake.version)
        assert info.value.supported.startswith("0.4.0 .. 0.10.2 with the V0 engine")


# ---------------------------------------------------------------------------
# LLM.generate
# ---------------------------------------------------------------------------


def _llm_call(fake: fake_vllm.FakeVllm) -> dict[str, Any]:
    return fake.calls_to("LLM.generate")[-1].arguments


def test_llm_generate_prompt_token_ids(fake: fake_vllm.FakeVllm, version: Version) -> None:
    llm, sp = LLM(model="/m"), _sp()
    with legacy_forms() as forms:
        llm.generate(None, sp, prompt_token_ids=[[1, 2], [3]])
        outputs = llm.generate(prompts=None, prompt_token_ids=[[1, 2], [3]])
    assert len(outputs) == 2
    args = _llm_call(fake)
    if version < V("0.4.3"):
        assert args["prompt_token_ids"] == [[1, 2], [3]] and args.get("prompts") is None
    else:
        assert args["prompts"] == [{"prompt_token_ids": [1, 2]}, {"prompt_token_ids": [3]}]
        assert "prompt_token_ids" not in args
    removed = version >= V("0.10.2")
    assert forms == ({"LLM.generate(prompt_token_ids=...)": 1} if removed else {})


def test_llm_generate_texts_with_token_ids(fake: fake_vllm.FakeVllm, version: Version) -> None:
    LLM(model="/m").generate(["a", "b"], _sp(), prompt_token_ids=[[1], [2]])
    args = _llm_call(fake)
    if version < V("0.4.3"):
        assert args["prompt_token_ids"] == [[1], [2]]
    elif version < V("0.10.2"):
        assert args["prompts"] == [{"prompt_token_ids": [1]}, {"prompt_token_ids": [2]}]
    else:
        assert args["prompts"] == [{"prompt_token_ids": [1], "prompt": "a"}, {"prompt_token_ids": [2], "prompt": "b"}]
    with pytest.raises(ValueError, match="same length"):
        LLM(model="/m").generate(["a"], _sp(), prompt_token_ids=[[1], [2]])


def test_llm_generate_use_tqdm_and_positionals(fake: fake_vllm.FakeVllm, version: Version) -> None:
    llm, sp, lora = LLM(model="/m"), _sp(), object()
    llm.generate("hi", sp, use_tqdm=False)
    assert _llm_call(fake)["use_tqdm"] is False
    with legacy_forms() as forms:
        llm.generate("hi", sp, None, False, lora)  # 0.4.0 .. 0.10.1: prompt_token_ids, use_tqdm, lora_request
        llm.generate("hi", sp, None, False, lora)
    args = _llm_call(fake)
    assert args["use_tqdm"] is False and args["lora_request"] is lora
    if version < V("0.10.2"):
        assert not forms
    else:
        assert forms == {
            f"LLM.generate(prompts, sampling_params, ..., {name}) positional": 1
            for name in ("prompt_token_ids", "use_tqdm", "lora_request")
        }


def test_llm_generate_inputs_keyword(fake: fake_vllm.FakeVllm, version: Version) -> None:
    with legacy_forms() as forms:
        LLM(model="/m").generate(inputs="hi", sampling_params=_sp())
    args = _llm_call(fake)
    assert args["prompts"] == ["hi"] or args["prompts"] == "hi"
    assert forms == {"LLM.generate(inputs=...)": 1}


# ---------------------------------------------------------------------------
# Historic values compared by meaning, on every recorded release
# ---------------------------------------------------------------------------


def _literal_defaults(entries: list[Any], name: str) -> list[Any]:
    """The distinct literal defaults of field ``name`` over the recorded surfaces, oldest first."""
    import ast

    out: list[Any] = []
    for entry in entries:
        for field in (entry or {}).get("fields", []):
            if field["name"] != name or field["default"] is None:
                continue
            try:
                value = ast.literal_eval(field["default"])
            except (ValueError, SyntaxError):
                continue
            if not any(type(v) is type(value) and v == value for v in out):
                out.append(value)
    return out


_SURFACES = [fake_vllm.load_surface(v) for v in VERSIONS]
_SAMPLING_ENTRIES = [s["params"]["SamplingParams"] for s in _SURFACES]
_ENGINE_ENTRIES = [e for s in _SURFACES for e in (s["engine_args"]["EngineArgs"], s["engine_args"]["AsyncEngineArgs"])]
# Every legacy SamplingParams field the drop-in translates, with its defaults read from the surfaces.
SAMPLING_NEUTRALS = {name: _literal_defaults(_SAMPLING_ENTRIES, name) for name in dropin._SAMPLING_LEGACY}


def _forms(neutral: Any) -> list[Any]:
    """The int and float forms of a numeric default (and the bool itself for a bool default)."""
    if isinstance(neutral, bool):
        return [neutral, int(neutral), float(neutral)]
    if isinstance(neutral, (int, float)) and float(neutral).is_integer():
        return [int(neutral), float(neutral)]
    return [neutral]


SAMPLING_FORMS = [(name, form) for name, values in SAMPLING_NEUTRALS.items() for v in values for form in _forms(v)]


def test_sampling_neutrals_come_from_the_surfaces() -> None:
    assert SAMPLING_NEUTRALS["length_penalty"] == [1.0]
    assert SAMPLING_NEUTRALS["top_k"] == [-1, 0]
    assert SAMPLING_NEUTRALS["use_beam_search"] == [False] == SAMPLING_NEUTRALS["early_stopping"]
    for name, values in SAMPLING_NEUTRALS.items():
        assert list(dropin._sampling_neutrals(name)) == values, name
    assert (1, 1.0) in [(f, g) for f in _forms(1.0) for g in _forms(1.0) if f is not g]


def test_every_historic_sampling_default_in_every_form(fake: fake_vllm.FakeVllm, version: Version) -> None:
    """``length_penalty=1`` as well as ``1.0``, ``use_beam_search=0``, ``top_k=-1.0`` ...: accepted on
    every release, passed as written where the release has the field, dropped with a warning that
    says why where it does not."""
    for name, form in SAMPLING_FORMS:
        with legacy_forms() as forms, warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            passed = _passed(SamplingParams(**{name: form}, max_tokens=3))
        where = f"{name}={form!r} on {version}"
        assert passed["max_tokens"] == 3, where
        if name == "top_k":
            assert passed["top_k"] == (0 if version >= V("0.9.0") else -1), where
            assert type(passed["top_k"]) is int, where
        elif name in passed:
            assert dropin._same_meaning(passed[name], form) or passed[name] is form, where
        elif name in ("use_beam_search", "length_penalty", "early_stopping"):
            assert version >= V("0.6.3"), where
            text = " ".join(str(w.message) for w in caught)
            assert f"dropped it because {form!r} is the default of SamplingParams.{name}" in text, where
            assert "no effect without beam search" in text, where
        elif form is not None:  # a field the release lacks, given its neutral value: dropped, the warning says why
            text = " ".join(str(w.message) for w in caught)
            assert f"SamplingParams.{name}" in text and "dropped it" in text, (where, text)
        del forms


BEAM_ONLY_REFUSALS = [
    ("use_beam_search", True, "asks for beam search"),
    ("use_beam_search", 1, "asks for beam search"),
    ("length_penalty", 0.7, "only has an effect with beam search"),
    ("length_penalty", True, "only has an effect with beam search"),
    ("early_stopping", True, "only has an effect with beam search"),
    ("early_stopping", "never", "only has an effect with beam search"),
]


@pytest.mark.parametrize(("name", "value", "says"), BEAM_ONLY_REFUSALS)
def test_values_that_need_beam_search_say_so(
    fake: fake_vllm.FakeVllm, version: Version, name: str, value: Any, says: str
) -> None:
    if version < V("0.6.3"):
        fields = {"use_beam_search": True, "n": 2, "best_of": 2, name: value}
        assert _passed(SamplingParams(**fields))[name] == value
        return
    with pytest.raises(gvc.UnsupportedFeature) as info:
        SamplingParams(**{name: value})
    err = info.value
    assert (err.field, err.installed, err.supported) == (name, fake.version, "0.4.0 .. 0.6.2")
    assert says in str(err) and "LLM.beam_search" in str(err)
    if name != "use_beam_search":
        assert "(use_beam_search=True)" in str(err) and "default (" in str(err)


def test_length_penalty_int_on_the_legacy_server_form(fake: fake_vllm.FakeVllm, version: Version) -> None:
    """The reported defect: a 0.4-era GLM server's SamplingParams(..., length_penalty=1, ...)."""
    sp = SamplingParams(n=1, best_of=1, presence_penalty=0.0, frequency_penalty=0.0, temperature=0.8,
                        top_p=0.8, top_k=-1, use_beam_search=False, length_penalty=1, early_stopping=False,
                        ignore_eos=False, max_tokens=8, skip_special_tokens=True)
    assert _passed(sp)["max_tokens"] == 8


def test_best_of_float_equal_to_n(fake: fake_vllm.FakeVllm, version: Version) -> None:
    passed = _passed(SamplingParams(n=1, best_of=1.0))
    assert passed.get("best_of", 1) == 1 and type(passed.get("best_of", 1)) is int


def _engine_neutrals_from_surfaces(name: str) -> list[Any]:
    values = _literal_defaults(_ENGINE_ENTRIES, name)
    return values if all(dropin._same_meaning(v, values[0]) for v in values) else values[-1:]


ENGINE_FORMS = [
    (name, form)
    for name in gvc._history.ENGINE_HISTORIC_DEFAULTS
    for value in _engine_neutrals_from_surfaces(name)
    for form in _forms(value)
]


def test_engine_neutrals_come_from_the_surfaces() -> None:
    removed = {n for n, (_, until) in {**gvc._history.ENGINE_ARGS, **gvc._history.ASYNC_ENGINE_ARGS}.items() if until}
    assert {"worker_use_ray", "engine_use_ray", "disable_log_requests", "swap_space"} <= set(gvc._history.ENGINE_HISTORIC_DEFAULTS) <= removed
    for name in gvc._history.ENGINE_HISTORIC_DEFAULTS:
        assert list(dropin._engine_neutrals(name)) == _engine_neutrals_from_surfaces(name), name
    assert dropin._engine_neutrals("use_v2_block_manager") == (True,)  # False, then True: only the last


def test_every_historic_engine_default_in_every_form(fake: fake_vllm.FakeVllm, version: Version) -> None:
    """Removed engine arguments at a historic default (``worker_use_ray=0``, ``swap_space=4.0``,
    ``num_scheduler_steps=1``): accepted on every release."""
    fields = _fake_engine_fields(fake)
    for name, form in ENGINE_FORMS:
        dropin._WARNED.clear()  # one warning per form: see each
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            passed = _passed(AsyncEngineArgs(model="/m", **{name: form}))
        where = f"{name}={form!r} on {version}"
        if name in fields:
            assert name in passed and dropin._same_meaning(passed[name], form), where
        else:
            assert name not in passed, where
            assert any(name in str(w.message) for w in caught), where


def test_engine_argument_at_a_non_default_is_still_refused(fake: fake_vllm.FakeVllm, version: Version) -> None:
    if "swap_space" in _fake_engine_fields(fake):
        return
    with pytest.raises(gvc.UnsupportedFeature) as info:
        AsyncEngineArgs(model="/m", swap_space=16)
    assert info.value.field == "swap_space"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        AsyncEngineArgs(model="/m", swap_space=4)
    assert any("dropped it because 4 is the default of swap_space" in str(w.message) for w in caught)


def _fake_engine_fields(fake: fake_vllm.FakeVllm) -> set[str]:
    return {f["name"] for f in fake.surface["engine_args"]["AsyncEngineArgs"]["fields"]}


# ---------------------------------------------------------------------------
# The legacy example servers (examples/legacy_*.py), bound on every recorded release
# ---------------------------------------------------------------------------

_EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _example(name: str) -> Any:
    """Import examples/<name>.py once (it needs fastapi/uvicorn/transformers, not vLLM)."""
    for module in ("fastapi", "uvicorn", "httpx", "transformers"):
        pytest.importorskip(module)
    if name not in _LOADED:
        spec = importlib.util.spec_from_file_location(f"_example_{name}", _EXAMPLES / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # pydantic resolves the request models' annotations there
        spec.loader.exec_module(module)
        _LOADED[name] = module
    return _LOADED[name]


_LOADED: dict[str, Any] = {}


def _client(app: Any) -> Any:
    from fastapi.testclient import TestClient

    return TestClient(app)


def test_fastchat_worker(fake: fake_vllm.FakeVllm, version: Version) -> None:
    worker_mod = _example("legacy_fastchat_worker")
    engine = AsyncLLMEngine.from_engine_args(worker_mod.engine_args_for("/models/glm"))
    client = _client(worker_mod.build_app(worker_mod.Worker(engine, "glm", 1024)))
    params = {"prompt": "Hello", "temperature": 0.7, "top_p": 0.9, "top_k": -1, "max_new_tokens": 8,
              "stop": "###", "use_beam_search": False, "best_of": None, "echo": False}
    body = client.post("/worker_generate", json=params).json()
    assert body["error_code"] == 0 and body["text"], body
    call = _generate_calls(fake)[-1]
    assert _prompt_of(call) in ("Hello", {"prompt": "Hello"})
    sp = _passed(call["sampling_params"])
    assert (sp["max_tokens"], sp["stop"], sp["top_k"]) == (8, ["###"], -1 if version < V("0.9.0") else 0)
    assert ("use_beam_search" in sp) is (version < V("0.6.3"))
    chunks = [c for c in client.post("/worker_generate_stream", json={**params, "best_of": 1}).content.split(b"\0") if c]
    assert chunks and all(json.loads(c)["error_code"] == 0 for c in chunks)
    beam = client.post("/worker_generate", json={**params, "use_beam_search": True, "best_of": 2, "temperature": 0.0}).json()
    if version < V("0.6.3"):
        assert beam["error_code"] == 0 and _passed(_generate_calls(fake)[-1]["sampling_params"])["use_beam_search"] is True
    else:
        assert beam["error_code"] == worker_mod.ERROR_BAD_PARAMETER
        assert "UnsupportedFeature" in beam["text"] and "asks for beam search" in beam["text"]
    best_of = client.post("/worker_generate_stream", json={**params, "best_of": 2}).json() if version >= V("0.8.0") else None
    if best_of is not None:
        assert best_of["error_code"] == worker_mod.ERROR_BAD_PARAMETER and "'best_of'" in best_of["text"]


def _ids_sent(arguments: dict[str, Any]) -> list[list[int]]:
    if arguments.get("prompt_token_ids") is not None:
        return [list(ids) for ids in arguments["prompt_token_ids"]]
    prompts = arguments.get("prompts")
    return [list(p["prompt_token_ids"]) if isinstance(p, dict) else list(p) for p in prompts]


def test_llm_batch_script(fake: fake_vllm.FakeVllm, version: Version) -> None:
    batch_mod = _example("legacy_llm_batch")
    llm = batch_mod.build_llm("/models/glm")
    init = fake.calls_to("LLM.__init__")[-1].arguments
    assert ("swap_space" in init) is ("swap_space" in _fake_engine_fields(fake)), "a default dropped only where gone"
    requests = [{"prompt": "Hello"}, {"prompt": "Bye now"}]
    result = batch_mod.run(llm, requests, 8, positional=True)
    assert [r["index"] for r in result["keyword"]] == [0, 1] == [r["index"] for r in result["positional"]]
    expected = [fake_vllm.FakeTokenizer().encode(r["prompt"]) for r in requests]
    keyword, positional = fake.calls_to("LLM.generate")[-2:]
    assert _ids_sent(keyword.arguments) == expected == _ids_sent(positional.arguments)
    assert _passed(keyword.arguments["sampling_params"])["max_tokens"] == 8


class _Glm4Tokenizer:
    """What the GLM-4 server asks of its AutoTokenizer."""

    def apply_chat_template(self, messages: list[dict[str, str]], add_generation_prompt: bool, tokenize: bool) -> str:
        return "[gMASK]<sop>" + "".join(f"<|{m['role']}|>\n{m['content']}" for m in messages) + "<|assistant|>"

    def convert_tokens_to_ids(self, tokens: list[str]) -> list[int]:
        return [151336, 151338, 151329][: len(tokens)]


def test_glm4_openai_server_with_historic_defaults(fake: fake_vllm.FakeVllm, version: Version) -> None:
    glm = _example("legacy_glm4_openai_server")
    engine = AsyncLLMEngine.from_engine_args(glm.engine_args_for("/models/glm", "float32", 1024))
    client = _client(glm.build_app(engine, _Glm4Tokenizer(), "glm"))
    request = {"model": "glm", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8}
    response = client.post("/v1/chat/completions", json=request)
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"]
    call = _generate_calls(fake)[-1]
    assert _prompt_of(call) in ("[gMASK]<sop><|user|>\nhi<|assistant|>", {"prompt": "[gMASK]<sop><|user|>\nhi<|assistant|>"})
    sp = _passed(call["sampling_params"])
    if version < V("0.6.3"):
        assert (sp["length_penalty"], sp["use_beam_search"], sp["early_stopping"]) == (1, False, False)
    else:
        assert not {"length_penalty", "use_beam_search", "early_stopping"} & set(sp)
    assert sp["stop_token_ids"] == [151336, 151338, 151329]
    streamed = client.post("/v1/chat/completions", json={**request, "stream": True}).text
    assert streamed.rstrip().endswith("data: [DONE]")
