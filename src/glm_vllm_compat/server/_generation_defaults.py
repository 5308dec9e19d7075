"""``--generation-config``: the model's sampling defaults, applied by the server on every vLLM line.

As in ``vllm serve``: ``auto`` reads the model's ``generation_config.json``,
``vllm`` uses none, a folder path reads that folder's file;
``--override-generation-config`` is merged on top. Only the sampling fields
vLLM takes from it are used; they apply to requests that leave them unset
(``max_new_tokens`` caps ``max_tokens`` when a request sets none).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["SAMPLING_KEYS", "GenerationConfigError", "generation_defaults"]

# generation_config.json key -> SamplingParams field
SAMPLING_KEYS = {
    "temperature": "temperature",
    "top_p": "top_p",
    "top_k": "top_k",
    "min_p": "min_p",
    "repetition_penalty": "repetition_penalty",
    "max_new_tokens": "max_tokens",
}


class GenerationConfigError(ValueError):
    """The generation config named on the command line cannot be read."""


def _read(folder: Path, required: bool) -> dict[str, Any]:
    path = folder / "generation_config.json"
    if not path.is_file():
        if required:
            raise GenerationConfigError(f"--generation-config {str(folder)!r}: no generation_config.json there")
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise GenerationConfigError(f"{path}: cannot be read as JSON: {exc}") from None
    if not isinstance(data, dict):
        raise GenerationConfigError(f"{path}: not a JSON object")
    return data


def generation_defaults(model: str, mode: str = "auto", overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """SamplingParams defaults (``{"temperature": 0.6, "top_p": 0.95}``) for ``model``."""
    if mode == "vllm":
        config: dict[str, Any] = {}
    elif mode == "auto":
        config = _read(Path(model), required=False) if Path(model).is_dir() else {}
    else:
        config = _read(Path(mode).expanduser(), required=True)
    if overrides:
        if not isinstance(overrides, Mapping):
            raise GenerationConfigError("--override-generation-config must be a JSON object")
        config = {**config, **overrides}
    return {field: config[key] for key, field in SAMPLING_KEYS.items() if config.get(key) is not None}
