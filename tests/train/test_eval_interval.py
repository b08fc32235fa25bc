"""`eval.every_tokens = "auto"`: continual evaluation on by default, at a bounded cost."""

from __future__ import annotations

import pytest

from rewarm.cli import main
from rewarm.config import AUTO_EVAL_FACTOR, eval_interval
from rewarm.train.trainer import train
from tests.runhelpers import load, one_thread, records, write_config


def test_auto_is_the_default_and_scales_with_domains_and_sample(tmp_path):
    cfg = load(write_config(tmp_path), "eval.every_tokens=auto", "eval.tokens_per_domain=64")
    assert cfg.eval.every_tokens == "auto"
    # 10 x 2 domains x 64 tokens = 1280 = 10 steps of 128.
    assert eval_interval(cfg) == AUTO_EVAL_FACTOR * 2 * 64 == 1280
    # Rounded up to whole optimizer steps: 10 x 2 x 48 = 960 -> 8 steps of 128 = 1024.
    cfg = load(write_config(tmp_path), "eval.every_tokens=auto", "eval.tokens_per_domain=48")
    assert eval_interval(cfg) == 1024
    # An explicit number, and 0 (boundaries only), are kept as written.
    assert eval_interval(load(write_config(tmp_path), "eval.every_tokens=384")) == 384
    assert eval_interval(load(write_config(tmp_path), "eval.every_tokens=0")) == 0
    # Left out of the config, the default is "auto".
    text = write_config(tmp_path).read_text(encoding="utf-8").replace("every_tokens = 384\n", "")
    (tmp_path / "noeval.toml").write_text(text, encoding="utf-8")
    assert load(tmp_path / "noeval.toml").eval.every_tokens == "auto"


@pytest.mark.parametrize("value", ['"sometimes"', "-128", "true", "1.5"])
def test_bad_interval_is_one_line_exit_2(tmp_path, capsys, value):
    path = write_config(tmp_path)
    rc = main(["train", str(path), "--no-progress", "--set", f"eval.every_tokens={value}"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "eval.every_tokens" in err, err
    assert not (tmp_path / "runs" / "run").exists()


def test_auto_interval_evaluates_inside_stages(tmp_path):
    # tokens_per_domain = 32 (one window): auto = 10 x 2 x 32 = 640 tokens = 5 steps.
    cfg = load(write_config(tmp_path), "eval.every_tokens=auto", "eval.tokens_per_domain=32")
    with one_thread():
        train(cfg, progress=False)
    assert records(cfg.run_dir, "run")[0]["eval_every_tokens"] == 640
    points = sorted({(r["step"], r["stage"]) for r in records(cfg.run_dir, "eval")})
    # Stage boundaries (0, 6, 12) and every 5 steps (5, 10) between them.
    assert points == [
        (0, "first"),
        (5, "first"),
        (6, "first"),
        (6, "second"),
        (10, "second"),
        (12, "second"),
    ]
