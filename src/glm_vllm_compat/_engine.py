"""Building engines and the engine calls whose form changed between releases."""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from . import _live
from ._engine_args import translate_engine_args
from ._errors import EngineError

__all__ = [
    "abort",
    "add_lora",
    "build_async_engine",
    "build_llm",
    "llm_fields",
    "lora_request",
    "get_model_config",
    "get_tokenizer",
    "num_unfinished_requests",
    "reasoning_config",
    "request_counts",
    "shutdown",
    "supported_architectures",
]


def llm_fields(lv: _live.Live) -> frozenset[str]:
    own = frozenset(_live.param_names(getattr(lv.llm_cls, "__init__"))) if lv.llm_cls is not None else frozenset()
    return (lv.engine_arg_fields | own) - {"model", "kwargs"}


def build_llm(model: str, **engine_args: Any) -> Any:
    """An offline ``vllm.LLM`` for ``model`` (a local path or a model id).

    Renamed engine arguments are accepted under their old or new name
    (``worker_use_ray`` ⇄ ``distributed_executor_backend``, ``task`` ⇄
    ``runner``/``convert``, ``max_context_len_to_capture`` ⇄
    ``max_seq_len_to_capture``, ...).
    """
    lv = _live.live()
    if lv.llm_cls is None:  # pragma: no cover - every supported release has LLM
        raise EngineError(f"vLLM {lv.info.raw_version} has no vllm.LLM")
    kwargs = translate_engine_args(engine_args, llm_fields(lv), lv.info.raw_version, "build_llm()")
    try:
        return lv.llm_cls(model=model, **kwargs)
    except Exception as exc:
        raise EngineError(f"vLLM {lv.info.raw_version} could not build LLM({model!r}): {exc}") from exc


def build_async_engine(model: str, **engine_args: Any) -> Any:
    """An async engine for ``model``: what ``AsyncLLMEngine.from_engine_args``
    returns on the installed release (V0 ``AsyncLLMEngine`` or V1 ``AsyncLLM``)."""
    lv = _live.live()
    args_cls: Any = lv.async_engine_args_cls
    engine_cls: Any = lv.async_engine_cls or lv.async_llm_cls
    if args_cls is None or engine_cls is None:  # pragma: no cover
        raise EngineError(f"vLLM {lv.info.raw_version} has no async engine")
    kwargs = translate_engine_args(
        engine_args, lv.async_engine_arg_fields - {"model"}, lv.info.raw_version, "build_async_engine()"
    )
    executor = _in_process_cpu_executor(kwargs)
    if executor is not None:
        kwargs["distributed_executor_backend"] = executor
    try:
        return engine_cls.from_engine_args(args_cls(model=model, **kwargs))
    except Exception as exc:
        raise EngineError(f"vLLM {lv.info.raw_version} could not build an async engine for {model!r}: {exc}") from exc


def _in_process_cpu_executor(kwargs: dict[str, Any]) -> type | None:
    """vLLM 0.5.x - 0.6.x on the CPU, one worker: an async executor that runs its worker in this process.

    Their ``CPUExecutorAsync`` runs even its only (driver) worker in a child process
    (``ProcessWorkerWrapper``, forked by default) and sends it each step's ``SamplingParams`` by
    pickling, so stateful logits processors start from a fresh copy every step: outlines' guided
    decoding (``guided_decoding`` / ``structured_outputs``) keeps its FSM state per sequence in the
    processor and loses it after the first tokens (0.6.3: a regex forced to
    ``get_weather{...}`` gave ``get``).  Forked after an in-process engine, the child also hangs in
    torch's OpenMP.  vLLM's own ``vllm serve`` on 0.6.x runs ``LLMEngine`` with the in-process
    ``CPUExecutor`` (MQLLMEngine), as 0.4.x and 0.7+ do for one CPU worker; this is that executor with
    ``CPUExecutorAsync``'s async methods, given through ``distributed_executor_backend`` (an executor
    class is a documented value).  ``None`` elsewhere, with a backend or more than one worker asked for.
    """
    if kwargs.get("distributed_executor_backend") is not None:
        return None
    if any((kwargs.get(name) or 1) != 1 for name in ("tensor_parallel_size", "pipeline_parallel_size")):
        return None
    try:
        cpu_executor = importlib.import_module("vllm.executor.cpu_executor")
        executor_base = importlib.import_module("vllm.executor.executor_base")
        is_cpu = importlib.import_module("vllm.utils").is_cpu
    except (ImportError, AttributeError):  # 0.7+ (UniProcExecutor in-process) or a build without it
        return None
    forked: Any = getattr(cpu_executor, "CPUExecutorAsync", None)
    if forked is None or not hasattr(cpu_executor, "ProcessWorkerWrapper") or not is_cpu():
        return None

    class InProcessCPUExecutorAsync(cpu_executor.CPUExecutor, executor_base.ExecutorAsyncBase):  # type: ignore[misc, name-defined]
        uses_ray = False
        execute_model_async = forked.execute_model_async
        check_health_async = forked.check_health_async

        def _init_executor(self) -> None:
            # the class chosen above; CPUExecutor would warn that a backend other than "mp" is unsupported
            self.parallel_config.distributed_executor_backend = None
            super()._init_executor()

    InProcessCPUExecutorAsync.__module__ = __name__
    return InProcessCPUExecutorAsync


# ReasoningConfig's delimiter fields: named think_* when it arrived (0.19), reasoning_* later (think_* kept as aliases).
_REASONING_DELIMITERS = (("reasoning_start_str", "reasoning_end_str"), ("think_start_str", "think_end_str"))


def reasoning_config(start: str, end: str) -> Any | None:
    """vLLM's ``ReasoningConfig`` delimiting reasoning by ``start``/``end`` (what the
    engine needs to enforce ``thinking_token_budget``); ``None`` where the installed
    release has no reasoning config or no delimiter fields."""
    if "reasoning_config" not in _live.live().async_engine_arg_fields:
        return None
    try:
        from vllm import config
    except ImportError:  # pragma: no cover - the engine field and the class arrived together
        return None
    cls: Any = getattr(config, "ReasoningConfig", None)
    names = set(_live.param_names(cls)) if cls is not None else set()
    for start_field, end_field in _REASONING_DELIMITERS:
        if {start_field, end_field} <= names:
            return cls(**{start_field: start, end_field: end})
    return None


async def get_tokenizer(engine: Any, lora_request: Any = None) -> Any:
    """The engine's tokenizer, whether the release's method is sync or async."""
    kwargs: dict[str, Any] = {}
    if lora_request is not None:
        kwargs["lora_request"] = lora_request
    result = engine.get_tokenizer(**kwargs)
    if inspect.isawaitable(result):
        result = await result
    return result


def lora_request(name: str, int_id: int, path: str) -> Any:
    """vLLM's ``LoRARequest`` (positional: its path field was ``lora_local_path`` before 0.6)."""
    from vllm.lora.request import LoRARequest

    return LoRARequest(name, int_id, path)


async def add_lora(engine: Any, request: Any) -> bool:
    """Load an adapter into an async engine now (sync or async ``add_lora``); False where the
    engine class has no ``add_lora`` (it then loads with the first request naming it)."""
    method = getattr(engine, "add_lora", None)
    if method is None:
        return False
    result = method(request)
    if inspect.isawaitable(result):
        result = await result
    return result is not False


async def abort(engine: Any, request_id: str) -> None:
    """Abort a request on an async engine (sync or async ``abort`` alike)."""
    result = engine.abort(request_id)
    if inspect.isawaitable(result):
        await result


async def get_model_config(engine: Any) -> Any:
    """The engine's ``ModelConfig`` (attribute on V1, ``await get_model_config()`` on V0)."""
    config = getattr(engine, "model_config", None)
    if config is None and hasattr(engine, "get_model_config"):
        config = engine.get_model_config()
        if inspect.isawaitable(config):
            config = await config
    if config is None and hasattr(engine, "llm_engine"):
        config = getattr(engine.llm_engine, "model_config", None)
    return config


def num_unfinished_requests(engine: Any) -> int:
    """Requests the engine still holds (0 when all finished or were aborted)."""
    # V1 AsyncLLM has the method from 0.32 only; before, its output_processor has it; V0: .engine
    owners = [engine] + [getattr(engine, n) for n in ("output_processor", "engine", "llm_engine") if hasattr(engine, n)]
    for owner in owners:
        method = getattr(owner, "get_num_unfinished_requests", None)
        if callable(method):
            return int(method())
    raise TypeError(f"{type(engine).__name__} cannot report unfinished requests")


_PROMETHEUS_GAUGES = {"num_requests_running": "vllm:num_requests_running", "num_requests_waiting": "vllm:num_requests_waiting"}


def _scheduler_counts(engine: Any) -> dict[str, int] | None:
    """V0 engines: the schedulers live in the API process (``engine.engine.scheduler``)."""
    inner = getattr(engine, "engine", None)
    schedulers = getattr(inner, "scheduler", None) if inner is not None else None
    if schedulers is None:
        return None
    schedulers = schedulers if isinstance(schedulers, (list, tuple)) else [schedulers]
    running = waiting = 0
    for scheduler in schedulers:
        running += len(getattr(scheduler, "running", ()))
        waiting += len(getattr(scheduler, "waiting", ())) + len(getattr(scheduler, "swapped", ()))
    return {"num_requests_running": running, "num_requests_waiting": waiting}


def _prometheus_counts() -> dict[str, int]:
    """V1 engines: the scheduler runs in the engine-core process and reports its
    counts with every step; vLLM's stat logger keeps them as Prometheus gauges."""
    try:
        from prometheus_client import REGISTRY
    except ImportError:
        return {}
    out: dict[str, int] = {}
    for key, name in _PROMETHEUS_GAUGES.items():
        values = [s.value for metric in REGISTRY.collect() for s in metric.samples if s.name == name]
        if values:
            out[key] = int(sum(values))
    return out


def request_counts(engine: Any) -> dict[str, int]:
    """``unfinished_requests`` (the API process's view), ``num_requests_running`` and
    ``num_requests_waiting`` (the engine scheduler's); -1 for a count this engine cannot report."""
    counts = {"unfinished_requests": -1, "num_requests_running": -1, "num_requests_waiting": -1}
    try:
        counts["unfinished_requests"] = num_unfinished_requests(engine)
    except TypeError:
        pass
    counts.update(_scheduler_counts(engine) or _prometheus_counts())
    return counts


def supported_architectures() -> frozenset[str]:
    """Model architectures the installed vLLM can load (its model registry)."""
    registry = getattr(_live.live().vllm, "ModelRegistry", None)
    archs = getattr(registry, "get_supported_archs", None)
    return frozenset(archs()) if callable(archs) else frozenset()


def shutdown(engine: Any) -> None:
    """Stop an engine's background processes (V1) or loop (V0), if it has any.

    Works on async engines and on an offline ``LLM`` (whose V1 engine core runs
    in a child process that outlives the object until garbage collection).

    A V0 offline ``LLM`` has no shutdown of its own (neither ``LLM`` nor V0's
    ``LLMEngine``): its executor is shut down, and vLLM's distributed state is
    released, as vLLM's own tests do between engines.  Its worker ran in this
    process and left ``torch.distributed``'s process group (gloo on the CPU) and
    vLLM's model-parallel groups initialised; an engine started later in the same
    process would reuse them, and one whose worker is a forked child (vLLM 0.5 -
    0.6's CPU async engine) hangs in its first collective on the inherited gloo
    group, whose threads stayed in the parent.
    """
    llm_engine = getattr(engine, "llm_engine", None)
    owners = (engine, llm_engine, getattr(llm_engine, "engine_core", None), getattr(engine, "engine_core", None))
    for owner in owners:
        for name in ("shutdown", "shutdown_background_loop"):
            method = getattr(owner, name, None) if owner is not None else None
            if callable(method):
                method()
                return
    executor = getattr(llm_engine, "model_executor", None)
    if executor is None:
        return
    stop = getattr(executor, "shutdown", None)
    if callable(stop):
        stop()
    _release_distributed_state()


def _release_distributed_state() -> None:
    """vLLM's model-parallel groups and its world group / ``torch.distributed`` process group, destroyed."""
    try:
        parallel_state = importlib.import_module("vllm.distributed.parallel_state")
    except ImportError:  # pragma: no cover - every release with a V0 executor has it
        return
    for name in ("destroy_model_parallel", "destroy_distributed_environment"):
        destroy = getattr(parallel_state, name, None)
        if callable(destroy):
            destroy()
