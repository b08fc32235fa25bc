"""Continual evaluation: held-out loss on every domain (`evaluator`, needs torch). The
analysis of the logged evaluations is `rewarm.continual` (no torch)."""
