"""The tiny ``ChatGLMModel`` checkpoint: GLM-4-9B-chat's own layout, random weights.

vLLM 0.4 - 0.6 serve GLM-4-9B-chat through ``ChatGLMModel`` (``model_type:
chatglm``, the layout of THUDM's original repository), not through the
``GlmForCausalLM`` of the later ``-hf`` conversion.  This module writes that
layout in miniature, for :func:`glm_vllm_compat.testing.build_tiny_model`
(``build_tiny_model("ChatGLMModel")``):

* ``config.json`` with the fields vLLM's ``chatglm.py`` reads (``num_layers``,
  ``padded_vocab_size``, ``kv_channels``, ``multi_query_group_num``,
  ``rope_ratio``, ``add_qkv_bias`` ...) and GLM-4-9B-chat's switches
  (``add_qkv_bias`` true, RMSNorm, post layer norm, grouped-query attention with
  2 groups), shrunk to 2 layers of hidden 256 with 4 heads of **64** - the
  smallest head size the CPU paged attention of vLLM 0.4.3 - 0.6.x accepts;
* an ``auto_map`` to ``configuration_chatglm.ChatGLMConfig``, a config class this
  project writes (:data:`CONFIG_SOURCE`; no remote-code file of any model
  repository is copied).  vLLM up to 0.5.x first calls
  ``AutoConfig.from_pretrained(trust_remote_code=True)``, so the checkpoint
  needs one; vLLM then swaps in its own ``ChatGLMConfig``;
* the weight names of the original checkpoint (``transformer.embedding.
  word_embeddings``, ``transformer.encoder.layers.{i}.self_attention.
  query_key_value`` with bias, ``mlp.dense_h_to_4h`` holding gate and up,
  ``transformer.output_layer`` ...);
* the GLM-4 tokenizer's special tokens in their order and the glm-4-9b-chat chat
  template (family ``glm4_9b``), on the project's byte-level BPE.  The real
  tokenizer is remote code over tiktoken; vLLM only needs a tokenizer that
  ``AutoTokenizer`` loads, so a ``PreTrainedTokenizerFast`` serves.

``padded_vocab_size`` equals the tokenizer's size: every id the random model can
sample decodes.
"""

from __future__ import annotations

from typing import Any

__all__ = ["CHATGLM_ARCH", "CHATGLM_DIMS", "CONFIG_SOURCE", "chatglm_config", "chatglm_tensor_specs"]

CHATGLM_ARCH = "ChatGLMModel"

#: The checkpoint's shape.  head_dim = hidden_size // num_attention_heads = 64
#: (vLLM's chatglm.py derives it that way; kv_channels says the same).
CHATGLM_DIMS: dict[str, Any] = {
    "num_layers": 2,
    "hidden_size": 256,
    "num_attention_heads": 4,
    "kv_channels": 64,
    "multi_query_attention": True,
    "multi_query_group_num": 2,
    "ffn_hidden_size": 512,
    "seq_length": 4096,
}

#: GLM-4-9B-chat's switches (its config.json), kept as they are.
_GLM4_9B_SWITCHES: dict[str, Any] = {
    "add_bias_linear": False,
    "add_qkv_bias": True,
    "apply_query_key_layer_scaling": True,
    "apply_residual_connection_post_layernorm": False,
    "attention_dropout": 0.0,
    "attention_softmax_in_fp32": True,
    "bias_dropout_fusion": True,
    "fp32_residual_connection": False,
    "hidden_dropout": 0.0,
    "layernorm_epsilon": 1.5625e-07,
    "original_rope": True,
    "post_layer_norm": True,
    "rmsnorm": True,
    "rope_ratio": 500,
    "tie_word_embeddings": False,
    "use_cache": True,
}

#: ``configuration_chatglm.py`` written next to the weights: this project's own
#: minimal config class (plain attribute storage with GLM-4-9B-chat's defaults).
CONFIG_SOURCE = '''\
"""ChatGLMConfig for the tiny test checkpoint of glm-vllm-compat (written by the project)."""

from transformers import PretrainedConfig

_DEFAULTS = {
    "num_layers": 40, "padded_vocab_size": 151552, "hidden_size": 4096, "ffn_hidden_size": 13696,
    "kv_channels": 128, "num_attention_heads": 32, "seq_length": 131072, "hidden_dropout": 0.0,
    "attention_dropout": 0.0, "layernorm_epsilon": 1.5625e-07, "rmsnorm": True,
    "apply_residual_connection_post_layernorm": False, "post_layer_norm": True,
    "add_bias_linear": False, "add_qkv_bias": True, "bias_dropout_fusion": True,
    "multi_query_attention": True, "multi_query_group_num": 2, "rope_ratio": 500,
    "apply_query_key_layer_scaling": True, "attention_softmax_in_fp32": True,
    "fp32_residual_connection": False,
}


class ChatGLMConfig(PretrainedConfig):
    model_type = "chatglm"
    attribute_map = {"num_hidden_layers": "num_layers", "vocab_size": "padded_vocab_size"}

    def __init__(self, **kwargs):
        for key, default in _DEFAULTS.items():
            setattr(self, key, kwargs.pop(key, default))
        super().__init__(**kwargs)
'''


def chatglm_config(vocab_size: int, stop_ids: list[int], pad_id: int, dtype: str) -> dict[str, Any]:
    """config.json of the tiny ChatGLMModel checkpoint (keys sorted)."""
    config: dict[str, Any] = {
        "architectures": [CHATGLM_ARCH],
        "auto_map": {
            "AutoConfig": "configuration_chatglm.ChatGLMConfig",
        },
        "model_type": "chatglm",
        **_GLM4_9B_SWITCHES,
        **CHATGLM_DIMS,
        "padded_vocab_size": vocab_size,
        "eos_token_id": stop_ids,
        "pad_token_id": pad_id,
        "torch_dtype": dtype,
    }
    return dict(sorted(config.items()))


def chatglm_tensor_specs(config: dict[str, Any]) -> list[tuple[str, tuple[int, ...], str]]:
    """(name, shape, init) of every tensor, named as in GLM-4-9B-chat's checkpoint."""
    hidden, vocab, ffn = config["hidden_size"], config["padded_vocab_size"], config["ffn_hidden_size"]
    head_dim = hidden // config["num_attention_heads"]
    qkv = hidden + 2 * config["multi_query_group_num"] * head_dim
    specs: list[tuple[str, tuple[int, ...], str]] = [
        ("transformer.embedding.word_embeddings.weight", (vocab, hidden), "w"),
        ("transformer.encoder.final_layernorm.weight", (hidden,), "norm"),
        ("transformer.output_layer.weight", (vocab, hidden), "w"),
    ]
    for layer in range(config["num_layers"]):
        prefix = f"transformer.encoder.layers.{layer}"
        specs += [
            (f"{prefix}.input_layernorm.weight", (hidden,), "norm"),
            (f"{prefix}.self_attention.query_key_value.weight", (qkv, hidden), "w"),
            (f"{prefix}.self_attention.query_key_value.bias", (qkv,), "b"),
            (f"{prefix}.self_attention.dense.weight", (hidden, hidden), "w"),
            (f"{prefix}.post_attention_layernorm.weight", (hidden,), "norm"),
            (f"{prefix}.mlp.dense_h_to_4h.weight", (2 * ffn, hidden), "w"),
            (f"{prefix}.mlp.dense_4h_to_h.weight", (hidden, ffn), "w"),
        ]
    return specs
