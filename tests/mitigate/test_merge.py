"""`rewarm merge`: weights 1/0 return each model exactly, task arithmetic and WSM follow
their formulas, the output loads in transformers, and --config evaluates every domain."""

from __future__ import annotations

import argparse
import json

import pytest
import torch

from rewarm import checkpoint
from rewarm.cli import main
from rewarm.commands import merge as verb
from rewarm.errors import UserError
from rewarm.mitigate import merge
from rewarm.mitigate.wsm import merge_weights


def _ckpt(run_dir, step):
    return run_dir / "checkpoints" / checkpoint.step_dir_name(step)


def _state(directory) -> dict[str, torch.Tensor]:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(directory), local_files_only=True)
    return model.state_dict()


def _ckpt_state(path) -> dict[str, torch.Tensor]:
    return merge.load_source(path).model.state_dict()


@pytest.mark.parametrize("pick", [0, 1])
def test_weight_one_and_zero_return_each_checkpoint_exactly(finished, tmp_path, pick):
    run = finished[0].run_dir
    a, b = _ckpt(run, 6), _ckpt(run, 12)
    out = tmp_path / "merged"
    weights = ["1", "0"] if pick == 0 else ["0", "1"]
    assert main(["merge", str(a), str(b), "--out", str(out), "--weights", *weights]) == 0
    want = _ckpt_state((a, b)[pick])
    got = _state(out)  # loads with transformers alone
    assert got.keys() == want.keys()
    assert all(torch.equal(got[k], want[k]) for k in want)
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(out), local_files_only=True)
    assert tok.decode(tok.encode("def x")).endswith("def x")
    assert json.loads((out / "merge.json").read_text())["weights"] == [float(w) for w in weights]


def test_task_arithmetic_and_wsm_follow_their_formulas(finished, tmp_path):
    run = finished[0].run_dir
    base, cont = _ckpt(run, 6), _ckpt(run, 12)
    out = tmp_path / "ta"
    args = ["merge", str(cont), "--method", "task-arithmetic", "--base", str(base)]
    assert main([*args, "--weights", "0.3", "--out", str(out)]) == 0
    sb, sc, got = _ckpt_state(base), _ckpt_state(cont), _state(out)
    for k in sb:
        torch.testing.assert_close(got[k], sb[k] + 0.3 * (sc[k] - sb[k]))
    # WSM: the checkpoints oldest first, weights from the shape.
    paths = [_ckpt(run, s) for s in (6, 10, 12)]
    out = tmp_path / "wsm"
    assert (
        main(["merge", *map(str, paths), "--method", "wsm", "--shape", "cosine", "--out", str(out)])
        == 0
    )
    c = merge_weights("cosine", 3)
    states = [_ckpt_state(p) for p in paths]
    got = _state(out)
    for k in got:
        want = sum(float(cj) * s[k] for cj, s in zip(c, states, strict=True))
        torch.testing.assert_close(got[k], want)


def test_merge_evaluates_every_domain_of_a_config(finished, tmp_path, capsys):
    cfg = finished[0]
    run = cfg.run_dir
    out = tmp_path / "half"
    code = main(["merge", str(_ckpt(run, 6)), str(_ckpt(run, 12)), "--out", str(out),
                 "--config", str(cfg.source)])  # fmt: skip
    assert code == 0
    evaluation = json.loads((out / "merge.json").read_text())["evaluation"]
    assert set(evaluation) == {str(_ckpt(run, 6)), str(_ckpt(run, 12)), "merged"}
    assert all(set(row) == {"prose", "code"} for row in evaluation.values())
    table = capsys.readouterr().out
    assert "merged" in table and "prose bpb" in table
    # The merged model's numbers are those `rewarm eval` gives its directory.
    assert main(["eval", str(out), "--config", str(cfg.source), "--json"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert {r["domain"]: r["loss"] for r in lines} == pytest.approx(
        {d: v["loss"] for d, v in evaluation["merged"].items()}, rel=1e-6
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--weights", "0.5", "0.6"], "must sum to 1"),
        (["--weights", "1"], "1 numbers for 2 models"),
        (["--method", "task-arithmetic"], "--base is required"),
        (["--method", "wsm", "--shape", "zigzag"], "--shape must be one of"),
        (["--base", "x"], "only used with --method task-arithmetic"),
    ],
)
def test_bad_arguments_are_one_line_errors(finished, tmp_path, argv, message):
    run = finished[0].run_dir
    p = argparse.ArgumentParser()
    verb.add_arguments(p)
    args = p.parse_args([str(_ckpt(run, 6)), str(_ckpt(run, 12)), "--out", str(tmp_path), *argv])
    with pytest.raises(UserError, match=message):
        verb.run(args)


def test_models_of_different_shapes_are_refused(finished, tmp_path):
    run = finished[0].run_dir
    a = merge.load_source(_ckpt(run, 6))
    b = merge.load_source(_ckpt(run, 12))
    with torch.no_grad():
        b.model.get_input_embeddings().weight = torch.nn.Parameter(torch.zeros(3, 3))
    with pytest.raises(UserError, match="has shape"):
        merge.merge([a, b], method="linear", weights=[0.5, 0.5])
