"""The tiny random-weight GLM checkpoints: files, tokenizer, templates, cache.

No vLLM here (the engine tests load these models for real).  transformers is
used where installed, to prove the directories load the way a real checkpoint
does; jinja2 (the server's own dependency) renders the templates otherwise.
"""

from __future__ import annotations

import json
import os
import pathlib
import struct
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from glm_vllm_compat.testing import _tiny_model as tm
from glm_vllm_compat.testing._tiny_model import (
    TINY_ARCHS,
    TINY_FAMILIES,
    build_tiny_model,
    default_cache_dir,
    main,
)

pytest.importorskip(
    "tokenizers", reason="the tiny-model builder needs `tokenizers` ([tiny] extra)"
)
pytest.importorskip(
    "numpy", reason="the tiny-model builder needs `numpy` ([tiny] extra)"
)

FILES = (
    "config.json",
    "generation_config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "chat_template.jinja",
    tm.MARKER,
)
GLM4_SPECIAL = [
    "<|endoftext|>", "[MASK]", "[gMASK]", "[sMASK]", "<sop>", "<eop>", "<|system|>",
    "<|user|>", "<|assistant|>", "<|observation|>", "<|begin_of_image|>", "<|end_of_image|>",
]  # fmt: skip
GLM45_NOT_SPECIAL = [
    "<think>", "</think>", "<tool_call>", "</tool_call>", "<tool_response>",
    "</tool_response>", "<arg_key>", "</arg_key>", "<arg_value>", "</arg_value>", "/nothink",
]  # fmt: skip
CHINESE = [
    "你好",
    "北京今天的天气怎么样？",
    "床前明月光，疑是地上霜。",
    "龘靐齉 😀 ünïcødé mixed 中文 text",
]

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "查询天气",
            "parameters": {
                "type": "object",
                "properties": {
                    "location": {"type": "string"},
                    "days": {"type": "integer"},
                },
                "required": ["location"],
            },
        },
    }
]
TOOL_HISTORY: list[dict[str, Any]] = [
    {"role": "system", "content": "你是助手"},
    {"role": "user", "content": "北京和上海天气？"},
    {
        "role": "assistant",
        "content": "",
        "reasoning_content": "用户想查天气",
        "tool_calls": [
            {"id": "c1", "type": "function",
             "function": {"name": "get_weather", "arguments": {"location": "北京"}}},
            {"id": "c2", "type": "function",
             "function": {"name": "get_weather", "arguments": {"location": "上海", "days": 2}}},
        ],
    },
    {"role": "tool", "tool_call_id": "c1", "content": "晴 22度"},
    {"role": "tool", "tool_call_id": "c2", "content": "雨 18度"},
]  # fmt: skip
GLM45_TOOLS_BLOCK = (
    "<|system|>\n# Tools\n\nYou may call one or more functions to assist with the user query."
    "\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>\n"
    + json.dumps(TOOLS[0], ensure_ascii=False)
    + "\n</tools>\n\nFor each function call, output the function name and arguments within "
    "the following XML format:\n"
)


# --------------------------------------------------------------------------- helpers

#: The Hugging Face layouts; ChatGLMModel (glm-4-9b-chat's own) is covered by test_tiny_chatglm.py.
HF_ARCHS = [arch for arch in TINY_ARCHS if arch != "ChatGLMModel"]


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pathlib.Path]:
    """Every architecture with its own family, plus the extra template families."""
    root = tmp_path_factory.mktemp("tiny-models")
    built = {arch: build_tiny_model(arch, cache_dir=root) for arch in TINY_ARCHS}
    built["glm47"] = build_tiny_model("Glm4ForCausalLM", family="glm47", cache_dir=root)
    built["glm4_9b"] = build_tiny_model(
        "GlmForCausalLM", family="glm4_9b", cache_dir=root
    )
    return built


def _json(path: pathlib.Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _safetensors_header(path: pathlib.Path) -> dict[str, Any]:
    with open(path, "rb") as fh:
        (size,) = struct.unpack("<Q", fh.read(8))
        header: dict[str, Any] = json.loads(fh.read(size))
    return header


def _render(model: pathlib.Path, messages: list[dict[str, Any]], **kwargs: Any) -> str:
    """Render chat_template.jinja the way transformers does (same jinja settings)."""
    jinja2 = pytest.importorskip("jinja2")
    from jinja2.ext import loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def tojson(
        x: Any, ensure_ascii: bool = False, indent: Any = None, **kw: Any
    ) -> str:
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, **kw)

    def raise_exception(message: str) -> None:
        raise jinja2.exceptions.TemplateError(message)

    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols]
    )
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    template = env.from_string(
        (model / "chat_template.jinja").read_text(encoding="utf-8")
    )
    kwargs.setdefault("add_generation_prompt", True)
    return str(template.render(messages=messages, **kwargs))


def _tokenizer(model: pathlib.Path) -> Any:
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(model / "tokenizer.json"))


# --------------------------------------------------------------------------- API surface


def test_arch_table_matches_the_families() -> None:
    assert TINY_ARCHS == {
        "GlmForCausalLM": "glm4",
        "Glm4ForCausalLM": "glm4",
        "Glm4MoeForCausalLM": "glm45",
        "ChatGLMModel": "glm4_9b",
    }
    assert {"glm4", "glm45", "glm47"} <= set(TINY_FAMILIES)


def test_importing_the_module_imports_nothing_heavy() -> None:
    code = (
        "import sys, glm_vllm_compat; before = set(sys.modules); "
        "import glm_vllm_compat.testing._tiny_model; "
        "heavy = ('numpy', 'tokenizers', 'torch', 'transformers', 'vllm', 'jinja2'); "
        "print(sorted(n for n in set(sys.modules) - before if n.split('.')[0] in heavy))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    "kwargs",
    [{"arch": "LlamaForCausalLM"}, {"family": "glm99"}, {"dtype": "float16"}],
    ids=["arch", "family", "dtype"],
)
def test_unknown_choices_are_rejected(
    tmp_path: pathlib.Path, kwargs: dict[str, str]
) -> None:
    arch = kwargs.get("arch", "Glm4ForCausalLM")
    with pytest.raises(ValueError, match="unknown"):
        build_tiny_model(
            arch,
            family=kwargs.get("family"),
            dtype=kwargs.get("dtype", "float32"),
            cache_dir=tmp_path,
        )


def test_default_cache_dir_precedence(
    monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path
) -> None:
    monkeypatch.delenv("GLM_VLLM_COMPAT_CACHE", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "glm-vllm-compat"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "glm-vllm-compat"
    monkeypatch.setenv("GLM_VLLM_COMPAT_CACHE", str(tmp_path / "explicit"))
    assert default_cache_dir() == tmp_path / "explicit"
    path = build_tiny_model("Glm4ForCausalLM")
    assert path.parent == tmp_path / "explicit"


# --------------------------------------------------------------------------- files


@pytest.mark.parametrize("arch", list(TINY_ARCHS))
def test_directory_layout_and_name(models: dict[str, pathlib.Path], arch: str) -> None:
    path = models[arch]
    assert path.name.startswith(f"{arch}-")
    for name in FILES:
        assert (path / name).is_file(), name
    assert models["glm47"].name.startswith("Glm4ForCausalLM-glm47-")


@pytest.mark.parametrize(
    ("arch", "model_type"),
    [
        ("GlmForCausalLM", "glm"),
        ("Glm4ForCausalLM", "glm4"),
        ("Glm4MoeForCausalLM", "glm4_moe"),
    ],
)
def test_config_and_generation_config(
    models: dict[str, pathlib.Path], arch: str, model_type: str
) -> None:
    path = models[arch]
    config = _json(path / "config.json")
    tok = _tokenizer(path)
    stop_ids = [
        tok.token_to_id(t) for t in ("<|endoftext|>", "<|user|>", "<|observation|>")
    ]
    assert config["architectures"] == [arch]
    assert config["model_type"] == model_type
    assert (
        config["hidden_size"],
        config["num_attention_heads"],
        config["head_dim"],
    ) == (128, 4, 32)
    assert config["num_hidden_layers"] == 2
    assert config["partial_rotary_factor"] == 0.5
    assert config["torch_dtype"] == "float32"
    assert config["vocab_size"] == tok.get_vocab_size(with_added_tokens=True)
    assert 1000 < config["vocab_size"] < 5000
    assert config["eos_token_id"] == stop_ids
    assert config["pad_token_id"] == stop_ids[0]
    generation = _json(path / "generation_config.json")
    assert generation == {"eos_token_id": stop_ids, "pad_token_id": stop_ids[0]}
    if arch == "Glm4MoeForCausalLM":
        assert config["n_routed_experts"] == 4
        assert config["num_experts_per_tok"] == 2
        assert config["first_k_dense_replace"] == 1


def _expected_names(arch: str) -> set[str]:
    names = {"model.embed_tokens.weight", "model.norm.weight", "lm_head.weight"}
    for i in range(2):
        p = f"model.layers.{i}"
        for proj in ("q", "k", "v"):
            names |= {
                f"{p}.self_attn.{proj}_proj.weight",
                f"{p}.self_attn.{proj}_proj.bias",
            }
        names |= {f"{p}.self_attn.o_proj.weight", f"{p}.input_layernorm.weight"}
        names.add(f"{p}.post_attention_layernorm.weight")
        if arch == "Glm4ForCausalLM":
            names |= {
                f"{p}.post_self_attn_layernorm.weight",
                f"{p}.post_mlp_layernorm.weight",
            }
        if arch != "Glm4MoeForCausalLM":
            names |= {f"{p}.mlp.gate_up_proj.weight", f"{p}.mlp.down_proj.weight"}
            continue
        names |= {f"{p}.self_attn.q_norm.weight", f"{p}.self_attn.k_norm.weight"}
        mlps = [f"{p}.mlp"] if i == 0 else [f"{p}.mlp.experts.{e}" for e in range(4)]
        if i > 0:
            mlps.append(f"{p}.mlp.shared_experts")
            names |= {f"{p}.mlp.gate.weight", f"{p}.mlp.gate.e_score_correction_bias"}
        for m in mlps:
            names |= {f"{m}.{proj}_proj.weight" for proj in ("gate", "up", "down")}
    return names


@pytest.mark.parametrize("arch", HF_ARCHS)
def test_weights_use_the_real_checkpoint_names(
    models: dict[str, pathlib.Path], arch: str
) -> None:
    header = _safetensors_header(models[arch] / "model.safetensors")
    assert header.pop("__metadata__") == {"format": "pt"}
    assert set(header) == _expected_names(arch)
    config = _json(models[arch] / "config.json")
    assert header["model.embed_tokens.weight"]["shape"] == [config["vocab_size"], 128]
    assert header["model.layers.0.self_attn.k_proj.weight"]["shape"] == [2 * 32, 128]
    for name, info in header.items():
        assert info["dtype"] == "F32", name
    if arch != "Glm4MoeForCausalLM":
        assert header["model.layers.0.mlp.gate_up_proj.weight"]["shape"] == [512, 128]


def test_weights_load_with_safetensors(models: dict[str, pathlib.Path]) -> None:
    numpy_st = pytest.importorskip("safetensors.numpy")
    tensors = numpy_st.load_file(
        str(models["Glm4MoeForCausalLM"] / "model.safetensors")
    )
    bias = tensors["model.layers.1.mlp.gate.e_score_correction_bias"]
    assert str(bias.dtype) == "float32" and not bias.any()
    norm = tensors["model.norm.weight"]
    assert 0.9 < float(norm.mean()) < 1.1
    weight = tensors["model.layers.0.self_attn.q_proj.weight"]
    assert 0.01 < float(weight.std()) < 0.03


def test_bfloat16_variant(tmp_path: pathlib.Path) -> None:
    path = build_tiny_model("Glm4MoeForCausalLM", dtype="bfloat16", cache_dir=tmp_path)
    header = _safetensors_header(path / "model.safetensors")
    assert header["model.embed_tokens.weight"]["dtype"] == "BF16"
    assert header["model.layers.1.mlp.gate.e_score_correction_bias"]["dtype"] == "F32"
    assert _json(path / "config.json")["torch_dtype"] == "bfloat16"


# --------------------------------------------------------------------------- tokenizer


@pytest.mark.parametrize("arch", list(TINY_ARCHS))
def test_special_tokens_and_flags(models: dict[str, pathlib.Path], arch: str) -> None:
    path = models[arch]
    added = {t["content"]: t for t in _json(path / "tokenizer.json")["added_tokens"]}
    decoder = _json(path / "tokenizer_config.json")["added_tokens_decoder"]
    for text in GLM4_SPECIAL:
        assert added[text]["special"] is True, text
        assert decoder[str(added[text]["id"])] == {
            **decoder[str(added[text]["id"])],
            "special": True,
        }
    ids = [added[t]["id"] for t in GLM4_SPECIAL]
    assert ids == list(range(ids[0], ids[0] + len(ids)))  # consecutive, in GLM's order
    if (
        arch == "Glm4MoeForCausalLM"
    ):  # GLM-4.5: reasoning/tool tags are added, not special
        for text in GLM45_NOT_SPECIAL:
            assert added[text]["special"] is False, text
            assert decoder[str(added[text]["id"])]["special"] is False, text
        assert len(added) == 36  # 151329..151364 in the real tokenizer
    else:  # GLM-4 has only the 14 special tokens; "<think>" is plain text
        assert len(added) == 14
        assert "<think>" not in added


def test_tokenizer_config(models: dict[str, pathlib.Path]) -> None:
    cfg = _json(models["Glm4MoeForCausalLM"] / "tokenizer_config.json")
    assert cfg["tokenizer_class"] == "PreTrainedTokenizerFast"
    assert cfg["eos_token"] == cfg["pad_token"] == "<|endoftext|>"
    template = (models["Glm4MoeForCausalLM"] / "chat_template.jinja").read_text(
        encoding="utf-8"
    )
    assert cfg["chat_template"] == template
    assert template.startswith("[gMASK]<sop>")  # the provenance comment is stripped


@pytest.mark.parametrize("text", CHINESE)
def test_chinese_round_trips(models: dict[str, pathlib.Path], text: str) -> None:
    tok = _tokenizer(models["Glm4MoeForCausalLM"])
    ids = tok.encode(text, add_special_tokens=False).ids
    assert tok.decode(ids, skip_special_tokens=False) == text


def test_common_chinese_is_compact(models: dict[str, pathlib.Path]) -> None:
    tok = _tokenizer(models["Glm4ForCausalLM"])
    assert len(tok.encode("你好", add_special_tokens=False).ids) == 1
    assert len(tok.encode("北京今天的天气怎么样？", add_special_tokens=False).ids) <= 6


def test_special_tokens_are_single_ids_and_skippable(
    models: dict[str, pathlib.Path],
) -> None:
    tok = _tokenizer(models["Glm4MoeForCausalLM"])
    text = "[gMASK]<sop><|user|>\n你好<|assistant|>\n<think>嗯</think>\n<tool_call>f\n</tool_call>"
    enc = tok.encode(text, add_special_tokens=False)
    assert enc.tokens[:3] == ["[gMASK]", "<sop>", "<|user|>"]
    assert "<think>" in enc.tokens and "<tool_call>" in enc.tokens
    assert tok.decode(enc.ids, skip_special_tokens=False) == text
    skipped = tok.decode(enc.ids, skip_special_tokens=True)
    assert skipped == "\n你好\n<think>嗯</think>\n<tool_call>f\n</tool_call>"


def test_no_bos_is_added(models: dict[str, pathlib.Path]) -> None:
    tok = _tokenizer(models["Glm4ForCausalLM"])
    assert tok.encode("你好", add_special_tokens=True).tokens == ["ä½łå¥½"]


# --------------------------------------------------------------------------- build/cache


def _tree(path: pathlib.Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(path.iterdir())}


@pytest.mark.parametrize("arch", list(TINY_ARCHS))
def test_builds_are_byte_identical(tmp_path: pathlib.Path, arch: str) -> None:
    first = build_tiny_model(arch, cache_dir=tmp_path / "a")
    second = build_tiny_model(arch, cache_dir=tmp_path / "b")
    assert first.name == second.name
    assert _tree(first) == _tree(second)


def test_architectures_get_different_weights(models: dict[str, pathlib.Path]) -> None:
    def embedding(path: pathlib.Path) -> bytes:
        header = _safetensors_header(path / "model.safetensors")
        start, _end = header["model.embed_tokens.weight"]["data_offsets"]
        return (path / "model.safetensors").read_bytes()[start : start + 64]

    assert embedding(models["GlmForCausalLM"]) != embedding(models["Glm4ForCausalLM"])


def test_second_build_reuses_the_cache(tmp_path: pathlib.Path) -> None:
    messages: list[str] = []
    first = build_tiny_model(
        "Glm4ForCausalLM", cache_dir=tmp_path, progress=messages.append
    )
    assert any(m.startswith("building") for m in messages)
    stamp = (first / "model.safetensors").stat().st_mtime_ns
    messages.clear()
    second = build_tiny_model(
        "Glm4ForCausalLM", cache_dir=tmp_path, progress=messages.append
    )
    assert second == first
    assert messages == [f"using cached Glm4ForCausalLM (glm4) at {first}"]
    assert (first / "model.safetensors").stat().st_mtime_ns == stamp


def test_force_rebuilds(tmp_path: pathlib.Path) -> None:
    first = build_tiny_model("Glm4ForCausalLM", cache_dir=tmp_path)
    (first / "config.json").write_text("{}")
    messages: list[str] = []
    again = build_tiny_model(
        "Glm4ForCausalLM", cache_dir=tmp_path, force=True, progress=messages.append
    )
    assert again == first
    assert any(m.startswith("building") for m in messages)
    assert _json(again / "config.json")["model_type"] == "glm4"


def test_interrupted_build_is_redone(tmp_path: pathlib.Path) -> None:
    path = build_tiny_model("Glm4MoeForCausalLM", cache_dir=tmp_path)
    # An interrupted build: files present, no marker (it is written last).
    (path / tm.MARKER).unlink()
    (path / "model.safetensors").write_bytes(b"truncated")
    messages: list[str] = []
    again = build_tiny_model(
        "Glm4MoeForCausalLM", cache_dir=tmp_path, progress=messages.append
    )
    assert again == path
    assert any(m.startswith("building") for m in messages)
    assert (path / tm.MARKER).is_file()
    assert _safetensors_header(path / "model.safetensors")["__metadata__"] == {
        "format": "pt"
    }
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary dirs left


def test_killed_build_leaves_no_target(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*_args: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(tm, "_write_safetensors", boom)
    with pytest.raises(KeyboardInterrupt):
        build_tiny_model("Glm4ForCausalLM", cache_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []  # the half-written temporary dir is removed
    monkeypatch.undo()
    assert (
        build_tiny_model("Glm4ForCausalLM", cache_dir=tmp_path) / tm.MARKER
    ).is_file()


# --------------------------------------------------------------------------- templates


@pytest.mark.parametrize("arch", ["GlmForCausalLM", "Glm4ForCausalLM"])
def test_glm4_user_message(models: dict[str, pathlib.Path], arch: str) -> None:
    rendered = _render(models[arch], [{"role": "user", "content": "你好"}])
    assert rendered == "[gMASK]<sop><|user|>\n你好<|assistant|>"


def test_glm4_tools_metadata_and_observation(models: dict[str, pathlib.Path]) -> None:
    messages = [
        {"role": "system", "content": "你是助手"},
        {"role": "user", "content": "北京天气？"},
        {
            "role": "assistant",
            "metadata": "get_weather",
            "content": '{"location": "北京"}',
        },
        {"role": "observation", "content": '{"weather": "晴"}'},
    ]
    rendered = _render(models["Glm4ForCausalLM"], messages, tools=TOOLS)
    function_json = json.dumps(TOOLS[0]["function"], indent=4, ensure_ascii=False)
    assert rendered == (
        "[gMASK]<sop><|system|>\n# 可用工具\n\n## get_weather\n\n"
        + function_json
        + "\n在调用上述函数时，请使用 Json 格式表示调用的参数。"
        "<|system|>\n你是助手<|user|>\n北京天气？"
        '<|assistant|>get_weather \n{"location": "北京"}'
        '<|observation|>\n{"weather": "晴"}<|assistant|>'
    )


def test_glm4_drops_the_openai_tool_role(models: dict[str, pathlib.Path]) -> None:
    messages = [{"role": "user", "content": "q"}, {"role": "tool", "content": "result"}]
    assert (
        _render(models["Glm4ForCausalLM"], messages)
        == "[gMASK]<sop><|user|>\nq<|assistant|>"
    )
    # ... while the glm-4-9b-chat template prints a token that does not exist.
    assert "<|tool|>\nresult" in _render(models["glm4_9b"], messages)


def test_glm45_tools_history_and_results(models: dict[str, pathlib.Path]) -> None:
    rendered = _render(models["Glm4MoeForCausalLM"], TOOL_HISTORY, tools=TOOLS)
    assert rendered == (
        "[gMASK]<sop>"
        + GLM45_TOOLS_BLOCK
        + "<tool_call>{function-name}\n<arg_key>{arg-key-1}</arg_key>\n"
        "<arg_value>{arg-value-1}</arg_value>\n<arg_key>{arg-key-2}</arg_key>\n"
        "<arg_value>{arg-value-2}</arg_value>\n...\n</tool_call>"
        "<|system|>\n你是助手<|user|>\n北京和上海天气？<|assistant|>\n<think>用户想查天气</think>"
        "\n<tool_call>get_weather\n<arg_key>location</arg_key>\n<arg_value>北京</arg_value>\n"
        "</tool_call>\n<tool_call>get_weather\n<arg_key>location</arg_key>\n"
        "<arg_value>上海</arg_value>\n<arg_key>days</arg_key>\n<arg_value>2</arg_value>\n"
        "</tool_call><|observation|>\n<tool_response>\n晴 22度\n</tool_response>"
        "\n<tool_response>\n雨 18度\n</tool_response><|assistant|>"
    )


def test_glm45_thinking_switch(models: dict[str, pathlib.Path]) -> None:
    user = [{"role": "user", "content": "你好"}]
    path = models["Glm4MoeForCausalLM"]
    assert _render(path, user) == "[gMASK]<sop><|user|>\n你好<|assistant|>"
    assert (
        _render(path, user, enable_thinking=True)
        == "[gMASK]<sop><|user|>\n你好<|assistant|>"
    )
    assert _render(path, user, enable_thinking=False) == (
        "[gMASK]<sop><|user|>\n你好/nothink<|assistant|>\n<think></think>"
    )


def test_glm45_reasoning_only_after_the_last_user_turn(
    models: dict[str, pathlib.Path],
) -> None:
    messages = [
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": "b", "reasoning_content": "old"},
        {"role": "user", "content": "c"},
    ]
    assert _render(models["Glm4MoeForCausalLM"], messages) == (
        "[gMASK]<sop><|user|>\na<|assistant|>\n<think></think>\nb<|user|>\nc<|assistant|>"
    )


def test_glm47_prompt_and_tool_calls(models: dict[str, pathlib.Path]) -> None:
    path = models["glm47"]
    user = [{"role": "user", "content": "你好"}]
    assert _render(path, user) == "[gMASK]<sop><|user|>你好<|assistant|><think>"
    assert _render(path, user, enable_thinking=False).endswith("<|assistant|></think>")
    rendered = _render(path, TOOL_HISTORY, tools=TOOLS)
    assert rendered.endswith(
        "<|system|>你是助手<|user|>北京和上海天气？<|assistant|><think>用户想查天气</think>"
        "<tool_call>get_weather<arg_key>location</arg_key><arg_value>北京</arg_value></tool_call>"
        "<tool_call>get_weather<arg_key>location</arg_key><arg_value>上海</arg_value>"
        "<arg_key>days</arg_key><arg_value>2</arg_value></tool_call>"
        "<|observation|><tool_response>晴 22度</tool_response>"
        "<tool_response>雨 18度</tool_response><|assistant|><think>"
    )
    assert "<tool_call>{function-name}<arg_key>{arg-key-1}</arg_key>" in rendered


def test_template_files_name_their_source() -> None:
    for template, _tokens in TINY_FAMILIES.values():
        text = (tm._TEMPLATE_DIR / template).read_text(encoding="utf-8")
        assert text.startswith("{#-") and "Source:" in text.split("-#}")[0]


# --------------------------------------------------------------------------- transformers


@pytest.fixture(scope="module")
def transformers_mod() -> Iterator[Any]:
    pytest.importorskip("torch", reason="loading with transformers needs torch")
    yield pytest.importorskip("transformers", reason="transformers is not installed")


@pytest.mark.parametrize("arch", HF_ARCHS)
def test_transformers_loads_every_weight(
    models: dict[str, pathlib.Path], transformers_mod: Any, arch: str
) -> None:
    model, info = transformers_mod.AutoModelForCausalLM.from_pretrained(
        str(models[arch]), output_loading_info=True
    )
    assert type(model).__name__ == arch
    assert {
        k: v for k, v in info.items() if v
    } == {}  # nothing missing/unexpected/mismatched
    tokenizer = transformers_mod.AutoTokenizer.from_pretrained(str(models[arch]))
    assert tokenizer.eos_token == "<|endoftext|>"
    ids = tokenizer.apply_chat_template(
        [{"role": "user", "content": "你好"}], add_generation_prompt=True, return_dict=True,
        return_tensors="pt",
    )  # fmt: skip
    out = model.generate(**ids, max_new_tokens=4, do_sample=False)
    assert out.shape[-1] == ids["input_ids"].shape[-1] + 4


@pytest.mark.parametrize("key", ["Glm4ForCausalLM", "Glm4MoeForCausalLM", "glm47"])
def test_transformers_renders_like_jinja(
    models: dict[str, pathlib.Path], transformers_mod: Any, key: str
) -> None:
    tokenizer = transformers_mod.AutoTokenizer.from_pretrained(str(models[key]))
    messages = TOOL_HISTORY if key != "Glm4ForCausalLM" else TOOL_HISTORY[:2]
    for extra in ({}, {"enable_thinking": False}):
        expected = _render(models[key], messages, tools=TOOLS, **extra)
        rendered = tokenizer.apply_chat_template(
            messages, tools=TOOLS, tokenize=False, add_generation_prompt=True, **extra
        )
        assert rendered == expected
        ids = tokenizer(rendered, add_special_tokens=False)["input_ids"]
        assert tokenizer.decode(ids) == rendered


# --------------------------------------------------------------------------- CLI


def test_cli_builds_and_prints_paths(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(["Glm4ForCausalLM", "--family", "glm47", "--cache-dir", str(tmp_path)])
        == 0
    )
    out, err = capsys.readouterr()
    path = pathlib.Path(out.strip())
    assert path.parent == tmp_path and path.name.startswith("Glm4ForCausalLM-glm47-")
    assert "building" in err
    assert main(["--cache-dir", str(tmp_path), "-q"]) == 0
    out, err = capsys.readouterr()
    assert [pathlib.Path(p).name.split("-")[0] for p in out.split()] == list(TINY_ARCHS)
    assert err == ""


def test_cli_rejects_unknown_arch(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["NopeForCausalLM"])
    assert exc.value.code == 2
    assert "unknown architecture" in capsys.readouterr().err


def test_module_runs_as_a_script(tmp_path: pathlib.Path) -> None:
    env = {**os.environ, "GLM_VLLM_COMPAT_CACHE": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-m", "glm_vllm_compat.testing._tiny_model", "Glm4ForCausalLM", "-q"],
        capture_output=True, text=True, check=True, env=env,
    )  # fmt: skip
    assert pathlib.Path(out.stdout.strip()).parent == tmp_path
