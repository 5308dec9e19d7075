"""Keep the engine's shutdown noise off the console of ``glm-vllm-compat serve``.

At interpreter exit, nanobind-based extensions that vLLM imports (xgrammar) print a
leak report to file descriptor 2, one line per leaked object ("nanobind: leaked 12
instances!", " - leaked type ..."): ~30 lines after every Ctrl+C, from the server and
from its engine processes, none of them actionable for a user. C code writes them, so
``sys.stderr`` cannot catch them: fd 2 is routed through a small filter process that
drops exactly those lines and passes everything else through unchanged.
"""

from __future__ import annotations

import os
import subprocess
import sys

__all__ = ["NOISE_PREFIXES", "filter_shutdown_noise"]

NOISE_PREFIXES = (b"nanobind: ", b" - leaked ")

_FILTER = r"""
import os
prefixes = %r
buf = b""
while True:
    try:
        chunk = os.read(0, 65536)
    except KeyboardInterrupt:
        continue
    if not chunk:
        break
    buf += chunk
    *lines, buf = buf.split(b"\n")
    keep = [line for line in lines if not line.startswith(prefixes)]
    if keep:
        os.write(1, b"\n".join(keep) + b"\n")
    if b"\r" in buf:  # a progress bar: show it now, not at its newline
        os.write(1, buf)
        buf = b""
if buf and not buf.startswith(prefixes):
    os.write(1, buf)
"""


def filter_shutdown_noise(*, force: bool = False) -> bool:
    """Route fd 2 through the filter when it is a terminal (or ``force``); True when installed.

    The filter runs in its own session, so a Ctrl+C aimed at the server does not stop
    it before the noise arrives; it ends when the last writer (server, engine) exits.
    """
    if not force and not os.isatty(2):
        return False
    read_fd, write_fd = os.pipe()
    console = os.dup(2)
    try:
        subprocess.Popen([sys.executable, "-c", _FILTER % (NOISE_PREFIXES,)], stdin=read_fd, stdout=console,
                         stderr=console, close_fds=True, start_new_session=True)
        sys.stderr.flush()
        os.dup2(write_fd, 2)
    finally:
        for fd in (read_fd, write_fd, console):
            os.close(fd)
    return True
