"""Pydantic models of the OpenAI wire protocol, as vLLM's server accepts it.

Requests are validated strictly, with messages that name the offending field;
:func:`parse_request` turns any validation failure into an
:class:`InvalidRequest` whose :meth:`~InvalidRequest.to_response` is the
nested OpenAI error object ``{"error": {"message", "type", "param", "code"}}``
that vLLM returns from 0.10.1 on.

Unknown top-level fields are accepted and ignored, as OpenAI does, but stay
reachable through :meth:`unknown_fields` (pydantic's ``model_extra``) so that
the HTTP layer can warn about them instead of dropping them silently.

The models use ``Optional``/``Union`` rather than ``X | None`` because pydantic
evaluates annotations at run time and the package supports Python 3.9.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Dict, List, Literal, Optional, Tuple, TypeVar, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

__all__ = [
    "MAX_TOKEN_ID",
    "AssistantMessage",
    "ChatCompletionChunk",
    "ChatCompletionRequest",
    "ChatCompletionResponse",
    "ChatCompletionResponseChoice",
    "ChatCompletionStreamChoice",
    "ChatMessage",
    "CompletionChoice",
    "CompletionRequest",
    "CompletionResponse",
    "CompletionStreamResponse",
    "DeltaFunctionCall",
    "DeltaMessage",
    "DeltaToolCall",
    "DetokenizeRequest",
    "DetokenizeResponse",
    "DeveloperMessage",
    "ErrorInfo",
    "ErrorResponse",
    "FunctionCall",
    "FunctionDefinition",
    "InvalidRequest",
    "ModelCard",
    "ModelList",
    "NamedToolChoice",
    "StreamOptions",
    "StructuredOutputs",
    "SystemMessage",
    "TextContentPart",
    "TokenizeRequest",
    "TokenizeResponse",
    "Tool",
    "ToolCall",
    "ToolMessage",
    "Usage",
    "UserMessage",
    "check_token_ids",
    "max_stop_strings",
    "message_text",
    "new_id",
    "parse_request",
    "request_sampling_fields",
]

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1
_INT32_MAX = 2**31 - 1
MAX_TOKEN_ID = 2**32 - 1
"""No tokenizer has more ids; larger ones would overflow the engine's integer types."""
MAX_LOGIT_BIAS = 100.0
MAX_N = 128
"""OpenAI's limit on ``n``; every choice costs a parser pipeline and engine sequences."""


def max_stop_strings() -> int:
    """The cap on ``stop`` strings: ``VLLM_MAX_STOP_STRINGS`` (default 4), as vLLM's server and OpenAI."""
    import os

    value = os.environ.get("VLLM_MAX_STOP_STRINGS", "4")
    return int(value) if value.isdigit() else 4
_ROLES = ("system", "developer", "user", "assistant", "tool")


# --------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------


class InvalidRequest(ValueError):
    """A request the server must answer with HTTP 400.

    ``param`` names the offending field in OpenAI's dotted form
    (``messages[2].tool_calls[0].function.arguments``) or is ``None``.
    """

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param

    def to_response(self) -> ErrorResponse:
        """The wire error object (HTTP 400, type ``invalid_request_error``, code ``invalid_value``)."""
        return ErrorResponse.build(self.message, param=self.param, code="invalid_value")


class ErrorInfo(BaseModel):
    message: str
    type: str = "invalid_request_error"
    param: Optional[str] = None
    code: Optional[Union[int, str]] = None


class ErrorResponse(BaseModel):
    """``{"error": {"message", "type", "param", "code"}}`` (OpenAI; vLLM >= 0.10.1)."""

    error: ErrorInfo

    @classmethod
    def build(
        cls,
        message: str,
        *,
        type: str = "invalid_request_error",  # noqa: A002 - the wire name
        param: str | None = None,
        code: int | str | None = None,
    ) -> ErrorResponse:
        return cls(error=ErrorInfo(message=message, type=type, param=param, code=code))


_RESPONSE_FORMAT_TAGS = ("text", "json_object", "json_schema")
_UNION_BRANCHES = frozenset({"str", "int", "float", "bool", "dict", "list"})


def _loc_to_param(loc: Sequence[int | str]) -> str | None:
    """pydantic's error location as an OpenAI ``param`` (``messages[0].content``)."""
    out = ""
    prev: int | str | None = None
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not (
            "[" in part  # validator / union-branch names pydantic inserts
            or part in _UNION_BRANCHES
            or part[:1].isupper()  # a model class name (union branch)
            or (isinstance(prev, int) and part in _ROLES)  # message tag
            or (prev == "response_format" and part in _RESPONSE_FORMAT_TAGS)
        ):
            out += f".{part}" if out else part
        prev = part
    return out or None


def _join_param(loc_param: str | None, param: str | None) -> str | None:
    if loc_param and param:
        return loc_param + (param if param.startswith("[") else f".{param}")
    return loc_param or param


def _validation_error_to_invalid(exc: ValidationError) -> InvalidRequest:
    errors = exc.errors(include_url=False)
    first = errors[0]
    ctx_error = (first.get("ctx") or {}).get("error")
    loc_param = _loc_to_param(first.get("loc", ()))
    if isinstance(ctx_error, InvalidRequest):
        param = _join_param(loc_param, ctx_error.param)
        message = ctx_error.message
    else:
        param = loc_param
        message = str(first.get("msg", "invalid request"))
        if message.startswith("Value error, "):
            message = message[len("Value error, ") :]
    if loc_param:  # nested field: say where
        message = f"{param}: {message}"
    if len(errors) > 1 and not isinstance(ctx_error, InvalidRequest):
        message += f" (and {len(errors) - 1} more error{'s' if len(errors) > 2 else ''})"
    return InvalidRequest(message, param)


_ModelT = TypeVar("_ModelT", bound=BaseModel)


def parse_request(model: type[_ModelT], data: Any) -> _ModelT:
    """Validate ``data`` (decoded JSON) into ``model``.

    Raises :class:`InvalidRequest` with one precise message naming the first
    offending field (the HTTP layer answers 400 with ``exc.to_response()``).
    """
    if not isinstance(data, Mapping):
        raise InvalidRequest("the request body must be a JSON object")
    try:
        return model.model_validate(dict(data))
    except ValidationError as exc:
        raise _validation_error_to_invalid(exc) from None


# --------------------------------------------------------------------------
# Messages
# --------------------------------------------------------------------------


class _Lenient(BaseModel):
    """Accepts and keeps unknown fields (reachable via ``model_extra``)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    def unknown_fields(self) -> dict[str, Any]:
        """The fields the client sent that this model does not know."""
        return dict(self.model_extra or {})


class TextContentPart(_Lenient):
    type: Literal["text"]
    text: str


def _check_content_parts(value: Any) -> Any:
    if not isinstance(value, list):
        return value
    for i, part in enumerate(value):
        kind = part.get("type") if isinstance(part, Mapping) else type(part).__name__
        if kind != "text":
            raise InvalidRequest(
                f"content part type {kind!r} is not supported: GLM chat models "
                "take text only (content must be a string or a list of "
                '{"type": "text", "text": ...} parts)',
                param=f"[{i}]",
            )
    return value


Content = Union[str, List[TextContentPart]]


def message_text(content: str | Sequence[TextContentPart] | Sequence[Mapping[str, Any]] | None) -> str:
    """The text of a message's ``content`` (parts joined with ``"\\n"`` as vLLM does)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    texts = []
    for part in content:
        texts.append(part.text if isinstance(part, TextContentPart) else str(part.get("text", "")))
    return "\n".join(texts)


class _MessageBase(_Lenient):
    name: Optional[str] = None

    @field_validator("content", mode="before", check_fields=False)
    @classmethod
    def _text_parts_only(cls, value: Any) -> Any:
        return _check_content_parts(value)


class SystemMessage(_MessageBase):
    role: Literal["system"]
    content: Content


class DeveloperMessage(_MessageBase):
    role: Literal["developer"]
    content: Content


class UserMessage(_MessageBase):
    role: Literal["user"]
    content: Content


class FunctionCall(BaseModel):
    """``function`` of a tool call: ``arguments`` is a JSON object as a string."""

    name: str
    arguments: str


class _HistoryFunctionCall(_Lenient):
    name: str
    arguments: Union[str, Dict[str, Any]] = "{}"

    @field_validator("arguments")
    @classmethod
    def _arguments_object(cls, value: str | dict[str, Any]) -> str | dict[str, Any]:
        if isinstance(value, dict):
            return value
        try:
            decoded = json.loads(value) if value.strip() else {}
        except ValueError:
            raise InvalidRequest(
                "tool call arguments must be a JSON object encoded as a string, "
                f"got invalid JSON: {value[:80]!r}"
            ) from None
        if not isinstance(decoded, dict):
            raise InvalidRequest(
                "tool call arguments must be a JSON object, got "
                f"{type(decoded).__name__}: {value[:80]!r}"
            )
        return value


class _HistoryToolCall(_Lenient):
    id: Optional[str] = None
    type: Literal["function"] = "function"
    function: _HistoryFunctionCall


class AssistantMessage(_MessageBase):
    role: Literal["assistant"]
    content: Optional[Content] = None
    tool_calls: Optional[List[_HistoryToolCall]] = None
    reasoning_content: Optional[str] = None
    reasoning: Optional[str] = None


class ToolMessage(_MessageBase):
    role: Literal["tool"]
    content: Content
    tool_call_id: Optional[str] = None


Message = Annotated[
    Union[SystemMessage, DeveloperMessage, UserMessage, AssistantMessage, ToolMessage],
    Field(discriminator="role"),
]


def _check_roles(messages: Any) -> Any:
    if not isinstance(messages, list):
        return messages
    if not messages:
        raise InvalidRequest("messages must contain at least one message", "messages")
    for i, msg in enumerate(messages):
        if not isinstance(msg, Mapping):
            raise InvalidRequest("each message must be a JSON object", f"messages[{i}]")
        role = msg.get("role")
        if role not in _ROLES:
            raise InvalidRequest(
                f"unknown role {role!r}; expected one of: {', '.join(_ROLES)}",
                f"messages[{i}].role",
            )
    return messages


# --------------------------------------------------------------------------
# Tools
# --------------------------------------------------------------------------


def _check_schema_object(params: Any) -> None:
    if not isinstance(params, dict):
        raise InvalidRequest(
            f"parameters must be a JSON-schema object, got {type(params).__name__}"
        )
    if "type" in params and params["type"] != "object":
        raise InvalidRequest(
            f'parameters must be a JSON schema of type "object", got type {params["type"]!r}'
        )
    props = params.get("properties")
    if props is not None:
        if not isinstance(props, dict):
            raise InvalidRequest("parameters.properties must be an object")
        for key, sub in props.items():
            if not isinstance(sub, (dict, bool)):
                raise InvalidRequest(f"parameters.properties.{key} must be a JSON schema (an object)")
    required = params.get("required")
    if required is not None and not (
        isinstance(required, list) and all(isinstance(r, str) for r in required)
    ):
        raise InvalidRequest("parameters.required must be a list of property names")


class FunctionDefinition(_Lenient):
    name: str
    description: Optional[str] = None
    parameters: Optional[Dict[str, Any]] = None
    strict: Optional[bool] = None

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        if not value or len(value) > 64 or any(c.isspace() or c in "<>" for c in value):
            raise InvalidRequest(
                f"invalid function name {value!r}: 1 to 64 characters, "
                "no whitespace and no '<' or '>'"
            )
        return value

    @field_validator("parameters", mode="before")
    @classmethod
    def _valid_parameters(cls, value: Any) -> Any:
        if value is not None:
            _check_schema_object(value)
        return value


class Tool(_Lenient):
    type: Literal["function"] = "function"
    function: FunctionDefinition


class _NamedFunction(BaseModel):
    name: str


class NamedToolChoice(BaseModel):
    """``{"type": "function", "function": {"name": ...}}``."""

    type: Literal["function"] = "function"
    function: _NamedFunction


ToolChoice = Union[Literal["none", "auto", "required"], NamedToolChoice]


def _check_tool_choice(value: Any) -> Any:
    usage = '{"type": "function", "function": {"name": "my_function"}}'
    if value is None:
        return value
    if isinstance(value, Mapping):
        function = value.get("function")
        if not isinstance(function, Mapping) or not isinstance(function.get("name"), str) or not function["name"]:
            raise InvalidRequest(f"invalid named tool_choice; expected {usage}", "tool_choice")
        if value.get("type", "function") != "function":
            raise InvalidRequest(f'tool_choice type must be "function"; expected {usage}', "tool_choice")
        return value
    if value not in ("none", "auto", "required"):
        raise InvalidRequest(
            f'invalid tool_choice {value!r}: expected "none", "auto", "required" or {usage} '
            "(values are case-sensitive)",
            "tool_choice",
        )
    return value


# --------------------------------------------------------------------------
# Sampling fields shared by chat and completions
# --------------------------------------------------------------------------


class StreamOptions(_Lenient):
    include_usage: Optional[bool] = False
    continuous_usage_stats: Optional[bool] = False


class StructuredOutputs(_Lenient):
    """vLLM's ``structured_outputs`` request field (``StructuredOutputsParams``)."""

    json_: Optional[Union[str, Dict[str, Any]]] = Field(default=None, alias="json")
    regex: Optional[str] = None
    choice: Optional[List[str]] = None
    grammar: Optional[str] = None
    json_object: Optional[bool] = None


class _ResponseFormatText(_Lenient):
    type: Literal["text"]


class _ResponseFormatJsonObject(_Lenient):
    type: Literal["json_object"]


class _JsonSchemaSpec(_Lenient):
    name: Optional[str] = None
    description: Optional[str] = None
    schema_: Optional[Dict[str, Any]] = Field(default=None, alias="schema")
    strict: Optional[bool] = None


class _ResponseFormatJsonSchema(_Lenient):
    type: Literal["json_schema"]
    json_schema: Optional[_JsonSchemaSpec] = None

    @model_validator(mode="after")
    def _schema_given(self) -> _ResponseFormatJsonSchema:
        if self.json_schema is None or self.json_schema.schema_ is None:
            raise InvalidRequest('type "json_schema" needs json_schema.schema (the JSON schema)')
        return self


ResponseFormat = Annotated[
    Union[_ResponseFormatText, _ResponseFormatJsonObject, _ResponseFormatJsonSchema],
    Field(discriminator="type"),
]

# (field, predicate on the value, message) - checked when the field is set.
_RANGE_CHECKS: Tuple[Tuple[str, Any, str], ...] = (
    ("n", lambda v: v >= 1, "n must be at least 1, got {v}"),
    ("temperature", lambda v: v >= 0, "temperature must be >= 0, got {v}"),
    ("top_p", lambda v: 0 < v <= 1, "top_p must be in (0, 1], got {v}"),
    ("presence_penalty", lambda v: -2 <= v <= 2, "presence_penalty must be in [-2, 2], got {v}"),
    ("frequency_penalty", lambda v: -2 <= v <= 2, "frequency_penalty must be in [-2, 2], got {v}"),
    ("repetition_penalty", lambda v: v > 0, "repetition_penalty must be > 0, got {v}"),
    ("top_k", lambda v: -1 <= v <= _INT32_MAX, "top_k must be -1 or 0 (disabled) or a positive integer below 2**31, got {v}"),
    ("n", lambda v: v <= MAX_N, "n must be at most 128 (as in OpenAI's API), got {v}"),
    ("max_tokens", lambda v: v <= _INT32_MAX, "max_tokens is too large: {v}"),
    ("max_completion_tokens", lambda v: v <= _INT32_MAX, "max_completion_tokens is too large: {v}"),
    ("min_tokens", lambda v: v <= _INT32_MAX, "min_tokens is too large: {v}"),
    ("min_p", lambda v: 0 <= v <= 1, "min_p must be in [0, 1], got {v}"),
    ("min_tokens", lambda v: v >= 0, "min_tokens must be >= 0, got {v}"),
    ("max_tokens", lambda v: v >= 1, "max_tokens must be at least 1, got {v}"),
    ("max_completion_tokens", lambda v: v >= 1, "max_completion_tokens must be at least 1, got {v}"),
    ("seed", lambda v: _INT64_MIN <= v <= _INT64_MAX, "seed must fit in a signed 64-bit integer"),
)

_GUIDED_KEYS = (
    ("guided_json", "json"),
    ("guided_regex", "regex"),
    ("guided_choice", "choice"),
    ("guided_grammar", "grammar"),
)


class _SamplingRequest(_Lenient):
    """Fields shared by ``/v1/chat/completions`` and ``/v1/completions``.

    Every sampling field defaults to ``None`` so that
    :func:`request_sampling_fields` can pass on exactly what the client set.
    """

    model: Optional[str] = None
    n: Optional[int] = None
    temperature: Optional[float] = None
    top_p: Optional[float] = None
    presence_penalty: Optional[float] = None
    frequency_penalty: Optional[float] = None
    seed: Optional[int] = None
    stop: Optional[Union[str, List[str]]] = None
    stream: Optional[bool] = False
    stream_options: Optional[StreamOptions] = None
    user: Optional[str] = None
    response_format: Optional[ResponseFormat] = None
    max_tokens: Optional[int] = None
    # vLLM extras
    top_k: Optional[int] = None
    min_p: Optional[float] = None
    repetition_penalty: Optional[float] = None
    stop_token_ids: Optional[List[int]] = None
    skip_special_tokens: Optional[bool] = None
    include_stop_str_in_output: Optional[bool] = None
    ignore_eos: Optional[bool] = None
    min_tokens: Optional[int] = None
    structured_outputs: Optional[StructuredOutputs] = None
    guided_json: Optional[Union[str, Dict[str, Any]]] = None
    guided_regex: Optional[str] = None
    guided_choice: Optional[List[str]] = None
    guided_grammar: Optional[str] = None
    logit_bias: Optional[Dict[str, float]] = None

    @property
    def num_choices(self) -> int:
        return self.n if self.n is not None else 1

    @property
    def include_usage_in_stream(self) -> bool:
        return bool(self.stream and self.stream_options and self.stream_options.include_usage)

    @model_validator(mode="after")
    def _check_sampling(self) -> _SamplingRequest:
        for field, ok, message in _RANGE_CHECKS:
            value = getattr(self, field, None)
            if value is not None and not ok(value):
                raise InvalidRequest(message.format(v=value), field)
        if self.stream_options is not None and not self.stream:
            raise InvalidRequest("stream_options is only allowed when stream is true", "stream_options")
        self._check_stop()
        if self.stop_token_ids is not None:
            check_token_ids(self.stop_token_ids, "stop_token_ids")
        self._check_logit_bias()
        limit = self._max_new_tokens()
        if limit is not None and self.min_tokens is not None and self.min_tokens > limit:
            raise InvalidRequest(
                f"min_tokens ({self.min_tokens}) must not exceed max_tokens ({limit})", "min_tokens"
            )
        structured_constraints(self)  # raises on conflicting constraints
        return self

    def _check_stop(self) -> None:
        stops = [self.stop] if isinstance(self.stop, str) else (self.stop or [])
        if isinstance(self.stop, list) and any(s == "" for s in stops):
            raise InvalidRequest("stop sequences must be non-empty strings", "stop")
        cap = max_stop_strings()
        if len(stops) > cap:
            raise InvalidRequest(f"stop takes at most {cap} sequences, got {len(stops)}", "stop")

    def _check_logit_bias(self) -> None:
        for key, bias in (self.logit_bias or {}).items():
            param = f"logit_bias.{key}"
            if not key.isdigit() or int(key) > MAX_TOKEN_ID:
                raise InvalidRequest(f"logit_bias keys must be token ids (non-negative integers), got {key!r}", param)
            if not -MAX_LOGIT_BIAS <= bias <= MAX_LOGIT_BIAS:
                raise InvalidRequest(f"logit_bias values must be in [-100, 100], got {bias}", param)

    def _max_new_tokens(self) -> int | None:
        return self.max_tokens


def check_token_ids(ids: Sequence[int], param: str) -> None:
    """Token ids must be in ``[0, 2**32)`` (the vocabulary bound is checked by the server)."""
    for i, tid in enumerate(ids):
        if tid < 0 or tid > MAX_TOKEN_ID:
            raise InvalidRequest(f"token ids must be non-negative integers below 2**32, got {tid}", f"{param}[{i}]")


def _decode_guided_json(source: str, value: str | dict[str, Any]) -> str | dict[str, Any]:
    if isinstance(value, dict):
        return value
    try:
        decoded = json.loads(value)
    except ValueError:
        raise InvalidRequest(f"{source} must be a JSON schema (object or JSON text)", source) from None
    if not isinstance(decoded, dict):
        raise InvalidRequest(f"{source} must be a JSON schema object", source)
    return value


def _response_format_constraint(req: _SamplingRequest) -> list[tuple[str, str, Any]]:
    rf = req.response_format
    if isinstance(rf, _ResponseFormatJsonObject):
        return [("response_format (json_object)", "json_object", True)]
    if isinstance(rf, _ResponseFormatJsonSchema) and rf.json_schema is not None:
        return [("response_format (json_schema)", "json", rf.json_schema.schema_)]
    return []


def _normal_constraint(key: str, value: Any) -> Any:
    if key == "json" and isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _drop_duplicates(found: list[tuple[str, str, Any]]) -> list[tuple[str, str, Any]]:
    """The same constraint under two names (``guided_regex`` and ``structured_outputs.regex``) counts once."""
    out: list[tuple[str, str, Any]] = []
    for source, key, value in found:
        if not any(k == key and _normal_constraint(k, v) == _normal_constraint(key, value) for _, k, v in out):
            out.append((source, key, value))
    return out


def structured_constraints(req: _SamplingRequest) -> list[tuple[str, str, Any]]:
    """All structured-output constraints of a request as ``(source, key, value)``.

    ``key`` is the newest vLLM ``StructuredOutputsParams`` field name. Raises
    :class:`InvalidRequest` when more than one constraint is given (vLLM
    accepts exactly one kind) or one is malformed.
    """
    found = _response_format_constraint(req)
    for field, key in _GUIDED_KEYS:
        value = getattr(req, field)
        if value is not None:
            found.append((field, key, value))
    so = req.structured_outputs
    if so is not None:
        for key, value in (("json", so.json_), ("regex", so.regex), ("choice", so.choice), ("grammar", so.grammar)):
            if value is not None:
                found.append((f"structured_outputs.{key}", key, value))
        if so.json_object:
            found.append(("structured_outputs.json_object", "json_object", True))
    for source, key, value in found:
        if key == "json":
            _decode_guided_json(source, value)
        if key == "choice" and not value:
            raise InvalidRequest(f"{source} must list at least one choice", source)
    found = _drop_duplicates(found)
    if len(found) > 1:
        names = " and ".join(source for source, _, _ in found)
        raise InvalidRequest(
            f"conflicting structured-output constraints: {names}; give only one",
            found[1][0],
        )
    return found


# --------------------------------------------------------------------------
# Chat completions
# --------------------------------------------------------------------------


def _legacy_functions(data: Mapping[str, Any]) -> Mapping[str, Any]:
    """OpenAI's deprecated ``functions``/``function_call`` as ``tools``/``tool_choice``."""
    if "functions" not in data and "function_call" not in data:
        return data
    out = dict(data)
    functions = out.pop("functions", None)
    call = out.pop("function_call", None)
    if functions is not None:
        if out.get("tools") is not None:
            raise InvalidRequest("give either tools or the deprecated functions, not both", "functions")
        if not isinstance(functions, list):
            raise InvalidRequest("functions must be a list of function definitions", "functions")
        out["tools"] = [{"type": "function", "function": f} for f in functions]
    if call is not None:
        if out.get("tool_choice") is not None:
            raise InvalidRequest("give either tool_choice or the deprecated function_call, not both", "function_call")
        if isinstance(call, Mapping):
            out["tool_choice"] = {"type": "function", "function": {"name": call.get("name")}}
        elif call in ("none", "auto"):
            out["tool_choice"] = call
        else:
            raise InvalidRequest('function_call must be "none", "auto" or {"name": ...}', "function_call")
    return out


class ChatCompletionRequest(_SamplingRequest):
    """``POST /v1/chat/completions``."""

    messages: List[Message]
    tools: Optional[List[Tool]] = None
    tool_choice: Optional[ToolChoice] = None
    parallel_tool_calls: Optional[bool] = True
    logprobs: Optional[bool] = None
    top_logprobs: Optional[int] = None
    max_completion_tokens: Optional[int] = None
    chat_template_kwargs: Optional[Dict[str, Any]] = None
    # thinking controls (GLM families decide what they mean; see server.families)
    reasoning_effort: Optional[str] = None
    include_reasoning: Optional[bool] = None
    thinking_token_budget: Optional[int] = None

    @model_validator(mode="before")
    @classmethod
    def _precheck(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            data = _legacy_functions(data)
            if "messages" not in data:
                raise InvalidRequest("messages is required", "messages")
            _check_roles(data.get("messages"))
            _check_tool_choice(data.get("tool_choice"))
        return data

    @model_validator(mode="after")
    def _check_chat(self) -> ChatCompletionRequest:
        self._check_tools()
        self._check_logprobs()
        budget = self.thinking_token_budget
        if budget is not None and budget < -1:
            raise InvalidRequest(
                f"thinking_token_budget must be a non-negative integer or -1 for unlimited, got {budget}",
                "thinking_token_budget",
            )
        if self.tool_choice == "required" or isinstance(self.tool_choice, NamedToolChoice):
            if structured_constraints(self):
                raise InvalidRequest(
                    "structured outputs cannot be combined with a required or named tool_choice",
                    "tool_choice",
                )
        return self

    def _check_tools(self) -> None:
        if self.tools is not None and not self.tools:
            raise InvalidRequest(
                "tools must not be an empty array; give at least one tool or omit the field",
                "tools",
            )
        names = [t.function.name for t in self.tools or []]
        for i, name in enumerate(names):
            if name in names[:i]:
                raise InvalidRequest(f"duplicate tool name {name!r}", f"tools[{i}].function.name")
        choice = self.tool_choice
        if choice is None or (choice == "auto" and not names):
            # OpenAI's default: "auto" with tools, "none" without. A stray
            # "auto" without tools is treated as "none" (tools=None must work).
            self.tool_choice = "auto" if names else "none"
        elif choice == "required" and not names:
            raise InvalidRequest('tool_choice "required" needs a non-empty tools list', "tool_choice")
        elif isinstance(choice, NamedToolChoice):
            if not names:
                raise InvalidRequest("a named tool_choice needs a non-empty tools list", "tool_choice")
            if choice.function.name not in names:
                raise InvalidRequest(
                    f"tool_choice names the tool {choice.function.name!r}, which is not in "
                    f"tools (declared: {', '.join(names)})",
                    "tool_choice.function.name",
                )

    def _check_logprobs(self) -> None:
        top = self.top_logprobs
        if top is None:
            return
        if top < -1:
            raise InvalidRequest(f"top_logprobs must be >= 0 (or -1 for all), got {top}", "top_logprobs")
        if top != 0 and not self.logprobs:
            raise InvalidRequest("top_logprobs requires logprobs to be true", "top_logprobs")

    def _max_new_tokens(self) -> int | None:
        if self.max_completion_tokens is not None:
            return self.max_completion_tokens
        return self.max_tokens

    @property
    def named_tool(self) -> str | None:
        """The tool name forced by a named ``tool_choice``, else ``None``."""
        if isinstance(self.tool_choice, NamedToolChoice):
            return self.tool_choice.function.name
        return None

    @property
    def tools_enabled(self) -> bool:
        """True when tool calls must be parsed out of the output."""
        return bool(self.tools) and self.tool_choice != "none"


# --------------------------------------------------------------------------
# Completions
# --------------------------------------------------------------------------


Prompt = Union[str, List[str], List[int], List[List[int]]]


class CompletionRequest(_SamplingRequest):
    """``POST /v1/completions`` (raw continuation, no chat template)."""

    prompt: Prompt
    echo: Optional[bool] = False
    suffix: Optional[str] = None
    logprobs: Optional[int] = None

    @model_validator(mode="before")
    @classmethod
    def _precheck(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and "prompt" not in data:
            raise InvalidRequest("prompt is required", "prompt")
        return data

    @model_validator(mode="after")
    def _check_completion(self) -> CompletionRequest:
        if self.suffix:
            raise InvalidRequest(
                "suffix is not supported: GLM models have no fill-in-the-middle mode", "suffix"
            )
        if self.logprobs is not None and self.logprobs < 0:
            raise InvalidRequest(f"logprobs must be >= 0, got {self.logprobs}", "logprobs")
        self._check_prompt()
        return self

    def _check_prompt(self) -> None:
        prompt = self.prompt
        if isinstance(prompt, str):
            prompt = [prompt]
        if not prompt:
            raise InvalidRequest("prompt must not be empty", "prompt")
        ints = [item for item in prompt if isinstance(item, int)]
        check_token_ids(ints, "prompt")
        for j, item in enumerate(prompt):
            if not isinstance(item, int) and not item:
                raise InvalidRequest("prompt must not contain an empty prompt", "prompt")
            if isinstance(item, list):
                check_token_ids(item, f"prompt[{j}]")

    def prompts(self) -> list[str | list[int]]:
        """The prompt as a list of single prompts (text or token ids)."""
        p = self.prompt
        if isinstance(p, str):
            return [p]
        out: list[str | list[int]] = []
        if p and all(isinstance(x, int) for x in p):
            out.append([x for x in p if isinstance(x, int)])
            return out
        for item in p:
            if isinstance(item, (str, list)):
                out.append(item)
        return out


# --------------------------------------------------------------------------
# Sampling fields with stable (newest vLLM SamplingParams) names
# --------------------------------------------------------------------------

_COPIED_FIELDS = (
    "n",
    "temperature",
    "top_p",
    "top_k",
    "min_p",
    "seed",
    "stop_token_ids",
    "presence_penalty",
    "frequency_penalty",
    "repetition_penalty",
    "min_tokens",
    "ignore_eos",
    "skip_special_tokens",
    "include_stop_str_in_output",
)


def request_sampling_fields(req: ChatCompletionRequest | CompletionRequest) -> dict[str, Any]:
    """The request's sampling parameters under the newest vLLM SamplingParams names.

    Only fields the client actually set are included; nothing is defaulted
    here (notably ``max_tokens`` is absent when unset, meaning "up to the
    context limit": the server decides). ``stop`` is always a list;
    ``logprobs`` is an int count; ``structured_outputs`` is a dict with one
    of the keys ``json``/``regex``/``choice``/``grammar``/``json_object``,
    merged from ``response_format``, ``guided_*`` and ``structured_outputs``
    (conflicting combinations raise :class:`InvalidRequest`).
    """
    out: dict[str, Any] = {}
    for field in _COPIED_FIELDS:
        value = getattr(req, field)
        if value is not None:
            out[field] = list(value) if isinstance(value, list) else value
    if req.stop is not None:
        out["stop"] = [req.stop] if isinstance(req.stop, str) else list(req.stop)
    if isinstance(req, ChatCompletionRequest):
        max_tokens = req.max_completion_tokens if req.max_completion_tokens is not None else req.max_tokens
        if req.logprobs:
            out["logprobs"] = req.top_logprobs if req.top_logprobs is not None else 0
    else:
        max_tokens = req.max_tokens
        if req.logprobs is not None:
            out["logprobs"] = req.logprobs
    if max_tokens is not None:
        out["max_tokens"] = max_tokens
    if req.logit_bias:
        out["logit_bias"] = {int(k): v for k, v in req.logit_bias.items()}
    constraints = structured_constraints(req)
    if constraints:
        _, key, value = constraints[0]
        if key == "json" and isinstance(value, str):
            value = json.loads(value)
        out["structured_outputs"] = {key: value}
    return out


# --------------------------------------------------------------------------
# Responses
# --------------------------------------------------------------------------


def new_id(prefix: str) -> str:
    """A fresh, collision-free id such as ``chatcmpl-<32 hex>`` (uuid4)."""
    return f"{prefix}-{uuid.uuid4().hex}"


def _now() -> int:
    return int(time.time())


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    prompt_tokens_details: Optional[Dict[str, Any]] = None


class ToolCall(BaseModel):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class ChatMessage(BaseModel):
    """The non-streamed assistant message."""

    role: Literal["assistant"] = "assistant"
    content: Optional[str] = None
    reasoning_content: Optional[str] = None
    reasoning: Optional[str] = None
    tool_calls: Optional[List[ToolCall]] = None


class ChatCompletionResponseChoice(BaseModel):
    index: int
    message: ChatMessage
    logprobs: Optional[Dict[str, Any]] = None
    finish_reason: Optional[str] = "stop"
    stop_reason: Optional[Union[int, str]] = None


class ChatCompletionResponse(BaseModel):
    id: str = Field(default_factory=lambda: new_id("chatcmpl"))
    object: Literal["chat.completion"] = "chat.completion"
    created: int = Field(default_factory=_now)
    model: str
    choices: List[ChatCompletionResponseChoice]
    usage: Optional[Usage] = None
    system_fingerprint: Optional[str] = None


class DeltaFunctionCall(BaseModel):
    name: Optional[str] = None
    arguments: Optional[str] = None


class DeltaToolCall(BaseModel):
    """A tool-call delta: the first of a call has id, type and name; later ones only arguments."""

    index: int
    id: Optional[str] = None
    type: Optional[Literal["function"]] = None
    function: Optional[DeltaFunctionCall] = None


class DeltaMessage(BaseModel):
    role: Optional[Literal["assistant"]] = None
    content: Optional[str] = None
    reasoning_content: Optional[str] = None
    reasoning: Optional[str] = None
    tool_calls: Optional[List[DeltaToolCall]] = None


class ChatCompletionStreamChoice(BaseModel):
    index: int
    delta: DeltaMessage
    logprobs: Optional[Dict[str, Any]] = None
    finish_reason: Optional[str] = None
    stop_reason: Optional[Union[int, str]] = None


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int = Field(default_factory=_now)
    model: str
    choices: List[ChatCompletionStreamChoice]
    usage: Optional[Usage] = None

    def to_wire(self) -> dict[str, Any]:
        """The SSE payload: ``None`` fields dropped, except each choice's
        ``finish_reason`` (always present, ``null`` until the last chunk)."""
        data = self.model_dump(exclude_none=True)
        for choice, model in zip(data["choices"], self.choices):
            choice["finish_reason"] = model.finish_reason
        return data


class CompletionChoice(BaseModel):
    index: int
    text: str
    logprobs: Optional[Dict[str, Any]] = None
    finish_reason: Optional[str] = None
    stop_reason: Optional[Union[int, str]] = None


class CompletionResponse(BaseModel):
    id: str = Field(default_factory=lambda: new_id("cmpl"))
    object: Literal["text_completion"] = "text_completion"
    created: int = Field(default_factory=_now)
    model: str
    choices: List[CompletionChoice]
    usage: Optional[Usage] = None


class CompletionStreamResponse(CompletionResponse):
    """One SSE chunk of a streamed completion (same object name as OpenAI)."""


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = Field(default_factory=_now)
    owned_by: str = "glm-vllm-compat"
    root: Optional[str] = None
    parent: Optional[str] = None
    max_model_len: Optional[int] = None


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: List[ModelCard] = Field(default_factory=list)


# --------------------------------------------------------------------------
# Tokenize / detokenize (vLLM extensions)
# --------------------------------------------------------------------------


class TokenizeRequest(_Lenient):
    """``POST /tokenize``: exactly one of ``prompt`` (raw text) or ``messages`` (chat)."""

    model: Optional[str] = None
    prompt: Optional[str] = None
    messages: Optional[List[Message]] = None
    add_special_tokens: Optional[bool] = None
    add_generation_prompt: bool = True
    tools: Optional[List[Tool]] = None
    chat_template_kwargs: Optional[Dict[str, Any]] = None
    return_token_strs: Optional[bool] = False

    @model_validator(mode="before")
    @classmethod
    def _precheck(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            has_prompt, has_messages = "prompt" in data, "messages" in data
            if has_prompt == has_messages:
                raise InvalidRequest("give exactly one of prompt or messages", "prompt")
            if has_messages:
                _check_roles(data.get("messages"))
        return data


class TokenizeResponse(BaseModel):
    count: int
    max_model_len: Optional[int] = None
    tokens: List[int]
    token_strs: Optional[List[str]] = None


class DetokenizeRequest(_Lenient):
    """``POST /detokenize``."""

    model: Optional[str] = None
    tokens: List[int]

    @field_validator("tokens")
    @classmethod
    def _in_range(cls, value: list[int]) -> list[int]:
        check_token_ids(value, "")
        return value


class DetokenizeResponse(BaseModel):
    prompt: str
