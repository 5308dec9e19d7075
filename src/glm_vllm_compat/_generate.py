"""``generate()``: one call for offline ``LLM`` and async engines of every release.

The way to call a target is decided once per target class (a *plan*, built
from the confirmed capabilities and the class's live signature) and reused,
so a call costs a dict lookup plus the prompt checks.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any

from . import _live
from ._capabilities import flag_range
from ._errors import UnsupportedFeature
from ._live import Live, param_names
from ._prompts import Prompt, normalize_batch, split_legacy
from ._sampling import needs_tokenizer, sampling_params

__all__ = ["generate", "new_request_id"]


def new_request_id() -> str:
    """A unique request id (uuid4; never derived from the clock)."""
    return uuid.uuid4().hex


@dataclasses.dataclass(frozen=True)
class _Extras:
    """How the optional per-request arguments reach one target class."""

    accepts_lora: bool
    accepts_priority: bool
    priority_flag: str
    installed: str

    def kwargs(self, lora_request: Any, priority: int | None, native: Mapping[str, Any]) -> Mapping[str, Any]:
        if lora_request is None and priority is None:
            return native  # the common case: nothing to build
        out: dict[str, Any] = dict(native)
        if lora_request is not None:
            if not self.accepts_lora:
                raise UnsupportedFeature("lora_request", self.installed, ">=0.4.0 (this engine class lacks it)")
            out["lora_request"] = lora_request
        if priority is not None:
            if self.accepts_priority:
                out["priority"] = priority
            elif priority != 0:  # 0 is the default priority: leaving it out changes nothing
                raise UnsupportedFeature("priority", self.installed, flag_range(self.priority_flag))
        return out


def _extras(func: Any, lv: Live, priority_flag: str) -> _Extras:
    names = set(param_names(func))
    return _Extras("lora_request" in names, "priority" in names, priority_flag, lv.info.raw_version)


def _best_n(output: Any, n: int) -> Any:
    """A finished output with more than ``n`` sequences keeps the ``n`` best (highest cumulative logprob).

    ``best_of > n`` means "generate best_of, return the top n"; vLLM 0.6.3's V0
    engine (its parallel-sampling groups, vllm#10743) returned all best_of
    sequences. Decided by what came back, not by version: a release that
    returns n is left as it is.
    """
    outputs = getattr(output, "outputs", None)
    if not getattr(output, "finished", True) or not isinstance(outputs, list) or len(outputs) <= n:
        return output
    ranked = sorted(outputs, key=lambda o: getattr(o, "cumulative_logprob", None) or float("-inf"), reverse=True)
    output.outputs = ranked[:n]
    return output


def _wanted(sp: Any) -> int | None:
    """``n`` when ``best_of`` asks for more sequences than are returned, else ``None``."""
    n, best_of = getattr(sp, "n", 1) or 1, getattr(sp, "best_of", None)
    asked = getattr(sp, "_real_n", None)  # vLLM 0.6.x raises n to best_of and keeps the asked n here
    if isinstance(asked, int) and 0 < asked < n:
        return asked
    return int(n) if isinstance(best_of, int) and best_of > n else None


async def _best_n_stream(outputs: AsyncIterator[Any], n: int) -> AsyncIterator[Any]:
    async for output in outputs:
        yield _best_n(output, n)


@dataclasses.dataclass(frozen=True)
class _OfflinePlan:
    dicts: bool
    extras: _Extras

    def run(self, llm: Any, prompts: Any, sp: Any, request_id: str | None, lora: Any, priority: int | None, native: Mapping[str, Any]) -> Any:
        if request_id is not None:
            raise TypeError("request_id applies to async engines; an offline LLM assigns its own ids")
        batch = normalize_batch(prompts)
        kwargs = self.extras.kwargs(lora, priority, native)
        if self.dicts:
            return llm.generate(batch, sp, **kwargs)
        texts, ids = _legacy_batch(batch, self.extras.installed)
        if ids is not None:
            return llm.generate(texts, sp, prompt_token_ids=ids, **kwargs)
        return llm.generate(texts, sp, **kwargs)


def _legacy_batch(batch: list[Prompt], installed: str) -> tuple[list[Any] | None, list[Any] | None]:
    """Split a batch for 0.4.0–0.4.2, which take texts and/or token ids, not dicts.

    Their ``LLM.generate(prompts, sp, prompt_token_ids)`` pairs ``prompts[i]`` with
    ``prompt_token_ids[i]`` and tokenizes ``prompts[i]`` where ``prompt_token_ids[i]`` is
    None, so a batch of text and token-id prompts goes as two aligned lists (texts None
    where a prompt is given as ids, and the other way round), in one call and in order.
    """
    texts: list[str | None] = []
    ids: list[list[int] | None] = []
    for prompt in batch:
        text, tokens, rest = split_legacy(prompt)
        if rest:
            raise UnsupportedFeature("prompt dict keys " + ", ".join(sorted(rest)), installed, flag_range("prompt_dicts"))
        texts.append(text)
        ids.append(tokens)
    if all(tokens is None for tokens in ids):
        return texts, None
    if all(tokens is not None for tokens in ids):
        return None, ids  # token ids only: no texts (vLLM refuses texts when skip_tokenizer_init)
    return texts, ids


@dataclasses.dataclass(frozen=True)
class _AsyncPlan:
    legacy: bool
    extras: _Extras

    def run(self, engine: Any, prompts: Any, sp: Any, request_id: str | None, lora: Any, priority: int | None, native: Mapping[str, Any]) -> Any:
        batch = normalize_batch(prompts)
        if len(batch) != 1:
            raise TypeError(f"an async engine takes one prompt per request; got {len(batch)}")
        rid = request_id if request_id is not None else new_request_id()
        kwargs = self.extras.kwargs(lora, priority, native)
        if not self.legacy:
            return engine.generate(batch[0], sp, rid, **kwargs)
        text, ids, rest = split_legacy(batch[0])
        if rest:
            raise UnsupportedFeature("prompt dict keys " + ", ".join(sorted(rest)), self.extras.installed, flag_range("prompt_dicts"))
        return engine.generate(text, sp, rid, prompt_token_ids=ids, **kwargs)


_PLANS: dict[type, Any] = {}
_NO_KWARGS: Mapping[str, Any] = {}
_live.on_reset(_PLANS.clear)


def _make_plan(cls: type) -> _OfflinePlan | _AsyncPlan:
    lv = _live.live()
    method = getattr(cls, "generate", None)
    if method is None:
        raise TypeError(f"{cls.__name__} has no generate(); pass a vLLM LLM or an async engine")
    if lv.llm_cls is not None and issubclass(cls, lv.llm_cls):
        return _OfflinePlan(lv.caps.prompt_dicts, _extras(method, lv, "llm_generate_priority"))
    names = param_names(method)
    legacy = "prompt_token_ids" in names and bool(names) and names[0] == "prompt"
    return _AsyncPlan(legacy, _extras(method, lv, "async_generate_priority"))


def _plan_for(cls: type) -> _OfflinePlan | _AsyncPlan:
    plan = _PLANS.get(cls)
    if plan is None:
        plan = _PLANS[cls] = _make_plan(cls)
    return plan


def _stable_fields(sampling: Any, fields: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The stable sampling fields given (keywords or a dict), or ``None`` for a native object / nothing."""
    if type(sampling) is _live.live().sampling_cls:
        if fields:
            raise TypeError("pass either a SamplingParams object or sampling fields as keywords, not both")
        return None
    if fields:
        if sampling is not None:
            raise TypeError("pass either a SamplingParams object or sampling fields as keywords, not both")
        return fields
    return sampling if isinstance(sampling, Mapping) else None


def _resolve_sampling(sampling: Any, fields: Mapping[str, Any], offline: bool, tokenizer: Any = None) -> Any:
    stable = _stable_fields(sampling, fields)
    if stable is not None:
        return sampling_params(tokenizer=tokenizer, **stable)
    if sampling is None:
        return None if offline else sampling_params()
    return sampling


async def _after_tokenizer(plan: _AsyncPlan, engine: Any, prompts: Any, stable: Mapping[str, Any], run: Mapping[str, Any]) -> AsyncIterator[Any]:
    """An async engine's stream whose sampling needs the engine's tokenizer first (structured outputs < 0.6.3)."""
    from ._engine import get_tokenizer

    sp = sampling_params(tokenizer=await get_tokenizer(engine), **stable)
    async for output in _keep_n(plan.run(engine, prompts, sp, run["request_id"], run["lora"], run["priority"], run["native"]), sp):
        yield output


def _keep_n(result: Any, sp: Any) -> Any:
    n = _wanted(sp)
    return result if n is None else _best_n_stream(result, n)


def generate(
    target: Any,
    prompts: Any,
    sampling: Any = None,
    *,
    request_id: str | None = None,
    lora_request: Any = None,
    priority: int | None = None,
    native_kwargs: Mapping[str, Any] | None = None,
    **sampling_fields: Any,
) -> Any:
    """Generate with an offline ``LLM`` or an async engine on any vLLM release.

    ``target``: a ``vllm.LLM`` → returns ``list[RequestOutput]``; an async engine
    (V0 ``AsyncLLMEngine``, V1 ``AsyncLLM``) → returns an async iterator of
    ``RequestOutput``. ``prompts``: ``str``, ``list[str]``, ``list[int]``,
    ``list[list[int]]``, prompt dicts, :class:`TextPrompt`/:class:`TokensPrompt`
    (async engines take one prompt). ``sampling``: a native SamplingParams, a dict
    of stable fields, or ``None``; or give the stable fields as keywords.
    ``request_id`` defaults to a fresh uuid4 for async engines.
    ``native_kwargs`` are passed to the native ``generate`` as they are (for
    release-specific arguments such as ``use_tqdm`` or ``trace_headers``; no
    translation, the native call rejects what it does not know).
    """
    plan = _plan_for(type(target))
    offline = isinstance(plan, _OfflinePlan)
    stable = _stable_fields(sampling, sampling_fields)
    tokenizer = None
    if stable is not None and needs_tokenizer(stable):  # structured outputs as outlines processors (< 0.6.3)
        if isinstance(plan, _AsyncPlan):
            run = {"request_id": request_id, "lora": lora_request, "priority": priority, "native": native_kwargs or _NO_KWARGS}
            return _after_tokenizer(plan, target, prompts, stable, run)
        tokenizer = target.get_tokenizer()
    sp = _resolve_sampling(sampling, sampling_fields, offline, tokenizer)
    result = plan.run(target, prompts, sp, request_id, lora_request, priority, native_kwargs or _NO_KWARGS)
    n = _wanted(sp)
    if n is not None and offline:
        return [_best_n(output, n) for output in result]
    return result if offline else _keep_n(result, sp)
