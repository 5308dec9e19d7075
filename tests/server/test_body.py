"""Request bodies: size cap, nesting depth and lone surrogates (no RecursionError, no encoder crash)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from glm_vllm_compat.server._body import MAX_JSON_DEPTH, check_json, decode_json
from glm_vllm_compat.server._errors import APIError


def _decode(body: bytes) -> Any:
    return asyncio.run(decode_json(body))


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        (b"[" * 100_000, None, "invalid_json"),
        (b'{"a": ' + b"[" * 5_000 + b"]" * 5_000 + b"}", None, "invalid_json"),
        (json.dumps({"x": [[[[1]]]]}).encode().replace(b"[[[[1]]]]", b"[" * (MAX_JSON_DEPTH + 5) + b"]" * (MAX_JSON_DEPTH + 5)), "x[0][0]", "invalid_json"),
        (b'{"messages": [{"role": "user", "content": "a\\ud800b"}]}', "messages[0].content", "invalid_unicode"),
        (b'{"stop": ["\\udfff"]}', "stop[0]", "invalid_unicode"),
        (b'{"\\ud800": 1}', None, "invalid_unicode"),
        (b"{not json", None, "invalid_json"),
        (b"\xff\xfe", None, "invalid_json"),
    ],
)
def test_hostile_bodies_are_400(body: bytes, param: str | None, code: str) -> None:
    with pytest.raises(APIError) as info:
        _decode(body)
    assert info.value.status == 400 and info.value.code == code
    assert info.value.param == param


def test_valid_surrogate_pairs_and_deep_enough_json_pass() -> None:
    assert _decode(b'{"content": "\\ud83d\\ude00"}') == {"content": "\U0001f600"}
    nested: Any = 1
    for _ in range(MAX_JSON_DEPTH - 1):
        nested = [nested]
    check_json(nested)


def test_large_bodies_are_decoded_off_the_loop() -> None:
    body = json.dumps({"prompt": "x" * 200_000}).encode()
    assert len(_decode(body)["prompt"]) == 200_000
