"""Stress a running ``glm-vllm-compat serve`` the way an attacker or a careless client would.

    python benchmarks/stress.py --url http://127.0.0.1:8200 [--api-key KEY]

Phases (each figure printed at the end, and as JSON with ``--json``):

1. ``--bad`` generated bad or odd requests over every POST endpoint
   (``/v1/chat/completions``, ``/v1/completions``, ``/v1/messages``,
   ``/v1/messages/count_tokens``, ``/v1/responses``, ``/tokenize``, ``/detokenize``;
   field mutations: huge/negative/odd-typed numbers, lone surrogates, deep
   nesting, wrong types, unknown fields, missing required fields; odd tools,
   tool schemas and structured-output constraints; raw hostile bodies), half of
   the generation ones streamed: counts responses 5xx and every error event in
   a 200 stream (client input must be refused before the first byte).
2. ``--stream-disconnects`` streams dropped after their first chunk and
   ``--plain-disconnects`` non-streamed requests dropped after 0.5 s (each in
   turn on chat, Anthropic messages and Responses); then, ``--settle`` seconds
   later, the engine requests still unfinished (``/metrics``).
3. ``--concurrent`` streams at once: how many end with ``[DONE]`` and no error.
4. A ``--big-mb`` chat request while ``/health`` is polled: the worst latency.

The server should run with long answers available (``max_tokens`` is set per
request). Used by ``tests/server/test_stress.py`` against the replay engine
(reduced sizes) and run by hand against the real engine (docs/hardening.md).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import random
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx

__all__ = ["Figures", "bad_requests", "run"]

MODEL = "glm"
"""The model name sent where a request needs one (:func:`run` uses the server's first served name)."""
USER = [{"role": "user", "content": "Tell me a long story."}]


def _nested(depth: int) -> Any:
    value: Any = {"type": "string"}
    for _ in range(depth):
        value = {"type": "object", "properties": {"a": value}}
    return value


ODD_VALUES: list[Any] = [
    None, -1, 0, 2**31, 2**63, 2**64, 10**30, -(2**70), 1.5, float("1e308"), "x", "", "\ud800", [], {}, [[[[[]]]]],
    True, [2**40], [-1], ["a"] * 1000, {"\ud800": 1}, "a" * 10_000, _nested(30), [_nested(120)], {"type": "\ud800"},
]
FIELDS = {
    "/v1/chat/completions": [
        "model", "messages", "max_tokens", "max_completion_tokens", "n", "temperature", "top_p", "top_k", "min_p", "seed",
        "stop", "stop_token_ids", "logprobs", "top_logprobs", "presence_penalty", "frequency_penalty", "repetition_penalty",
        "logit_bias", "tools", "tool_choice", "response_format", "guided_json", "guided_regex", "guided_choice",
        "guided_grammar", "structured_outputs", "stream_options", "min_tokens", "chat_template_kwargs", "functions",
        "function_call", "parallel_tool_calls", "ignore_eos", "skip_special_tokens", "user", "unknown_field",
    ],
    "/v1/completions": [
        "model", "prompt", "max_tokens", "n", "temperature", "top_k", "seed", "stop", "stop_token_ids", "logprobs", "echo",
        "suffix", "logit_bias", "guided_regex", "guided_json", "min_tokens", "unknown_field",
    ],
    "/v1/messages": [
        "model", "messages", "max_tokens", "system", "tools", "tool_choice", "thinking", "output_config", "cache_control",
        "stop_sequences", "stream", "temperature", "top_p", "top_k", "metadata", "service_tier", "structured_outputs", "unknown_field",
    ],
    "/v1/messages/count_tokens": [
        "model", "messages", "system", "tools", "tool_choice", "thinking", "output_config", "cache_control", "max_tokens", "stream",
        "unknown_field",
    ],
    "/v1/responses": [
        "model", "input", "instructions", "tools", "tool_choice", "parallel_tool_calls", "max_output_tokens", "temperature", "top_p",
        "stream", "store", "previous_response_id", "reasoning", "text", "truncation", "include", "metadata", "structured_outputs",
        "user", "service_tier", "stream_options", "background", "conversation", "prompt", "top_logprobs", "max_tool_calls",
        "context_management", "unknown_field",
    ],
    "/tokenize": ["model", "prompt", "messages", "add_special_tokens", "return_token_strs", "tools"],
    "/detokenize": ["model", "tokens"],
}
STREAMED = ("/v1/chat/completions", "/v1/completions", "/v1/messages", "/v1/responses")
"""The endpoints that take ``"stream": true``."""
SPECIAL: list[dict[str, Any]] = [
    {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]},
    {"messages": [{"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": "{bad"}}]}]},
    {"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": 5}}}},
    {"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"$ref": "#/missing"}}}},
    {"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "string", "pattern": "("}}}},
    {"guided_regex": "("}, {"guided_grammar": "root ::= ("}, {"guided_json": "{not json"}, {"guided_choice": []},
    {"guided_regex": "a+", "structured_outputs": {"regex": "a+"}},
    {"tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": {"type": "function", "function": {"name": "g"}}},
    {"logprobs": True, "top_logprobs": 21}, {"logprobs": True, "top_logprobs": -1},
    {"stop": ["a", "b", "c", "d", "e"]}, {"logit_bias": {"1": 1000}}, {"logit_bias": {"x": 1}},
]
_SCHEMA = {"type": "object", "properties": {"x": {"type": "string"}}, "required": ["x"]}
_TOOL = {"name": "f", "description": "d", "input_schema": _SCHEMA}
_ROUND_TRIP: list[dict[str, Any]] = [
    {"role": "user", "content": "q"},
    {"role": "assistant", "content": [{"type": "thinking", "thinking": "t"}, {"type": "tool_use", "id": "t1", "name": "f", "input": {"x": "1"}}]},
    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": [{"type": "text", "text": "ok"}], "is_error": True}]},
]
ODD_SCHEMAS: list[Any] = [
    {"type": 5}, {"$ref": "#/missing"}, {"type": "object", "properties": {"x": {"type": "string", "pattern": "("}}}, _nested(45),
    {"type": "object", "properties": 5}, {"type": "object", "required": ["missing"]}, {"anyOf": []}, {"enum": []}, "schema", [],
]
SPECIAL_MESSAGES: list[dict[str, Any]] = [
    {"messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "x"}}]}]},
    {"messages": [{"role": "user", "content": [{"type": "text"}]}]}, {"messages": []}, {"messages": [{"role": "system", "content": "s"}]},
    {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "prefill"}]},
    {"messages": [{"role": "assistant", "content": "a"}, {"role": "user", "content": "q"}]},
    {"messages": [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "nope", "content": "r"}]}]},
    {"messages": [{**_ROUND_TRIP[0]}, {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": "x"}]}]},
    {"messages": _ROUND_TRIP, "tools": [_TOOL]}, {"messages": _ROUND_TRIP},
    {"messages": [*_ROUND_TRIP[:2], {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": [{"type": "image"}]}]}]},
    {"tools": [{"name": "bad name!", "input_schema": {}}]}, {"tools": [_TOOL, _TOOL]}, {"tools": [{"name": "f"}]},
    {"tools": [{"type": "web_search_20250305", "name": "web_search"}]}, {"tools": [{"type": "custom", "name": "f", "input_schema": _SCHEMA}]},
    {"tools": [_TOOL], "tool_choice": {"type": "tool", "name": "g"}}, {"tool_choice": {"type": "any"}}, {"tool_choice": {"type": "tool"}},
    {"tools": [_TOOL], "tool_choice": {"type": "auto", "disable_parallel_tool_use": True}}, {"tools": [_TOOL], "tool_choice": {"type": "none"}},
    {"thinking": {"type": "enabled", "budget_tokens": 1024}}, {"thinking": {"type": "enabled", "budget_tokens": 1024}, "max_tokens": 2048},
    {"thinking": {"type": "enabled"}}, {"thinking": {"type": "between_tools"}}, {"thinking": {"type": "adaptive", "display": "omitted"}},
    {"thinking": {"type": "disabled", "budget_tokens": 2000}}, {"output_config": {"effort": "max"}},
    {"output_config": {"format": {"type": "json_schema", "schema": {"type": "object"}}}},
    {"structured_outputs": {"regex": "("}}, {"structured_outputs": {"grammar": "root ::= ("}}, {"structured_outputs": {"choice": []}},
    {"structured_outputs": {"regex": "a+"}, "output_config": {"format": {"type": "json_schema", "schema": {"type": "object"}}}},
    {"stop_sequences": [""]}, {"stop_sequences": ["a"] * 10}, {"system": [{"type": "image"}]}, {"system": [{"type": "text", "text": "s"}]},
    {"metadata": {"user_id": 5}}, {"max_tokens": 0}, {"max_tokens": 100_000}, {"top_k": -5}, {"top_k": 2**40}, {"temperature": 1.5},
]
_FUNCTION = {"type": "function", "name": "f", "description": "d", "parameters": _SCHEMA}
_CALLS: list[dict[str, Any]] = [
    {"role": "user", "content": "q"},
    {"type": "reasoning", "summary": [{"type": "summary_text", "text": "t"}]},
    {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{bad"},
    {"type": "function_call_output", "call_id": "c1", "output": [{"type": "input_text", "text": "ok"}]},
]
SPECIAL_RESPONSES: list[dict[str, Any]] = [
    {"input": []}, {"input": ""}, {"input": [{"type": "input_image", "image_url": "x"}]}, {"input": [{"type": "item_reference", "id": "x"}]},
    {"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "x"}]}]}, {"input": [{"role": "tool", "content": "x"}]},
    {"input": [{"type": "function_call_output", "call_id": "nope", "output": "r"}]}, {"input": _CALLS, "tools": [_FUNCTION]}, {"input": _CALLS},
    {"input": [{"type": "reasoning", "content": [{"type": "reasoning_text", "text": "t"}]}]}, {"input": [{"type": "message", "role": "developer", "content": "d"}]},
    {"tools": [{"type": "web_search"}]}, {"tools": [{"type": "function", "function": {"name": "f"}}]}, {"tools": [_FUNCTION, _FUNCTION]},
    {"tools": [{"type": "function", "name": "", "parameters": {}}]}, {"tools": [_FUNCTION], "tool_choice": {"type": "function", "name": "g"}},
    {"tools": [_FUNCTION], "tool_choice": {"type": "function", "name": "f"}}, {"tool_choice": "required"}, {"tools": [_FUNCTION], "parallel_tool_calls": False},
    {"text": {"format": {"type": "json_schema", "name": "x"}}}, {"text": {"format": {"type": "json_object"}}}, {"text": {"verbosity": "low"}},
    {"structured_outputs": {"regex": "("}}, {"structured_outputs": {"regex": "a+"}, "text": {"format": {"type": "json_object"}}},
    {"reasoning": {"effort": "none"}}, {"reasoning": {"effort": "xhigh", "summary": "auto"}}, {"previous_response_id": "resp_missing"},
    {"previous_response_id": "resp_missing", "input": []}, {"truncation": "auto"}, {"include": ["file_search_call.results"]},
    {"background": True}, {"conversation": "c"}, {"metadata": {"k": 5}}, {"max_output_tokens": 0}, {"max_output_tokens": 100_000},
    {"store": False}, {"instructions": "be brief", "input": [{"role": "system", "content": "s"}, {"role": "user", "content": "q"}]},
]

RAW_BODIES = [
    b"", b"null", b"[]", b"{", b"\xff\xfe\x00", b"[" * 100_000, b'{"a":' * 50_000, b'{"messages": "\\ud800"}',
    b'{"prompt": "\\udfff"}', b'{"tokens": [' + b"9" * 5000 + b"]}", b'{"prompt": [' + b"1," * 100_000 + b"1]}",
    b'{"input": "\\ud800", "model": 1}', b'{"max_tokens": 1, "messages": [{"role": "user", "content": "\\udfff"}]}',
]


def _odd_schema(path: str, schema: Any, rng: random.Random) -> dict[str, Any]:
    """A tool (or output format) whose JSON schema is odd, forced or not."""
    if path == "/v1/responses":
        tool = {"type": "function", "name": "f", "parameters": schema}
        return rng.choice([{"tools": [tool], "tool_choice": "required"}, {"tools": [tool]}, {"text": {"format": {"type": "json_schema", "name": "x", "schema": schema}}}])
    if path.startswith("/v1/messages"):
        tool = {"name": "f", "input_schema": schema}
        return rng.choice([{"tools": [tool], "tool_choice": {"type": "any"}}, {"tools": [tool]}, {"output_config": {"format": {"type": "json_schema", "schema": schema}}}])
    return {"tools": [{"type": "function", "function": {"name": "f", "parameters": schema}}], "tool_choice": "required"}


def _special(path: str, rng: random.Random) -> dict[str, Any]:
    if path == "/v1/responses":
        cases = SPECIAL_RESPONSES
    elif path.startswith("/v1/messages"):
        cases = SPECIAL_MESSAGES
    else:
        cases = SPECIAL
    if rng.random() < 0.3 and path != "/v1/completions":
        return _odd_schema(path, rng.choice(ODD_SCHEMAS), rng)
    return dict(rng.choice(cases))


def _base(path: str, model: str) -> dict[str, Any]:
    if path == "/v1/chat/completions":
        return {"messages": USER, "max_tokens": 4, "max_completion_tokens": 4}
    if path == "/v1/completions":
        return {"prompt": "Once upon a time", "max_tokens": 4}
    if path == "/v1/messages":
        return {"model": model, "messages": USER, "max_tokens": 4}
    if path == "/v1/messages/count_tokens":
        return {"model": model, "messages": USER}
    if path == "/v1/responses":
        return {"model": model, "input": "Tell me a long story.", "max_output_tokens": 4}
    if path == "/tokenize":
        return {"prompt": "hello"}
    return {"tokens": [1, 2, 3]}


def _mutated(path: str, rng: random.Random, model: str) -> dict[str, Any]:
    """A request of ``path``: special cases, then streaming on/off, odd field values, and a missing field."""
    data = _base(path, model)
    special = rng.random() < 0.25 and path.startswith("/v1/")
    if special:  # odd but often valid: mostly left unmutated, to reach the engine (and a stream's first byte)
        data.update(_special(path, rng))
    if path in STREAMED:
        mode = rng.random()
        if mode < 0.5:
            data["stream"] = True
        elif mode < 0.65:
            data["stream"] = False
    for name in rng.sample(FIELDS[path], k=min(len(FIELDS[path]), rng.choice([0, 0, 1, 2] if special else [1, 1, 2, 3]))):
        data[name] = rng.choice(ODD_VALUES)
    if data and rng.random() < 0.08:  # a required field (or any other) missing
        del data[rng.choice(sorted(data))]
    return data


def bad_requests(count: int, seed: int = 0, model: str = MODEL) -> Iterator[tuple[str, bytes]]:
    """``count`` (path, raw body) pairs, the endpoints in turn: mutated requests and raw hostile bodies."""
    rng = random.Random(seed)
    paths = list(FIELDS)
    for produced in range(count):
        path = paths[produced % len(paths)]
        if rng.random() < 0.05:
            body = rng.choice(RAW_BODIES)
        else:
            body = json.dumps(_mutated(path, rng, model), ensure_ascii=rng.random() < 0.5).encode("utf-8", "surrogatepass")
        yield path, body


@dataclass
class Figures:
    bad_requests: int = 0
    responses_5xx: int = 0
    in_stream_errors: int = 0
    """Error events (any code) in 200 streams of bad requests: input refused only after the first byte."""
    in_stream_internal_errors: int = 0
    """Those of them that report a server fault (``internal_error``, ``engine_error``, ``api_error``, ...)."""
    status_counts: dict[str, int] = field(default_factory=dict)
    status_counts_by_path: dict[str, dict[str, int]] = field(default_factory=dict)
    """The bad requests' statuses per endpoint (``"stream"`` for a 200 event stream)."""
    in_stream_errors_by_path: dict[str, int] = field(default_factory=dict)
    stream_disconnects: int = 0
    plain_disconnects: int = 0
    left_running_after_disconnects: int = -1
    engine_running_after_disconnects: int = -1
    concurrent_streams: int = 0
    streams_done: int = 0
    big_request_mb: float = 0.0
    big_request_status: int = 0
    health_max_latency_s: float = -1.0
    stream_failures: list[str] = field(default_factory=list)
    """Why streams did not end cleanly with [DONE] (first few)."""
    transport_errors: int = 0
    """Bad requests whose connection failed twice (client-side keep-alive races; not a server answer)."""
    samples_5xx: list[str] = field(default_factory=list)


_FAULTS = frozenset({"internal_error", "engine_error", "engine_dead", "server_error", "api_error", "internal_server_error", "service_unavailable"})


def _sse_events(text: str) -> Iterator[tuple[str | None, Any]]:
    """(``event:`` name or ``None``, decoded ``data:`` JSON or the raw text) per server-sent event."""
    for block in text.replace("\r\n", "\n").split("\n\n"):
        name, data = None, []
        for line in block.split("\n"):
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].removeprefix(" "))
        if name is None and not data:
            continue
        raw = "\n".join(data)
        try:
            yield name, json.loads(raw)
        except ValueError:
            yield name, raw


def _error_of(name: str | None, data: Any) -> dict[str, Any] | None:
    """The error an event reports (chat ``{"error": ...}``, Anthropic ``event: error``, Responses
    ``error`` / ``response.failed``), else ``None``."""
    payload = data if isinstance(data, dict) else {}
    kind = payload.get("type", name)
    if name == "response.failed" or kind == "response.failed":
        return dict((payload.get("response") or {}).get("error") or {"code": None})
    if isinstance(payload.get("error"), dict):
        return dict(payload["error"])
    if name == "error" or kind == "error":
        return {key: payload.get(key) for key in ("code", "type")} if payload else {"code": None}
    return None


def _stream_errors(text: str) -> tuple[int, int]:
    """(error events, of which server faults) in an event stream; Responses' ``error`` and the
    ``response.failed`` after it are one failure."""
    errors = faults = 0
    previous: dict[str, Any] | None = None
    for name, data in _sse_events(text):
        error = _error_of(name, data)
        failed = name == "response.failed" or (isinstance(data, dict) and data.get("type") == "response.failed")
        if error is not None and not (failed and previous is not None):
            errors += 1
            faults += error.get("code") in _FAULTS or error.get("type") in _FAULTS or error.get("code", error.get("type")) is None
        previous = error
    return errors, faults


def _count(figures: Figures, path: str, status: str) -> None:
    figures.status_counts[status[:3]] = figures.status_counts.get(status[:3], 0) + 1
    by_path = figures.status_counts_by_path.setdefault(path, {})
    by_path[status] = by_path.get(status, 0) + 1


async def _one_bad(client: httpx.AsyncClient, path: str, body: bytes, figures: Figures) -> None:
    for attempt in range(2):
        try:
            response = await client.post(path, content=body, headers={"content-type": "application/json"})
            break
        except httpx.TransportError:
            if attempt:
                figures.transport_errors += 1
                return
    status = response.status_code
    streamed = status == 200 and response.headers.get("content-type", "").startswith("text/event-stream")
    _count(figures, path, "200 stream" if streamed else str(status))
    if status >= 500:
        figures.responses_5xx += 1
        if len(figures.samples_5xx) < 10:
            figures.samples_5xx.append(f"{path} {body[:200]!r} -> {status} {response.text[:200]}")
    elif streamed:
        found, faults = _stream_errors(response.text)
        figures.in_stream_errors += found
        figures.in_stream_internal_errors += faults
        if found:
            figures.in_stream_errors_by_path[path] = figures.in_stream_errors_by_path.get(path, 0) + found
            if len(figures.samples_5xx) < 10:
                figures.samples_5xx.append(f"{path} {body[:200]!r} -> in-stream error {response.text[-300:]!r}")


async def _bad_phase(client: httpx.AsyncClient, count: int, figures: Figures, parallel: int, model: str) -> None:
    limit = asyncio.Semaphore(parallel)

    async def guarded(path: str, body: bytes) -> None:
        async with limit:
            await _one_bad(client, path, body, figures)

    await asyncio.gather(*(guarded(p, b) for p, b in bad_requests(count, model=model)))
    figures.bad_requests = count


DISCONNECT_PATHS = ("/v1/chat/completions", "/v1/messages", "/v1/responses")
"""The endpoints the disconnect phase drops requests on, in turn."""


def _long(path: str, stream: bool, model: str) -> dict[str, Any]:
    if path == "/v1/messages":
        return {"model": model, "messages": USER, "max_tokens": 400, "stream": stream}
    if path == "/v1/responses":
        return {"model": model, "input": USER, "max_output_tokens": 400, "stream": stream}
    return {"messages": USER, "max_tokens": 400, "ignore_eos": True, "stream": stream}


async def _drop_stream(client: httpx.AsyncClient, path: str, model: str) -> None:
    async with client.stream("POST", path, json=_long(path, True, model)) as response:
        async for _ in response.aiter_lines():
            break


async def _drop_plain(client: httpx.AsyncClient, path: str, model: str) -> None:
    try:
        await client.post(path, json=_long(path, False, model), timeout=0.5)
    except httpx.TimeoutException:
        pass


async def _metric(client: httpx.AsyncClient, name: str) -> int:
    for line in (await client.get("/metrics")).text.splitlines():
        if line.startswith(f"glm_vllm_compat_{name} "):
            return int(float(line.split()[1]))
    return -1


async def _disconnect_phase(client: httpx.AsyncClient, streams: int, plain: int, settle: float, figures: Figures, model: str) -> None:
    limit = asyncio.Semaphore(32)
    paths = DISCONNECT_PATHS

    async def bounded(make: Any, i: int) -> None:
        async with limit:
            await make(client, paths[i % len(paths)], model)

    await asyncio.gather(*(bounded(_drop_stream, i) for i in range(streams)), *(bounded(_drop_plain, i) for i in range(plain)))
    figures.stream_disconnects, figures.plain_disconnects = streams, plain
    deadline = time.monotonic() + settle
    while True:  # the figure is the count at `settle` seconds (earlier once it reaches 0)
        left = await _metric(client, "unfinished_requests")
        if left == 0 or time.monotonic() >= deadline:
            break
        await asyncio.sleep(0.25)
    figures.left_running_after_disconnects = left
    # V1 engines report scheduler counts with each engine step, so the gauge is
    # stale while the engine idles: a 1-token probe makes it take one more step.
    await client.post("/v1/completions", json={"prompt": "probe", "max_tokens": 1})
    figures.engine_running_after_disconnects = await _metric(client, "num_requests_running")


async def _full_stream(client: httpx.AsyncClient) -> str | None:
    """``None`` for a stream that ended with ``[DONE]`` and no error event, else what went wrong."""
    body = {"messages": USER, "max_tokens": 16, "stream": True}
    async with client.stream("POST", "/v1/chat/completions", json=body) as response:
        lines = [line async for line in response.aiter_lines() if line.startswith("data: ")]
    if response.status_code != 200:
        return f"HTTP {response.status_code}"
    errors = [line for line in lines if '"error"' in line]
    if errors or not lines or lines[-1] != "data: [DONE]":
        return (errors or lines or ["no events"])[-1][:200]
    return None


async def _concurrent_phase(client: httpx.AsyncClient, count: int, figures: Figures) -> None:
    results = await asyncio.gather(*(_full_stream(client) for _ in range(count)), return_exceptions=True)
    figures.concurrent_streams = count
    figures.streams_done = sum(1 for r in results if r is None)
    failures = [r if isinstance(r, str) else f"{type(r).__name__}: {r}" for r in results if r is not None]
    figures.stream_failures = failures[:5]


async def _big_phase(client: httpx.AsyncClient, megabytes: float, figures: Figures) -> None:
    text = "北京 weather " * int(megabytes * 1_000_000 / 16)
    body = json.dumps({"messages": [{"role": "user", "content": text}], "max_tokens": 4}).encode()
    figures.big_request_mb = round(len(body) / 1_000_000, 2)
    big = asyncio.ensure_future(client.post("/v1/chat/completions", content=body, headers={"content-type": "application/json"}, timeout=300))
    worst = 0.0
    while not big.done():
        started = time.monotonic()
        await client.get("/health")
        worst = max(worst, time.monotonic() - started)
        await asyncio.sleep(0.1)
    figures.big_request_status = (await big).status_code
    figures.health_max_latency_s = round(worst, 3)


async def _served_model(client: httpx.AsyncClient) -> str:
    """The server's first served name (the Anthropic API requires ``model``), else :data:`MODEL`."""
    try:
        return str((await client.get("/v1/models")).json()["data"][0]["id"])
    except (httpx.HTTPError, ValueError, LookupError, TypeError):
        return MODEL


async def run(url: str, *, api_key: str | None = None, bad: int = 2000, stream_disconnects: int = 200, plain_disconnects: int = 50,
              concurrent: int = 256, big_mb: float = 5.0, settle: float = 10.0, parallel: int = 16) -> Figures:
    """Run every phase against the server at ``url``; the figures."""
    figures = Figures()
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    limits = httpx.Limits(max_connections=concurrent + 64, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=120, limits=limits) as client:
        model = await _served_model(client)
        await _bad_phase(client, bad, figures, parallel, model)
        await _disconnect_phase(client, stream_disconnects, plain_disconnects, settle, figures, model)
        await _concurrent_phase(client, concurrent, figures)
        if big_mb:
            await _big_phase(client, big_mb, figures)
    return figures


def _report(figures: Figures) -> str:
    rows = [
        ("bad requests sent", figures.bad_requests),
        ("responses 5xx", figures.responses_5xx),
        ("error events in 200 streams (client input refused after the first byte)", figures.in_stream_errors),
        ("  of which server faults (in-stream internal errors)", figures.in_stream_internal_errors),
        ("disconnects (streamed + non-streamed)", f"{figures.stream_disconnects} + {figures.plain_disconnects}"),
        ("requests left unfinished after disconnects", figures.left_running_after_disconnects),
        ("engine-side running after disconnects (scheduler, after a 1-token probe)", figures.engine_running_after_disconnects),
        ("concurrent streams ending with [DONE]", f"{figures.streams_done}/{figures.concurrent_streams}"),
        (f"/health worst latency beside a {figures.big_request_mb} MB request (status {figures.big_request_status})", f"{figures.health_max_latency_s} s"),
        ("status counts (bad requests)", json.dumps(dict(sorted(figures.status_counts.items())))),
        *((f"  {path}", json.dumps(dict(sorted(counts.items())))) for path, counts in sorted(figures.status_counts_by_path.items())),
        ("in-stream errors by endpoint", json.dumps(figures.in_stream_errors_by_path) if figures.in_stream_errors_by_path else "none"),
        ("connection errors (after one retry)", figures.transport_errors),
        ("stream failures (first 5)", "; ".join(figures.stream_failures) or "none"),
    ]
    return "\n".join(f"{name:<72} {value}" for name, value in rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", required=True)
    p.add_argument("--api-key", default=None)
    p.add_argument("--bad", type=int, default=2000)
    p.add_argument("--stream-disconnects", type=int, default=200)
    p.add_argument("--plain-disconnects", type=int, default=50)
    p.add_argument("--concurrent", type=int, default=256)
    p.add_argument("--big-mb", type=float, default=5.0)
    p.add_argument("--settle", type=float, default=10.0)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    started = time.monotonic()
    figures = asyncio.run(run(args.url, api_key=args.api_key, bad=args.bad, stream_disconnects=args.stream_disconnects,
                              plain_disconnects=args.plain_disconnects, concurrent=args.concurrent, big_mb=args.big_mb, settle=args.settle))
    print(f"# stress run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {platform.processor() or platform.machine()}, {time.monotonic() - started:.0f} s")
    print(json.dumps(asdict(figures), indent=2) if args.json else _report(figures))
    failed = figures.responses_5xx or figures.in_stream_errors or figures.left_running_after_disconnects
    return 1 if failed or figures.streams_done != figures.concurrent_streams else 0


if __name__ == "__main__":
    sys.exit(main())
