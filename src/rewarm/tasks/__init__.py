"""Task evaluation: lm-evaluation-harness tasks on the model being trained.

- `spec`: what an `eval.tasks` entry names (built-in, YAML path, harness name); no
  harness or torch needed.
- `items`: the built-in tasks' items, made deterministically from a domain's
  held-out documents (pure Python).
- `builtin`: writes a built-in task (harness YAML + items JSONL) next to the shards.
- `harness`: runs tasks through lm-evaluation-harness on an in-memory model
  (`TaskEvaluator`), the results as `rewarm.runlog.TaskRecord`s.
- `continual`: forgetting, BWT, stability gap and the comparison with re-training
  computed on task metrics (pure: reads `task` and `stage` records).

Nothing here is imported by `import rewarm.tasks`; the harness is imported only when
a task is evaluated (the `tasks` extra: `pip install 'rewarm[tasks]'`).
"""
