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


def _fake_cpu_executor(monkeypatch: pytest.MonkeyPatch, *, forks: bool = True, cpu: bool = True) -> types.ModuleType:
    """vllm.executor.cpu_executor as in 0.5.x - 0.6.x (forks=True) or 0.4.x (no ProcessWorkerWrapper)."""
    cpu_executor = types.ModuleType("vllm.executor.cpu_executor")
    executor_base = types.ModuleType("vllm.executor.executor_base")
    utils = types.ModuleType("vllm.utils")

    class ExecutorAsyncBase:
        pass

    class CPUExecutor:
        def __init__(self) -> None:
            self.parallel_config = SimpleNamespace(distributed_executor_backend="given class")
            self._init_executor()

        def _init_executor(self) -> None:
            self.seen_backend = self.parallel_config.distributed_executor_backend
            self.worker_in_process = not isinstance(self, CPUExecutorAsync)  # what vLLM's CPUExecutor decides by

    class CPUExecutorAsync(CPUExecutor, ExecutorAsyncBase):
        async def execute_model_async(self, execute_model_req: Any) -> str:
            return "stepped"

        async def check_health_async(self) -> None:
            return None

    cpu_executor.CPUExecutor = CPUExecutor  # type: ignore[attr-defined]
    cpu_executor.CPUExecutorAsync = CPUExecutorAsync  # type: ignore[attr-defined]
    if forks:
        cpu_executor.ProcessWorkerWrapper = object  # type: ignore[attr-defined]
    executor_base.ExecutorAsyncBase = ExecutorAsyncBase  # type: ignore[attr-defined]
    utils.is_cpu = lambda: cpu  # type: ignore[attr-defined]
    for name, mod in (("vllm.executor.cpu_executor", cpu_executor), ("vllm.executor.executor_base", executor_base), ("vllm.utils", utils)):
        monkeypatch.setitem(sys.modules, name, mod)
    return cpu_executor


def test_cpu_async_engine_of_0_5_and_0_6_runs_its_worker_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """vLLM 0.5.x - 0.6.x's CPUExecutorAsync forks its only worker and pickles each step's SamplingParams to it:
    outlines' guided decoding lost its FSM state after the first tokens (0.6.3 serve: 'get' for a forced
    'get_weather{...}'), and a fork after an in-process engine hung in OpenMP."""
    fake = _fake_cpu_executor(monkeypatch)
    cls = _engine._in_process_cpu_executor({"max_model_len": 1024})
    assert cls is not None
    assert issubclass(cls, fake.CPUExecutor) and not issubclass(cls, fake.CPUExecutorAsync)
    executor = cls()
    assert executor.worker_in_process and executor.seen_backend is None  # no "unsupported backend" warning
    assert asyncio.run(executor.execute_model_async(None)) == "stepped"


@pytest.mark.parametrize(
    ("kwargs", "forks", "cpu"),
    [
        ({"tensor_parallel_size": 2}, True, True),  # more than one worker: vLLM's own multiprocess executor
        ({"distributed_executor_backend": "mp"}, True, True),  # the caller chose
        ({}, False, True),  # 0.4.x: its CPUExecutorAsync keeps the worker in-process already
        ({}, True, False),  # not the CPU platform
    ],
)
def test_cpu_async_executor_is_left_alone_elsewhere(
    monkeypatch: pytest.MonkeyPatch, kwargs: dict[str, Any], forks: bool, cpu: bool
) -> None:
    _fake_cpu_executor(monkeypatch, forks=forks, cpu=cpu)
    assert _engine._in_process_cpu_executor(kwargs) is None


def test_cpu_async_executor_without_the_module(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "vllm.executor.cpu_executor", None)  # 0.7+: no such module
    assert _engine._in_process_cpu_executor({}) is None
