"""The Starlette application: routes, API-key check and error handlers, nothing else."""

from __future__ import annotations

import contextlib
import hmac
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from ._errors import APIError
from ._routes import ROUTES, error_response
from ._state import ServerState
from .protocol_anthropic import error_body as anthropic_error_body

__all__ = ["create_app"]

OPEN_PATHS = frozenset({"/health"})


class ApiKeyMiddleware:
    """``Authorization: Bearer <key>`` (or Anthropic's ``x-api-key: <key>``) on every route but /health,
    compared in constant time.

    The scheme is case-insensitive (RFC 9110); more than one header of either
    kind is ambiguous and refused rather than letting one of them win; every
    credential a request sends must be the key.
    """

    def __init__(self, app: ASGIApp, api_key: str) -> None:
        self.app = app
        self.expected = api_key.encode()

    def _refusal(self, headers: list[tuple[bytes, bytes]]) -> APIError | None:
        auth = [value for name, value in headers if name.lower() == b"authorization"]
        keys = [value for name, value in headers if name.lower() == b"x-api-key"]
        if len(auth) > 1 or len(keys) > 1:
            return APIError(401, "More than one Authorization or x-api-key header: send exactly one.", code="invalid_api_key")
        tokens = list(keys)
        if auth:
            scheme, _, token = auth[0].strip().partition(b" ")
            tokens.append(token.strip() if scheme.lower() == b"bearer" else b"")
        if not tokens or not all(hmac.compare_digest(t, self.expected) for t in tokens):
            message = "Invalid or missing API key: send it as 'Authorization: Bearer <key>' or 'x-api-key: <key>'."
            return APIError(401, message, code="invalid_api_key")
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        error = self._refusal(list(scope.get("headers") or []))
        if error is not None:
            body = anthropic_error_body(401, error.message) if scope["path"].startswith("/v1/messages") else error.body()
            response = JSONResponse(body, status_code=401, headers={"WWW-Authenticate": "Bearer"})
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = {404: f"no route {request.url.path}", 405: f"method {request.method} is not allowed on {request.url.path}"}
    error = APIError(exc.status_code, message.get(exc.status_code, str(exc.detail)))
    return JSONResponse(error.body(), status_code=exc.status_code)


async def _unexpected(request: Request, exc: Exception) -> Response:
    return error_response(exc)


@contextlib.asynccontextmanager
async def _lifespan(app: Starlette) -> AsyncIterator[None]:
    """Stop the engine (and its worker processes) when the server stops."""
    try:
        yield
    finally:
        app.state.glm.engine.shutdown()


def create_app(state: ServerState) -> Starlette:
    routes = [Route(path, handler, methods=methods) for path, handler, methods in ROUTES]
    handlers: dict[Any, Any] = {HTTPException: _http_error, Exception: _unexpected}
    app = Starlette(routes=routes, exception_handlers=handlers, lifespan=_lifespan)
    app.state.glm = state
    if state.api_key:
        app.add_middleware(ApiKeyMiddleware, api_key=state.api_key)
    return app
