"""`rewarm demo`: continual pre-training against re-training on built-in real text.

`arms` defines the sizes and the five arms as ordinary run configs, `runner`
trains them (one shared stage 1, shared shards and tokenizer), `table` computes
the results from the runs' `metrics.jsonl`, and `run` ties it together with the
HTML report. The command-line verb is `rewarm.commands.demo`.
"""
