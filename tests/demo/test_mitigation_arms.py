"""The optional demo arms (docs/mitigations.md): valid configs that branch from the
shared stage 1 and change only stage 2 of their base arm; the default five unchanged."""

from __future__ import annotations

import pytest

from rewarm.demo import arms, mitigation_arms
from rewarm.demo.arms import QUICK, Layout
from rewarm.demo.runner import check_arms, plan_arms
from rewarm.demo.settings import load_settings
from rewarm.errors import UserError
from rewarm.mitigate.wsm import merge_weights


def test_default_arms_stay_the_five():
    assert arms.ARMS == ("retrain", "naive", "rewarm", "rewarm+replay", "infinite+replay")
    assert check_arms(["rewarm+wsm", "naive"]) == ["naive", "rewarm+wsm"]
    with pytest.raises(UserError, match="rewarm\\+wsm"):
        check_arms(["nope"])


def test_optional_arms_branch_and_change_only_stage_two(tmp_path):
    settings = load_settings(quick=True)
    where = Layout(runs=str(tmp_path / "runs"), data=str(tmp_path / "data"))
    plans = {p.arm: p for p in plan_arms(["rewarm", *mitigation_arms.ARMS], settings, where, 0)}
    assert all(plans[a].branch_of == "rewarm" for a in mitigation_arms.ARMS)
    for arm in mitigation_arms.ARMS:
        cfg, base = plans[arm].cfg, mitigation_arms.BASE_ARM[arm]
        want = arms.stages(base, QUICK)
        assert cfg.stages[0].schedule == want[0]["schedule"]
        assert cfg.run.name == arm
    wsm = plans["rewarm+wsm"].cfg.stages[1]
    assert wsm.schedule["final_ratio"] == 1.0  # no decay: the merge stands in for it
    assert wsm.average["apply_at_end"] and wsm.average["shape"] == "cosine"
    assert wsm.average["every_tokens"] * wsm.average["last"] <= QUICK.stage2_tokens
    assert merge_weights("cosine", wsm.average["last"]).sum() == pytest.approx(1.0)
    assert plans["rewarm+merge"].cfg.stages[1].merge == {"weight": 0.5}
    mer = plans["rewarm+replay+mer"].cfg.stages[1]
    assert mer.mer["beta"] == 0.1 and mer.replay
    assert mer.mer["every_tokens"] % QUICK.batch_tokens == 0
