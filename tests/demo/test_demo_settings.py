"""The demo's settings: built-ins, a TOML file, --set, and the corpus flags."""

from __future__ import annotations

import pytest

from rewarm.demo import arms
from rewarm.demo.settings import load_settings
from rewarm.errors import UserError


def test_defaults_are_the_builtin_shift():
    s = load_settings()
    assert s.builtin and s.size == arms.DEFAULT and (s.old.name, s.new.name) == ("docs", "code")
    assert load_settings(quick=True).size == arms.QUICK


def test_file_then_set_then_flags(tmp_path):
    path = tmp_path / "demo.toml"
    path.write_text(
        'preset = "llama-tiny"\nstage1_tokens = 4096\n'
        '[old]\nname = "english"\nsource = ["en/*.txt"]\n'
        '[new]\nsource = "code.jsonl"\nfield = "content"\n'
    )
    s = load_settings(
        path=str(path), sets=["stage2_tokens=2048", "model_overrides={num_hidden_layers=1}"]
    )
    assert s.size.model_overrides == {"num_hidden_layers": 1}
    raw = arms.arm_config("naive", arms.Layout(runs="r", data="d"), 0, s.size, old=s.old)
    assert raw["model"]["overrides"] == {"num_hidden_layers": 1}
    assert raw["domains"]["english"]["source"] == ["en/*.txt"]
    assert (s.size.preset, s.size.stage1_tokens, s.size.stage2_tokens) == ("llama-tiny", 4096, 2048)
    assert s.size.seq_len == arms.DEFAULT.seq_len  # everything else from the built-in size
    assert (s.old.name, s.old.source) == ("english", ["en/*.txt"])
    assert (s.new.name, s.new.source, s.new.field) == ("new", "code.jsonl", "content")
    assert not s.builtin
    s = load_settings(quick=True, old=["a.parquet"], new=["b/*.md", "c/*.md"], names="x,y")
    assert (s.old.name, s.old.source, s.new.name, s.new.source) == (
        "x",
        "a.parquet",
        "y",
        ["b/*.md", "c/*.md"],
    )
    assert load_settings(old=["a.jsonl"]).new == arms.NEW  # the other one stays built-in


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sets": ["stage1_tokenz=5"]}, "unknown key 'stage1_tokenz'"),
        ({"sets": ["lr='fast'"]}, "lr"),
        ({"names": "same,same"}, "different names"),
        ({"names": "only"}, "two names"),
        ({"old": ["a.txt"], "names": "bad name,new"}, "old.name"),
    ],
)
def test_bad_settings_name_the_key(kwargs, message):
    with pytest.raises(UserError, match=message):
        load_settings(**kwargs)
