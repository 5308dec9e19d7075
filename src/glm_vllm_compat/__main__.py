"""Command line: ``glm-vllm-compat {serve,doctor,build-tiny-model,matrix}``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ["main"]


def _doctor(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="glm-vllm-compat doctor", description="Report the installed vLLM and what works on it.")
    parser.add_argument("--no-import", action="store_true", help="do not import vLLM (flags from the version number only)")
    args = parser.parse_args(argv)
    from ._doctor import doctor_report

    return doctor_report(confirm=not args.no_import)


def _build_tiny_model(argv: Sequence[str]) -> int:
    from .testing._tiny_model import main as tiny_main

    return tiny_main(list(argv))


def _serve(argv: Sequence[str]) -> int:
    from .server._cli import main as serve_main

    return serve_main(list(argv))


def _matrix(argv: Sequence[str]) -> int:
    if not argv or argv[0] != "diff":
        print("usage: glm-vllm-compat matrix diff A B [--new] [--no-flags]", file=sys.stderr)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    from ._matrix_diff import main as diff_main

    return diff_main(argv[1:])


_COMMANDS = {
    "serve": (_serve, "serve a GLM model over an OpenAI-compatible HTTP API"),
    "doctor": (_doctor, "report the installed vLLM, its capabilities and active translations"),
    "build-tiny-model": (_build_tiny_model, "build the tiny random-weight GLM test models"),
    "matrix": (_matrix, "matrix diff A B: what changed between two recorded vLLM releases"),
}


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help") or args[0] not in _COMMANDS:
        print("usage: glm-vllm-compat {" + ",".join(_COMMANDS) + "} ...\n")
        for name, (_, text) in _COMMANDS.items():
            print(f"  {name:<18} {text}")
        if args and args[0] not in ("-h", "--help"):
            print(f"\nerror: unknown command {args[0]!r}", file=sys.stderr)
            return 2
        return 0 if args else 2
    command, _ = _COMMANDS[args[0]]
    return command(args[1:])


if __name__ == "__main__":
    sys.exit(main())
