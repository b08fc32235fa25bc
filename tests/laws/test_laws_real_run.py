"""Laws fitted end to end on a real rewarm run's metrics.jsonl (tiny preset, CPU)."""

from __future__ import annotations

import contextlib
import csv
import io
import json

import pytest

from rewarm.cli import main
from rewarm.config import load_config
from rewarm.train.trainer import train
from tests.runhelpers import one_thread, write_corpus

CONFIG = """
[run]
name = "lawrun"
out_dir = "{out}"
[model]
preset = "llama-tiny"
[data]
heldout_fraction = 0.1
heldout_min_tokens = 128
[domains.prose]
source = "{root}/prose/*.txt"
[train]
seq_len = 32
batch_tokens = 128
lr = 3e-3
[eval]
tokens_per_domain = 64
[[stages]]
name = "only"
tokens = 7680
mix = {{ prose = 1.0 }}
schedule = {{ kind = "cosine", warmup = 640, final_ratio = 0.1 }}
"""


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("lawrun")
    write_corpus(tmp / "corpus")
    path = tmp / "c.toml"
    path.write_text(CONFIG.format(out=tmp / "runs", root=tmp / "corpus"))
    cfg = load_config(path)
    with one_thread():
        train(cfg, progress=False)
    return cfg.run_dir


@pytest.mark.parametrize("law", ["tissue", "mpl"])
def test_fit_and_predict_on_a_real_run(run_dir, tmp_path, law):
    fit = tmp_path / "fit.json"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["fit", str(run_dir), "--law", law, "--out", str(fit), "--smooth", "3"])
    assert code == 0, out.getvalue()
    data = json.loads(fit.read_text())
    text = json.dumps(data)
    assert "NaN" not in text and "Infinity" not in text
    # A 60-step run of a tiny model: the law must still describe its curve closely.
    assert data["law"] == law and data["curves"] == ["lawrun"]
    assert data["metrics"]["all"]["r2"] > 0.8
    assert law in out.getvalue().lower()
    curve = tmp_path / "pred.csv"
    spec = '{kind = "wsd", warmup = 5, decay = 12, shape = "1-sqrt", final_ratio = 0.0}'
    args = ["predict", str(fit), "--schedule", spec, "--total", "60", "--out", str(curve)]
    assert main(args) == 0
    rows = list(csv.DictReader(curve.open()))
    losses = [float(r["loss"]) for r in rows]
    assert len(rows) >= 50 and all(0 < x < 20 for x in losses)
    # The cooldown lowers the predicted loss below the constant phase's.
    assert losses[-1] < losses[len(losses) * 3 // 4 - 8]
