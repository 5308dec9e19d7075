"""The serve CLI's fd-2 filter drops nanobind's shutdown leak report and nothing else."""

from __future__ import annotations

import subprocess
import sys

import pytest

from glm_vllm_compat.server import _quiet

CHILD = r"""
import os, sys
from glm_vllm_compat.server._quiet import filter_shutdown_noise
assert filter_shutdown_noise(force=True)
print("python stderr line", file=sys.stderr, flush=True)
os.write(2, b"INFO engine started\n")
os.write(2, b"Loading shards: 50%\r")
os.write(2, b"Loading shards: 100%\n")
os.write(2, b"nanobind: leaked 12 instances!\n - leaked instance 0x7f of type \"xgrammar.Grammar\"\n")
os.write(2, b"nanobind: this is likely caused by a reference counting issue in the binding code.\n")
os.write(2, b"last words without newline")
"""


def test_filter_drops_only_the_nanobind_report() -> None:
    result = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, timeout=60)
    err = result.stderr.decode()
    assert result.returncode == 0, err
    assert "nanobind" not in err and "leaked" not in err
    assert err == ("python stderr line\nINFO engine started\nLoading shards: 50%\rLoading shards: 100%\n"
                   "last words without newline")


def test_not_installed_when_stderr_is_not_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    # a log file or pipe keeps every line; only a console is filtered
    monkeypatch.setattr(_quiet.os, "isatty", lambda fd: False)
    assert _quiet.filter_shutdown_noise() is False
