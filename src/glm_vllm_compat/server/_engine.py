"""The server's view of the model: one async engine reached only through the adapter."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
from collections.abc import AsyncGenerator, Sequence
from typing import Any

from .. import _engine, _generate
from ._errors import APIError, EngineRequestFailed
from ._lora import LoraAdapter
from .families import stop_token_ids

__all__ = ["ServerEngine", "glm_stop_token_ids"]

OFF_LOOP_CHARS = 16 * 1024
"""Texts (and id lists) longer than this are tokenized in a worker thread."""

logger = logging.getLogger("glm_vllm_compat.server")


def glm_stop_token_ids(tokenizer: Any) -> list[int]:
    """Ids of the GLM end-of-turn tokens (kept for callers; families carry their own stop tokens)."""
    return stop_token_ids(tokenizer)


@dataclasses.dataclass
class ServerEngine:
    """An async vLLM engine plus what the routes need to know about its model."""

    engine: Any
    tokenizer: Any
    model_path: str
    served_names: Sequence[str]
    max_model_len: int
    architectures: Sequence[str]
    chat_template: str | None
    stop_token_ids: Sequence[int] = ()
    """End-of-turn ids: the GLM family's stop tokens (set once the family is known)."""
    max_logprobs: int = 20
    """The engine's ``max_logprobs`` (-1: no limit)."""
    thinking_budget_ready: bool = False
    """The engine's reasoning config is set up, which vLLM needs for ``thinking_token_budget``."""
    loras: dict[str, LoraAdapter] = dataclasses.field(default_factory=dict)
    """LoRA adapters served by name (``--lora-modules``)."""
    _active: set[str] = dataclasses.field(default_factory=set, init=False, repr=False)
    _closing: str | None = dataclasses.field(default=None, init=False, repr=False)

    @classmethod
    async def create(
        cls, model: str, served_names: Sequence[str], chat_template: str | None, engine_args: dict[str, Any]
    ) -> ServerEngine:
        engine = await _in_daemon_thread(lambda: _engine.build_async_engine(model, **engine_args))
        tokenizer = await _engine.get_tokenizer(engine)
        config = await _engine.get_model_config(engine)
        template = chat_template or _tokenizer_template(tokenizer)
        return cls(
            engine=engine,
            tokenizer=tokenizer,
            model_path=model,
            served_names=list(served_names) or [model],
            max_model_len=int(config.max_model_len),
            architectures=list(getattr(config.hf_config, "architectures", None) or []),
            chat_template=template,
            max_logprobs=int(getattr(config, "max_logprobs", 20) or 20),
            thinking_budget_ready=_reasoning_config_enabled(engine),
        )

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` without adding special tokens (templates add them)."""
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    def decode(self, ids: Sequence[int]) -> str:
        return str(self.tokenizer.decode(list(ids)))

    @property
    def vocab_size(self) -> int:
        """Token ids the tokenizer knows (added tokens included): valid ids are below it."""
        return len(self.tokenizer)

    async def encode_async(self, text: str, *, add_special_tokens: bool = False) -> list[int]:
        """:meth:`encode` (or with special tokens), off the event loop for long texts."""

        def run() -> list[int]:
            return list(self.tokenizer.encode(text, add_special_tokens=add_special_tokens))

        return await asyncio.to_thread(run) if len(text) > OFF_LOOP_CHARS else run()

    async def decode_async(self, ids: Sequence[int]) -> str:
        """:meth:`decode`, off the event loop for long id lists."""
        return await asyncio.to_thread(self.decode, ids) if len(ids) > OFF_LOOP_CHARS // 4 else self.decode(ids)

    def special_tokens(self) -> dict[str, Any]:
        """bos/eos/... strings for templates that reference them."""
        names = ("bos_token", "eos_token", "unk_token", "pad_token")
        return {n: getattr(self.tokenizer, n, None) for n in names}

    def lora_for(self, name: str) -> Any:
        """vLLM's ``LoRARequest`` for a served adapter name, ``None`` for the base model."""
        adapter = self.loras.get(name)
        return adapter.request if adapter is not None else None

    async def stream(self, prompt_ids: list[int], sampling: Any, request_id: str, lora: Any = None) -> AsyncGenerator[Any, None]:
        """RequestOutputs for one request; the request is aborted if the consumer stops early.

        A request the engine ends with ``finish_reason`` ``error`` or ``abort``
        (which the server never asked for) raises :class:`EngineRequestFailed`
        instead of passing for an empty answer.
        """
        finished = False
        self._active.add(request_id)
        try:
            async for output in _generate.generate(
                self.engine, {"prompt_token_ids": prompt_ids}, sampling, request_id=request_id, lora_request=lora
            ):
                self._check_closing()
                finished = bool(output.finished)
                _check_failed(output, sampling)
                yield output
            self._check_closing()
        except asyncio.CancelledError:
            # V0's AsyncLLMEngine ends an aborted request's stream with CancelledError; when
            # abort_all() did that (and nobody cancelled this task), it is the shutdown error.
            task = asyncio.current_task()
            if self._closing is not None and request_id not in self._active and not (task and task.cancelling()):
                self._check_closing()
            raise
        finally:
            mine = request_id in self._active  # not already aborted by abort_all()
            self._active.discard(request_id)
            if not finished and mine:
                await self.abort(request_id)

    def _check_closing(self) -> None:
        if self._closing is not None:
            raise APIError(503, f"{self._closing}; the request was aborted", code="server_shutting_down")

    async def abort_all(self, reason: str) -> int:
        """Abort every request in flight (server shutdown); their streams raise a 503 error."""
        self._closing = reason
        active = list(self._active)
        self._active.clear()
        for request_id in active:
            await self.abort(request_id)
        return len(active)

    async def open_stream(self, prompt_ids: list[int], sampling: Any, request_id: str, lora: Any = None) -> AsyncGenerator[Any, None]:
        """:meth:`stream`, started: the engine accepted the request and produced its first output.

        Whatever the engine rejects (validation in vLLM, any line) raises here,
        before a response has begun, so it can still be a 4xx.
        """
        outputs = self.stream(prompt_ids, sampling, request_id, lora)
        try:
            first = await outputs.__anext__()
        except StopAsyncIteration:
            return _empty()
        except BaseException:
            await outputs.aclose()
            raise
        return _chain(first, outputs)

    async def abort(self, request_id: str) -> None:
        try:
            await _engine.abort(self.engine, request_id)
        except Exception:  # the engine may already have dropped it
            logger.debug("abort(%s) failed", request_id, exc_info=True)

    def unfinished_requests(self) -> int:
        return _engine.num_unfinished_requests(self.engine)

    def request_counts(self) -> dict[str, int]:
        """API-side unfinished and engine-side running/waiting request counts (-1: unknown)."""
        return _engine.request_counts(self.engine)

    @property
    def healthy(self) -> bool:
        return not bool(getattr(self.engine, "errored", False))

    def shutdown(self) -> None:
        _engine.shutdown(self.engine)


async def _in_daemon_thread(build: Any) -> Any:
    """``build()`` in a daemon thread: an interrupted start-up does not wait for it to finish."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()

    def run() -> None:
        try:
            result = build()
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting task
            loop.call_soon_threadsafe(_settle, future, None, exc)
        else:
            loop.call_soon_threadsafe(_settle, future, result, None)

    threading.Thread(target=run, name="glm-vllm-compat-engine-build", daemon=True).start()
    return await future


def _settle(future: asyncio.Future[Any], result: Any, exc: BaseException | None) -> None:
    if future.done():
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)


async def _empty() -> AsyncGenerator[Any, None]:
    return
    yield  # pragma: no cover


async def _chain(first: Any, rest: AsyncGenerator[Any, None]) -> AsyncGenerator[Any, None]:
    try:
        yield first
        async for output in rest:
            yield output
    finally:
        await rest.aclose()


def _check_failed(output: Any, sampling: Any) -> None:
    for completion in output.outputs:
        reason = completion.finish_reason
        if reason not in ("error", "abort"):
            continue
        constrained = getattr(sampling, "structured_outputs", None) or getattr(sampling, "guided_decoding", None)
        if constrained is not None and not completion.text:
            raise EngineRequestFailed(
                f"the engine could not run the structured-output constraint (finish_reason {reason!r}); "
                "check the schema, regex or grammar",
                client_fault=True,
                param="response_format",
            )
        raise EngineRequestFailed(f"the engine ended the request with finish_reason {reason!r}")


def _tokenizer_template(tokenizer: Any) -> str | None:
    template = getattr(tokenizer, "chat_template", None)
    if isinstance(template, dict):  # named templates: the default one
        template = template.get("default")
    return template if isinstance(template, str) else None


def _reasoning_config_enabled(engine: Any) -> bool:
    """vLLM refuses ``thinking_token_budget`` unless its reasoning config is enabled."""
    config = getattr(getattr(engine, "vllm_config", None), "reasoning_config", None)
    return bool(getattr(config, "enabled", False) or getattr(config, "is_thinking_enabled", False))
