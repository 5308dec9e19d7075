"""What the installed vLLM can do, one named flag per API change.

This is the only module that compares vLLM version numbers. Everything else
asks a flag (``capabilities().structured_outputs``) or ``supports("...")``.
Flags are first computed from the version number; :mod:`._live` confirms the
ones that can be observed once vLLM is imported, and the live answer wins.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, NamedTuple

from packaging.version import InvalidVersion, Version

from . import _history
from ._errors import DevBuildWarning, UnknownParameter, UnsupportedVllmVersion

__all__ = [
    "Capabilities",
    "Flag",
    "FLAGS",
    "OLDEST_SUPPORTED",
    "capabilities_for",
    "engine_generation",
    "flag_range",
    "span_text",
    "parse_vllm_version",
    "version_in_range",
]

OLDEST_SUPPORTED = Version("0.4.0")


class Flag(NamedTuple):
    """One API change: true from ``since`` (inclusive) until ``until`` (exclusive)."""

    since: str | None
    until: str | None
    doc: str


# One entry per vLLM change the adapter relies on. ``since`` is the first vLLM
# release where the flag holds, ``until`` the first release where it no longer
# does. Each was read from the release sources (see matrix/) and is checked
# against the recorded surfaces in tests/test_capabilities.py.
FLAGS: dict[str, Flag] = {
    # AsyncLLMEngine.generate(prompt: str, ..., prompt_token_ids=...): 0.4.0 .. 0.4.2
    "async_generate_legacy_kwargs": Flag(None, "0.4.3", "AsyncLLMEngine.generate(prompt=..., prompt_token_ids=...)"),
    # first parameter of AsyncLLMEngine.generate named `inputs`: 0.4.3 .. 0.6.2
    "async_generate_inputs_keyword": Flag("0.4.3", "0.6.3", "AsyncLLMEngine.generate(inputs=...)"),
    # first parameter named `prompt` again (PromptType): first in 0.6.3
    "async_generate_prompt_keyword": Flag("0.6.3", None, "AsyncLLMEngine.generate(prompt=...) taking PromptType"),
    # TextPrompt / TokensPrompt dicts accepted as prompts: first in 0.4.3
    "prompt_dicts": Flag("0.4.3", None, "TextPrompt/TokensPrompt prompt dicts"),
    # a bare list[int] is a valid prompt: first in 0.16.0
    "bare_token_list_prompt": Flag("0.16.0", None, "bare list[int] prompts"),
    # LLM.generate(prompt_token_ids=...): removed in 0.10.2
    "llm_prompt_token_ids_kwarg": Flag(None, "0.10.2", "LLM.generate(prompt_token_ids=...)"),
    # `priority` on AsyncLLMEngine.generate: first in 0.6.3
    "async_generate_priority": Flag("0.6.3", None, "priority= on async engine generate()"),
    # `priority` on LLM.generate: first in 0.6.2 (a release before the async engine got it)
    "llm_generate_priority": Flag("0.6.2", None, "priority= on LLM.generate()"),
    # everything after request_id is keyword-only: first in 0.11.1
    "async_generate_keyword_only_tail": Flag("0.11.1", None, "keyword-only arguments after request_id"),
    # LLM(...) arguments after `model` keyword-only: first in 0.9.1
    "llm_keyword_only_init": Flag("0.9.1", None, "keyword-only LLM() arguments"),
    # LLM.chat(): first in 0.5.5
    "llm_chat": Flag("0.5.5", None, "LLM.chat()"),
    # LLM.beam_search(): first in 0.6.2 (BeamSearchParams from 0.6.3)
    "llm_beam_search": Flag("0.6.2", None, "LLM.beam_search()"),
    # SamplingParams.use_beam_search: removed in 0.6.3
    "sampling_use_beam_search": Flag(None, "0.6.3", "SamplingParams(use_beam_search=...)"),
    # SamplingParams.best_of: removed in 0.12.0
    "sampling_best_of": Flag(None, "0.12.0", "SamplingParams(best_of=...)"),
    # SamplingParams.guided_decoding (GuidedDecodingParams): 0.6.3 .. 0.11.2
    "guided_decoding": Flag("0.6.3", "0.12.0", "SamplingParams(guided_decoding=GuidedDecodingParams(...))"),
    # SamplingParams.structured_outputs (StructuredOutputsParams): first in 0.11.0
    "structured_outputs": Flag("0.11.0", None, "SamplingParams(structured_outputs=StructuredOutputsParams(...))"),
    # SamplingParams is a msgspec.Struct: first in 0.5.5
    "sampling_msgspec": Flag("0.5.5", None, "SamplingParams as msgspec.Struct"),
    # SamplingParams.output_kind (DELTA streaming): first in 0.6.1.post1
    "sampling_output_kind": Flag("0.6.1.post1", None, "SamplingParams(output_kind=...)"),
    # top_k=0 means "disabled" (default changed from -1 to 0): first in 0.9.0
    "top_k_zero_disables": Flag("0.9.0", None, "top_k=0 disables top-k"),
    # the V1 engine (vllm.v1.engine.async_llm.AsyncLLM) exists: first in 0.6.4
    "v1_engine_available": Flag("0.6.4", None, "the V1 engine"),
    # V1 is the default engine (VLLM_USE_V1 defaults to 1): first in 0.8.0
    "v1_default": Flag("0.8.0", None, "V1 engine by default"),
    # the V0 engine is gone (AsyncLLMEngine is an alias of AsyncLLM): first in 0.11.0
    "v0_removed": Flag("0.11.0", None, "V0 engine removed"),
    # the VLLM_USE_V1 environment variable is read: 0.6.4 .. 0.11.0
    "vllm_use_v1_env": Flag("0.6.4", "0.11.1", "VLLM_USE_V1 environment variable"),
    # V1 AsyncLLM.get_tokenizer() is synchronous: first in 0.15.0
    "sync_async_engine_get_tokenizer": Flag("0.15.0", None, "synchronous AsyncLLM.get_tokenizer()"),
    # abort() takes an iterable of request ids: first in 0.14.0
    "abort_many": Flag("0.14.0", None, "abort() of several request ids"),
    # EngineArgs.distributed_executor_backend: first in 0.4.3
    "distributed_executor_backend": Flag("0.4.3", None, "distributed_executor_backend="),
    # EngineArgs.worker_use_ray: removed in 0.7.0
    "worker_use_ray": Flag(None, "0.7.0", "worker_use_ray="),
    # AsyncEngineArgs.enable_log_requests (disable_log_requests removed): first in 0.10.1
    "enable_log_requests": Flag("0.10.1", None, "enable_log_requests="),
    # EngineArgs.runner / convert replacing task: first in 0.10.1
    "runner_convert": Flag("0.10.1", None, "runner=/convert= engine arguments"),
    # EngineArgs.task: 0.6.4 .. 0.12.0 (replaced by runner/convert)
    "engine_task": Flag("0.6.4", "0.13.0", "task= engine argument"),
    # registered `glm45` tool and reasoning parsers in vLLM: first in 0.10.1
    "vllm_glm45_parsers": Flag("0.10.1", None, "vLLM's glm45 tool/reasoning parsers"),
    # registered `glm47` tool parser in vLLM: first in 0.14.0
    "vllm_glm47_tool_parser": Flag("0.14.0", None, "vLLM's glm47 tool parser"),
    # SamplingParams.thinking_token_budget (bounds reasoning tokens): first in 0.19.0
    "thinking_token_budget": Flag("0.19.0", None, "SamplingParams(thinking_token_budget=...)"),
}


class _FlagNames:
    """The names of :data:`FLAGS` as typed attributes, so that ``caps.<misspelled>`` fails mypy.

    Annotations only (no values): at run time ``Capabilities.__getattr__`` answers from
    ``Capabilities.flags``; ``tests/test_capabilities_typing.py`` keeps this list equal to ``FLAGS``.
    """

    async_generate_legacy_kwargs: bool
    async_generate_inputs_keyword: bool
    async_generate_prompt_keyword: bool
    prompt_dicts: bool
    bare_token_list_prompt: bool
    llm_prompt_token_ids_kwarg: bool
    async_generate_priority: bool
    llm_generate_priority: bool
    async_generate_keyword_only_tail: bool
    llm_keyword_only_init: bool
    llm_chat: bool
    llm_beam_search: bool
    sampling_use_beam_search: bool
    sampling_best_of: bool
    guided_decoding: bool
    structured_outputs: bool
    sampling_msgspec: bool
    sampling_output_kind: bool
    top_k_zero_disables: bool
    v1_engine_available: bool
    v1_default: bool
    v0_removed: bool
    vllm_use_v1_env: bool
    sync_async_engine_get_tokenizer: bool
    abort_many: bool
    distributed_executor_backend: bool
    worker_use_ray: bool
    enable_log_requests: bool
    runner_convert: bool
    engine_task: bool
    vllm_glm45_parsers: bool
    vllm_glm47_tool_parser: bool
    thinking_token_budget: bool


@dataclasses.dataclass(frozen=True)
class Capabilities(_FlagNames):
    """The flags of one vLLM release; see :data:`FLAGS` for their meaning."""

    version: Version
    flags: Mapping[str, bool]

    if not TYPE_CHECKING:  # mypy sees only the typed names of _FlagNames

        def __getattr__(self, name: str) -> bool:
            try:
                return self.flags[name]
            except KeyError:
                raise AttributeError(name) from None

    def __getitem__(self, name: str) -> bool:
        try:
            return self.flags[name]
        except KeyError:
            raise UnknownParameter(name, "capabilities", _close(name)) from None

    def replace(self, **changes: bool) -> Capabilities:
        return Capabilities(self.version, {**self.flags, **changes})


def _close(name: str) -> list[str]:
    import difflib

    return difflib.get_close_matches(name, list(FLAGS), n=3)


def version_in_range(version: Version, since: str | None, until: str | None) -> bool:
    """``since <= version < until`` (either bound may be open)."""
    if since is not None and version < Version(since):
        return False
    return until is None or version < Version(until)


def capabilities_for(version: Version | str) -> Capabilities:
    """The flags implied by a version number alone (no import of vLLM)."""
    v = version if isinstance(version, Version) else parse_vllm_version(version)[0]
    return _capabilities_for(v)


@functools.lru_cache(maxsize=None)
def _capabilities_for(version: Version) -> Capabilities:
    flags = {name: version_in_range(version, f.since, f.until) for name, f in FLAGS.items()}
    return Capabilities(version, flags)


def flag_range(name: str) -> str:
    """Human-readable range of releases where a flag holds, e.g. ``>=0.11.0``."""
    flag = FLAGS[name]
    return span_text(flag.since, flag.until)


def span_text(since: str | None, until: str | None) -> str:
    first = since or _history.OLDEST
    if until is None:
        return f">={first}"
    last = _last_before(until)
    return f"{first} .. {last}" if last != first else first


def _last_before(until: str) -> str:
    bound = Version(until)
    older = [v for v in _history.KNOWN_VERSIONS if Version(v) < bound]
    return older[-1] if older else until


_DEV_RE = re.compile(r"^(dev|main|unknown)?$", re.IGNORECASE)


def parse_vllm_version(raw: str, *, warn: bool = False) -> tuple[Version, bool]:
    """Parse a vLLM version string into (effective version, is_dev).

    Local suffixes (``+cu118``, ``+cpu``) are dropped; pre-releases count as
    the release they preview. Source and dev builds (``0.1.dev5+gabc``,
    ``dev``, ``0.11.1.dev12+g…``) are treated as the newest known release,
    with one :class:`DevBuildWarning` when ``warn`` is true.
    """
    try:
        parsed = Version(raw) if not _DEV_RE.match(raw.strip()) else None
    except InvalidVersion:
        parsed = None
    if parsed is not None and not parsed.is_devrelease:
        effective = Version(parsed.base_version)
        if parsed.is_postrelease:
            effective = Version(f"{parsed.base_version}.post{parsed.post}")
        return effective, False
    if warn:
        _warn_dev(raw)
    return Version(_history.NEWEST), True


@functools.lru_cache(maxsize=None)
def _warn_dev(raw: str) -> None:
    warnings.warn(
        f"vLLM reports the development version {raw!r}; glm-vllm-compat treats it as "
        f"the newest known release {_history.NEWEST} and confirms each capability "
        "against the live code.",
        DevBuildWarning,
        stacklevel=4,
    )


def check_supported(version: Version, raw: str) -> None:
    """Raise :class:`UnsupportedVllmVersion` for releases older than 0.4.0."""
    if version < OLDEST_SUPPORTED:
        raise UnsupportedVllmVersion(
            f"vLLM {raw} is older than {OLDEST_SUPPORTED}, the oldest release "
            f"glm-vllm-compat supports ({OLDEST_SUPPORTED} .. {_history.NEWEST})."
        )


def engine_generation(caps: Capabilities, environ: Mapping[str, str] | None = None) -> str:
    """``"v0"`` or ``"v1"``: the engine ``AsyncLLMEngine.from_engine_args`` builds."""
    env = os.environ if environ is None else environ
    if caps.v0_removed:
        return "v1"
    choice = env.get("VLLM_USE_V1", "").strip()
    if caps.v1_default:
        return "v0" if choice == "0" else "v1"
    if caps.v1_engine_available and choice == "1":
        return "v1"
    return "v0"
