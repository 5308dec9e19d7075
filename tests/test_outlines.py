"""Structured outputs before vLLM 0.6.3: outlines logits processors built by the adapter (``_outlines``)."""

from __future__ import annotations

import asyncio
import re
import sys
import threading
from collections.abc import Iterator
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

import glm_vllm_compat as gvc
from glm_vllm_compat import _outlines
from glm_vllm_compat._errors import InvalidParameter, UnsupportedFeature
from glm_vllm_compat.testing import fake_vllm

GRAMMAR = "?start: object"


class _Processor:
    built: list[tuple[Any, ...]] = []
    threads: list[str] = []

    def __init__(self, *args: Any) -> None:
        type(self).built.append((type(self).__name__, *args))
        _Processor.threads.append(threading.current_thread().name)
        self.args = args
        self.states = 0

    def init_state(self) -> None:
        self.states += 1


class Regex(_Processor):
    def __init__(self, regex_string: str, tokenizer: Any) -> None:
        if regex_string == "(":
            raise re.error("missing ), unterminated subpattern")
        super().__init__(regex_string, tokenizer)


class Json(_Processor):
    def __init__(self, schema: Any, tokenizer: Any, whitespace_pattern: Any) -> None:
        super().__init__(schema, tokenizer, whitespace_pattern)


class Json040(_Processor):  # vLLM 0.4.0: no whitespace_pattern
    def __init__(self, schema: Any, tokenizer: Any) -> None:
        super().__init__(schema, tokenizer)


class Cfg(_Processor):
    def __init__(self, cfg: str, tokenizer: Any) -> None:
        super().__init__(cfg, tokenizer)


CLASSES = _outlines.ProcessorClasses(Regex, Json, Cfg, GRAMMAR)
TOKENIZER = object()


@pytest.fixture(autouse=True)
def fresh() -> Iterator[None]:
    _outlines._CACHE.clear()
    _Processor.built.clear()
    yield
    _outlines._CACHE.clear()


@pytest.mark.parametrize(
    ("spec", "built"),
    [
        ({"regex": "a+"}, ("Regex", "a+", TOKENIZER)),
        ({"choice": ["yes", "b.c"]}, ("Regex", r"(yes|b\.c)", TOKENIZER)),
        ({"json": {"type": "object", "a": 1}}, ("Json", '{"a": 1, "type": "object"}', TOKENIZER, None)),
        ({"json": '{"type": "object"}', "whitespace_pattern": " ?"}, ("Json", '{"type": "object"}', TOKENIZER, " ?")),
        ({"grammar": "root ::= x", "backend": "outlines"}, ("Cfg", "root ::= x", TOKENIZER)),
        ({"json_object": True, "regex": None}, ("Cfg", GRAMMAR, TOKENIZER)),
    ],
)
def test_each_constraint_builds_vllms_processor(spec: dict[str, Any], built: tuple[Any, ...]) -> None:
    processor = _outlines.logits_processor(spec, TOKENIZER, CLASSES)
    assert _Processor.built == [built] and processor.states == 1


def test_json_of_0_4_0_takes_no_whitespace() -> None:
    classes = CLASSES._replace(json=Json040)
    _outlines.logits_processor({"json": {"type": "object"}}, TOKENIZER, classes)
    assert _Processor.built == [("Json040", '{"type": "object"}', TOKENIZER)]


@pytest.mark.parametrize(
    ("spec", "classes", "message"),
    [
        ({}, CLASSES, "exactly one of json, regex, choice, grammar, json_object; got 0"),
        ({"regex": "a", "choice": ["b"]}, CLASSES, "exactly one .* got 2"),
        ({"regex": "a", "structural_tag": "x"}, CLASSES, "structural_tag cannot be enforced"),
        ({"regex": "("}, CLASSES, r"structured_outputs.regex cannot be compiled: missing \)"),
        ({"json_object": True}, CLASSES._replace(json_grammar=None), "ships no JSON grammar"),
    ],
)
def test_mistakes(spec: dict[str, Any], classes: _outlines.ProcessorClasses, message: str) -> None:
    with pytest.raises(InvalidParameter, match=message):
        _outlines.logits_processor(spec, TOKENIZER, classes)


def test_compiled_once_per_constraint_and_tokenizer_each_request_its_own_copy() -> None:
    first = _outlines.logits_processor({"regex": "a+"}, TOKENIZER, CLASSES)
    second = _outlines.logits_processor({"regex": "a+"}, TOKENIZER, CLASSES)
    _outlines.logits_processor({"regex": "a+"}, object(), CLASSES)
    assert len(_Processor.built) == 2 and first is not second


# -- through the stable API, on a recorded release without a structured-outputs field ------------------


@pytest.fixture(scope="module")
def v055(tmp_path_factory: pytest.TempPathFactory) -> Iterator[fake_vllm.FakeVllm]:
    with fake_vllm.installed("0.5.5", tmp_path_factory.mktemp("vllm")) as installed:
        yield installed


@pytest.fixture()
def processors(v055: fake_vllm.FakeVllm, monkeypatch: pytest.MonkeyPatch) -> None:
    """vLLM 0.5.5's outlines processor module (the fake records no such module)."""
    module = ModuleType("vllm.model_executor.guided_decoding.outlines_logits_processors")
    module.RegexLogitsProcessor, module.JSONLogitsProcessor, module.CFGLogitsProcessor = Regex, Json, Cfg  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, module.__name__, module)


def test_without_the_module_it_stays_unsupported(v055: fake_vllm.FakeVllm) -> None:
    with pytest.raises(UnsupportedFeature, match="structured_outputs"):
        gvc.sampling_params(structured_outputs={"regex": "a+"}, tokenizer=TOKENIZER)


def test_sampling_params_needs_the_tokenizer(processors: None) -> None:
    with pytest.raises(UnsupportedFeature, match="needs the model's tokenizer"):
        gvc.sampling_params(structured_outputs={"regex": "a+"})
    sp = gvc.sampling_params(structured_outputs={"regex": "a+"}, tokenizer=TOKENIZER, logits_processors=[print])
    assert sp.logits_processors[0] is print and isinstance(sp.logits_processors[1], Regex)


def test_generate_passes_the_targets_tokenizer(processors: None, v055: fake_vllm.FakeVllm) -> None:
    llm = gvc.build_llm("/models/glm")
    gvc.generate(llm, "你好", max_tokens=4, structured_outputs={"choice": ["是", "否"]})
    (processor,) = v055.calls_to("LLM.generate")[-1].arguments["sampling_params"].logits_processors
    assert processor.args == ("(是|否)", fake_vllm._TOKENIZER)

    async def consume() -> list[Any]:
        engine = gvc.build_async_engine("/models/glm")
        return [o async for o in gvc.generate(engine, "你好", {"max_tokens": 4, "structured_outputs": {"regex": "b+"}})]

    assert asyncio.run(consume())[-1].finished
    calls = [c for c in v055.calls if c.qualname.endswith(".generate") and not c.qualname.startswith("LLM")]
    assert calls[-1].arguments["sampling_params"].logits_processors[0].args == ("b+", fake_vllm._TOKENIZER)


def test_server_sampling_passes_the_engine_tokenizer_and_compiles_off_the_loop(processors: None) -> None:
    from glm_vllm_compat.server._sampling import build_sampling_async
    from glm_vllm_compat.server.protocol import CompletionRequest

    engine = SimpleNamespace(tokenizer=TOKENIZER, max_model_len=64, stop_token_ids=[], max_logprobs=20, vocab_size=100)
    state = SimpleNamespace(engine=engine, generation_defaults={})
    req = CompletionRequest.model_validate({"prompt": "hi", "max_tokens": 4, "structured_outputs": {"regex": "c+"}})
    sp = asyncio.run(build_sampling_async(state, req, 2))  # type: ignore[arg-type]
    assert sp.logits_processors[0].args == ("c+", TOKENIZER)
    assert _Processor.threads[-1] != threading.main_thread().name  # the FSM compile ran in a worker thread
