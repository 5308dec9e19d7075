"""Start-up helpers: uvicorn settings from vLLM's server flags, CORS, engine-failure messages."""

from __future__ import annotations

import argparse
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from glm_vllm_compat.server._serve import engine_failure, uvicorn_config, with_cors
from glm_vllm_compat.server._server_flags import SERVER_FLAGS, server_dest


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
    assert config.host == "127.0.0.1" and config.uds is None


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
