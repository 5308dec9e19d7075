"""OpenAI error objects and the handlers that turn every failure into one.

Bad input is a 4xx with ``{"error": {"message", "type", "param", "code"}}``;
only an engine or server fault is a 500, and it is logged.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from .._errors import CompatError, EngineError, UnknownParameter, UnsupportedFeature

__all__ = ["APIError", "EngineRequestFailed", "error_body", "from_exception", "vllm_client_error"]

logger = logging.getLogger("glm_vllm_compat.server")

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    422: "invalid_request_error",
    500: "internal_server_error",
    503: "service_unavailable",
}


# vLLM's request-validation error classes on every supported line, by class name
# (the classes moved and changed bases: ``VLLMValidationError`` derives from
# ``ValueError`` on older lines and from ``VLLMClientError(VLLMError(Exception))``
# in 0.32). Matching names keeps vLLM out of this module.
_VLLM_CLIENT_ERRORS: dict[str, int] = {
    "VLLMValidationError": 400,
    "VLLMUnprocessableEntityError": 400,
    "VLLMNotFoundError": 404,
    "LoRAAdapterNotFoundError": 404,
    "VLLMClientError": 400,
}
# Errors with their own HTTP status (``http_status``): admission control (503), ...
_VLLM_STATUS_ERRORS = frozenset({"GracefulHTTPError"})
_VLLM_ENGINE_DEAD = frozenset({"EngineDeadError", "AsyncEngineDeadError", "MQEngineDeadError"})


class EngineRequestFailed(Exception):
    """The engine finished a request with an error (``finish_reason`` ``error``/``abort``) instead of an answer."""

    def __init__(self, message: str, *, client_fault: bool = False, param: str | None = None) -> None:
        super().__init__(message)
        self.client_fault = client_fault
        self.param = param


class APIError(Exception):
    """An error to send to the client as an OpenAI error object."""

    def __init__(self, status: int, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code

    def body(self) -> dict[str, Any]:
        return error_body(self.message, _TYPES.get(self.status, "invalid_request_error"), self.param, self.code)


def error_body(message: str, type_: str, param: str | None = None, code: str | int | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def _validation_error(exc: Any) -> APIError:
    errors = exc.errors(include_url=False)
    first = errors[0] if errors else {"loc": (), "msg": str(exc)}
    loc = ".".join(str(p) for p in first.get("loc", ()) if p not in ("body",))
    message = "; ".join(_describe(e) for e in errors[:5]) or str(exc)
    return APIError(400, message, param=loc or None, code="invalid_value")


def _describe(error: dict[str, Any]) -> str:
    loc = ".".join(str(p) for p in error.get("loc", ()))
    msg = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
    return f"{loc}: {msg}" if loc else msg


def _class_names(exc: BaseException) -> list[str]:
    return [cls.__name__ for cls in type(exc).__mro__]


def vllm_client_error(exc: BaseException) -> APIError | None:
    """The 4xx for one of vLLM's own request-rejection errors (any line), else ``None``."""
    names = _class_names(exc)
    param = getattr(exc, "parameter", None)
    param = param if isinstance(param, str) and param else None
    for name in names:
        if name in _VLLM_CLIENT_ERRORS:
            message = str(getattr(exc, "message", None) or exc) or name
            return APIError(_VLLM_CLIENT_ERRORS[name], message, param=param, code="invalid_value")
        if name in _VLLM_STATUS_ERRORS:
            status = int(getattr(exc, "http_status", 503))
            return APIError(status, str(getattr(exc, "message", None) or exc), code="engine_busy" if status == 503 else None)
    return None


def from_exception(exc: BaseException) -> APIError:
    """Map any exception raised while serving a request to an :class:`APIError`.

    Client mistakes (validation failures here or in vLLM, any line) are 4xx
    with ``param`` where it is known; only engine or server faults are 500,
    logged with their traceback.
    """
    from pydantic import ValidationError

    if isinstance(exc, APIError):
        return exc
    client = vllm_client_error(exc)
    if client is not None:
        return client
    if isinstance(exc, EngineRequestFailed):
        if exc.client_fault:
            return APIError(400, str(exc), param=exc.param, code="invalid_value")
        logger.error("engine failure: %s", exc)
        return APIError(500, str(exc), code="engine_error")
    if any(name in _VLLM_ENGINE_DEAD for name in _class_names(exc)):
        logger.error("engine failure: %s", exc, exc_info=exc)
        return APIError(503, f"the engine is not running: {exc}", code="engine_dead")
    if isinstance(exc, ValidationError):
        return _validation_error(exc)
    if isinstance(exc, json.JSONDecodeError):
        return APIError(400, f"the request body is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})", code="invalid_json")
    if isinstance(exc, UnsupportedFeature):
        return APIError(400, str(exc), param=exc.field, code="unsupported_on_this_vllm")
    if isinstance(exc, UnknownParameter):
        return APIError(400, str(exc), param=exc.name, code="unknown_parameter")
    if isinstance(exc, EngineError):
        logger.error("engine failure: %s", exc, exc_info=exc)
        return APIError(500, f"the engine failed: {exc}", code="engine_error")
    if isinstance(exc, (CompatError, ValueError)):
        return APIError(400, str(exc), param=_cause_param(exc), code="invalid_value")
    logger.error("unexpected server error", exc_info=exc)
    return APIError(500, f"internal server error ({type(exc).__name__}); see the server log", code="internal_error")


def _cause_param(exc: BaseException) -> str | None:
    """``param`` of a vLLM rejection wrapped by the adapter (``raise ... from``)."""
    cause = exc.__cause__
    param = getattr(cause, "parameter", None) if cause is not None else None
    return param if isinstance(param, str) and param else None
