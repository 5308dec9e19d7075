"""The vLLM bug repairs on the installed vLLM's real modules.

``cpu-moe-silu``: on vLLM 0.14 and 0.20-0.24 the CPU fused-MoE torch fallback
builds a ``SiluAndMul`` custom op while the model runs, which fails outside a
vLLM config context and stops every GLM-4.5 (MoE) engine on AMX CPUs with
float32 weights. The repair comes from the ``vllm.general_plugins`` entry point
that vLLM loads in each of its processes; here it is loaded the way vLLM loads
it, and the activation is called outside any config context, as the engine's
warm-up does. The tiny GLM-4.5 server in test_server_real.py is the end-to-end
check on the same lines.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

from glm_vllm_compat import _fixes

MODULE = next(fix.module for fix in _fixes.FIXES if fix.name == "cpu-moe-silu")


def _silu_activation(module: ModuleType) -> Callable[[Any], Any] | None:
    """The SiLU activation the CPU MoE fallback calls, in whichever shape this vLLM has."""
    table = getattr(module, "_CPU_MOE_ACT_FN", None)
    if isinstance(table, dict):
        key = next(k for k in table if getattr(k, "value", k) == "silu")
        entry: Callable[[Any], Any] = table[key]
        return entry
    lazy = getattr(module, "_CPU_MOE_ACT", None)
    if isinstance(lazy, dict):
        return lambda x: lazy["silu"].forward_native(x)
    return None  # vLLM 0.12/0.13 build it with the model, 0.10/0.11 use a function: no custom op at run time


def test_cpu_moe_silu_runs_outside_a_vllm_config() -> None:
    import torch
    import torch.nn.functional as F
    if importlib.util.find_spec("vllm.plugins") is None:  # vLLM 0.4 - 0.5.x: no general plugins, and no CPU MoE fallback to repair
        assert importlib.util.find_spec(MODULE) is None
        assert "cpu-moe-silu" not in _fixes.applied()
        return
    from vllm.plugins import load_general_plugins

    load_general_plugins()  # what vLLM does in its engine and worker processes
    assert _fixes._hook in sys.meta_path or MODULE in sys.modules  # the plugin ran: hook waiting, or module repaired
    if importlib.util.find_spec(MODULE) is None:  # vLLM 0.28+ moved the CPU MoE experts elsewhere
        assert "cpu-moe-silu" not in _fixes.applied()
        return
    module = importlib.import_module(MODULE)
    activation = _silu_activation(module)
    if activation is None:
        assert "cpu-moe-silu" not in _fixes.applied()
        return
    x = torch.randn(3, 8)
    expected = F.silu(x[..., :4]) * x[..., 4:]
    torch.testing.assert_close(activation(x), expected)
