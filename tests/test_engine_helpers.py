"""The engine helpers whose target methods moved between releases (simple doubles)."""

from __future__ import annotations

import asyncio
import sys
import types
from types import SimpleNamespace
from typing import Any

import pytest

from glm_vllm_compat import _engine


class Counter:
    def __init__(self, n: int) -> None:
        self.n = n

    def get_num_unfinished_requests(self) -> int:
        return self.n


@pytest.mark.parametrize(
    ("engine", "expected"),
    [
        (Counter(3), 3),  # V1 AsyncLLM 0.32+
        (SimpleNamespace(output_processor=Counter(2)), 2),  # V1 AsyncLLM before 0.32
        (SimpleNamespace(engine=Counter(1)), 1),  # V0 AsyncLLMEngine
        (SimpleNamespace(llm_engine=Counter(0)), 0),  # offline LLM
    ],
)
def test_num_unfinished_requests(engine: Any, expected: int) -> None:
    assert _engine.num_unfinished_requests(engine) == expected


def test_num_unfinished_requests_unknown_engine() -> None:
    with pytest.raises(TypeError, match="cannot report"):
        _engine.num_unfinished_requests(SimpleNamespace())


class Stoppable:
    def __init__(self, name: str) -> None:
        self.calls: list[str] = []
        setattr(self, name, lambda: self.calls.append(name))


@pytest.mark.parametrize(
    ("build", "owner_path", "name"),
    [
        (lambda s: s, (), "shutdown"),  # V1 AsyncLLM
        (lambda s: s, (), "shutdown_background_loop"),  # V0 AsyncLLMEngine
        (lambda s: SimpleNamespace(llm_engine=SimpleNamespace(engine_core=s)), (), "shutdown"),  # offline LLM (V1)
    ],
)
def test_shutdown_finds_the_method(build: Any, owner_path: tuple[str, ...], name: str) -> None:
    stoppable = Stoppable(name)
    _engine.shutdown(build(stoppable))
    assert stoppable.calls == [name]
    _engine.shutdown(SimpleNamespace())  # nothing to stop: no error


def _fake_parallel_state(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    mod = types.ModuleType("vllm.distributed.parallel_state")
    mod.destroy_model_parallel = lambda: calls.append("destroy_model_parallel")  # type: ignore[attr-defined]
    mod.destroy_distributed_environment = lambda: calls.append("destroy_distributed_environment")  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "vllm.distributed.parallel_state", mod)
    return calls


def test_shutdown_of_a_v0_offline_llm_releases_the_distributed_state(monkeypatch: pytest.MonkeyPatch) -> None:
    """V0's LLM/LLMEngine have no shutdown: the executor's, then vLLM's process groups destroyed.  Left
    behind, vLLM 0.5 - 0.6's CPU async engine built next in the process forked a worker that inherited
    the gloo group without its threads and hung in its first all_reduce."""
    calls = _fake_parallel_state(monkeypatch)
    executor = Stoppable("shutdown")
    _engine.shutdown(SimpleNamespace(llm_engine=SimpleNamespace(model_executor=executor)))
    assert executor.calls == ["shutdown"]
    assert calls == ["destroy_model_parallel", "destroy_distributed_environment"]


def test_shutdown_of_an_engine_with_its_own_shutdown_leaves_the_distributed_state(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = _fake_parallel_state(monkeypatch)
    _engine.shutdown(Stoppable("shutdown_background_loop"))  # V0 AsyncLLMEngine: worker elsewhere, nothing here
    _engine.shutdown(SimpleNamespace(llm_engine=SimpleNamespace(engine_core=Stoppable("shutdown"))))  # V1 LLM
    _engine.shutdown(SimpleNamespace())
    assert calls == []


def test_get_model_config_sync_attribute_or_async_method() -> None:
    config = SimpleNamespace(max_model_len=7)

    class V0:
        async def get_model_config(self) -> Any:
            return config

    assert asyncio.run(_engine.get_model_config(SimpleNamespace(model_config=config))) is config
    assert asyncio.run(_engine.get_model_config(V0())) is config


class V0Engine:
    """V0 AsyncLLMEngine: schedulers (one per virtual engine) live in the API process."""

    def __init__(self) -> None:
        scheduler = SimpleNamespace(running=[1, 2], waiting=[3], swapped=[4])
        self.engine = SimpleNamespace(scheduler=[scheduler, SimpleNamespace(running=[5], waiting=[], swapped=[])], get_num_unfinished_requests=lambda: 5)


def test_request_counts_v0_scheduler() -> None:
    counts = _engine.request_counts(V0Engine())
    assert counts == {"unfinished_requests": 5, "num_requests_running": 3, "num_requests_waiting": 2}


def test_request_counts_v1_prometheus_gauges() -> None:
    prometheus = pytest.importorskip("prometheus_client")
    registry = prometheus.CollectorRegistry()
    running = prometheus.Gauge("vllm:num_requests_running", "running", ["engine"], registry=registry)
    running.labels(engine="0").set(4)
    running.labels(engine="1").set(1)
    waiting = prometheus.Gauge("vllm:num_requests_waiting", "waiting", ["engine"], registry=registry)
    waiting.labels(engine="0").set(2)
    original = prometheus.REGISTRY
    prometheus.REGISTRY = registry
    try:
        counts = _engine.request_counts(Counter(7))
    finally:
        prometheus.REGISTRY = original
    assert counts == {"unfinished_requests": 7, "num_requests_running": 5, "num_requests_waiting": 2}


def test_request_counts_unknown() -> None:
    counts = _engine.request_counts(SimpleNamespace())
    assert counts["unfinished_requests"] == -1
