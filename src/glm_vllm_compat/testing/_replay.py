"""An engine double that replays recorded raw GLM outputs piece by piece.

It has the call surface of a modern vLLM async engine (``generate(prompt,
sampling_params, request_id, *, lora_request=None, priority=0)`` as an async
generator of cumulative ``RequestOutput``-like objects, ``abort``,
``get_tokenizer``, ``model_config``), so the adapter drives it exactly like a
real engine. Used to test tool-call and reasoning behaviour deterministically,
without weights that can produce them.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import deque
from collections.abc import AsyncIterator, Sequence
from types import SimpleNamespace
from typing import Any

__all__ = ["ReplayEngine", "ReplayScript"]


@dataclasses.dataclass
class ReplayScript:
    """One scripted answer: the raw text split into pieces (one per token)."""

    pieces: Sequence[str]
    finish_reason: str = "stop"
    error: BaseException | None = None
    """Raised after the pieces (an engine failure mid-request)."""
    stop_reason: int | str | None = None
    """The engine's ``stop_reason`` on the last output (a matched stop string or token id)."""


@dataclasses.dataclass
class _Completion:
    index: int
    text: str = ""
    token_ids: list[int] = dataclasses.field(default_factory=list)
    logprobs: list[dict[int, Any]] | None = None
    cumulative_logprob: float | None = None
    finish_reason: str | None = None
    stop_reason: Any = None


@dataclasses.dataclass
class _Output:
    request_id: str
    prompt_token_ids: list[int]
    outputs: list[_Completion]
    finished: bool = False
    prompt: str | None = None


class ReplayEngine:
    """Replays :class:`ReplayScript`s in order (the last one repeats when the queue is empty)."""

    def __init__(
        self,
        tokenizer: Any,
        *,
        max_model_len: int = 4096,
        architectures: Sequence[str] = ("Glm4MoeForCausalLM",),
        piece_delay: float = 0.0,
        abort_cancels: bool = False,
    ) -> None:
        self.tokenizer = tokenizer
        self.abort_cancels = abort_cancels
        """An aborted request's stream raises ``CancelledError`` (V0 ``AsyncLLMEngine``) instead of ending (V1)."""
        self.model_config = SimpleNamespace(max_model_len=max_model_len, hf_config=SimpleNamespace(architectures=list(architectures)))
        self.piece_delay = piece_delay
        self.errored = False
        self.scripts: deque[ReplayScript] = deque()
        self.last_script = ReplayScript(["Hello", "!"])
        self.requests: list[dict[str, Any]] = []
        self.aborted: list[str] = []
        self._running: set[str] = set()

    def script(
        self, raw: str | Sequence[str], finish_reason: str = "stop", error: BaseException | None = None, stop_reason: int | str | None = None
    ) -> None:
        """Queue an answer; a str is replayed one character per token."""
        pieces = list(raw) if isinstance(raw, str) else list(raw)
        self.scripts.append(ReplayScript(pieces, finish_reason, error, stop_reason))

    def _next(self) -> ReplayScript:
        if self.scripts:
            self.last_script = self.scripts.popleft()
        return self.last_script

    async def generate(
        self, prompt: Any, sampling_params: Any, request_id: str, *, lora_request: Any = None, priority: int = 0
    ) -> AsyncIterator[_Output]:
        if request_id in self._running:
            raise ValueError(f"request id {request_id} is already running")
        script = self._next()
        ids = list(prompt["prompt_token_ids"]) if isinstance(prompt, dict) and "prompt_token_ids" in prompt else []
        self.requests.append({"prompt": prompt, "sampling_params": sampling_params, "request_id": request_id, "lora_request": lora_request})
        self._running.add(request_id)
        try:
            async for output in self._replay(script, ids, sampling_params, request_id):
                yield output
        finally:
            self._running.discard(request_id)

    async def _replay(self, script: ReplayScript, ids: list[int], sp: Any, request_id: str) -> AsyncIterator[_Output]:
        n = int(getattr(sp, "n", 1) or 1)
        want_logprobs = getattr(sp, "logprobs", None) is not None
        pieces = list(script.pieces)[: getattr(sp, "max_tokens", None) or None]
        completions = [_Completion(i, logprobs=[] if want_logprobs else None) for i in range(n)]
        for step, piece in enumerate(pieces):
            await asyncio.sleep(self.piece_delay)
            if request_id in self.aborted:  # checked when the next token would come, as the engines do
                if self.abort_cancels:
                    raise asyncio.CancelledError
                return
            last = step == len(pieces) - 1
            for c in completions:
                _append(c, piece, 1000 + step)
                if last and script.error is None:
                    c.finish_reason = "length" if len(pieces) < len(script.pieces) else script.finish_reason
                    c.stop_reason = script.stop_reason if c.finish_reason == "stop" else None
            yield _snapshot(request_id, ids, completions, last and script.error is None)
        if script.error is not None:
            raise script.error

    async def abort(self, request_id: str) -> None:
        self.aborted.append(request_id)
        self._running.discard(request_id)

    def get_num_unfinished_requests(self) -> int:
        return len(self._running)

    def get_tokenizer(self) -> Any:
        return self.tokenizer


def _append(c: _Completion, piece: str, token_id: int) -> None:
    c.text += piece
    c.token_ids.append(token_id)
    if c.logprobs is not None:
        c.logprobs.append({token_id: SimpleNamespace(logprob=-0.25, rank=1, decoded_token=piece)})


def _snapshot(request_id: str, ids: list[int], completions: list[_Completion], finished: bool) -> _Output:
    copies = [dataclasses.replace(c, token_ids=list(c.token_ids), logprobs=list(c.logprobs) if c.logprobs is not None else None) for c in completions]
    return _Output(request_id, ids, copies, finished)
