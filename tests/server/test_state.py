"""Server-wide defaults held in ServerState: ``--default-chat-template-kwargs``."""

from __future__ import annotations

from typing import Any

from .conftest import LiveServer

MESSAGES = [{"role": "user", "content": "hi"}]


def _prompt(live: LiveServer, **extra: Any) -> list[int]:
    live.client().chat.completions.create(model="glm-test-glm45", messages=MESSAGES, max_tokens=2, **extra)
    return list(live.engine.requests[-1]["prompt"]["prompt_token_ids"])


def test_default_chat_template_kwargs(glm45: LiveServer) -> None:
    plain = _prompt(glm45)
    explicit_off = _prompt(glm45, extra_body={"chat_template_kwargs": {"enable_thinking": False}})
    assert plain != explicit_off
    glm45.state.default_chat_template_kwargs = {"enable_thinking": False}
    try:
        assert _prompt(glm45) == explicit_off  # the server default applies
        assert _prompt(glm45, extra_body={"chat_template_kwargs": {"enable_thinking": True}}) == plain  # the request wins
    finally:
        glm45.state.default_chat_template_kwargs = {}
