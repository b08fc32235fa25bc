"""Continual evaluation: held-out loss on every domain (`evaluator`, needs torch) and
pure metrics over the logged evaluations (`timeline`, `metrics`, `compare`, no torch)."""
