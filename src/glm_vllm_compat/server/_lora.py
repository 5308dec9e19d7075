"""LoRA adapters served by name (``--lora-modules``), as ``vllm serve`` serves them.

``--lora-modules NAME=PATH ...`` or ``'{"name": ..., "path": ..., "base_model_name": ...}'``
(vLLM's two forms) name adapters clients select with ``model``. They are checked
before anything loads (syntax, an ``adapter_config.json`` in each folder, unique
names, ``--enable-lora``), loaded into the engine at start-up (a broken adapter
stops the start, as in vLLM), listed by ``/v1/models`` with their base model as
``parent``, and passed to the engine with every request that names them.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["LoraAdapter", "LoraModule", "LoraModuleError", "load_adapters", "parse_lora_modules"]


class LoraModuleError(ValueError):
    """A ``--lora-modules`` mistake (the message is one line)."""


@dataclasses.dataclass(frozen=True)
class LoraModule:
    name: str
    path: str
    base_model_name: str | None = None


@dataclasses.dataclass(frozen=True)
class LoraAdapter:
    """A module loaded for the engine: ``request`` is vLLM's ``LoRARequest``."""

    module: LoraModule
    request: Any


_FIELDS = {f.name for f in dataclasses.fields(LoraModule)}


def _parse_one(item: str) -> LoraModule:
    if "=" in item and "," not in item and not item.lstrip().startswith("{"):
        name, path = item.split("=", 1)
        return LoraModule(name.strip(), path.strip())
    try:
        value = json.loads(item)
    except json.JSONDecodeError:
        raise LoraModuleError(f"--lora-modules {item!r}: neither NAME=PATH nor a JSON object") from None
    if not isinstance(value, dict) or not {"name", "path"} <= set(value) or set(value) - _FIELDS - {"is_3d_lora_weight"}:
        raise LoraModuleError(f"--lora-modules {item!r}: a JSON object takes name, path and optionally base_model_name")
    if value.get("is_3d_lora_weight"):
        raise LoraModuleError(f"--lora-modules {item!r}: is_3d_lora_weight is not supported (GLM chat models are text-only)")
    return LoraModule(str(value["name"]), str(value["path"]), value.get("base_model_name"))


def parse_lora_modules(values: Sequence[str] | None, served: Sequence[str], enable_lora: bool) -> list[LoraModule]:
    """The modules of ``--lora-modules``, checked; ``served``: the base model's names."""
    modules = [_parse_one(item) for item in values or () if item]
    if modules and not enable_lora:
        raise LoraModuleError("--lora-modules needs --enable-lora (vLLM serves adapters only from a LoRA-enabled engine)")
    seen = set(served)
    for module in modules:
        if not module.name or module.name in seen:
            raise LoraModuleError(f"--lora-modules: the name {module.name!r} is empty or already taken (served names and adapters must differ)")
        seen.add(module.name)
        folder = Path(module.path).expanduser()
        if not (folder / "adapter_config.json").is_file():
            raise LoraModuleError(f"--lora-modules {module.name}: {module.path!r} is not a LoRA adapter folder (no adapter_config.json)")
        if module.base_model_name is not None and module.base_model_name not in served:
            raise LoraModuleError(f"--lora-modules {module.name}: base_model_name {module.base_model_name!r} is not a served name ({', '.join(served)})")
    return modules


async def load_adapters(engine: Any, modules: Sequence[LoraModule]) -> dict[str, LoraAdapter]:
    """Each module as vLLM's ``LoRARequest`` (ids from 1), loaded into ``engine`` now."""
    from .._engine import add_lora, lora_request

    adapters: dict[str, LoraAdapter] = {}
    for number, module in enumerate(modules, start=1):
        request = lora_request(module.name, number, str(Path(module.path).expanduser()))
        try:
            await add_lora(engine, request)
        except Exception as exc:
            raise LoraModuleError(f"--lora-modules {module.name}: vLLM could not load the adapter: {exc}") from exc
        adapters[module.name] = LoraAdapter(module, request)
    return adapters
