"""The schedules package imports without torch; only torch_adapter touches it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from rewarm.schedules import StagePlan, StageSpec


def test_import_does_not_load_torch():
    code = (
        "import sys, rewarm.schedules, rewarm.schedules.lr_plot, rewarm.commands.schedule\n"
        "from rewarm.schedules import build\n"
        "build({'kind': 'wsd'}, 10)(5)\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr


def test_apply_lr_sets_every_group_with_its_scale():
    torch = pytest.importorskip("torch")
    from rewarm.schedules.torch_adapter import apply_lr

    plan = StagePlan([StageSpec(100, {"kind": "linear", "final_ratio": 0.0}, 1e-3)])
    a, b = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(2))
    opt = torch.optim.AdamW([{"params": [a]}, {"params": [b], "lr_scale": 0.1}], lr=123.0)
    assert apply_lr(opt, plan, 25) == pytest.approx(7.5e-4)
    assert opt.param_groups[0]["lr"] == pytest.approx(7.5e-4)
    assert opt.param_groups[1]["lr"] == pytest.approx(7.5e-5)
    apply_lr(opt, plan, 100)
    assert opt.param_groups[0]["lr"] == 0.0
