"""Parity with the installed release's own ``vllm serve`` argument parser.

Every option of vLLM's parser (built with its own ``make_arg_parser`` and
``FlexibleArgumentParser`` from the live import) must be accepted by
``glm-vllm-compat serve`` with the same shape (no value / one value / several
values); the options the server deliberately refuses or ignores must be in
docs/serve.md's exceptions table. Runs on every installed line (0.32, and 0.8.5
on the V0 tier).
"""

from __future__ import annotations

import argparse
import importlib
import inspect
from pathlib import Path

import pytest

from glm_vllm_compat import _detect
from glm_vllm_compat.server._cli import build_parser, normalize_argv
from glm_vllm_compat.server._engine_fields import installed_fields
from glm_vllm_compat.server._server_flags import NOOP, REFUSED, SERVER_FLAGS, USED

DOCS = Path(__file__).resolve().parents[2] / "docs" / "serve.md"


def _vllm_serve_parser() -> argparse.ArgumentParser:
    """``vllm serve``'s parser, from the module that implements the subcommand (older: the OpenAI server's)."""
    for name in ("vllm.entrypoints.cli.serve", "vllm.entrypoints.openai.cli_args"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        make = getattr(module, "make_arg_parser", None)
        flexible = getattr(module, "FlexibleArgumentParser", None) or getattr(importlib.import_module("vllm.utils"), "FlexibleArgumentParser", None)
        if make is not None and not inspect.signature(make).parameters:  # vLLM 0.4.x: it makes its own argparse parser
            return make()  # type: ignore[no-any-return]
        if make is not None:
            return make(flexible(prog="vllm serve"))  # type: ignore[no-any-return]
    pytest.fail("cannot find vLLM's make_arg_parser")


@pytest.fixture(scope="module")
def parsers() -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    return _vllm_serve_parser(), build_parser(installed_fields(_detect.detect())[0])


def _shape(action: argparse.Action) -> str:
    if action.nargs == 0:
        return "no value"
    return "several values" if action.nargs in ("+", "*") or isinstance(action, argparse._AppendAction) else "one value"


def _compatible(theirs: str, ours: str) -> bool:
    """Ours takes what theirs takes (several values include one: 0.8.5's one --api-key, 0.32's several)."""
    return theirs == ours or (theirs, ours) == ("one value", "several values")


def _ours(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {option: action for action in parser._actions for option in action.option_strings}


def _spelled(option: str) -> str:
    """The option as serve reads it: normalize_argv gives underscores in a flag name dashes (vLLM 0.4.2's own
    parser spells ``--max-seq_len-to-capture``)."""
    return normalize_argv([option])[0] if option.startswith("--") and option != "--config" else option


def test_every_vllm_serve_option_is_accepted(parsers: tuple[argparse.ArgumentParser, argparse.ArgumentParser]) -> None:
    theirs, ours = parsers
    known = _ours(ours)
    options = [o for a in theirs._actions for o in a.option_strings]
    assert len(options) > 50  # a real parser, not an empty one
    missing = [o for o in options if _spelled(o) not in known]
    assert missing == [], f"vLLM {_detect.detect().raw_version} `vllm serve` options serve lacks: {missing}"


def test_same_value_shape(parsers: tuple[argparse.ArgumentParser, argparse.ArgumentParser]) -> None:
    theirs, ours = parsers
    known = _ours(ours)
    refused = {n for f in SERVER_FLAGS if f.use == REFUSED for n in f.names}
    wrong = [
        (a.option_strings[0], _shape(a), _shape(known[_spelled(a.option_strings[0])]))
        for a in theirs._actions
        if a.option_strings and _spelled(a.option_strings[0]) in known and _spelled(a.option_strings[0]) not in refused | {"-h"}
        and not _compatible(_shape(a), _shape(known[_spelled(a.option_strings[0])]))
    ]
    assert wrong == []


def test_choices_parse(parsers: tuple[argparse.ArgumentParser, argparse.ArgumentParser]) -> None:
    """Each value vLLM lists as a choice is accepted (or refused with a reason, never 'invalid choice')."""
    theirs, ours = parsers
    refused = {n for f in SERVER_FLAGS if f.use == REFUSED for n in f.names}
    for action in theirs._actions:
        if not action.option_strings or not action.choices or action.nargs == 0 or action.option_strings[0] in refused:
            continue
        for choice in list(action.choices)[:6]:
            if choice is None:
                continue
            ours.parse_known_args([action.option_strings[0], str(choice)])


def test_exceptions_are_documented(parsers: tuple[argparse.ArgumentParser, argparse.ArgumentParser]) -> None:
    theirs, _ = parsers
    text = DOCS.read_text(encoding="utf-8")
    options = {o for a in theirs._actions for o in a.option_strings}
    undocumented = [f.names[0] for f in SERVER_FLAGS if f.use in (REFUSED, NOOP) and f.names[0] in options and f"`{f.names[0]}`" not in text]
    assert undocumented == []


# Server-flag defaults that differ from `vllm serve` on purpose (docs/serve.md, "Defaults"): the server knows
# the GLM family, so it picks the parsers itself.
DEFAULTS_DIFFER = {"--tool-call-parser": "auto", "--reasoning-parser": "auto"}


def test_same_server_defaults(parsers: tuple[argparse.ArgumentParser, argparse.ArgumentParser], tmp_path: Path) -> None:
    """Each front-end flag both parsers have resolves to vLLM's own default, except DEFAULTS_DIFFER."""
    from glm_vllm_compat.server._cli import prepare

    theirs, _ = parsers
    (tmp_path / "config.json").write_text('{"architectures": ["Glm4ForCausalLM"]}')
    options, _ = prepare([str(tmp_path)])
    vllm_defaults = {a.option_strings[0]: a.default for a in theirs._actions if a.option_strings}
    compared, differ = 0, {}
    for flag in SERVER_FLAGS:
        name = flag.names[0]
        if flag.use != USED or name not in vllm_defaults or vllm_defaults[name] == argparse.SUPPRESS or name == "--model":
            continue
        ours = getattr(options, name.lstrip("-").replace("-", "_"), None)
        theirs_default = vllm_defaults[name]
        compared += 1
        if ours != theirs_default and not (_unset(ours) and _unset(theirs_default)):
            differ[name] = (theirs_default, ours)
    assert compared > 10
    # vLLM before its CORS hardening allowed every origin by default (0.8.5: ["*"]); the server allows
    # cross-origin requests only when asked, on every line, as newer vLLM does (docs/serve.md, "Defaults")
    if differ.get("--allowed-origins") == (["*"], []):
        del differ["--allowed-origins"]
    assert {k: v[1] for k, v in differ.items()} == DEFAULTS_DIFFER, differ
    assert "**Parsers** default to `auto`" in DOCS.read_text(encoding="utf-8")


def _unset(value: object) -> bool:
    """None, "", [] and {} all mean "not given" to both servers."""
    return value is None or value in ("", [], (), {})
