"""Pydantic models of the Anthropic Messages API (``/v1/messages``), as this server accepts it.

Pure pydantic: importable without vLLM or torch. Requests are validated the
way Anthropic's API does (unknown top-level fields are refused, ``max_tokens``
is required); what a GLM model cannot do is refused with a message naming the
field. Errors have Anthropic's shape, ``{"type": "error", "error": {"type",
"message"}}`` (:func:`error_body`).

The Optional/Union spelling is for pydantic on Python 3.9.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Dict, List, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .protocol import InvalidRequest

__all__ = [
    "CountTokensRequest",
    "MessagesRequest",
    "TextBlock",
    "ThinkingBlock",
    "ThinkingConfig",
    "ToolChoice",
    "ToolDefinition",
    "ToolResultBlock",
    "ToolUseBlock",
    "error_body",
    "error_type",
    "reject_lone_surrogates",
]

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",
    529: "overloaded_error",
}


def error_type(status: int) -> str:
    """Anthropic's error ``type`` for an HTTP status (``api_error`` for other 5xx)."""
    return _ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")


def error_body(status: int, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": error_type(status), "message": message}}


_SURROGATE = re.compile("[\ud800-\udfff]")


def reject_lone_surrogates(value: Any, where: str = "") -> None:
    """JSON escapes such as ``"\\ud800"`` decode to text no tokenizer can encode: a 400 naming the field."""
    if isinstance(value, str):
        if _SURROGATE.search(value):
            raise InvalidRequest(f"{where or 'the request'}: the text contains a lone UTF-16 surrogate (not valid Unicode)", where or None)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            reject_lone_surrogates(item, f"{where}.{key}" if where else str(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            reject_lone_surrogates(item, f"{where}[{i}]")


class _Block(BaseModel):
    """Content blocks keep fields this server has no use for (``cache_control``, ``citations``)."""

    model_config = ConfigDict(extra="allow")


class TextBlock(_Block):
    type: Literal["text"]
    text: str


class ToolUseBlock(_Block):
    type: Literal["tool_use"]
    id: str
    name: str
    input: Dict[str, Any]


class ToolResultBlock(_Block):
    type: Literal["tool_result"]
    tool_use_id: str
    content: Optional[Union[str, List[TextBlock]]] = None
    is_error: Optional[bool] = None

    @field_validator("content", mode="before")
    @classmethod
    def _text_only(cls, value: Any) -> Any:
        return _check_block_types(value, ("text",), "a tool_result's content")

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "\n".join(block.text for block in self.content)


class ThinkingBlock(_Block):
    type: Literal["thinking"]
    thinking: str
    signature: Optional[str] = None


Block = Annotated[Union[TextBlock, ToolUseBlock, ToolResultBlock, ThinkingBlock], Field(discriminator="type")]

_ROLE_BLOCKS = {"user": ("text", "tool_result"), "assistant": ("text", "tool_use", "thinking")}


def _check_block_types(value: Any, allowed: tuple[str, ...], where: str, prefix: str = "") -> Any:
    if not isinstance(value, list):
        return value
    for i, block in enumerate(value):
        kind = block.get("type") if isinstance(block, Mapping) else type(block).__name__
        if kind not in allowed:
            raise InvalidRequest(
                f"content block type {kind!r} is not supported in {where}: GLM chat models take text only "
                f"(supported here: {', '.join(allowed)})",
                f"{prefix}[{i}].type",
            )
    return value


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["user", "assistant"]
    content: Union[str, List[Block]]

    @model_validator(mode="before")
    @classmethod
    def _blocks_for_role(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and data.get("role") in _ROLE_BLOCKS:
            _check_block_types(data.get("content"), _ROLE_BLOCKS[data["role"]], f"a {data['role']} message", "content")
        return data

    def blocks(self) -> list[TextBlock | ToolUseBlock | ToolResultBlock | ThinkingBlock]:
        if isinstance(self.content, str):
            return [TextBlock(type="text", text=self.content)]
        return list(self.content)


_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


class ToolDefinition(BaseModel):
    """A client tool; Anthropic's server tools (``web_search_...``, ``bash_...``) are refused."""

    model_config = ConfigDict(extra="allow")

    name: str
    description: Optional[str] = None
    input_schema: Dict[str, Any]
    type: Optional[Literal["custom"]] = None

    @model_validator(mode="before")
    @classmethod
    def _client_tools_only(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and data.get("type") not in (None, "custom"):
            raise InvalidRequest(
                f"tool type {data.get('type')!r} is an Anthropic server tool, which this server does not run; "
                "give client tools ({name, description, input_schema})",
                "type",
            )
        return data

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        if not _TOOL_NAME.match(value):
            raise InvalidRequest(f"invalid tool name {value!r}: 1 to 64 of a-z, A-Z, 0-9, '_' and '-'")
        return value


class ToolChoice(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["auto", "any", "tool", "none"]
    name: Optional[str] = None
    disable_parallel_tool_use: Optional[bool] = None

    @model_validator(mode="after")
    def _name_for_tool(self) -> ToolChoice:
        if (self.type == "tool") != (self.name is not None):
            raise InvalidRequest('tool_choice: "name" is required with type "tool" and only allowed with it', "name")
        return self


class ThinkingConfig(BaseModel):
    """``enabled`` (with ``budget_tokens``), ``adaptive`` or ``disabled``."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["enabled", "adaptive", "disabled"]
    budget_tokens: Optional[int] = None
    display: Optional[Literal["summarized", "omitted"]] = None

    @model_validator(mode="before")
    @classmethod
    def _known_type(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and data.get("type") == "between_tools":
            raise InvalidRequest(
                'thinking type "between_tools" is not supported: GLM models have no progress-update mode; '
                'use "enabled", "adaptive" or "disabled"',
                "type",
            )
        return data

    @model_validator(mode="after")
    def _budget(self) -> ThinkingConfig:
        if self.type == "enabled":
            if self.budget_tokens is None:
                raise InvalidRequest('thinking.budget_tokens is required with type "enabled"', "budget_tokens")
            if self.budget_tokens < 1024:
                raise InvalidRequest(f"thinking.budget_tokens must be >= 1024, got {self.budget_tokens}", "budget_tokens")
        elif self.budget_tokens is not None:
            raise InvalidRequest('thinking.budget_tokens is only allowed with type "enabled"', "budget_tokens")
        return self


class _OutputFormat(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["json_schema"]
    schema_: Dict[str, Any] = Field(alias="schema")


class OutputConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: Optional[_OutputFormat] = None
    effort: Optional[Literal["low", "medium", "high", "xhigh", "max"]] = None
    """Mapped to the GLM family's ``reasoning_effort`` (a 400 for families without one)."""


class CountTokensRequest(BaseModel):
    """``POST /v1/messages/count_tokens``; also the base of :class:`MessagesRequest`."""

    model_config = ConfigDict(extra="forbid")

    model: str
    messages: List[Message]
    system: Optional[Union[str, List[TextBlock]]] = None
    tools: Optional[List[ToolDefinition]] = None
    tool_choice: Optional[ToolChoice] = None
    thinking: Optional[ThinkingConfig] = None
    output_config: Optional[OutputConfig] = None
    # Accepted and without effect here: prompt caching is automatic in vLLM, the rest is account metadata.
    cache_control: Optional[Dict[str, Any]] = None

    @model_validator(mode="before")
    @classmethod
    def _valid_unicode(cls, data: Any) -> Any:
        reject_lone_surrogates(data)
        return data

    @field_validator("system", mode="before")
    @classmethod
    def _system_text(cls, value: Any) -> Any:
        return _check_block_types(value, ("text",), "system")

    @model_validator(mode="after")
    def _check(self) -> CountTokensRequest:
        if not self.messages:
            raise InvalidRequest("messages: at least one message is required", "messages")
        if self.messages[0].role != "user":
            raise InvalidRequest("messages: the first message must use the user role", "messages")
        if self.messages[-1].role != "user":
            raise InvalidRequest(
                "messages: the last message must use the user role (continuing a prefilled assistant turn is not supported)",
                f"messages[{len(self.messages) - 1}].role",
            )
        names = [t.name for t in self.tools or []]
        for i, name in enumerate(names):
            if name in names[:i]:
                raise InvalidRequest(f"tools: duplicate tool name {name!r}", f"tools[{i}].name")
        choice = self.tool_choice
        if choice is not None and choice.type in ("any", "tool") and not names:
            raise InvalidRequest(f'tool_choice type "{choice.type}" needs tools', "tool_choice")
        if choice is not None and choice.name is not None and choice.name not in names:
            raise InvalidRequest(f"tool_choice names the tool {choice.name!r}, which is not in tools", "tool_choice.name")
        self._check_tool_results()
        return self

    def _check_tool_results(self) -> None:
        seen: set[str] = set()
        for i, message in enumerate(self.messages):
            for block in message.blocks():
                if isinstance(block, ToolUseBlock):
                    seen.add(block.id)
                elif isinstance(block, ToolResultBlock) and block.tool_use_id not in seen:
                    raise InvalidRequest(
                        f"messages[{i}]: tool_result for {block.tool_use_id!r} has no matching tool_use block before it",
                        f"messages[{i}].content",
                    )

    def system_text(self) -> str | None:
        if self.system is None or isinstance(self.system, str):
            return self.system
        return "\n".join(block.text for block in self.system)


class _Metadata(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: Optional[str] = None


class MessagesRequest(CountTokensRequest):
    """``POST /v1/messages``."""

    max_tokens: int
    stop_sequences: Optional[List[str]] = None
    stream: Optional[bool] = False
    temperature: Optional[float] = None
    top_p: Optional[float] = None
    top_k: Optional[int] = None
    metadata: Optional[_Metadata] = None
    service_tier: Optional[Literal["auto", "standard_only"]] = None
    structured_outputs: Optional[Dict[str, Any]] = None
    """vLLM extension, as on /v1/chat/completions: constrain decoding (json/regex/choice/grammar)."""

    @model_validator(mode="after")
    def _check_sampling(self) -> MessagesRequest:
        if self.max_tokens < 1:
            raise InvalidRequest(f"max_tokens must be at least 1, got {self.max_tokens}", "max_tokens")
        thinking = self.thinking
        if thinking is not None and thinking.budget_tokens is not None and thinking.budget_tokens >= self.max_tokens:
            raise InvalidRequest(
                f"thinking.budget_tokens ({thinking.budget_tokens}) must be less than max_tokens ({self.max_tokens})",
                "thinking.budget_tokens",
            )
        if self.temperature is not None and not 0 <= self.temperature <= 1:
            raise InvalidRequest(f"temperature must be in [0, 1], got {self.temperature}", "temperature")
        if any(not s for s in self.stop_sequences or ()):
            raise InvalidRequest("stop_sequences must be non-empty strings", "stop_sequences")
        return self
