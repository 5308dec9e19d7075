"""What every route needs: the engine, the GLM family, the chosen parsers and the server settings."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from .._detect import VllmInfo
from ._body import DEFAULT_MAX_BODY_BYTES
from ._engine import ServerEngine
from ._errors import APIError
from .families import GlmFamily, get_family

__all__ = ["ServerState"]


logger = logging.getLogger("glm_vllm_compat.server")


@dataclasses.dataclass
class ServerState:
    engine: ServerEngine
    family: GlmFamily
    """The model's GLM family: formats, parsers, thinking controls (a name is looked up)."""
    tool_parser: str = ""
    """Tool-call parser name (default: the family's; ``--tool-call-parser`` may override)."""
    reasoning_parser: str = ""
    """Reasoning parser name (default: the family's; ``--reasoning-parser`` may override)."""
    api_key: str | None = None
    vllm: VllmInfo | None = None
    generation_defaults: dict[str, Any] = dataclasses.field(default_factory=dict)
    """Sampling defaults from the model's generation config (``--generation-config``)."""
    default_chat_template_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    """``--default-chat-template-kwargs``: template variables a request's own kwargs override."""
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

    def __post_init__(self) -> None:
        self.family = get_family(self.family)
        self.tool_parser = self.tool_parser or self.family.tool_parser
        self.reasoning_parser = self.reasoning_parser or self.family.reasoning_parser

    def check_model(self, name: str | None) -> str:
        """The served name to answer with (a LoRA adapter's name included); 404 for a name this server does not serve."""
        names = list(self.engine.served_names)
        if name is not None and name in self.engine.loras:
            return name
        if name is None or name in names or name == self.engine.model_path:
            return name if name in names else names[0]
        raise APIError(
            404,
            f"The model {name!r} does not exist; this server serves: {', '.join([*names, *self.engine.loras])}",
            param="model",
            code="model_not_found",
        )
