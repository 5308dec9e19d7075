"""The tiny ChatGLMModel checkpoint (glm-4-9b-chat's own layout) that vLLM 0.4 - 0.6 load."""

from __future__ import annotations

import json
import pathlib
import struct
import sys
from typing import Any

import pytest

from glm_vllm_compat.testing import TINY_ARCHS, build_tiny_model
from glm_vllm_compat.testing._tiny_chatglm import CHATGLM_DIMS

pytest.importorskip("tokenizers")
pytest.importorskip("numpy")

GLM4_SPECIAL = ("<|endoftext|>", "[MASK]", "[gMASK]", "[sMASK]", "<sop>", "<eop>",
                "<|system|>", "<|user|>", "<|assistant|>", "<|observation|>")  # fmt: skip

# Every field vLLM 0.4 - 0.6's chatglm.py (and its ChatGLMConfig) reads, with glm-4-9b-chat's
# value where the tiny model keeps it (None: shrunk, checked separately).
VLLM_FIELDS: dict[str, Any] = {
    "num_layers": None, "padded_vocab_size": None, "hidden_size": None, "ffn_hidden_size": None,
    "kv_channels": None, "num_attention_heads": None, "multi_query_attention": True,
    "multi_query_group_num": 2, "layernorm_epsilon": 1.5625e-07, "rmsnorm": True,
    "post_layer_norm": True, "apply_residual_connection_post_layernorm": False,
    "add_bias_linear": False, "add_qkv_bias": True, "hidden_dropout": 0.0, "rope_ratio": 500,
    "seq_length": None, "tie_word_embeddings": False, "fp32_residual_connection": False,
}  # fmt: skip


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    return build_tiny_model("ChatGLMModel", cache_dir=tmp_path_factory.mktemp("chatglm"))


def _json(path: pathlib.Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _header(path: pathlib.Path) -> dict[str, Any]:
    with open(path, "rb") as fh:
        (size,) = struct.unpack("<Q", fh.read(8))
        header: dict[str, Any] = json.loads(fh.read(size))
    header.pop("__metadata__")
    return header


def _added(model: pathlib.Path) -> dict[str, int]:
    tok = _json(model / "tokenizer.json")
    return {t["content"]: t["id"] for t in tok["added_tokens"]}


def test_registered_with_the_glm4_9b_chat_template() -> None:
    assert TINY_ARCHS["ChatGLMModel"] == "glm4_9b"


def test_config_identity_and_remote_code_map(model: pathlib.Path) -> None:
    config = _json(model / "config.json")
    assert config["architectures"] == ["ChatGLMModel"]
    assert config["model_type"] == "chatglm"
    assert config["auto_map"] == {"AutoConfig": "configuration_chatglm.ChatGLMConfig"}
    assert (model / "configuration_chatglm.py").is_file()
    assert config["torch_dtype"] == "float32"


@pytest.mark.parametrize("field", sorted(VLLM_FIELDS))
def test_config_has_every_field_vllm_reads(model: pathlib.Path, field: str) -> None:
    config = _json(model / "config.json")
    assert field in config
    if VLLM_FIELDS[field] is not None:
        assert config[field] == VLLM_FIELDS[field]


def test_head_dim_is_64_for_the_old_cpu_attention(model: pathlib.Path) -> None:
    config = _json(model / "config.json")
    assert config["hidden_size"] // config["num_attention_heads"] == 64 == config["kv_channels"]
    assert {k: config[k] for k in CHATGLM_DIMS} == CHATGLM_DIMS


def test_vocab_stop_ids_and_generation_config(model: pathlib.Path) -> None:
    config, added = _json(model / "config.json"), _added(model)
    tok = _json(model / "tokenizer.json")
    assert config["padded_vocab_size"] == len(tok["model"]["vocab"]) + len(added)  # every id decodes
    stops = [added[t] for t in ("<|endoftext|>", "<|user|>", "<|observation|>")]
    assert config["eos_token_id"] == stops
    assert _json(model / "generation_config.json") == {"eos_token_id": stops, "pad_token_id": added["<|endoftext|>"]}


def _expected_weights(config: dict[str, Any]) -> dict[str, list[int]]:
    hidden, ffn, vocab = config["hidden_size"], config["ffn_hidden_size"], config["padded_vocab_size"]
    qkv = hidden + 2 * config["multi_query_group_num"] * 64
    out = {
        "transformer.embedding.word_embeddings.weight": [vocab, hidden],
        "transformer.encoder.final_layernorm.weight": [hidden],
        "transformer.output_layer.weight": [vocab, hidden],
    }
    for i in range(config["num_layers"]):
        p = f"transformer.encoder.layers.{i}"
        out.update({
            f"{p}.input_layernorm.weight": [hidden],
            f"{p}.self_attention.query_key_value.weight": [qkv, hidden],
            f"{p}.self_attention.query_key_value.bias": [qkv],
            f"{p}.self_attention.dense.weight": [hidden, hidden],
            f"{p}.post_attention_layernorm.weight": [hidden],
            f"{p}.mlp.dense_h_to_4h.weight": [2 * ffn, hidden],
            f"{p}.mlp.dense_4h_to_h.weight": [hidden, ffn],
        })  # fmt: skip
    return out


def test_weights_have_glm4_9b_chat_names_and_shapes(model: pathlib.Path) -> None:
    header = _header(model / "model.safetensors")
    expected = _expected_weights(_json(model / "config.json"))
    assert {name: info["shape"] for name, info in header.items()} == expected
    assert {info["dtype"] for info in header.values()} == {"F32"}


def test_weights_load_and_are_not_degenerate(model: pathlib.Path) -> None:
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    tensors = safetensors_numpy.load_file(str(model / "model.safetensors"))
    norm = tensors["transformer.encoder.final_layernorm.weight"]
    assert abs(float(norm.mean()) - 1.0) < 0.05
    qkv = tensors["transformer.encoder.layers.0.self_attention.query_key_value.weight"]
    assert 0.005 < float(qkv.std()) < 0.05


def test_glm4_special_tokens_in_order(model: pathlib.Path) -> None:
    added = _added(model)
    ids = [added[t] for t in GLM4_SPECIAL]
    assert ids == list(range(ids[0], ids[0] + len(GLM4_SPECIAL)))
    assert list(added)[: len(GLM4_SPECIAL)] == list(GLM4_SPECIAL)


def test_tokenizer_config_loads_without_remote_code(model: pathlib.Path) -> None:
    config = _json(model / "tokenizer_config.json")
    assert config["tokenizer_class"] == "PreTrainedTokenizerFast"
    assert "auto_map" not in config
    assert config["eos_token"] == "<|endoftext|>"
    assert config["chat_template"] == (model / "chat_template.jinja").read_text(encoding="utf-8")


def test_chat_template_renders_the_glm4_9b_chat_prompt(model: pathlib.Path) -> None:
    jinja2 = pytest.importorskip("jinja2")
    template = _json(model / "tokenizer_config.json")["chat_template"]
    text = jinja2.Environment().from_string(template).render(
        messages=[{"role": "user", "content": "你好"}], add_generation_prompt=True
    )
    assert text == "[gMASK]<sop><|user|>\n你好<|assistant|>"


def test_project_config_class_reads_the_checkpoint(model: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("transformers")
    monkeypatch.syspath_prepend(str(model))
    sys.modules.pop("configuration_chatglm", None)
    from configuration_chatglm import ChatGLMConfig  # type: ignore[import-not-found]

    config = ChatGLMConfig.from_pretrained(str(model))
    raw = _json(model / "config.json")
    assert config.model_type == "chatglm"
    assert (config.num_layers, config.num_hidden_layers) == (raw["num_layers"], raw["num_layers"])
    assert config.padded_vocab_size == raw["padded_vocab_size"] == config.vocab_size
    assert (config.kv_channels, config.multi_query_group_num, config.rope_ratio) == (64, 2, 500)
    sys.modules.pop("configuration_chatglm", None)


def test_builds_are_byte_identical(tmp_path: pathlib.Path) -> None:
    a = build_tiny_model("ChatGLMModel", cache_dir=tmp_path / "a")
    b = build_tiny_model("ChatGLMModel", cache_dir=tmp_path / "b")
    assert a.name == b.name and a.name.startswith("ChatGLMModel-")
    for f in sorted(p.name for p in a.iterdir()):
        assert (a / f).read_bytes() == (b / f).read_bytes(), f
