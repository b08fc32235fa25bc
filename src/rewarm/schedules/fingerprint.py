"""Resume safety: what a checkpoint records about the schedule, and how to say what changed.

The trainer stores `plan.fingerprint()` in each checkpoint. On resume it rebuilds the plan
from the config and calls `describe_change(stored, plan)`: None when every LR is the same,
else one line such as `stage 1 (continue) schedule.final_ratio: 0.1 -> 0.0`, which it
prints on stderr and writes as a `schedule_changed` run record, then trains on under the
new schedule from the saved position (refusing a changed config is `rewarm train`'s job,
`rewarm.train.changes`, before the trainer starts).

The fingerprint is canonical JSON of each stage's length, peak LR and resolved spec
(defaults filled in, so spelling a default out changes nothing). Long number lists
(refined grad_norms) are replaced by their count and SHA-256, so a file whose contents
changed is caught even when its path did not.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any, Protocol


class _Stage(Protocol):
    @property
    def length(self) -> float: ...
    @property
    def peak_lr(self) -> float: ...
    @property
    def name(self) -> str: ...


class Plan(Protocol):
    """What a fingerprint reads of a `StagePlan` (a protocol, so this module needs no
    import of the plan, which calls it)."""

    @property
    def stages(self) -> Sequence[_Stage]: ...
    @property
    def resolved(self) -> Sequence[dict[str, Any]]: ...


VERSION = 1
_INLINE_LIST = 16  # lists longer than this are hashed


def _canonical(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        items = [_canonical(v) for v in value]
        if len(items) > _INLINE_LIST:
            digest = hashlib.sha256(json.dumps(items).encode()).hexdigest()
            return {"n": len(items), "sha256": digest}
        return items
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return value


def payload(plan: Plan) -> dict[str, Any]:
    return {
        "v": VERSION,
        "stages": [
            {"length": float(st.length), "peak_lr": float(st.peak_lr), "spec": _canonical(spec)}
            for st, spec in zip(plan.stages, plan.resolved, strict=True)
        ],
    }


def fingerprint(plan: Plan) -> str:
    return json.dumps(payload(plan), sort_keys=True, separators=(",", ":"))


def _fmt(value: Any) -> str:
    return "absent" if value is _MISSING else json.dumps(value, sort_keys=True)


_MISSING = object()


def describe_change(old_fingerprint: str, new_plan: Plan) -> str | None:
    """None if `new_plan` gives the same LRs as the plan `old_fingerprint` came from,
    else a one-line description of every difference (stage, key, old -> new)."""
    new = payload(new_plan)
    try:
        old = json.loads(old_fingerprint)
        old_stages = old["stages"]
        if old.get("v") != VERSION or not isinstance(old_stages, list):
            raise ValueError
    except (ValueError, TypeError, KeyError):
        if old_fingerprint == fingerprint(new_plan):
            return None
        return "schedule changed (the checkpoint's fingerprint is not readable by this version)"
    diffs: list[str] = []
    if len(old_stages) != len(new["stages"]):
        diffs.append(f"number of stages: {len(old_stages)} -> {len(new['stages'])}")
    for i, (o, n) in enumerate(zip(old_stages, new["stages"], strict=False)):
        name = new_plan.stages[i].name
        label = f"stage {i} ({name})" if name else f"stage {i}"
        for key in ("length", "peak_lr"):
            if o.get(key) != n[key]:
                diffs.append(f"{label} {key}: {_fmt(o.get(key, _MISSING))} -> {_fmt(n[key])}")
        o_spec, n_spec = o.get("spec", {}), n["spec"]
        for key in sorted(set(o_spec) | set(n_spec), key=lambda k: (k != "kind", k)):
            a, b = o_spec.get(key, _MISSING), n_spec.get(key, _MISSING)
            if a != b:
                diffs.append(f"{label} schedule.{key}: {_fmt(a)} -> {_fmt(b)}")
    return "; ".join(diffs) if diffs else None
