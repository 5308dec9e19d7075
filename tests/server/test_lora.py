"""``--lora-modules``: adapters served by name (checked before loading, listed, passed to the engine)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from glm_vllm_compat.server._lora import LoraAdapter, LoraModule, LoraModuleError, parse_lora_modules

from .conftest import LiveServer, start_server


@pytest.fixture()
def adapter(tmp_path: Path) -> Path:
    folder = tmp_path / "sql-lora"
    folder.mkdir()
    (folder / "adapter_config.json").write_text('{"r": 8}')
    return folder


def test_both_of_vllms_forms(adapter: Path) -> None:
    given = [f"sql={adapter}", json.dumps({"name": "sql2", "path": str(adapter), "base_model_name": "glm"})]
    assert parse_lora_modules(given, ["glm"], enable_lora=True) == [
        LoraModule("sql", str(adapter)),
        LoraModule("sql2", str(adapter), "glm"),
    ]
    assert parse_lora_modules(None, ["glm"], enable_lora=False) == []


@pytest.mark.parametrize(
    ("values", "enable", "message"),
    [
        (["sql={a}"], False, "needs --enable-lora"),
        (["sql"], True, "neither NAME=PATH nor a JSON object"),
        (['{"name": "x"}'], True, "takes name, path"),
        (['{"name": "x", "path": "{a}", "rank": 8}'], True, "takes name, path"),
        (["sql=/no/such/adapter"], True, "not a LoRA adapter folder"),
        (["glm={a}"], True, "already taken"),
        (["sql={a}", "sql={a}"], True, "already taken"),
        (['{"name": "x", "path": "{a}", "base_model_name": "other"}'], True, "is not a served name"),
    ],
)
def test_mistakes_are_one_line(adapter: Path, values: list[str], enable: bool, message: str) -> None:
    with pytest.raises(LoraModuleError, match=message):
        parse_lora_modules([v.replace("{a}", str(adapter)) for v in values], ["glm"], enable_lora=enable)


@pytest.fixture(scope="module")
def with_lora(tokenizers: dict[str, Any]) -> Iterator[LiveServer]:
    for live in start_server(tokenizers["glm45"], "glm45"):
        request = SimpleNamespace(lora_name="sql", lora_int_id=1, lora_path="/adapters/sql")
        live.state.engine.loras = {"sql": LoraAdapter(LoraModule("sql", "/adapters/sql"), request)}
        yield live


def test_models_lists_the_adapters(with_lora: LiveServer) -> None:
    cards = {m.id: m for m in with_lora.client().models.list().data}
    assert set(cards) == {"glm-test-glm45", "sql"}
    assert cards["sql"].model_extra["parent"] == "glm-test-glm45" and cards["sql"].model_extra["root"] == "/adapters/sql"


@pytest.mark.parametrize("stream", [False, True])
def test_requests_naming_an_adapter_carry_it(with_lora: LiveServer, stream: bool) -> None:
    client = with_lora.client()
    user = [{"role": "user", "content": "hi"}]
    for model, expected in (("sql", "sql"), ("glm-test-glm45", None)):
        with_lora.engine.script("好的")
        answer = client.chat.completions.create(model=model, messages=user, stream=stream)
        if stream:
            answer = list(answer)[-1]
        assert answer.model == model
        lora = with_lora.engine.requests[-1]["lora_request"]
        assert (lora.lora_name if lora is not None else None) == expected
    with_lora.engine.script("好的")
    client.completions.create(model="sql", prompt="hi", max_tokens=2)
    assert with_lora.engine.requests[-1]["lora_request"].lora_name == "sql"


def test_an_unknown_name_lists_the_adapters(with_lora: LiveServer) -> None:
    response = httpx.post(with_lora.url + "/v1/chat/completions", json={"model": "nope", "messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 404 and "glm-test-glm45, sql" in response.json()["error"]["message"]
