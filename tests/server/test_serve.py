"""Start-up: choosing the GLM family and parsers from the flags and the model."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from glm_vllm_compat.server import _serve
from glm_vllm_compat.server._cli import build_parser
from glm_vllm_compat.server._engine import ServerEngine
from glm_vllm_compat.server.families import UnknownFamily, get_family
from glm_vllm_compat.testing._replay import ReplayEngine


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


def test_flags() -> None:
    args = build_parser().parse_args(["m", "--glm-family", "glm53", "--default-chat-template-kwargs", '{"enable_thinking": false}'])
    assert args.glm_family == "glm53"
    assert _serve._default_template_kwargs(args) == {"enable_thinking": False}
    defaults = build_parser().parse_args(["m"])
    assert defaults.glm_family == "auto" and _serve._default_template_kwargs(defaults) == {}
    with pytest.raises(KeyError, match="JSON object"):
        _serve._default_template_kwargs(build_parser().parse_args(["m", "--default-chat-template-kwargs", "[1]"]))


def test_build_state_uses_the_family(tokenizers: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    tokenizer = tokenizers["glm53"]

    async def create(cls: Any, model: str, names: Any, template: Any, engine_args: Any) -> ServerEngine:
        engine = ReplayEngine(tokenizer, architectures=["Glm4MoeForCausalLM"])
        return ServerEngine(engine, tokenizer, model, list(names), 512, ["Glm4MoeForCausalLM"], tokenizer.chat_template)

    monkeypatch.setattr(ServerEngine, "create", classmethod(create))
    args = build_parser().parse_args(["m", "--default-chat-template-kwargs", '{"reasoning_effort": "low"}'])
    state = asyncio.run(_serve.build_state("m", args, None, {}))
    assert state.family.name == "glm53"  # from the template: Glm4Moe weights, GLM-5.3 template
    assert (state.tool_parser, state.reasoning_parser) == ("glm47", "glm47")
    vocab = tokenizer.get_vocab()
    assert list(state.engine.stop_token_ids) == [vocab[t] for t in ("<|endoftext|>", "<|user|>", "<|observation|>")]
    assert state.default_chat_template_kwargs == {"reasoning_effort": "low"}
