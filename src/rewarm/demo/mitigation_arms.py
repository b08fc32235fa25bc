"""Optional demo arms: mitigations besides replay (docs/mitigations.md), chosen with
`rewarm demo --arms ...`; not among the five arms run by default.

Each continues the shared stage-1 model (like `rewarm`, a branch of the host's
stage-1 checkpoint) and changes stage 2 of an existing arm:

- `rewarm+wsm`: re-warm to the peak and stay there (no re-decay); at the stage's end
  the last `WSM_SNAPSHOTS` snapshots, spread over the stage, are merged with WSM weights
  emulating the cosine decay the `rewarm` arm trains with (Tian et al. 2025): merging
  instead of decaying, compared with the real decay.
- `rewarm+lawa`: the `rewarm` arm, handing on the uniform mean of its last 5 snapshots
  (LAWA; Kaddour 2022; Sanyal et al. 2023) instead of its last weights.
- `rewarm+merge`: the `rewarm` arm, its end merged with its start (the stage-1 model):
  start + 0.5 (end - start) (task arithmetic; Ilharco et al. 2023; Alexandrov et al.
  2024).
- `rewarm+replay+mer`: the `rewarm+replay` arm with a Reptile step (beta = 0.1, Abbes
  et al. 2025) every `MER_BLOCKS`-th of the stage; the paper's k = 500 steps is longer
  than the demo's whole stage 2, so k is scaled to the stage.
"""

from __future__ import annotations

from typing import Any

from rewarm.demo import arms
from rewarm.demo.arms import NEW, OLD, Corpus, DemoSize, Layout

ARMS: tuple[str, ...] = ("rewarm+wsm", "rewarm+lawa", "rewarm+merge", "rewarm+replay+mer")
BASE_ARM: dict[str, str] = {
    "rewarm+wsm": "rewarm",
    "rewarm+lawa": "rewarm",
    "rewarm+merge": "rewarm",
    "rewarm+replay+mer": "rewarm+replay",
}
DESCRIPTIONS: dict[str, str] = {
    "rewarm+wsm": "re-warm, constant LR, WSM merge emulating the cosine re-decay; no replay",
    "rewarm+lawa": "re-warm + re-decay, hand on the mean of the last 5 snapshots; no replay",
    "rewarm+merge": "re-warm + re-decay, then start + 0.5 (end - start); no replay",
    "rewarm+replay+mer": "re-warm + re-decay, 5% replay, Reptile step beta 0.1 (MER)",
}
WSM_SNAPSHOTS = 8
WSM_SHAPE = "cosine"
LAWA_SNAPSHOTS = 5
LAWA_SPACING = 10
"""LAWA snapshots every 1/10 of stage 2: the mean covers its last half."""
MERGE_WEIGHT = 0.5
MER_BLOCKS = 8
MER_BETA = 0.1


def _every(size: DemoSize, parts: int) -> int:
    """A stage-2 interval of about 1/parts, whole batches, at least one."""
    return max(1, size.stage2_tokens // parts // size.batch_tokens) * size.batch_tokens


def stage2_changes(arm: str, size: DemoSize) -> dict[str, Any]:
    """What the arm changes in its base arm's stage 2."""
    if arm == "rewarm+wsm":
        every = _every(size, WSM_SNAPSHOTS)
        schedule = arms.stages("rewarm", size)[1]["schedule"] | {"final_ratio": 1.0}
        average = {"kind": "wsm", "every_tokens": every, "last": WSM_SNAPSHOTS}
        return {
            "schedule": schedule,
            "average": average | {"shape": WSM_SHAPE, "apply_at_end": True},
        }
    if arm == "rewarm+lawa":
        every = _every(size, LAWA_SPACING)
        average = {"kind": "uniform", "every_tokens": every, "last": LAWA_SNAPSHOTS}
        return {"average": average | {"apply_at_end": True}}
    if arm == "rewarm+merge":
        return {"merge": {"weight": MERGE_WEIGHT}}
    if arm == "rewarm+replay+mer":
        return {"mer": {"every_tokens": _every(size, MER_BLOCKS), "beta": MER_BETA}}
    raise ValueError(f"unknown optional demo arm {arm!r}")


def arm_config(
    arm: str,
    where: Layout,
    seed: int,
    size: DemoSize,
    *,
    old: Corpus = OLD,
    new: Corpus = NEW,
    branch_of: str | None = None,
) -> dict[str, Any]:
    """The raw config dict of an optional arm (its base arm's, stage 2 changed)."""
    raw = arms.arm_config(BASE_ARM[arm], where, seed, size, old=old, new=new, branch_of=branch_of)
    raw["run"]["name"] = arms.run_name(arm)
    raw["stages"][1] |= stage2_changes(arm, size)
    return raw
