"""Every recipe in recipes/ is a valid config (keys, types, schedules, replay)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rewarm.runconfig import load as load_config
from rewarm.schedules import StagePlan

RECIPES = sorted((Path(__file__).parent.parent / "recipes").glob("*.toml"))


def test_there_are_recipes():
    assert len(RECIPES) >= 3


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.name)
def test_recipe_loads_and_its_plan_is_sane(path):
    cfg = load_config(path)
    plan = StagePlan.from_config(cfg)
    total = sum(st.tokens for st in cfg.stages)
    lrs = plan.lrs(__import__("numpy").linspace(0, total, 500))
    assert (lrs >= 0).all() and lrs.max() <= max(cfg.stage_lr(i) for i in range(len(cfg.stages)))
    assert lrs.max() > 0


def test_readme_quickstart_config_is_valid():
    """The TOML in the README's quickstart loads as written (paths need not exist yet)."""
    import re
    import tomllib

    from rewarm.runconfig import from_dict as config_from_dict

    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Quickstart") :]
    block = re.search(r"```toml\n(.*?)```", section, re.S).group(1)  # type: ignore[union-attr]
    cfg = config_from_dict(tomllib.loads(block), source="README.md quickstart")
    assert cfg.model.init.startswith("hf:") and cfg.stages[0].replay["fraction"] == 0.05
    assert cfg.train.compile is True and cfg.eval.every_tokens == 2_000_000
