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


# --------------------------------------------------------------------------
# On the live server
# --------------------------------------------------------------------------

import threading  # noqa: E402
import time  # noqa: E402
from collections.abc import Iterator  # noqa: E402

import httpx  # noqa: E402

from .conftest import LiveServer, start_server  # noqa: E402


@pytest.fixture(scope="module")
def capped(tokenizers: dict[str, Any]) -> Iterator[LiveServer]:
    for live in start_server(tokenizers["glm45"], "glm45"):
        live.state.max_request_body_bytes = 1000
        yield live


def test_body_over_the_cap_is_413(capped: LiveServer) -> None:
    big = {"messages": [{"role": "user", "content": "x" * 2000}]}
    response = httpx.post(capped.url + "/v1/chat/completions", json=big, timeout=10)
    assert response.status_code == 413 and response.json()["error"]["code"] == "request_too_large"

    def chunks() -> Iterator[bytes]:  # no Content-Length: the cap applies while reading
        yield b'{"prompt": "'
        for _ in range(10):
            yield b"y" * 200
        yield b'"}'

    response = httpx.post(capped.url + "/tokenize", content=chunks(), timeout=10)
    assert response.status_code == 413
    assert httpx.post(capped.url + "/tokenize", json={"prompt": "ok"}, timeout=10).status_code == 200


@pytest.mark.parametrize(("path", "make"), [
    ("/v1/chat/completions", lambda text: {"messages": [{"role": "user", "content": text}]}),
    ("/tokenize", lambda text: {"prompt": text}),
])
def test_health_answers_beside_a_5mb_request(glm45: LiveServer, path: str, make: Any) -> None:
    """Issue 10 item 3: /health took 30 s while a 5 MB chat body was tokenized on the event loop."""
    body = json.dumps(make("北京 weather " * 400_000)).encode()
    assert len(body) > 5_000_000
    done: list[int] = []
    worker = threading.Thread(target=lambda: done.append(httpx.post(glm45.url + path, content=body, timeout=120).status_code))
    worker.start()
    latencies = []
    time.sleep(0.3)
    while worker.is_alive() and len(latencies) < 40:
        started = time.monotonic()
        assert httpx.get(glm45.url + "/health", timeout=5).status_code == 200
        latencies.append(time.monotonic() - started)
        time.sleep(0.1)
    worker.join()
    assert done and done[0] in (200, 400)  # 400: the prompt is longer than the context
    assert latencies and max(latencies) < 1.0, latencies
