"""The CLI's contract: verbs listed, bad input -> exit 2 with one line."""

from __future__ import annotations

import subprocess
import sys

from rewarm.cli import VERBS, main


def test_help_lists_every_verb(capsys):
    assert main([]) == 2
    out = capsys.readouterr().out
    for verb in VERBS:
        assert verb in out


def test_python_m_rewarm_runs():
    proc = subprocess.run(
        [sys.executable, "-m", "rewarm", "--version"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0
    assert proc.stdout.startswith("rewarm ")
