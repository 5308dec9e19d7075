"""Request → native SamplingParams, with the server's GLM defaults.

The model's generation defaults (``--generation-config``, held in
``ServerState.generation_defaults``) fill the sampling fields a request
leaves unset, here and only here. ``max_tokens`` unset means "up to the
context limit" for chat (capped by the defaults' ``max_new_tokens``) and 16
for ``/v1/completions``, as in OpenAI's API and vLLM; the family's stop ids
(read from the tokenizer) are added unless the client asked for
``ignore_eos``; a prompt that does not fit is a 400, as in ``vllm serve``.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

from .. import _sampling
from ._errors import APIError
from ._state import ServerState
from .protocol import ChatCompletionRequest, CompletionRequest, request_sampling_fields

__all__ = ["COMPLETION_MAX_TOKENS", "build_sampling_async", "check_in_vocab", "check_prompt_length"]

COMPLETION_MAX_TOKENS = 16


def check_in_vocab(state: ServerState, ids: Any, param: str) -> None:
    """400 for a token id the model's vocabulary does not have."""
    size = state.engine.vocab_size
    for i, tid in enumerate(ids):
        if tid >= size:
            raise APIError(400, f"token id {tid} is out of vocabulary (this model has {size} tokens)", param=f"{param}[{i}]", code="invalid_value")


def _check_engine_limits(state: ServerState, req: ChatCompletionRequest | CompletionRequest, fields: dict[str, Any]) -> None:
    """What the engine would reject (or overflow on), refused up front with the field named."""
    limit = state.engine.max_logprobs
    wanted = fields.get("logprobs")
    param = "top_logprobs" if isinstance(req, ChatCompletionRequest) else "logprobs"
    if wanted is not None and limit != -1 and not 0 <= wanted <= limit:
        raise APIError(400, f"{param} must be in [0, {limit}] on this server (--max-logprobs), got {wanted}", param=param, code="invalid_value")
    check_in_vocab(state, fields.get("stop_token_ids") or [], "stop_token_ids")
    bias = fields.get("logit_bias") or {}
    for tid in bias:
        if tid >= state.engine.vocab_size:
            raise APIError(400, f"logit_bias token id {tid} is out of vocabulary", param=f"logit_bias.{tid}", code="invalid_value")


def check_prompt_length(state: ServerState, prompt_len: int, what: str = "messages") -> int:
    """Tokens left for the answer; 400 when the prompt alone fills the context."""
    limit = state.engine.max_model_len
    if prompt_len >= limit:
        raise APIError(
            400,
            f"This model's maximum context length is {limit} tokens. However, your {what} "
            f"resulted in {prompt_len} tokens. Please reduce the length of the {what}.",
            param=what,
            code="context_length_exceeded",
        )
    return limit - prompt_len


def _fields(state: ServerState, req: ChatCompletionRequest | CompletionRequest, room: int) -> dict[str, Any]:
    fields = request_sampling_fields(req)
    _check_engine_limits(state, req, fields)
    for key, value in state.generation_defaults.items():
        if key != "max_tokens":
            fields.setdefault(key, value)
    wanted = fields.get("max_tokens")
    if wanted is None:
        fields["max_tokens"] = _default_max_tokens(state, req, room)
    elif wanted > room:
        raise APIError(
            400,
            f"max_tokens is too large: {wanted}. This model's maximum context length is "
            f"{state.engine.max_model_len} tokens and your request has {state.engine.max_model_len - room} "
            f"input tokens ({wanted} > {state.engine.max_model_len} - {state.engine.max_model_len - room}).",
            param="max_tokens",
            code="invalid_value",
        )
    if not fields.get("ignore_eos"):  # the GLM end-of-turn ids are EOS ids, as in generation_config.json
        stops = list(fields.get("stop_token_ids") or [])
        fields["stop_token_ids"] = stops + [t for t in state.engine.stop_token_ids if t not in stops]
    return fields


def _default_max_tokens(state: ServerState, req: ChatCompletionRequest | CompletionRequest, room: int) -> int:
    if isinstance(req, CompletionRequest):
        return min(COMPLETION_MAX_TOKENS, room)
    return min(room, int(state.generation_defaults.get("max_tokens", room)))


def _request_fields(state: ServerState, req: ChatCompletionRequest | CompletionRequest, prompt_len: int, overrides: dict[str, Any]) -> dict[str, Any]:
    room = check_prompt_length(state, prompt_len, "messages" if isinstance(req, ChatCompletionRequest) else "prompt")
    fields = _fields(state, req, room)
    for key, value in overrides.items():
        fields.setdefault(key, value)
    return fields


async def build_sampling_async(
    state: ServerState, req: ChatCompletionRequest | CompletionRequest, prompt_len: int, **overrides: Any
) -> Any:
    """The native SamplingParams for a request whose prompt has ``prompt_len`` tokens. Where structured
    outputs are compiled into logits processors (vLLM < 0.6.3: seconds over a real vocabulary), that runs
    in a worker thread, so the event loop keeps serving."""
    fields = _request_fields(state, req, prompt_len, overrides)
    if not _sampling.needs_tokenizer(fields):
        return _sampling.sampling_params(**fields)
    return await asyncio.to_thread(functools.partial(_sampling.sampling_params, tokenizer=state.engine.tokenizer, **fields))
