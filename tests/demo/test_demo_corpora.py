"""`rewarm demo --old SRC --new SRC` on corpora the test writes: the same arms, table
and report, with the user's names, and mean ± sd over seeds."""

from __future__ import annotations

import json
import random

import pytest

from rewarm.cli import main
from rewarm.runlog import read_run
from tests.runhelpers import WORDS as RUN_WORDS

pytestmark = [pytest.mark.timeout(600), pytest.mark.slow]

TINY = """
preset = "llama-tiny"
stage1_tokens = 512
stage2_tokens = 384
seq_len = 32
batch_tokens = 128
lr = 3e-3
warmup_tokens = 128
rewarm_tokens = 128
eval_every = 256
eval_tokens = 128
vocab_size = 320
sample_bytes = 60000
old_max_bytes = 0
new_max_bytes = 0
heldout_min_tokens = 512
"""

ARMS_RUN = ("retrain", "naive", "rewarm+replay")  # the baseline, a host and a branch
WORDS = RUN_WORDS["prose"]


def write_corpora(root):
    rng = random.Random(0)
    old = root / "prose"
    old.mkdir(parents=True)
    for i in range(10):
        text = " ".join(rng.choice(WORDS) for _ in range(600))
        (old / f"{i}.txt").write_text(text + "\n", encoding="utf-8")
    lines = []
    for i in range(150):
        body = "\n".join(f"    {v} = {v} + {rng.randint(1, 9)}" for v in rng.sample("xyzuvw", 4))
        lines.append(json.dumps({"content": f"def f{i}(x):\n{body}\n    return x\n"}))
    (root / "code.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_demo_on_user_corpora_with_two_seeds(tmp_path, capsys):
    write_corpora(tmp_path)
    settings = tmp_path / "tiny.toml"
    settings.write_text(TINY, encoding="utf-8")
    out = tmp_path / "demo"
    args = [
        "demo",
        "--old",
        str(tmp_path / "prose" / "*.txt"),
        "--new",
        str(tmp_path / "code.jsonl"),
        "--field",
        "content",
        "--names",
        "english,snippets",
        "--config",
        str(settings),
        "--seeds",
        "2",
        "--arms",
        ",".join(ARMS_RUN),
        "--out",
        str(out),
        "--no-progress",
    ]
    assert main(args) == 0
    printed = capsys.readouterr().out
    lines = printed.splitlines()
    head = next(i for i, ln in enumerate(lines) if ln.startswith("arm "))
    assert lines[head].split()[:5] == ["arm", "english", "bpb", "snippets", "bpb"]
    rows = {ln.split()[0]: ln.split()[1:] for ln in lines[head + 2 : head + 6]}
    assert list(rows) == ["unigram", *ARMS_RUN]
    assert "±" in rows["naive"][0] and "±" not in rows["naive"][-1]  # compute: exact
    assert "What holds (decided from 2 seeds" in printed
    assert "replay reduces english forgetting" not in printed  # needs rewarm: not run
    assert "rewarm+replay ends below retrain on snippets" in printed

    results = json.loads((out / "demo_results.json").read_text())
    assert results["seeds"] == [0, 1]
    assert {(a["arm"], a["seed"]) for a in results["arms"]} == {
        (arm, s) for arm in ARMS_RUN for s in (0, 1)
    }
    assert set(results["unigram"]) == {"english", "snippets"}
    for s in (0, 1):
        report = out / f"seed-{s}" / "report"
        assert (report / "report.html").stat().st_size > 10_000
        assert (report / "demo-arms.png").is_file()
        log = read_run(out / f"seed-{s}" / "rewarm+replay")
        assert log.config["run"]["seed"] == s
        assert set(log.config["domains"]) == {"english", "snippets"}
        assert log.branch is not None  # branched from the host's stage 1, publicly
    assert sorted(p.name for p in (out / "data").iterdir() if p.is_dir()) == [
        "english",
        "snippets",
        "tokenizer",
    ]
