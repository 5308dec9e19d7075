"""The step pipeline shared by streamed and non-streamed chat responses.

Steps for each text delta of one choice: reasoning split (``<think>``) ->
tool-call parsing of the content -> one OpenAI :class:`DeltaMessage`.
A non-streamed response is one :meth:`~ChatOutputPipeline.feed` with the whole
text plus :meth:`~ChatOutputPipeline.finish`, so the two can never disagree::

    pipeline = ChatOutputPipeline.for_request(
        request, tool_parser="glm45", reasoning_parser="glm45",
        prompt_opened_thinking=prompt_opens_thinking(prompt))
    # streaming
    for text_delta in engine_deltas:
        delta = pipeline.feed(text_delta)       # DeltaMessage | None
        ...
    last = pipeline.finish()                    # DeltaMessage | None
    reason = pipeline.finish_reason(engine_finish_reason)
    # non-streaming
    pipeline.feed(full_text); pipeline.finish()
    message = pipeline.final_message()          # ChatMessage

Tool-call deltas have OpenAI's shape: the first delta of a call is
``{index, id, type: "function", function: {name, arguments}}`` (``arguments``
is ``""`` unless fragments arrived in the same step), later ones
``{index, function: {arguments: fragment}}``; all fragments of one call in one
step are merged into one entry. The id is created once per call.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ._chat_history import thinking_enabled
from ._reasoning import ReasoningParser, get_reasoning_parser
from .protocol import (
    ChatCompletionRequest,
    ChatMessage,
    DeltaFunctionCall,
    DeltaMessage,
    DeltaToolCall,
    FunctionCall,
    ToolCall,
)
from .tool_parsers import ParseEvent, TextDelta, ToolCallArgs, ToolCallStart, ToolParser, get_tool_parser

__all__ = ["ChatOutputPipeline"]


@dataclass
class _CallState:
    id: str
    name: str
    arguments: list[str] = field(default_factory=list)


class ChatOutputPipeline:
    """Turns one choice's generated text into OpenAI deltas and the final message."""

    def __init__(
        self,
        tool_parser: ToolParser | None = None,
        reasoning_parser: ReasoningParser | None = None,
        *,
        include_reasoning: bool = True,
    ) -> None:
        self.tool_parser = tool_parser
        self.reasoning_parser = reasoning_parser
        self.include_reasoning = include_reasoning
        self._content: list[str] = []
        self._reasoning: list[str] = []
        self._calls: dict[int, _CallState] = {}
        self._finished = False

    @classmethod
    def for_request(
        cls,
        request: ChatCompletionRequest,
        *,
        tool_parser: str | None,
        reasoning_parser: str | None,
        prompt_opened_thinking: bool | None = None,
        id_factory: Callable[[], str] | None = None,
        enable_thinking: bool | None = None,
    ) -> ChatOutputPipeline:
        """The pipeline for one choice of ``request``.

        No tool parser when the request has no tools or ``tool_choice`` is
        ``"none"`` (text then passes through untouched, tags included).
        ``reasoning_parser=None`` means ``"none"`` (framing newline only);
        ``enable_thinking`` is the family's verdict (``None``: the request's
        ``chat_template_kwargs`` ``enable_thinking``/``thinking``, on by
        default). ``include_reasoning=false`` in the request: reasoning is
        still split off, but not sent. ``prompt_opened_thinking=None`` takes the parser's
        default (``True`` for ``glm47``); pass
        ``prompt_opens_thinking(rendered_prompt)`` to be exact.
        """
        tools: ToolParser | None = None
        if tool_parser and request.tools_enabled:
            tools = get_tool_parser(tool_parser)(
                request.tools,
                tool_choice=request.tool_choice,
                parallel_tool_calls=request.parallel_tool_calls,
                id_factory=id_factory,
            )
        reasoning = get_reasoning_parser(reasoning_parser or "none")(
            prompt_opened_thinking=prompt_opened_thinking,
            enable_thinking=thinking_enabled(request) if enable_thinking is None else enable_thinking,
            tool_call_ends_reasoning=tools is not None,
        )
        return cls(tools, reasoning, include_reasoning=request.include_reasoning is not False)

    # -- streaming ------------------------------------------------------------

    def feed(self, text: str) -> DeltaMessage | None:
        """One delta of generated text -> the delta to send (``None``: nothing yet)."""
        if self._finished:
            raise RuntimeError("feed() after finish()")
        if self.reasoning_parser is not None:
            reasoning, content = self.reasoning_parser.feed(text)
        else:
            reasoning, content = "", text
        return self._delta(reasoning if self.include_reasoning else "", self._parse(content))

    def finish(self) -> DeltaMessage | None:
        """End of generation: flush every parser; the last delta to send, if any."""
        if self._finished:
            return None
        self._finished = True
        reasoning, content = ("", "")
        if self.reasoning_parser is not None:
            reasoning, content = self.reasoning_parser.finish()
        events = self._parse(content)
        if self.tool_parser is not None:
            events += self.tool_parser.finish()
        return self._delta(reasoning if self.include_reasoning else "", events)

    def _parse(self, content: str) -> list[ParseEvent]:
        if self.tool_parser is not None:
            return self.tool_parser.feed(content) if content else []
        return [TextDelta(content)] if content else []

    def _delta(self, reasoning: str, events: list[ParseEvent]) -> DeltaMessage | None:
        texts: list[str] = []
        calls: dict[int, DeltaToolCall] = {}
        for event in events:
            if isinstance(event, TextDelta):
                texts.append(event.text)
            elif isinstance(event, ToolCallStart):
                self._calls[event.index] = _CallState(event.id, event.name)
                calls[event.index] = DeltaToolCall(
                    index=event.index,
                    id=event.id,
                    type="function",
                    function=DeltaFunctionCall(name=event.name, arguments=""),
                )
            elif isinstance(event, ToolCallArgs):
                self._calls[event.index].arguments.append(event.fragment)
                entry = calls.setdefault(
                    event.index,
                    DeltaToolCall(index=event.index, function=DeltaFunctionCall(arguments="")),
                )
                assert entry.function is not None
                entry.function.arguments = (entry.function.arguments or "") + event.fragment
        content = "".join(texts)
        if content:
            self._content.append(content)
        if reasoning:
            self._reasoning.append(reasoning)
        if not (content or reasoning or calls):
            return None
        return DeltaMessage(
            content=content or None,
            reasoning_content=reasoning or None,
            reasoning=reasoning or None,
            tool_calls=list(calls.values()) or None,
        )

    # -- results --------------------------------------------------------------

    @property
    def content(self) -> str:
        return "".join(self._content)

    @property
    def reasoning(self) -> str:
        return "".join(self._reasoning)

    @property
    def tool_calls(self) -> list[ToolCall]:
        return [
            ToolCall(id=c.id, function=FunctionCall(name=c.name, arguments="".join(c.arguments)))
            for _, c in sorted(self._calls.items())
        ]

    def final_message(self) -> ChatMessage:
        """The non-streamed assistant message (call after :meth:`finish`).

        ``content`` is ``None`` when there is no text but tool calls or
        reasoning, ``""`` for an empty reply; ``reasoning_content`` and
        ``reasoning`` carry the same text (old and new vLLM field names).
        """
        tool_calls = self.tool_calls
        reasoning = self.reasoning or None
        content: str | None = self.content
        if not content and (tool_calls or reasoning):
            content = None
        return ChatMessage(
            content=content,
            reasoning_content=reasoning,
            reasoning=reasoning,
            tool_calls=tool_calls or None,
        )

    def finish_reason(self, engine_reason: str | None) -> str:
        """OpenAI ``finish_reason`` from the engine's.

        ``tool_calls`` when a call was made, ``length`` when the engine hit
        the token limit with no call or inside an unfinished call, else
        ``stop`` (also for engine reasons such as ``abort``).
        """
        left_open = self.tool_parser is not None and self.tool_parser.left_open
        if engine_reason == "length" and (left_open or not self._calls):
            return "length"
        if self._calls:
            return "tool_calls"
        return "stop"
