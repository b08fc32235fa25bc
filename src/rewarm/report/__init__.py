"""Reports of logged runs: read `metrics.jsonl` (`records`), compute the continual
metrics (`summary`), render tables, figures and a self-contained HTML page."""
