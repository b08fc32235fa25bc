"""Reports of logged runs: read `metrics.jsonl` (through `rewarm.runlog`), compute the
continual metrics (`summary`), render tables, figures and a self-contained HTML page."""
