"""Stress a running ``glm-vllm-compat serve`` the way an attacker or a careless client would.

    python benchmarks/stress.py --url http://127.0.0.1:8200 [--api-key KEY]

Phases (each figure printed at the end, and as JSON with ``--json``):

1. ``--bad`` generated bad or odd requests over every endpoint (field mutations:
   huge/negative/odd-typed numbers, lone surrogates, nesting, wrong types,
   unknown fields; raw hostile bodies), half of the generation ones streamed:
   counts responses 5xx and streams carrying an in-stream internal error.
2. ``--stream-disconnects`` streams dropped after their first chunk and
   ``--plain-disconnects`` non-streamed requests dropped after 0.5 s; then,
   ``--settle`` seconds later, the engine requests still unfinished (``/metrics``).
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

USER = [{"role": "user", "content": "Tell me a long story."}]
ODD_VALUES: list[Any] = [
    None, -1, 0, 2**31, 2**63, 2**64, 10**30, -(2**70), 1.5, float("1e308"), "x", "", "\ud800", [], {}, [[[[[]]]]],
    True, [2**40], [-1], ["a"] * 1000, {"\ud800": 1}, "a" * 10_000,
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
    "/tokenize": ["model", "prompt", "messages", "add_special_tokens", "return_token_strs", "tools"],
    "/detokenize": ["model", "tokens"],
}
SPECIAL = [
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
RAW_BODIES = [
    b"", b"null", b"[]", b"{", b"\xff\xfe\x00", b"[" * 100_000, b'{"a":' * 50_000, b'{"messages": "\\ud800"}',
    b'{"prompt": "\\udfff"}', b'{"tokens": [' + b"9" * 5000 + b"]}", b'{"prompt": [' + b"1," * 100_000 + b"1]}",
]


def _base(path: str) -> dict[str, Any]:
    if path == "/v1/chat/completions":
        return {"messages": USER, "max_tokens": 4, "max_completion_tokens": 4}
    if path == "/v1/completions":
        return {"prompt": "Once upon a time", "max_tokens": 4}
    if path == "/tokenize":
        return {"prompt": "hello"}
    return {"tokens": [1, 2, 3]}


def bad_requests(count: int, seed: int = 0) -> Iterator[tuple[str, bytes]]:
    """``count`` (path, raw body) pairs: field mutations, special cases and raw hostile bodies."""
    rng = random.Random(seed)
    paths = list(FIELDS)
    produced = 0
    while produced < count:
        path = paths[produced % len(paths)]
        kind = rng.random()
        if kind < 0.05:
            body = rng.choice(RAW_BODIES)
        else:
            data = _base(path)
            if kind < 0.15 and path.startswith("/v1/"):
                data.update(rng.choice(SPECIAL))
            for name in rng.sample(FIELDS[path], k=min(len(FIELDS[path]), rng.choice([1, 1, 2, 3]))):
                data[name] = rng.choice(ODD_VALUES)
            if path.startswith("/v1/") and rng.random() < 0.5:
                data["stream"] = True
            body = json.dumps(data, ensure_ascii=rng.random() < 0.5).encode("utf-8", "surrogatepass")
        produced += 1
        yield path, body


@dataclass
class Figures:
    bad_requests: int = 0
    responses_5xx: int = 0
    in_stream_internal_errors: int = 0
    status_counts: dict[str, int] = field(default_factory=dict)
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


def _stream_errors(text: str) -> int:
    errors = 0
    for line in text.splitlines():
        if line.startswith("data: {") and '"error"' in line:
            code = json.loads(line[6:]).get("error", {}).get("code")
            errors += code in ("internal_error", "engine_error", None)
    return errors


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
    figures.status_counts[str(status)] = figures.status_counts.get(str(status), 0) + 1
    if status >= 500:
        figures.responses_5xx += 1
        if len(figures.samples_5xx) < 10:
            figures.samples_5xx.append(f"{path} {body[:200]!r} -> {status} {response.text[:200]}")
    elif status == 200 and response.headers.get("content-type", "").startswith("text/event-stream"):
        found = _stream_errors(response.text)
        figures.in_stream_internal_errors += found
        if found and len(figures.samples_5xx) < 10:
            figures.samples_5xx.append(f"{path} {body[:200]!r} -> in-stream error")


async def _bad_phase(client: httpx.AsyncClient, count: int, figures: Figures, parallel: int) -> None:
    limit = asyncio.Semaphore(parallel)

    async def guarded(path: str, body: bytes) -> None:
        async with limit:
            await _one_bad(client, path, body, figures)

    await asyncio.gather(*(guarded(p, b) for p, b in bad_requests(count)))
    figures.bad_requests = count


def _long(stream: bool) -> dict[str, Any]:
    return {"messages": USER, "max_tokens": 400, "ignore_eos": True, "stream": stream}


async def _drop_stream(client: httpx.AsyncClient) -> None:
    async with client.stream("POST", "/v1/chat/completions", json=_long(True)) as response:
        async for _ in response.aiter_lines():
            break


async def _drop_plain(client: httpx.AsyncClient) -> None:
    try:
        await client.post("/v1/chat/completions", json=_long(False), timeout=0.5)
    except httpx.TimeoutException:
        pass


async def _metric(client: httpx.AsyncClient, name: str) -> int:
    for line in (await client.get("/metrics")).text.splitlines():
        if line.startswith(f"glm_vllm_compat_{name} "):
            return int(float(line.split()[1]))
    return -1


async def _disconnect_phase(client: httpx.AsyncClient, streams: int, plain: int, settle: float, figures: Figures) -> None:
    limit = asyncio.Semaphore(32)

    async def bounded(make: Any) -> None:
        async with limit:
            await make(client)

    await asyncio.gather(*(bounded(_drop_stream) for _ in range(streams)), *(bounded(_drop_plain) for _ in range(plain)))
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


async def run(url: str, *, api_key: str | None = None, bad: int = 2000, stream_disconnects: int = 200, plain_disconnects: int = 50,
              concurrent: int = 256, big_mb: float = 5.0, settle: float = 10.0, parallel: int = 16) -> Figures:
    """Run every phase against the server at ``url``; the figures."""
    figures = Figures()
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    limits = httpx.Limits(max_connections=concurrent + 64, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=120, limits=limits) as client:
        await _bad_phase(client, bad, figures, parallel)
        await _disconnect_phase(client, stream_disconnects, plain_disconnects, settle, figures)
        await _concurrent_phase(client, concurrent, figures)
        if big_mb:
            await _big_phase(client, big_mb, figures)
    return figures


def _report(figures: Figures) -> str:
    rows = [
        ("bad requests sent", figures.bad_requests),
        ("responses 5xx", figures.responses_5xx),
        ("in-stream internal errors", figures.in_stream_internal_errors),
        ("disconnects (streamed + non-streamed)", f"{figures.stream_disconnects} + {figures.plain_disconnects}"),
        ("requests left unfinished after disconnects", figures.left_running_after_disconnects),
        ("engine-side running after disconnects (scheduler, after a 1-token probe)", figures.engine_running_after_disconnects),
        ("concurrent streams ending with [DONE]", f"{figures.streams_done}/{figures.concurrent_streams}"),
        (f"/health worst latency beside a {figures.big_request_mb} MB request (status {figures.big_request_status})", f"{figures.health_max_latency_s} s"),
        ("status counts (bad requests)", json.dumps(dict(sorted(figures.status_counts.items())))),
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
    failed = figures.responses_5xx or figures.in_stream_internal_errors or figures.left_running_after_disconnects
    return 1 if failed or figures.streams_done != figures.concurrent_streams else 0


if __name__ == "__main__":
    sys.exit(main())
