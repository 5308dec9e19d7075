"""The server's view of the model: one async engine reached only through the adapter."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

from .. import _engine, _generate
from .families import stop_token_ids

__all__ = ["ServerEngine", "glm_stop_token_ids"]

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
    thinking_budget_ready: bool = False
    """The engine's reasoning config is set up, which vLLM needs for ``thinking_token_budget``."""

    @classmethod
    async def create(
        cls, model: str, served_names: Sequence[str], chat_template: str | None, engine_args: dict[str, Any]
    ) -> ServerEngine:
        engine = await asyncio.to_thread(_engine.build_async_engine, model, **engine_args)
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
            thinking_budget_ready=_reasoning_config_enabled(engine),
        )

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` without adding special tokens (templates add them)."""
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    def decode(self, ids: Sequence[int]) -> str:
        return str(self.tokenizer.decode(list(ids)))

    def special_tokens(self) -> dict[str, Any]:
        """bos/eos/... strings for templates that reference them."""
        names = ("bos_token", "eos_token", "unk_token", "pad_token")
        return {n: getattr(self.tokenizer, n, None) for n in names}

    async def stream(self, prompt_ids: list[int], sampling: Any, request_id: str) -> AsyncIterator[Any]:
        """RequestOutputs for one request; the request is aborted if the consumer stops early."""
        finished = False
        try:
            async for output in _generate.generate(
                self.engine, {"prompt_token_ids": prompt_ids}, sampling, request_id=request_id
            ):
                finished = bool(output.finished)
                yield output
        finally:
            if not finished:
                await self.abort(request_id)

    async def abort(self, request_id: str) -> None:
        try:
            await _engine.abort(self.engine, request_id)
        except Exception:  # the engine may already have dropped it
            logger.debug("abort(%s) failed", request_id, exc_info=True)

    def unfinished_requests(self) -> int:
        return _engine.num_unfinished_requests(self.engine)

    @property
    def healthy(self) -> bool:
        return not bool(getattr(self.engine, "errored", False))

    def shutdown(self) -> None:
        _engine.shutdown(self.engine)


def _tokenizer_template(tokenizer: Any) -> str | None:
    template = getattr(tokenizer, "chat_template", None)
    if isinstance(template, dict):  # named templates: the default one
        template = template.get("default")
    return template if isinstance(template, str) else None


def _reasoning_config_enabled(engine: Any) -> bool:
    """vLLM refuses ``thinking_token_budget`` unless its reasoning config is enabled."""
    config = getattr(getattr(engine, "vllm_config", None), "reasoning_config", None)
    return bool(getattr(config, "enabled", False))
