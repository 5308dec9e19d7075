"""An offline batch script in the vLLM 0.2 - 0.10.1 style: ``LLM.generate(prompt_token_ids=...)``.

Written for glm-vllm-compat as an example of that shape. Only the import line
differs from a script written for an old vLLM:

    -from vllm import LLM, SamplingParams
    +from glm_vllm_compat.vllm import LLM, SamplingParams

The historic forms it uses (``prompt_token_ids=`` was removed from
``LLM.generate`` in vLLM 0.10.2):

* the prompts are tokenized by the script (the GLM chat template) and sent as
  ``llm.generate(prompt_token_ids=batch, sampling_params=sp, use_tqdm=False)``;
* with ``--positional``, the pre-0.10.2 positional form
  ``llm.generate(None, sp, batch)`` is used as well, and both results are written;
* ``SamplingParams(n=1, best_of=1, temperature=0.0, top_k=-1, use_beam_search=False,
  length_penalty=1, early_stopping=False, max_tokens=...)``;
* ``LLM(model, tokenizer=..., swap_space=4, ...)``.

Input: a JSON-lines file of ``{"messages": [...]}`` (or ``{"prompt": "..."}``); output: one
``{"index", "prompt_tokens", "text", "token_ids", "finish_reason"}`` line per input line,
in input order.

    python examples/legacy_llm_batch.py --model /path/to/glm --input in.jsonl --output out.jsonl
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from glm_vllm_compat.vllm import LLM, SamplingParams


def read_requests(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def token_ids(tokenizer: Any, request: dict[str, Any]) -> list[int]:
    if "messages" in request:
        text = tokenizer.apply_chat_template(request["messages"], add_generation_prompt=True, tokenize=False)
    else:
        text = request["prompt"]
    return list(tokenizer.encode(text, add_special_tokens=False))


def rows(outputs: list[Any]) -> list[dict[str, Any]]:
    out = []
    for index, result in enumerate(outputs):
        completion = result.outputs[0]
        out.append({
            "index": index,
            "prompt_tokens": len(result.prompt_token_ids),
            "text": completion.text,
            "token_ids": list(completion.token_ids),
            "finish_reason": completion.finish_reason,
        })
    return out


def build_llm(model: str, dtype: str = "float32") -> Any:
    return LLM(model=model, tokenizer=model, dtype=dtype, max_model_len=1024,
               enforce_eager=True, trust_remote_code=True, swap_space=4)


def run(llm: Any, requests: list[dict[str, Any]], max_tokens: int, positional: bool) -> dict[str, list[dict[str, Any]]]:
    tokenizer = llm.get_tokenizer()
    batch = [token_ids(tokenizer, request) for request in requests]
    sampling_params = SamplingParams(n=1, best_of=1, temperature=0.0, top_k=-1, use_beam_search=False,
                                     length_penalty=1, early_stopping=False, max_tokens=max_tokens)
    outputs = llm.generate(prompt_token_ids=batch, sampling_params=sampling_params, use_tqdm=False)
    result = {"keyword": rows(outputs)}
    if positional:
        result["positional"] = rows(llm.generate(None, sampling_params, batch))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description="Offline batch generation (vLLM 0.4 style).")
    parser.add_argument("--model", required=True)
    parser.add_argument("--input", type=Path, required=True)
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--positional", action="store_true", help="also run the positional historic form")
    args = parser.parse_args()

    result = run(build_llm(args.model, args.dtype), read_requests(args.input), args.max_tokens, args.positional)
    with args.output.open("w", encoding="utf-8") as out:
        for form, lines in result.items():
            for line in lines:
                out.write(json.dumps({"form": form, **line}, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
