"""Server-sent events as the OpenAI streaming API sends them."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["sse", "sse_event"]


def sse(data: dict[str, Any] | str) -> str:
    """One ``data: ...`` event: a JSON object (Chinese kept verbatim) or a literal such as ``[DONE]``."""
    payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    return f"data: {payload}\n\n"


def sse_event(name: str, data: dict[str, Any]) -> str:
    """One named event (``event:`` + ``data:`` lines), as the Anthropic and Responses APIs send them."""
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"
