"""Pydantic models of the OpenAI Responses API (``/v1/responses``), as this server accepts it.

Pure pydantic: importable without vLLM or torch. As OpenAI's API does,
unknown parameters are refused; what a GLM model cannot do (hosted tools,
images, background runs, ...) is refused with a message naming the field.

The Optional/Union spelling is for pydantic on Python 3.9.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Dict, List, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .protocol import InvalidRequest
from .protocol_anthropic import reject_lone_surrogates

__all__ = [
    "FunctionCallItem",
    "FunctionCallOutputItem",
    "FunctionTool",
    "MessageItem",
    "ReasoningItem",
    "ResponsesRequest",
    "TextPart",
]


class _Item(BaseModel):
    """Input items keep fields this server has no use for (``id``, ``status``, ``annotations``)."""

    model_config = ConfigDict(extra="allow")


class TextPart(_Item):
    type: Literal["input_text", "output_text", "text", "refusal"]
    text: str = ""
    refusal: Optional[str] = None

    def value(self) -> str:
        return self.refusal if self.type == "refusal" and self.refusal is not None else self.text


_TEXT_PARTS = ("input_text", "output_text", "text", "refusal")


def _check_parts(value: Any) -> Any:
    if isinstance(value, list):
        for i, part in enumerate(value):
            kind = part.get("type") if isinstance(part, Mapping) else type(part).__name__
            if kind not in _TEXT_PARTS:
                raise InvalidRequest(
                    f"content part type {kind!r} is not supported: GLM chat models take text only (input_text / output_text)",
                    f"[{i}].type",
                )
    return value


def _text(content: str | list[TextPart]) -> str:
    return content if isinstance(content, str) else "\n".join(part.value() for part in content)


class MessageItem(_Item):
    type: Literal["message"] = "message"
    role: Literal["user", "assistant", "system", "developer"]
    content: Union[str, List[TextPart]]

    @field_validator("content", mode="before")
    @classmethod
    def _text_parts(cls, value: Any) -> Any:
        return _check_parts(value)

    def text(self) -> str:
        return _text(self.content)


class FunctionCallItem(_Item):
    type: Literal["function_call"]
    call_id: str
    name: str
    arguments: str


class FunctionCallOutputItem(_Item):
    type: Literal["function_call_output"]
    call_id: str
    output: Union[str, List[TextPart]]

    @field_validator("output", mode="before")
    @classmethod
    def _text_parts(cls, value: Any) -> Any:
        return _check_parts(value)

    def text(self) -> str:
        return _text(self.output)


class _ReasoningText(_Item):
    type: Literal["reasoning_text", "summary_text"]
    text: str


class ReasoningItem(_Item):
    type: Literal["reasoning"]
    summary: List[_ReasoningText] = Field(default_factory=list)
    content: Optional[List[_ReasoningText]] = None

    def text(self) -> str:
        parts = self.content if self.content else self.summary
        return "\n".join(part.text for part in parts)


InputItem = Annotated[Union[MessageItem, FunctionCallItem, FunctionCallOutputItem, ReasoningItem], Field(discriminator="type")]
_ITEM_TYPES = ("message", "function_call", "function_call_output", "reasoning")


def _check_items(value: Any) -> Any:
    if not isinstance(value, list):
        return value
    items = []
    for i, item in enumerate(value):
        if isinstance(item, Mapping) and "type" not in item and "role" in item:
            item = {**item, "type": "message"}  # EasyInputMessage
        kind = item.get("type") if isinstance(item, Mapping) else type(item).__name__
        if kind not in _ITEM_TYPES:
            raise InvalidRequest(
                f"input item type {kind!r} is not supported here (supported: {', '.join(_ITEM_TYPES)})", f"input[{i}].type"
            )
        parts = item.get("content") if kind == "message" else item.get("output") if kind == "function_call_output" else None
        try:
            _check_parts(parts)
        except InvalidRequest as exc:
            raise InvalidRequest(exc.message, f"input[{i}].{'content' if kind == 'message' else 'output'}{exc.param}") from None
        items.append(item)
    return items


class FunctionTool(BaseModel):
    """A flat function tool: ``{"type": "function", "name", "description", "parameters", "strict"}``."""

    model_config = ConfigDict(extra="allow")

    type: Literal["function"]
    name: str
    description: Optional[str] = None
    parameters: Optional[Dict[str, Any]] = None
    strict: Optional[bool] = None

    @model_validator(mode="before")
    @classmethod
    def _functions_only(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and data.get("type") != "function":
            raise InvalidRequest(
                f"tool type {data.get('type')!r} is a hosted tool, which this server does not run; give function tools",
                "type",
            )
        if isinstance(data, Mapping) and "function" in data and "name" not in data:
            raise InvalidRequest(
                'the Responses API takes flat function tools: {"type": "function", "name": ..., "parameters": ...} '
                '(not the chat-completions {"function": {...}} shape)',
                "function",
            )
        return data


class _NamedFunction(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["function"]
    name: str


class _Reasoning(BaseModel):
    model_config = ConfigDict(extra="forbid")

    effort: Optional[Literal["none", "minimal", "low", "medium", "high", "xhigh"]] = None
    summary: Optional[Literal["auto", "concise", "detailed"]] = None
    generate_summary: Optional[Literal["auto", "concise", "detailed"]] = None


class _Format(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    type: Literal["text", "json_object", "json_schema"]
    name: Optional[str] = None
    schema_: Optional[Dict[str, Any]] = Field(default=None, alias="schema")
    description: Optional[str] = None
    strict: Optional[bool] = None

    @model_validator(mode="after")
    def _schema_given(self) -> _Format:
        if self.type == "json_schema" and self.schema_ is None:
            raise InvalidRequest('text.format type "json_schema" needs a schema', "schema")
        return self


class _Text(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: Optional[_Format] = None
    verbosity: Optional[Literal["low", "medium", "high"]] = None

    @field_validator("verbosity")
    @classmethod
    def _medium_only(cls, value: str | None) -> str | None:
        if value not in (None, "medium"):
            raise InvalidRequest(f"text.verbosity {value!r} is not supported: GLM models have no verbosity control", "verbosity")
        return value


_REFUSED = {
    "background": "background responses are not supported",
    "conversation": "conversations are not supported; pass previous_response_id or the whole input",
    "prompt": "prompt templates are not supported",
    "top_logprobs": "logprobs are not supported on /v1/responses; use /v1/chat/completions",
    "max_tool_calls": "max_tool_calls is not supported",
    "context_management": "context_management is not supported",
}
_INCLUDABLE = ("reasoning.encrypted_content",)


class ResponsesRequest(BaseModel):
    """``POST /v1/responses``."""

    model_config = ConfigDict(extra="forbid")

    model: Optional[str] = None
    input: Union[str, List[InputItem]]
    instructions: Optional[str] = None
    tools: Optional[List[FunctionTool]] = None
    tool_choice: Optional[Union[Literal["auto", "none", "required"], _NamedFunction]] = None
    parallel_tool_calls: Optional[bool] = None
    max_output_tokens: Optional[int] = None
    temperature: Optional[float] = None
    top_p: Optional[float] = None
    stream: Optional[bool] = False
    store: Optional[bool] = None
    previous_response_id: Optional[str] = None
    reasoning: Optional[_Reasoning] = None
    text: Optional[_Text] = None
    truncation: Optional[Literal["disabled"]] = None
    include: Optional[List[str]] = None
    metadata: Optional[Dict[str, str]] = None
    structured_outputs: Optional[Dict[str, Any]] = None
    """vLLM extension, as on /v1/chat/completions: constrain decoding (json/regex/choice/grammar)."""
    # Accepted, without effect on the answer: identifiers and caching/service hints.
    user: Optional[str] = None
    safety_identifier: Optional[str] = None
    prompt_cache_key: Optional[str] = None
    prompt_cache_retention: Optional[str] = None
    service_tier: Optional[str] = None
    stream_options: Optional[Dict[str, Any]] = None
    background: Optional[bool] = None
    conversation: Optional[Any] = None
    prompt: Optional[Any] = None
    top_logprobs: Optional[int] = None
    max_tool_calls: Optional[int] = None
    context_management: Optional[Any] = None

    @model_validator(mode="before")
    @classmethod
    def _precheck(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        reject_lone_surrogates(data)
        if "input" not in data:
            raise InvalidRequest("input is required", "input")
        if data.get("truncation") == "auto":
            raise InvalidRequest('truncation "auto" is not supported: the server never drops input items', "truncation")
        for field, message in _REFUSED.items():
            if data.get(field) not in (None, False):
                raise InvalidRequest(message, field)
        return {**data, "input": _check_items(data["input"])}

    @model_validator(mode="after")
    def _check(self) -> ResponsesRequest:
        if isinstance(self.input, list) and not self.input and self.previous_response_id is None:
            raise InvalidRequest("input must not be empty", "input")
        if self.max_output_tokens is not None and self.max_output_tokens < 1:
            raise InvalidRequest(f"max_output_tokens must be at least 1, got {self.max_output_tokens}", "max_output_tokens")
        for value in self.include or ():
            if value not in _INCLUDABLE:
                raise InvalidRequest(f"include {value!r} is not supported (supported: {', '.join(_INCLUDABLE)})", "include")
        names = [t.name for t in self.tools or []]
        if isinstance(self.tool_choice, _NamedFunction) and self.tool_choice.name not in names:
            raise InvalidRequest(f"tool_choice names the function {self.tool_choice.name!r}, which is not in tools", "tool_choice.name")
        if self.tool_choice == "required" and not names:
            raise InvalidRequest('tool_choice "required" needs tools', "tool_choice")
        return self

    def items(self) -> list[MessageItem | FunctionCallItem | FunctionCallOutputItem | ReasoningItem]:
        if isinstance(self.input, str):
            return [MessageItem(role="user", content=self.input)]
        return list(self.input)
