"""``python -m glm_vllm_compat.entrypoints.openai.api_server --model PATH ...``

The classic ``python -m vllm.entrypoints.openai.api_server`` command line with
only the package name changed: the same flags as ``glm-vllm-compat serve``
(which is what runs).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    from ...server._cli import main as serve_main

    return serve_main(list(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    sys.exit(main())
