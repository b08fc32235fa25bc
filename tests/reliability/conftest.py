"""Shared setup for the reliability tests: the tiny-run helpers of tests/train."""

from __future__ import annotations

import sys
from pathlib import Path

# runhelpers (tiny two-stage configs over text the test writes, byte tokenizer)
# lives with the trainer tests; reuse it rather than copy it.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "train"))
