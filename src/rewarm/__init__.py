"""rewarm: continual pre-training of language models.

Re-warming and re-decaying learning rates, replay of earlier data, infinite and
warmup-stable-decay schedules, continual evaluation of forgetting, and loss-curve
laws fitted to logged runs.
"""

__version__ = "0.1.0"
