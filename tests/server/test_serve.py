"""Start-up: the GLM family and parsers, uvicorn settings from vLLM's server flags, CORS, engine-failure messages."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from glm_vllm_compat.server import _serve
from glm_vllm_compat.server._cli import build_parser
from glm_vllm_compat.server._engine import ServerEngine
from glm_vllm_compat.server._serve import engine_failure, uvicorn_config, with_cors
from glm_vllm_compat.server._server_flags import SERVER_FLAGS, resolved, server_dest
from glm_vllm_compat.server.families import UnknownFamily, get_family
from glm_vllm_compat.testing._replay import ReplayEngine


def _options(**given: Any) -> argparse.Namespace:
    values = {server_dest(f): f.default for f in SERVER_FLAGS}
    values.update(given)
    return argparse.Namespace(**values)


def _app() -> Starlette:
    async def hello(request: Any) -> PlainTextResponse:
        return PlainTextResponse("hi")

    return Starlette(routes=[Route("/v1/models", hello)])


def test_uvicorn_config_follows_the_flags() -> None:
    config = uvicorn_config(_app(), _options(port=8123, root_path="/glm", uvicorn_log_level="warning", disable_uvicorn_access_log=True, ssl_cert_reqs=2))
    assert (config.port, config.root_path, config.log_level, config.access_log, config.ssl_cert_reqs) == (8123, "/glm", "warning", False, 2)
    assert config.host == "0.0.0.0" and config.uds is None  # no --host: every interface, as vllm serve
    assert uvicorn_config(_app(), _options(host="127.0.0.1")).host == "127.0.0.1"


async def test_cors_only_with_allowed_origins() -> None:
    plain = with_cors(_app(), _options())
    assert isinstance(plain, Starlette)
    app = with_cors(_app(), _options(allowed_origins=["https://ui.example"]))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        response = await client.get("/v1/models", headers={"Origin": "https://ui.example"})
        other = await client.get("/v1/models", headers={"Origin": "https://evil.example"})
    assert response.headers["access-control-allow-origin"] == "https://ui.example"
    assert "access-control-allow-origin" not in other.headers


def test_engine_failure_is_the_root_cause_in_one_line() -> None:
    try:
        try:
            raise ValueError("User-specified max_model_len (100000) is greater\n than the derived max_model_len (4096)")
        except ValueError as inner:
            raise RuntimeError("vLLM 0.32.0 could not build an async engine for '/m': ...") from inner
    except RuntimeError as exc:
        text = engine_failure(exc)
    assert text == "vLLM could not build the engine: ValueError: User-specified max_model_len (100000) is greater than the derived max_model_len (4096)"


def test_engine_failure_without_a_cause() -> None:
    assert engine_failure(RuntimeError("Engine core initialization failed")) == "vLLM could not build the engine: Engine core initialization failed"


def test_choose_family_auto_and_explicit() -> None:
    assert _serve.choose_family("auto", ["Glm5NextForCausalLM"], None).name == "glm53"
    assert _serve.choose_family("glm5", ["Glm4MoeForCausalLM"], None).name == "glm5"
    with pytest.raises(UnknownFamily, match="valid names"):
        _serve.choose_family("glm6", [], None)


def test_choose_parsers_defaults_to_the_family_and_accepts_overrides() -> None:
    glm53 = get_family("glm53")
    assert _serve.choose_parsers("auto", "auto", glm53) == ("glm47", "glm47")
    assert _serve.choose_parsers("glm45", "none", glm53) == ("glm45", "none")
    with pytest.raises(KeyError, match="unknown tool parser 'nope'"):
        _serve.choose_parsers("nope", "auto", glm53)


def _parsed(*argv: str) -> argparse.Namespace:
    return argparse.Namespace(**resolved(build_parser([]).parse_args(list(argv))))


def test_family_flags() -> None:
    args = _parsed("m", "--glm-family", "glm53", "--default-chat-template-kwargs", '{"enable_thinking": false}')
    assert args.glm_family == "glm53"
    assert _serve._default_template_kwargs(args) == {"enable_thinking": False}
    defaults = _parsed("m")
    assert defaults.glm_family == "auto" and _serve._default_template_kwargs(defaults) == {}
    with pytest.raises(KeyError, match="JSON object"):
        _serve._default_template_kwargs(_parsed("m", "--default-chat-template-kwargs", "[1]"))


def test_build_state_uses_the_family(tokenizers: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    tokenizer = tokenizers["glm53"]

    async def create(cls: Any, model: str, names: Any, template: Any, engine_args: Any) -> ServerEngine:
        engine = ReplayEngine(tokenizer, architectures=["Glm4MoeForCausalLM"])
        return ServerEngine(engine, tokenizer, model, list(names), 512, ["Glm4MoeForCausalLM"], tokenizer.chat_template)

    monkeypatch.setattr(ServerEngine, "create", classmethod(create))
    args = _options(model="m", default_chat_template_kwargs={"reasoning_effort": "low"}, api_key=None, generation_defaults={})
    state = asyncio.run(_serve.build_state("m", args, None, {}))
    assert state.family.name == "glm53"  # from the template: Glm4Moe weights, GLM-5.3 template
    assert (state.tool_parser, state.reasoning_parser) == ("glm47", "glm47")
    vocab = tokenizer.get_vocab()
    assert list(state.engine.stop_token_ids) == [vocab[t] for t in ("<|endoftext|>", "<|user|>", "<|observation|>")]
    assert state.default_chat_template_kwargs == {"reasoning_effort": "low"}
