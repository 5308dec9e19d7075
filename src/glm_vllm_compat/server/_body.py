"""Reading and decoding request bodies without trusting them.

* the body is capped (``--max-request-body-bytes``): 413 as soon as the
  declared or received size passes the cap, before it is all in memory;
* JSON nested deeper than :data:`MAX_JSON_DEPTH` is a 400 (never a
  ``RecursionError`` in the decoder or later in a validator);
* strings holding lone UTF-16 surrogates (``"\\ud800"`` written in the JSON)
  are a 400 naming the field: no tokenizer or engine can encode them;
* large bodies are decoded and checked in a worker thread, so the event loop
  (and ``/health``) keeps answering while a 5 MB request is parsed.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

from starlette.requests import Request

from ._errors import APIError

__all__ = ["DEFAULT_MAX_BODY_BYTES", "MAX_JSON_DEPTH", "check_json", "decode_json", "read_body"]

DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024
MAX_JSON_DEPTH = 100
OFF_LOOP_BYTES = 64 * 1024
"""Bodies larger than this are decoded in a worker thread."""

_SURROGATE = re.compile("[\ud800-\udfff]")


def _too_large(limit: int) -> APIError:
    return APIError(
        413,
        f"the request body is larger than this server's limit of {limit} bytes (--max-request-body-bytes)",
        code="request_too_large",
    )


async def read_body(request: Request, limit: int | None) -> bytes:
    """The whole body, or 413 once it passes ``limit`` bytes (``None``/0: no cap)."""
    if not limit:
        return await request.body()
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _param(path: list[str | int]) -> str | None:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out or None


def check_json(data: Any, max_depth: int = MAX_JSON_DEPTH) -> None:
    """400 for nesting deeper than ``max_depth`` or a string (key or value) with a lone surrogate.

    Iterative, so a hostile document cannot exhaust the stack here either.
    """
    stack: list[tuple[Any, list[str | int]]] = [(data, [])]
    while stack:
        value, path = stack.pop()
        if len(path) > max_depth:
            raise APIError(400, f"the request JSON is nested more than {max_depth} levels deep", param=_param(path[:3]), code="invalid_json")
        if isinstance(value, str):
            if _SURROGATE.search(value):
                raise _surrogate(path)
        elif isinstance(value, dict):
            for key, item in value.items():
                if _SURROGATE.search(key):
                    raise _surrogate(path)
                stack.append((item, [*path, key]))
        elif isinstance(value, list):
            stack.extend((item, [*path, i]) for i, item in enumerate(value))


def _surrogate(path: list[str | int]) -> APIError:
    return APIError(
        400,
        "the request contains a lone UTF-16 surrogate (such as \\ud800), which is not valid Unicode text",
        param=_param(path),
        code="invalid_unicode",
    )


def _decode(body: bytes) -> Any:
    try:
        data = json.loads(body or b"null")
    except RecursionError:
        raise APIError(400, f"the request JSON is nested more than {MAX_JSON_DEPTH} levels deep", code="invalid_json") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise APIError(400, f"the request body is not valid JSON: {exc}", code="invalid_json") from exc
    check_json(data)
    return data


async def decode_json(body: bytes) -> Any:
    """Decoded and checked JSON; off the event loop for large bodies."""
    if len(body) > OFF_LOOP_BYTES:
        return await asyncio.to_thread(_decode, body)
    return _decode(body)
