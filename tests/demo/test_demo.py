"""`rewarm demo --quick` end to end: every arm's run, the report, and the printed table
checked against numbers recomputed here from each run's `metrics.jsonl` and shards."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from rewarm.cli import main
from rewarm.continual import metrics as m
from rewarm.continual.timeline import timeline_of
from rewarm.data.shards import open_domain
from rewarm.demo.arms import ARMS, QUICK, REPLAY_FRACTION
from rewarm.evaluation.evaluator import eval_windows
from rewarm.runlog import read_run

pytestmark = pytest.mark.timeout(600)  # a shared, loaded CPU; alone it takes ~80 s


def unigram_bpb(data_dir, domain: str) -> float:
    """Add-one smoothed unigram of the training split on the evaluator's sample, in bpb."""
    d = open_domain(data_dir / domain)
    vocab = int(d.manifest["vocab_size"])
    counts = np.bincount(np.asarray(d.train, dtype=np.int64), minlength=vocab) + 1.0
    targets = eval_windows(d.heldout, QUICK.eval_tokens, QUICK.seq_len, domain)[:, 1:]
    nats = -np.log(counts[targets] / counts.sum()).mean()
    return float(nats / math.log(2) / d.bytes_per_token_heldout)


def _expected(
    run_dirs: dict[str, object], base_tokens: int, unigram: dict[str, float]
) -> dict[str, dict[str, float | None]]:
    """The table's numbers, recomputed from the logs with the metric functions."""
    out: dict[str, dict[str, float | None]] = {}
    for arm, path in run_dirs.items():
        tl = timeline_of(read_run(path))
        r, rb = m.loss_matrix(tl), m.loss_matrix(tl, "bits_per_byte")
        last = dict(zip(rb.domains, rb.values[-1].tolist(), strict=True))
        nats = dict(zip(r.domains, r.values[-1].tolist(), strict=True))
        to_bpb = last["docs"] / nats["docs"]
        gaps = [g.gap for g in m.stability_gaps(tl) if g.domain == "docs"]
        forget = m.forgetting(tl, r)[-1].get("docs")
        stage_tokens = [s.end - s.start for s in tl.stages]
        out[arm] = {
            "old_bpb": last["docs"],
            "new_bpb": last["code"],
            "mean_bpb": (last["docs"] + last["code"]) / 2,
            "old_forgetting": None if forget is None else forget * to_bpb,
            "max_gap": max(gaps) * to_bpb if gaps else None,
            "old_vs_unigram": last["docs"] / unigram["docs"],
            "new_vs_unigram": last["code"] / unigram["code"],
            # continual arms: the tokens after stage 1; the baseline: all of its own
            "compute": sum(stage_tokens[1:] or stage_tokens) / base_tokens,
            "compute_total": sum(stage_tokens) / base_tokens,
        }
    return out


def _cell(x: float | None, digits: int, signed: bool = False) -> str:
    if x is None:
        return "-"
    return f"{x:+.{digits}f}" if signed else f"{x:.{digits}f}"


def _table_rows(printed: str) -> dict[str, list[str]]:
    """{arm: cells} of the printed table (the lines after the header and its rule)."""
    lines = printed.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.split()[:3] == ["arm", "docs", "bpb"])
    rows = {}
    for ln in lines[start + 2 :]:
        if not ln.strip():
            break
        rows[ln.split()[0]] = ln.split()[1:]
    return rows


def test_quick_demo_end_to_end(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "smoke test" in printed and "unigram" in printed

    runs = {arm: out / arm for arm in ARMS}
    for arm, path in runs.items():
        assert (path / "metrics.jsonl").is_file(), arm
        assert (path / "config.resolved.toml").is_file(), arm
    report = out / "report"
    assert (report / "report.html").stat().st_size > 10_000
    assert (report / "summary.md").is_file()
    assert list(report.glob("loss-*.png"))

    # every branch continues the host's stage-1 model: the evaluation the branch makes
    # after restoring the checkpoint matches the host's own at the end of stage 1
    s1 = QUICK.stage1_tokens
    for arm in ("rewarm", "rewarm+replay"):
        log = read_run(runs[arm])
        evals = [e for e in log.evals if e.tokens == s1 and e.domain == "docs"]
        host = [e for e in read_run(runs["naive"]).evals if e.tokens == s1 and e.domain == "docs"]
        assert len(evals) >= 2  # the copied stage-1 record and the branch's own
        assert all(e.loss == pytest.approx(host[0].loss, abs=1e-4) for e in evals)
        # through the public path: run.branch_from and the log's branch record
        assert log.config["run"]["branch_from"].endswith("naive/checkpoints/step_00000012")
        assert log.branch is not None and log.branch.tokens == s1

    # replay arms really replayed docs in stage 2, the others did not
    for arm in ARMS[1:]:
        ends = [s for s in read_run(runs[arm]).stages if s.event == "end" and s.index == 1]
        docs = ends[0].tokens_by_domain.get("docs", 0.0)
        if arm.endswith("+replay"):
            expected = REPLAY_FRACTION * QUICK.stage2_tokens
            assert docs == pytest.approx(expected, abs=QUICK.seq_len)
        else:
            assert docs == 0

    base_tokens = QUICK.stage1_tokens + QUICK.stage2_tokens
    unigram = {d: unigram_bpb(out / "data", d) for d in ("docs", "code")}
    want = _expected(runs, base_tokens, unigram)
    saved = {a["arm"]: a for a in json.loads((out / "demo_results.json").read_text())["arms"]}
    assert list(saved) == list(ARMS)
    rows = _table_rows(printed)
    assert list(rows) == ["unigram", *ARMS]
    assert rows["unigram"][:2] == [_cell(unigram["docs"], 3), _cell(unigram["code"], 3)]
    saved_unigram = json.loads((out / "demo_results.json").read_text())["unigram"]
    assert saved_unigram["docs"]["bits_per_byte"] == pytest.approx(unigram["docs"], rel=1e-9)
    for arm, exp in want.items():
        for key, value in exp.items():
            got = saved[arm][key]
            if value is None:
                assert got is None, (arm, key)
            else:
                assert got == pytest.approx(value, abs=1e-9), (arm, key)
        cells = [
            _cell(exp["old_bpb"], 3),
            _cell(exp["new_bpb"], 3),
            _cell(exp["mean_bpb"], 3),
            _cell(exp["old_forgetting"], 3, signed=True),
            _cell(exp["max_gap"], 3, signed=True),
            _cell(exp["old_vs_unigram"], 2),
            _cell(exp["new_vs_unigram"], 2),
            _cell(exp["compute"], 2),
            _cell(exp["compute_total"], 2),
        ]
        assert rows[arm] == cells, arm
    # the baseline has no forgetting; every continual arm has both numbers
    assert want["retrain"]["old_forgetting"] is None and want["retrain"]["max_gap"] is None
    for arm in ARMS[1:]:
        assert want[arm]["old_forgetting"] is not None and want[arm]["max_gap"] is not None
        assert math.isclose(want[arm]["compute_total"], 1.0)
    assert np.isfinite([want[a]["mean_bpb"] for a in ARMS]).all()
    # one seed: the what-holds block decides nothing but the config-set compute claim
    block = printed[printed.index("What holds") :].splitlines()
    assert "noise is unknown" in block[0]
    verdicts = [line.split("  ")[1].strip() for line in block[1:] if line.startswith("  ")]
    assert set(verdicts) == {"noise unknown", "holds"}


def test_unknown_arm_is_a_user_error(tmp_path, capsys):
    code = main(["demo", "--quick", "--out", str(tmp_path / "d"), "--arms", "retrain,bogus"])
    assert code == 2
    err = capsys.readouterr().err
    assert "bogus" in err and len(err.strip().splitlines()) == 1


def test_other_settings_in_out_dir_are_refused(tmp_path, capsys):
    """An arm directory from a demo with another seed is never resumed or overwritten."""
    from rewarm.config import config_from_dict, dump_toml
    from rewarm.demo.arms import Layout, arm_config

    out = tmp_path / "d"
    cfg = config_from_dict(
        arm_config("retrain", Layout(runs=str(out), data=str(out / "data")), 0, QUICK)
    )
    cfg.run_dir.mkdir(parents=True)
    (cfg.run_dir / "config.resolved.toml").write_text(dump_toml(cfg.to_dict()))
    code = main(["demo", "--quick", "--out", str(out), "--arms", "retrain", "--seed", "1"])
    assert code == 2
    err = capsys.readouterr().err
    assert "run.seed" in err and "another --out" in err
    assert sorted(p.name for p in cfg.run_dir.iterdir()) == ["config.resolved.toml"]
