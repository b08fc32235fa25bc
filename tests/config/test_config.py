"""Config loading: defaults, validation errors that name the key, overrides, round trip."""

from __future__ import annotations

import tomllib

import pytest

from rewarm.config import apply_override, config_from_dict, dump_toml, load_config
from rewarm.errors import UserError


def minimal() -> dict:
    return {
        "run": {"name": "t"},
        "domains": {"a": {"source": "x.txt"}, "b": {"source": ["y.txt", "z/*.md"]}},
        "train": {"seq_len": 8, "batch_tokens": 32},
        "stages": [
            {
                "name": "one",
                "tokens": 64,
                "mix": {"a": 1.0},
                "schedule": {"kind": "cosine", "final_ratio": 0.1},
            },
            {"name": "two", "tokens": 64, "mix": {"b": 1}, "optimizer_state": "reset"},
        ],
    }


def test_minimal_config_fills_defaults():
    cfg = config_from_dict(minimal())
    assert cfg.run.out_dir == "runs" and cfg.model.init == "scratch"
    assert cfg.stages[1].mix == {"b": 1.0} and isinstance(cfg.stages[1].mix["b"], float)
    assert cfg.stage_lr(0) == cfg.train.lr
    assert str(cfg.data_dir) == "runs/data"


@pytest.mark.parametrize(
    ("path", "value", "needle"),
    [
        (("train", "sq_len"), 3, "unknown key 'train.sq_len'"),
        (("train", "seq_len"), "8", "train.seq_len must be an integer"),
        (("train", "lr"), True, "train.lr must be a number"),
        (("train", "batch_tokens"), 30, "train.batch_tokens"),
        (("model", "init"), "s3://x", "model.init"),
        (("eval", "every_tokens"), -1, "eval.every_tokens"),
    ],
)
def test_bad_values_name_the_key(path, value, needle):
    raw = minimal()
    raw.setdefault(path[0], {})[path[1]] = value
    with pytest.raises(UserError, match=needle.replace(".", r"\.").replace("(", r"\(")):
        config_from_dict(raw, source="c.toml")


def test_undeclared_domain_and_short_stage():
    raw = minimal()
    raw["stages"][0]["mix"] = {"nope": 1.0}
    with pytest.raises(UserError, match=r"stages\[0\]\.mix\.nope"):
        config_from_dict(raw)
    raw = minimal()
    raw["stages"][1]["tokens"] = 8
    with pytest.raises(UserError, match=r"stages\[1\]\.tokens"):
        config_from_dict(raw)


def test_missing_run_and_missing_file(tmp_path):
    with pytest.raises(UserError, match=r"\[run\]"):
        config_from_dict({"domains": {}})
    with pytest.raises(UserError, match="not found"):
        load_config(tmp_path / "absent.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[run\nname=")
    with pytest.raises(UserError, match="bad.toml: not valid TOML"):
        load_config(bad)


def test_overrides_parse_toml_literals():
    raw = minimal()
    apply_override(raw, "train.lr=0.003")
    apply_override(raw, "stages.1.tokens=128")
    apply_override(raw, "run.name=other")
    cfg = config_from_dict(raw)
    assert cfg.train.lr == 0.003 and cfg.stages[1].tokens == 128 and cfg.run.name == "other"
    with pytest.raises(UserError, match="no list item"):
        apply_override(raw, "stages.7.tokens=1")


def test_resolved_config_round_trips_through_toml(tmp_path):
    cfg = config_from_dict(minimal())
    text = dump_toml(cfg.to_dict())
    again = config_from_dict(tomllib.loads(text))
    assert again == cfg
    path = tmp_path / "c.toml"
    path.write_text(text)
    assert load_config(path) == cfg


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("train", "nonfinite"), "ignore", "c.toml: train.nonfinite must be 'skip' or 'stop'"),
        (("train", "nonfinite"), 1, "c.toml: train.nonfinite must be a string, got 1"),
        (("train", "device"), "tpu", "c.toml: train.device must be 'auto', 'cpu' or 'cuda'"),
        (("train", "device"), 0, "c.toml: train.device must be a string, got 0"),
        (("tokenizer", "kind"), "wordpiece", "c.toml: tokenizer.kind must be 'byte', 'bpe' or"),
    ],
)
def test_choice_fields_name_the_allowed_values(path, value, message):
    raw = minimal()
    raw.setdefault(path[0], {})[path[1]] = value
    with pytest.raises(UserError) as err:
        config_from_dict(raw, source="c.toml")
    assert str(err.value).startswith(message), str(err.value)


def test_stage_optimizer_state_is_a_closed_choice():
    raw = minimal()
    raw["stages"][1]["optimizer_state"] = "drop"
    with pytest.raises(UserError) as err:
        config_from_dict(raw, source="c.toml")
    assert str(err.value) == "c.toml: stages[1].optimizer_state must be 'keep' or 'reset'"


def test_open_choices_accept_their_patterns():
    raw = minimal()
    raw["train"]["device"] = "cuda:1"
    raw["tokenizer"] = {"kind": "hf:/models/x"}
    raw["model"] = {"init": "checkpoint:runs/a/checkpoints"}
    cfg = config_from_dict(raw)
    assert (cfg.train.device, cfg.tokenizer.kind) == ("cuda:1", "hf:/models/x")


def test_the_config_package_imports_nothing_above_it():
    """config is the bottom layer: schedules and data check their own tables
    (rewarm.runconfig), so loading a config imports neither."""
    import subprocess
    import sys

    code = "import sys, rewarm.config; print(' '.join(m for m in sys.modules if m.startswith('rewarm')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(out.stdout.split())
    assert loaded, out.stderr
    assert all(m in ("rewarm", "rewarm.errors") or m.startswith("rewarm.config") for m in loaded)


def test_derived_values_are_defined_once():
    from rewarm.config.derived import (
        batch_rows,
        micro_batch_rows,
        rows_per_rank,
        stage_steps,
    )

    raw = minimal()  # seq_len 8, batch_tokens 32: 4 sequences per step
    raw["stages"][1]["tokens"] = 70
    cfg = config_from_dict(raw, source="c.toml")
    assert [stage_steps(cfg, i) for i in range(2)] == [2, 3]  # ceil(70 / 32)
    assert batch_rows(cfg.train) == 4 and rows_per_rank(cfg, 2) == 2
    with pytest.raises(UserError) as err:
        rows_per_rank(cfg, 3)
    assert str(err.value) == (
        "c.toml: train.batch_tokens / train.seq_len = 4 sequences cannot be split evenly "
        "over 3 ranks"
    )
    # micro_batch_tokens = 0: a rank's whole share of the batch; else its own size.
    assert [micro_batch_rows(cfg.train, w) for w in (1, 2, 4)] == [4, 2, 1]
    cfg.train.micro_batch_tokens = 16
    assert [micro_batch_rows(cfg.train, w) for w in (1, 2)] == [2, 2]
