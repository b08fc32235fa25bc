"""The progress bar on stderr (the run log itself is `rewarm.runlog`)."""

from __future__ import annotations

import sys


class Progress:
    """tqdm bar on stderr: stage, tokens, loss, LR, tokens/s and ETA (tqdm's own).

    Notices meanwhile go through logging, whose handler (`rewarm.console`) writes
    them above the bar."""

    def __init__(self, total_tokens: int, done_tokens: int, enabled: bool, stage: str = "") -> None:
        self._bar = None
        if enabled:
            from tqdm import tqdm

            self._bar = tqdm(
                total=total_tokens,
                initial=done_tokens,
                desc=stage,
                unit="tok",
                unit_scale=True,
                file=sys.stderr,
                dynamic_ncols=True,
                mininterval=0.5,
            )

    def update(self, tokens: int, stage: str, loss: float, lr: float) -> None:
        if self._bar is not None:
            self._bar.set_description(stage, refresh=False)
            self._bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.2e}", refresh=False)
            self._bar.update(tokens)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
