"""The stress harness (benchmarks/stress.py) against the replay engine, reduced but real (issue 10)."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from pathlib import Path
from typing import Any

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


def test_generated_bad_requests_cover_every_endpoint() -> None:
    requests = list(_harness().bad_requests(2000))
    assert len(requests) == 2000
    assert {path for path, _ in requests} == {"/v1/chat/completions", "/v1/completions", "/tokenize", "/detokenize"}
    assert len({body for _, body in requests}) > 1500


def test_stress_figures_are_clean(tokenizers: dict[str, Any]) -> None:
    stress = _harness()
    for live in start_server(tokenizers["glm45"], "glm45", piece_delay=0.01):
        live.engine.last_script = ReplayScript(["word "] * 400)
        figures = asyncio.run(
            stress.run(live.url, bad=600, stream_disconnects=40, plain_disconnects=10, concurrent=64, big_mb=5.0, settle=10.0)
        )
        print(stress._report(figures))
        assert figures.responses_5xx == 0, figures.samples_5xx
        assert figures.in_stream_internal_errors == 0, figures.samples_5xx
        assert figures.left_running_after_disconnects == 0
        assert live.engine.get_num_unfinished_requests() == 0
        assert figures.streams_done == figures.concurrent_streams == 64
        assert figures.big_request_status in (200, 400) and 0 <= figures.health_max_latency_s < 1.0
        assert sum(figures.status_counts.values()) == 600 and figures.status_counts.get("400", 0) > 300
