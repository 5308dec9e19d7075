"""Fixtures: the real HTTP server (uvicorn on 127.0.0.1) over the replay engine double."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from glm_vllm_compat.testing import build_tiny_model
from glm_vllm_compat.testing._replay import ReplayEngine, ReplayScript

if TYPE_CHECKING:
    from glm_vllm_compat.server._state import ServerState

# family -> (tiny checkpoint architecture, tiny template, reasoning parser). The
# GLM-4.7-Flash / GLM-5 generation run on Glm4MoeForCausalLM weights with their
# templates; the family object is given explicitly (their templates resemble 4.7's).
FAMILY_MODELS = {
    "glm4": ("Glm4ForCausalLM", "glm4", "none"),
    "glm45": ("Glm4MoeForCausalLM", "glm45", "glm45"),
    "glm47": ("Glm4MoeForCausalLM", "glm47", "glm47"),
    "glm47_flash": ("Glm4MoeForCausalLM", "glm47", "glm47"),
    "glm5": ("Glm4MoeForCausalLM", "glm5", "glm47"),
    "glm52": ("Glm4MoeForCausalLM", "glm52", "glm47"),
    "glm53": ("Glm4MoeForCausalLM", "glm53", "glm47"),
}
MAX_MODEL_LEN = 512


@pytest.fixture(scope="session")
def tokenizers() -> dict[str, Any]:
    # Only the HTTP tests (the fixtures below) need a real tokenizer; the protocol, parser and
    # pipeline tests run without transformers.
    pytest.importorskip("transformers", reason="the HTTP server tests load the tiny model's tokenizer with transformers")
    from transformers import AutoTokenizer

    from glm_vllm_compat._live import live

    live()  # import vLLM once up front: the first request must not pay for it (tests use short timeouts)
    out = {}
    for family, (arch, template, _) in FAMILY_MODELS.items():
        out[family] = AutoTokenizer.from_pretrained(str(build_tiny_model(arch, family=template)))
    return out


@dataclass
class LiveServer:
    url: str
    engine: ReplayEngine
    state: ServerState
    family: str

    def client(self, **kwargs: Any) -> Any:
        import openai

        return openai.OpenAI(base_url=self.url + "/v1", api_key=self.state.api_key or "unused", max_retries=0, timeout=30, **kwargs)

    def async_client(self) -> Any:
        import openai

        return openai.AsyncOpenAI(base_url=self.url + "/v1", api_key=self.state.api_key or "unused", max_retries=0, timeout=30)


def _serve(app: Any) -> tuple[str, Any, threading.Thread]:
    uvicorn = pytest.importorskip("uvicorn")

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start within 20 s")
        time.sleep(0.02)
    return f"http://127.0.0.1:{port}", server, thread


def start_server(tokenizer: Any, family: str, *, api_key: str | None = None, piece_delay: float = 0.0) -> Iterator[LiveServer]:
    from glm_vllm_compat.server._app import create_app
    from glm_vllm_compat.server._engine import ServerEngine
    from glm_vllm_compat.server._state import ServerState
    from glm_vllm_compat.server.families import get_family

    arch, _, reasoning = FAMILY_MODELS[family]
    engine = ReplayEngine(tokenizer, max_model_len=MAX_MODEL_LEN, architectures=[arch], piece_delay=piece_delay)
    server_engine = ServerEngine(
        engine=engine,
        tokenizer=tokenizer,
        model_path=f"/models/tiny-{family}",
        served_names=[f"glm-test-{family}"],
        max_model_len=MAX_MODEL_LEN,
        architectures=[arch],
        chat_template=tokenizer.chat_template,
        stop_token_ids=get_family(family).stop_token_ids(tokenizer),
    )
    state = ServerState(server_engine, get_family(family), api_key=api_key)
    assert state.reasoning_parser == reasoning
    url, server, thread = _serve(create_app(state))
    try:
        yield LiveServer(url, engine, state, family)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module", params=sorted(FAMILY_MODELS))
def server(request: pytest.FixtureRequest, tokenizers: dict[str, Any]) -> Iterator[LiveServer]:
    yield from start_server(tokenizers[request.param], request.param)


@pytest.fixture(scope="module")
def glm45(tokenizers: dict[str, Any]) -> Iterator[LiveServer]:
    yield from start_server(tokenizers["glm45"], "glm45")


@pytest.fixture(scope="module")
def glm4(tokenizers: dict[str, Any]) -> Iterator[LiveServer]:
    yield from start_server(tokenizers["glm4"], "glm4")


@pytest.fixture(scope="module")
def glm47(tokenizers: dict[str, Any]) -> Iterator[LiveServer]:
    yield from start_server(tokenizers["glm47"], "glm47")


@pytest.fixture(scope="module")
def glm53(tokenizers: dict[str, Any]) -> Iterator[LiveServer]:
    yield from start_server(tokenizers["glm53"], "glm53")


@pytest.fixture(scope="module")
def glm5(tokenizers: dict[str, Any]) -> Iterator[LiveServer]:
    yield from start_server(tokenizers["glm5"], "glm5")


@pytest.fixture(autouse=True)
def _clean_engine(request: pytest.FixtureRequest) -> None:
    for name in ("server", "glm45", "glm4", "glm47", "glm53", "glm5"):
        if name in request.fixturenames:
            live: LiveServer = request.getfixturevalue(name)
            live.engine.scripts.clear()
            live.engine.last_script = ReplayScript(["Hello", "!"])
            live.engine.requests.clear()
            live.engine.aborted.clear()
