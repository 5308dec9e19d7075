"""``best_of > n`` returns the n best sequences on every line (vLLM 0.6.3's V0 engine returned all best_of)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

import glm_vllm_compat as gvc
from glm_vllm_compat import _generate
from glm_vllm_compat.testing import fake_vllm


def _seq(index: int, logprob: float | None) -> SimpleNamespace:
    return SimpleNamespace(index=index, text=f"t{index}", cumulative_logprob=logprob)


@pytest.mark.parametrize(
    ("logprobs", "n", "finished", "kept"),
    [
        ([-3.0, -1.0, -2.0], 1, True, [1]),
        ([-3.0, -1.0, -2.0], 2, True, [1, 2]),
        ([None, -1.0, None], 1, True, [1]),  # no logprob ranks last
        ([-3.0, -1.0, -2.0], 3, True, [0, 1, 2]),  # nothing to drop: left as it came
        ([-3.0, -1.0, -2.0], 1, False, [0, 1, 2]),  # unfinished: every sequence still runs
    ],
)
def test_best_n(logprobs: list[float | None], n: int, finished: bool, kept: list[int]) -> None:
    output = SimpleNamespace(finished=finished, outputs=[_seq(i, lp) for i, lp in enumerate(logprobs)])
    assert [o.index for o in _generate._best_n(output, n).outputs] == kept


@pytest.mark.parametrize(
    ("sp", "wanted"),
    [(SimpleNamespace(n=1, best_of=3), 1), (SimpleNamespace(n=2, best_of=2), None), (SimpleNamespace(n=2, best_of=None), None),
     (SimpleNamespace(n=1), None),
     (SimpleNamespace(n=3, best_of=3, _real_n=1), 1),  # vLLM 0.6.3: n raised to best_of, the asked n in _real_n
     (SimpleNamespace(n=2, best_of=2, _real_n=None), None)],
)
def test_wanted(sp: Any, wanted: int | None) -> None:
    assert _generate._wanted(sp) == wanted


@pytest.fixture(scope="module")
def v063(tmp_path_factory: pytest.TempPathFactory) -> Iterator[fake_vllm.FakeVllm]:
    with fake_vllm.installed("0.6.3", tmp_path_factory.mktemp("vllm")) as installed:
        yield installed


def test_generate_keeps_n_of_best_of_offline_and_async(v063: fake_vllm.FakeVllm, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fake answers like 0.6.3's V0 engine: best_of sequences for best_of > n."""

    def like_063(sampling: Any, index: int) -> int:
        return int(getattr(sampling, "best_of", None) or getattr(sampling, "n", 1))

    monkeypatch.setattr(fake_vllm, "_n", like_063)
    llm = gvc.build_llm("/models/glm")
    (out,) = gvc.generate(llm, "你好", max_tokens=4, n=1, best_of=3)
    assert len(out.outputs) == 1
    (plain,) = gvc.generate(llm, "你好", max_tokens=4, n=2)
    assert len(plain.outputs) == 2

    async def last() -> Any:
        outputs = [o async for o in gvc.generate(gvc.build_async_engine("/models/glm"), "你好", max_tokens=4, n=1, best_of=3)]
        return outputs[-1]

    assert len(asyncio.run(last()).outputs) == 1
