"""What every route needs: the engine, the chosen parsers and the server settings."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any, TypeVar

from .._detect import VllmInfo
from ._body import DEFAULT_MAX_BODY_BYTES
from ._engine import ServerEngine
from ._errors import APIError
from .protocol import ChatCompletionRequest

__all__ = ["ServerState"]

R = TypeVar("R", bound=ChatCompletionRequest)

logger = logging.getLogger("glm_vllm_compat.server")


@dataclasses.dataclass
class ServerState:
    engine: ServerEngine
    family: str
    """GLM format family: ``glm4``, ``glm45`` or ``glm47``."""
    tool_parser: str
    reasoning_parser: str
    api_key: str | None = None
    vllm: VllmInfo | None = None
    generation_defaults: dict[str, Any] = dataclasses.field(default_factory=dict)
    """Sampling defaults from the model's generation config (``--generation-config``)."""
    default_chat_template_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    """``--default-chat-template-kwargs``: what a request's ``chat_template_kwargs`` leave unset."""

    def with_template_defaults(self, req: R) -> R:
        """``req`` with the server's default ``chat_template_kwargs`` under its own."""
        if not self.default_chat_template_kwargs:
            return req
        merged = {**self.default_chat_template_kwargs, **(req.chat_template_kwargs or {})}
        return req.model_copy(update={"chat_template_kwargs": merged})
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)
    max_request_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    """Larger bodies get 413 (``--max-request-body-bytes``; 0: no cap)."""
    shutdown_timeout: float = 0.0
    """Seconds in-flight requests may run on after SIGTERM/Ctrl+C before they are aborted (``--shutdown-timeout``)."""
    _warned_fields: set[str] = dataclasses.field(default_factory=set)

    def warn_unknown_fields(self, names: Any) -> None:
        """Log each unknown request field once per server (as ``vllm serve`` logs ignored fields)."""
        new = sorted(set(names) - self._warned_fields)
        if new:
            self._warned_fields.update(new)
            logger.warning("The following fields were present in the request but ignored: %s", ", ".join(new))

    def check_model(self, name: str | None) -> str:
        """The served name to answer with; 404 for a name this server does not serve."""
        names = list(self.engine.served_names)
        if name is None or name in names or name == self.engine.model_path:
            return name if name in names else names[0]
        raise APIError(
            404,
            f"The model {name!r} does not exist; this server serves: {', '.join(names)}",
            param="model",
            code="model_not_found",
        )
