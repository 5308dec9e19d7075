"""Splitting GLM reasoning (``<think>...</think>``) from the answer, streaming-first.

GLM output framing, from the chat templates:

* GLM-4.5/4.6 render an assistant turn as ``<|assistant|>\\n<think>R</think>\\nC``
  and, with thinking on, the generation prompt stops at ``<|assistant|>``: the
  model writes ``\\n<think>R</think>\\nC``. With ``enable_thinking=False`` the
  prompt ends in ``\\n<think></think>`` and the model writes ``\\nC``.
* GLM-4.7's generation prompt already opens ``<think>`` (``</think>`` when
  thinking is off): the model writes ``R</think>C``.
* GLM-4 has no reasoning; its plain answers start with the framing ``\\n``.

So every parser here strips one leading ``"\\n"`` of the output and one
``"\\n"`` right after ``</think>`` (template framing, never part of the text);
vLLM's ``glm45`` parser leaves the latter in ``content`` and relies on the
tool parser / client to strip it. Everything else is kept verbatim.

Decisions where vLLM's parsers disagree with themselves:

* Output that opens ``<think>`` but never closes it (truncated by
  ``max_tokens``) is reasoning, in streaming and non-streaming alike (vLLM's
  glm45 non-streaming path returned it as content, its streaming path as
  reasoning). With ``prompt_opened_thinking`` everything before ``</think>``
  is reasoning, as vLLM's GLM-4.7 parser does.
* A redundant ``<think>`` at the very start when the prompt already opened
  it is dropped.
* ``tool_call_ends_reasoning`` (set when the request has tools): a
  ``<tool_call>`` written before ``</think>`` ends the reasoning and goes to
  the content, where the tool parser reads it (vLLM's glm47 parser does the
  same; users saw such calls swallowed into reasoning, vllm#42400).
* ``enable_thinking=False``: no reasoning at all; ``<think>`` text, if the
  model writes it anyway, stays in the content (vLLM does the same).
"""

from __future__ import annotations

from typing import ClassVar

from ._registry import LazyRegistry
from .tool_parsers._base import partial_tag_overlap

__all__ = [
    "Glm45ReasoningParser",
    "Glm47ReasoningParser",
    "NoReasoningParser",
    "REASONING_PARSERS",
    "ReasoningParser",
    "get_reasoning_parser",
    "prompt_opens_thinking",
    "reasoning_parser_names",
]

THINK_START = "<think>"
THINK_END = "</think>"
TOOL_CALL_START = "<tool_call>"

_START, _REASONING, _AFTER_END, _CONTENT = "start", "reasoning", "after_end", "content"


class ReasoningParser:
    """Base: strips the framing newline; subclasses with ``splits_thinking`` split ``<think>``."""

    name: ClassVar[str] = ""
    splits_thinking: ClassVar[bool] = True
    default_prompt_opened: ClassVar[bool] = False

    def __init__(
        self,
        *,
        prompt_opened_thinking: bool | None = None,
        enable_thinking: bool = True,
        tool_call_ends_reasoning: bool = False,
    ) -> None:
        self.thinking = enable_thinking and self.splits_thinking
        self.tool_call_ends_reasoning = tool_call_ends_reasoning
        opened = self.default_prompt_opened if prompt_opened_thinking is None else prompt_opened_thinking
        self.prompt_opened_thinking = opened and self.thinking
        self._state = _START
        self._buf = ""
        self._finished = False
        self.reasoning_ended = not self.thinking

    def feed(self, text: str) -> tuple[str, str]:
        """``(reasoning_delta, content_delta)`` for one delta of model output."""
        if self._finished:
            raise RuntimeError("feed() after finish()")
        self._buf += text
        reasoning: list[str] = []
        content: list[str] = []
        while self._step(reasoning, content):
            pass
        return "".join(reasoning), "".join(content)

    def finish(self) -> tuple[str, str]:
        """Flush text held back for a possible partial tag."""
        if self._finished:
            return "", ""
        self._finished = True
        buf, self._buf = self._buf, ""
        if self._state == _START:
            rest = buf[1:] if buf.startswith("\n") else buf
            if self.prompt_opened_thinking:
                return rest, ""
            return "", rest
        if self._state == _REASONING:
            return buf, ""
        return "", buf

    # -- state machine --------------------------------------------------------

    def _step(self, reasoning: list[str], content: list[str]) -> bool:
        if self._state == _START:
            return self._step_start(reasoning, content)
        if self._state == _REASONING:
            return self._step_reasoning(reasoning)
        if self._state == _AFTER_END:
            if not self._buf:
                return False
            if self._buf.startswith("\n"):
                self._buf = self._buf[1:]
            self._state = _CONTENT
            return True
        content.append(self._buf)
        self._buf = ""
        return False

    def _step_start(self, reasoning: list[str], content: list[str]) -> bool:
        buf = self._buf
        if not buf:
            return False
        rest = buf[1:] if buf.startswith("\n") else buf
        if not self.thinking:
            return self._enter(_CONTENT, rest)
        if rest.startswith(THINK_START):
            return self._enter(_REASONING, rest[len(THINK_START) :])
        if THINK_START.startswith(rest):  # "", "\n" or a partial "<think>": wait
            return False
        return self._enter(_REASONING if self.prompt_opened_thinking else _CONTENT, rest)

    def _enter(self, state: str, rest: str) -> bool:
        self._state = state
        self._buf = rest
        return True

    def _step_reasoning(self, reasoning: list[str]) -> bool:
        buf = self._buf
        end = buf.find(THINK_END)
        call = buf.find(TOOL_CALL_START) if self.tool_call_ends_reasoning else -1
        if call >= 0 and (end < 0 or call < end):  # a call before </think>: reasoning is over
            reasoning.append(buf[:call])
            self._buf = buf[call:]
            self._state = _CONTENT
            self.reasoning_ended = True
            return True
        if end >= 0:
            reasoning.append(buf[:end])
            self._buf = buf[end + len(THINK_END) :]
            self._state = _AFTER_END
            self.reasoning_ended = True
            return True
        keep = partial_tag_overlap(buf, THINK_END)
        if self.tool_call_ends_reasoning:
            keep = max(keep, partial_tag_overlap(buf, TOOL_CALL_START))
        reasoning.append(buf[: len(buf) - keep])
        self._buf = buf[len(buf) - keep :]
        return False


class Glm45ReasoningParser(ReasoningParser):
    """GLM-4.5/4.6: the model opens ``<think>`` itself unless told otherwise."""

    name = "glm45"


class Glm47ReasoningParser(ReasoningParser):
    """GLM-4.7: the generation prompt opens ``<think>`` (default ``prompt_opened_thinking``)."""

    name = "glm47"
    default_prompt_opened = True


class NoReasoningParser(ReasoningParser):
    """No reasoning (GLM-4): everything is content; only the framing newline is stripped."""

    name = "none"
    splits_thinking = False


REASONING_PARSERS: LazyRegistry[type[ReasoningParser]] = LazyRegistry(
    "reasoning parser",
    ReasoningParser,
    {
        "glm45": (__name__, "Glm45ReasoningParser"),
        "glm47": (__name__, "Glm47ReasoningParser"),
        "none": (__name__, "NoReasoningParser"),
    },
)


def reasoning_parser_names() -> list[str]:
    return sorted(REASONING_PARSERS.names())


def get_reasoning_parser(name: str) -> type[ReasoningParser]:
    """The reasoning parser class ``name``; ``KeyError`` listing the valid names."""
    return REASONING_PARSERS.get(name)


def prompt_opens_thinking(prompt: str) -> bool:
    """True if the rendered prompt's last assistant turn leaves ``<think>`` open.

    GLM-4.7 prompts end in ``<|assistant|><think>`` with thinking on (and in
    ``<|assistant|></think>`` with it off); GLM-4.5 prompts end at
    ``<|assistant|>`` (or ``\\n<think></think>`` with thinking off).
    """
    marker = "<|assistant|>"
    tail = prompt[prompt.rfind(marker) + len(marker) :] if marker in prompt else prompt
    return tail.rfind(THINK_START) > tail.rfind(THINK_END)
