"""The stress harness (benchmarks/stress.py) against the replay engine, reduced but real (issue 10)."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

from glm_vllm_compat.testing._replay import ReplayScript

from .conftest import start_server

HARNESS = Path(__file__).resolve().parents[2] / "benchmarks" / "stress.py"


def _harness() -> Any:
    spec = importlib.util.spec_from_file_location("glm_stress", HARNESS)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


ENDPOINTS = {
    "/v1/chat/completions", "/v1/completions", "/v1/messages", "/v1/messages/count_tokens", "/v1/responses", "/tokenize", "/detokenize",
}
STREAMED = {"/v1/chat/completions", "/v1/completions", "/v1/messages", "/v1/responses"}


def test_generated_bad_requests_cover_every_endpoint() -> None:
    from glm_vllm_compat.server._routes import ROUTES

    stress = _harness()
    requests = list(stress.bad_requests(2000))
    assert len(requests) == 2000
    assert {path for path, _ in requests} == ENDPOINTS == {path for path, _, methods in ROUTES if "POST" in methods}
    assert set(stress.STREAMED) == STREAMED and set(stress.DISCONNECT_PATHS) == {"/v1/chat/completions", "/v1/messages", "/v1/responses"}
    for path in STREAMED:
        bodies = [body for p, body in requests if p == path]
        assert sum(b'"stream": true' in body for body in bodies) > 80 and sum(b'"stream": false' in body for body in bodies) > 20, path
    anthropic = [body for p, body in requests if p == "/v1/messages"]
    assert sum(b'"max_tokens"' not in body for body in anthropic) > 5  # the required field missing
    assert len({body for _, body in requests}) > 1500


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('data: {"choices": []}\n\ndata: {"error": {"code": "invalid_value", "type": "invalid_request_error"}}\n\ndata: [DONE]\n\n', (1, 0)),
        ('data: {"error": {"code": "internal_error", "type": "internal_server_error"}}\n\ndata: [DONE]\n\n', (1, 1)),
        ('event: message_start\ndata: {"type": "message_start"}\n\nevent: error\ndata: {"type": "error", "error": {"type": "invalid_request_error"}}\n\n', (1, 0)),
        ('event: error\ndata: {"type": "error", "error": {"type": "api_error", "message": "m"}}\n\n', (1, 1)),
        (
            'event: response.created\ndata: {"type": "response.created", "response": {"error": null}}\n\n'
            'event: error\ndata: {"type": "error", "code": "invalid_value", "message": "m"}\n\n'
            'event: response.failed\ndata: {"type": "response.failed", "response": {"error": {"code": "invalid_value"}}}\n\n',
            (1, 0),
        ),
        ('event: response.failed\ndata: {"type": "response.failed", "response": {"error": {"code": "server_error"}}}\n\n', (1, 1)),
        ('event: response.completed\ndata: {"type": "response.completed", "response": {"error": null}}\n\n', (0, 0)),
        ('data: {"choices": [{"delta": {"content": "error"}}]}\n\ndata: [DONE]\n\n', (0, 0)),
    ],
)
def test_every_error_event_in_a_stream_counts(text: str, expected: tuple[int, int]) -> None:
    assert _harness()._stream_errors(text) == expected


def test_stress_figures_are_clean(tokenizers: dict[str, Any]) -> None:
    stress = _harness()
    for live in start_server(tokenizers["glm45"], "glm45", piece_delay=0.01):
        live.engine.last_script = ReplayScript(["word "] * 400)
        figures = asyncio.run(
            stress.run(live.url, bad=600, stream_disconnects=40, plain_disconnects=10, concurrent=64, big_mb=5.0, settle=10.0)
        )
        print(stress._report(figures))
        assert figures.responses_5xx == 0, figures.samples_5xx
        assert figures.in_stream_errors == 0 and figures.in_stream_internal_errors == 0, figures.samples_5xx
        assert figures.in_stream_errors_by_path == {}
        assert figures.left_running_after_disconnects == 0
        assert live.engine.get_num_unfinished_requests() == 0
        assert figures.streams_done == figures.concurrent_streams == 64
        assert figures.big_request_status in (200, 400) and 0 <= figures.health_max_latency_s < 1.0
        assert sum(figures.status_counts.values()) == 600 and figures.status_counts.get("400", 0) > 300
        by_path = figures.status_counts_by_path
        assert set(by_path) == ENDPOINTS
        for path in ENDPOINTS:  # every endpoint refused some input and answered some
            assert by_path[path].get("400", 0) > 0 and by_path[path].get("200", 0) + by_path[path].get("200 stream", 0) > 0, (path, by_path[path])
        for path in STREAMED:
            assert by_path[path].get("200 stream", 0) > 0, (path, by_path[path])
