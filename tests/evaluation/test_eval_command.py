"""`rewarm eval` on a checkpoint and on its exported Hugging Face directory."""

from __future__ import annotations

import pytest

from rewarm.cli import main
from tests.runhelpers import records


def _table(out: str) -> dict[str, tuple[float, float]]:
    rows = [line.split() for line in out.strip().splitlines()[1:]]
    return {r[0]: (float(r[1]), float(r[2])) for r in rows}


def test_eval_prints_the_run_s_final_losses_for_checkpoint_and_export(finished, tmp_path, capsys):
    cfg, _ = finished
    final = {r["domain"]: r for r in records(cfg.run_dir, "eval") if r["step"] == 12}
    assert main(["eval", str(cfg.run_dir), "--config", cfg.source]) == 0
    table = _table(capsys.readouterr().out)
    assert set(table) == {"prose", "code"}
    for d, (loss, bpb) in table.items():
        assert loss == pytest.approx(final[d]["loss"], abs=1e-4)
        assert bpb == pytest.approx(final[d]["bits_per_byte"], abs=1e-4)

    out = tmp_path / "exported"
    ckpt = cfg.run_dir / "checkpoints" / "step_00000012"
    assert main(["export", str(ckpt), "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["eval", str(out), "--config", cfg.source, "--domains", "code"]) == 0
    only = _table(capsys.readouterr().out)
    assert list(only) == ["code"] and only["code"] == table["code"]


def test_eval_rejects_unknown_domain_and_bad_path(finished, tmp_path, capsys):
    cfg, _ = finished
    assert main(["eval", str(cfg.run_dir), "--config", cfg.source, "--domains", "nope"]) == 2
    assert "--domains nope" in capsys.readouterr().err
    assert main(["eval", str(tmp_path), "--config", cfg.source]) == 2
    assert "not a rewarm checkpoint" in capsys.readouterr().err
