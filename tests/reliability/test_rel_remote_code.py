"""Model and tokenizer directories that ship Python code: never executed unless
`model.trust_remote_code = true`; refused with exit 2 and one line instead."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rewarm.data import tokenizer as tok_mod
from rewarm.errors import UserError
from rewarm.model import hf
from tests.reliability.relhelpers import cli
from tests.runhelpers import write_config


def _code_dir(tmp: Path, marker: Path) -> Path:
    """A model directory whose config maps the Auto classes to `planted.py`, which
    creates `marker` the moment it is imported."""
    d = tmp / "custom_model"
    d.mkdir()
    (d / "planted.py").write_text(
        f"open({str(marker)!r}, 'w').close()\n"
        "from transformers import PretrainedConfig\n"
        "class PlantedConfig(PretrainedConfig):\n"
        "    model_type = 'plantednet'\n",
        encoding="utf-8",
    )
    config = {
        "model_type": "plantednet",
        "architectures": ["PlantedForCausalLM"],
        "auto_map": {
            "AutoConfig": "planted.PlantedConfig",
            "AutoModelForCausalLM": "planted.PlantedForCausalLM",
            "AutoTokenizer": ["planted.PlantedTokenizer", None],
        },
        "vocab_size": 300,
    }
    (d / "config.json").write_text(json.dumps(config), encoding="utf-8")
    (d / "tokenizer_config.json").write_text(
        json.dumps({"auto_map": config["auto_map"], "tokenizer_class": "PlantedTokenizer"}),
        encoding="utf-8",
    )
    return d


def test_train_from_a_model_dir_with_code_is_refused(tmp_path):
    marker = tmp_path / "PWNED"
    model_dir = _code_dir(tmp_path, marker)
    config = write_config(tmp_path, "remote", init=f"hf:{model_dir}")
    rc, err = cli("train", str(config), "--no-progress")
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert str(model_dir) in lines[0] and "trust_remote_code" in lines[0]
    assert not marker.exists()


@pytest.mark.parametrize(
    "load",
    [
        lambda d: hf.load_hf_dir(d, False, "model.init"),
        lambda d: hf.load_checkpoint_model(d, False, "model.init"),
        lambda d: tok_mod.load_hf(str(d)),
    ],
    ids=["hf_model", "checkpoint_config", "hf_tokenizer"],
)
def test_loaders_refuse_code_without_the_opt_in(tmp_path, load):
    marker = tmp_path / "PWNED"
    model_dir = _code_dir(tmp_path, marker)
    with pytest.raises(UserError, match="custom code|trust_remote_code"):
        load(model_dir)
    assert not marker.exists()


def test_the_opt_in_is_what_runs_the_code(tmp_path, monkeypatch):
    """Control: with trust_remote_code=True the same directory's code does run (so the
    refusals above are the guard, not a broken fixture). Modules go under tmp_path."""
    import sys

    import transformers.dynamic_module_utils as dyn

    marker = tmp_path / "PWNED"
    model_dir = _code_dir(tmp_path, marker)
    monkeypatch.setattr(dyn, "HF_MODULES_CACHE", str(tmp_path / "modules"))
    monkeypatch.setattr(sys, "path", list(sys.path))
    from transformers import AutoConfig

    AutoConfig.from_pretrained(str(model_dir), trust_remote_code=True)
    assert marker.exists()
