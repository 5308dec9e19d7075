"""Tiny random LoRA adapters for the tiny GLM checkpoints (``--lora-modules`` tests).

A PEFT-format folder (``adapter_config.json`` + ``adapter_model.safetensors``)
with rank-``r`` ``lora_A``/``lora_B`` pairs on the attention projections of every
layer, drawn from a seeded generator, large enough to change greedy output.
Written next to the tiny models (``default_cache_dir()``), rebuilt only when
missing. Layouts with separate ``q_proj``/``k_proj``/``v_proj``/``o_proj``
(``Glm4ForCausalLM``, ``GlmForCausalLM``, ``Glm4MoeForCausalLM``) only.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import tempfile
import zlib
from typing import Any

from ._tiny_model import _write_safetensors, default_cache_dir

__all__ = ["build_tiny_lora"]

TARGETS = ("q_proj", "v_proj", "o_proj")
_LAYOUTS = ("Glm4ForCausalLM", "GlmForCausalLM", "Glm4MoeForCausalLM")


def _shapes(config: dict[str, Any], module: str) -> tuple[int, int]:
    """(in, out) features of an attention projection."""
    hidden = int(config["hidden_size"])
    heads = int(config["num_attention_heads"])
    head_dim = int(config.get("head_dim") or hidden // heads)
    kv = int(config.get("num_key_value_heads") or heads) * head_dim
    return {"q_proj": (hidden, heads * head_dim), "k_proj": (hidden, kv), "v_proj": (hidden, kv), "o_proj": (heads * head_dim, hidden)}[module]


def build_tiny_lora(base: str | os.PathLike[str], *, rank: int = 8, scale: float = 0.5, cache_dir: str | os.PathLike[str] | None = None) -> pathlib.Path:
    """A LoRA adapter for the tiny checkpoint at ``base``; returns its folder."""
    import numpy as np

    base = pathlib.Path(base)
    config = json.loads((base / "config.json").read_text())
    if not set(config.get("architectures") or ()) & set(_LAYOUTS):
        raise ValueError(f"tiny LoRA adapters are written for {', '.join(_LAYOUTS)}, not {config.get('architectures')}")
    root = pathlib.Path(cache_dir) if cache_dir is not None else default_cache_dir()
    target = root / f"lora-{base.name}-r{rank}"
    if (target / "adapter_model.safetensors").is_file():
        return target
    rng = np.random.default_rng([rank, zlib.crc32(base.name.encode())])
    tensors = []
    for layer in range(int(config["num_hidden_layers"])):
        for module in TARGETS:
            fan_in, fan_out = _shapes(config, module)
            prefix = f"base_model.model.model.layers.{layer}.self_attn.{module}"
            for part, shape in (("lora_A", (rank, fan_in)), ("lora_B", (fan_out, rank))):
                values = rng.standard_normal(shape, dtype=np.float32) * np.float32(scale)
                tensors.append((f"{prefix}.{part}.weight", "F32", shape, values.astype("<f4").tobytes()))
    adapter = {"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": rank, "lora_alpha": 2 * rank, "lora_dropout": 0.0,
               "target_modules": list(TARGETS), "bias": "none", "fan_in_fan_out": False, "modules_to_save": None,
               "base_model_name_or_path": str(base)}
    root.mkdir(parents=True, exist_ok=True)
    tmp = pathlib.Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=root))
    try:
        (tmp / "adapter_config.json").write_text(json.dumps(adapter, indent=2) + "\n")
        _write_safetensors(tmp / "adapter_model.safetensors", tensors)
        try:
            tmp.rename(target)
        except OSError:  # a concurrent build won
            pass
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
