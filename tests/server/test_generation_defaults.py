"""``--generation-config``: the model's sampling defaults, and where the server applies them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from glm_vllm_compat.server._generation_defaults import GenerationConfigError, generation_defaults

from .conftest import LiveServer, start_server

GLM_FILE = {"do_sample": True, "temperature": 0.6, "top_p": 0.95, "top_k": 40, "eos_token_id": [1, 2], "max_new_tokens": 300}


@pytest.fixture()
def model(tmp_path: Path) -> Path:
    (tmp_path / "generation_config.json").write_text(json.dumps(GLM_FILE))
    return tmp_path


def test_auto_reads_the_models_sampling_fields(model: Path) -> None:
    assert generation_defaults(str(model)) == {"temperature": 0.6, "top_p": 0.95, "top_k": 40, "max_tokens": 300}


def test_vllm_means_none(model: Path) -> None:
    assert generation_defaults(str(model), "vllm") == {}


def test_folder_path_reads_that_file(model: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    other = tmp_path_factory.mktemp("other")
    (other / "generation_config.json").write_text('{"temperature": 0.1, "repetition_penalty": 1.1, "min_p": 0.05}')
    assert generation_defaults(str(model), str(other)) == {"temperature": 0.1, "min_p": 0.05, "repetition_penalty": 1.1}


def test_overrides_win(model: Path) -> None:
    assert generation_defaults(str(model), "auto", {"temperature": 1.0, "top_k": None})["temperature"] == 1.0


def test_no_file_no_defaults(tmp_path: Path) -> None:
    assert generation_defaults(str(tmp_path)) == {}
    assert generation_defaults("zai-org/GLM-4.5-Air") == {}  # a hub id: nothing local to read


@pytest.mark.parametrize(("content", "message"), [("{", "cannot be read as JSON"), ("[1]", "not a JSON object")])
def test_broken_file_is_an_error(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "generation_config.json").write_text(content)
    with pytest.raises(GenerationConfigError, match=message):
        generation_defaults(str(tmp_path))


# --- applied by the server (replay engine) -------------------------------------------------------


@pytest.fixture()
def glm45_defaults(tokenizers: dict[str, Any]) -> Iterator[LiveServer]:
    for live in start_server(tokenizers["glm45"], "glm45"):
        live.state.generation_defaults = generation_defaults("/", "auto", {"temperature": 0.6, "top_p": 0.95, "max_new_tokens": 7})
        yield live


def _sent(live: LiveServer) -> Any:
    return live.engine.requests[-1]["sampling_params"]


def test_unset_fields_take_the_models_defaults(glm45_defaults: LiveServer) -> None:
    client = glm45_defaults.client()
    messages = [{"role": "user", "content": "hi"}]
    client.chat.completions.create(model="glm-test-glm45", messages=messages, seed=7)
    plain = _sent(glm45_defaults)
    client.chat.completions.create(model="glm-test-glm45", messages=messages, seed=7, temperature=0.6, top_p=0.95)
    explicit = _sent(glm45_defaults)
    assert (plain.temperature, plain.top_p, plain.max_tokens) == (0.6, 0.95, 7)
    assert repr(plain) == repr(explicit)  # same seed, same parameters: the same output on a real engine


def test_request_values_win_over_defaults(glm45_defaults: LiveServer) -> None:
    glm45_defaults.client().chat.completions.create(
        model="glm-test-glm45", messages=[{"role": "user", "content": "hi"}], temperature=0.3, max_tokens=3
    )
    sent = _sent(glm45_defaults)
    assert (sent.temperature, sent.top_p, sent.max_tokens) == (0.3, 0.95, 3)


def test_completions_default_to_16_tokens(glm45: LiveServer) -> None:
    glm45.engine.script("x" * 40)
    out = glm45.client().completions.create(model="glm-test-glm45", prompt="Once")
    assert _sent(glm45).max_tokens == 16
    assert out.usage.completion_tokens == 16 and out.choices[0].finish_reason == "length"


def test_chat_defaults_to_the_context_limit(glm45: LiveServer) -> None:
    glm45.client().chat.completions.create(model="glm-test-glm45", messages=[{"role": "user", "content": "hi"}])
    sent = _sent(glm45)
    assert sent.max_tokens > 400  # MAX_MODEL_LEN 512 minus the prompt
    assert (sent.temperature, sent.top_p) == (1.0, 1.0)  # no generation config: vLLM's neutral defaults
