"""validate_spec: every bad spec raises one UserError line that starts with `where`
and names the key; configs route through it."""

from __future__ import annotations

import pytest

from rewarm.errors import UserError
from rewarm.runconfig import load as load_config
from rewarm.schedules import build, resolve_spec, validate_spec

W = "runs.toml: stages[1].schedule"

BAD = [
    ({"warmup": 10}, "kind"),
    ({"kind": "cosinus"}, "kind"),
    ({"kind": 3}, "kind"),
    ({"kind": "cosine", "final": 0.1}, "final"),
    ({"kind": "cosine", "final_ratio": "0.1"}, "final_ratio"),
    ({"kind": "cosine", "final_ratio": 1.5}, "final_ratio"),
    ({"kind": "cosine", "warmup": True}, "warmup"),
    ({"kind": "cosine", "warmup": -1}, "warmup"),
    ({"kind": "cosine", "warmup": 2000}, "warmup"),
    ({"kind": "cosine", "warmup": float("nan")}, "warmup"),
    ({"kind": "wsd", "decay": 900, "warmup": 200}, "decay"),
    ({"kind": "wsd", "shape": "sqrt"}, "shape"),
    ({"kind": "wsd", "shape": "exponential", "final_ratio": 0.0}, "final_ratio"),
    ({"kind": "wsd", "shape": "harmonic"}, "final_ratio"),
    ({"kind": "exponential"}, "final_ratio"),
    ({"kind": "infinite"}, "constant_ratio"),
    (
        {"kind": "infinite", "constant_ratio": 0.5, "warmup": 100, "cooldown_end": 50},
        "cooldown_end",
    ),
    (
        {"kind": "infinite", "constant_ratio": 0.5, "cooldown_end": 500, "anneal_start": 400},
        "anneal_start",
    ),
    ({"kind": "infinite", "constant_ratio": 0.5, "anneal_start": 1200}, "anneal_start"),
    ({"kind": "infinite", "constant_ratio": 0.5, "anneal_start": 800}, "final_ratio"),
    ({"kind": "infinite", "constant_ratio": 0.5, "cooldown_shape": "1-sqrt"}, "cooldown_shape"),
    ({"kind": "rewarm", "start": "prev"}, "start"),
    ({"kind": "step"}, "step_size"),
    ({"kind": "step", "step_size": 50, "warmup": 100}, "step_size"),
    ({"kind": "step", "step_size": 100, "gamma": 0}, "gamma"),
    ({"kind": "multistep", "milestones": [500, 300]}, "milestones"),
    ({"kind": "multistep", "milestones": [100, 2000]}, "milestones"),
    ({"kind": "multistep", "milestones": 100}, "milestones"),
    ({"kind": "inverse-sqrt"}, "timescale"),
    ({"kind": "inverse-sqrt", "warmup": 100, "timescale": 50}, "timescale"),
    ({"kind": "cosine-restarts"}, "period"),
    ({"kind": "cosine-restarts", "period": 0}, "period"),
    ({"kind": "wsd-s", "period": 100, "decay": 200}, "decay"),
    ({"kind": "triangular", "period": 100, "mode": "sine"}, "mode"),
    ({"kind": "branch"}, "at"),
    ({"kind": "branch", "at": 100, "main": {"kind": "nope"}}, "main.kind"),
    ({"kind": "branch", "at": 100, "main": {"kind": "rewarm"}}, "main.kind"),
    ({"kind": "branch", "at": 100, "main_total": 50}, "at"),
    ({"kind": "refined", "grad_norms": [1.0]}, "grad_norms"),
    ({"kind": "refined", "grad_norms": [1.0, -2.0]}, "grad_norms"),
    ({"kind": "refined", "grad_norms": "/no/such/file.txt"}, "grad_norms"),
    ({"kind": "refined", "grad_norms": [1, 2], "median_window": 0}, "median_window"),
    ({"kind": "polynomial", "power": 0}, "power"),
]


@pytest.mark.parametrize(("spec", "key"), BAD, ids=[f"{i}-{k}" for i, (_, k) in enumerate(BAD)])
def test_bad_specs_name_the_key(spec, key):
    with pytest.raises(UserError) as err:
        validate_spec(spec, 1000, W)
    msg = str(err.value)
    assert msg.startswith(W), msg
    assert f"{W}.{key}" in msg, msg
    assert "\n" not in msg


def test_not_a_table_and_bad_total():
    with pytest.raises(UserError, match=r"^x must be a table"):
        validate_spec("cosine", 1000, "x")  # type: ignore[arg-type]
    with pytest.raises(UserError, match=r"^x: the schedule's length must be > 0"):
        validate_spec({"kind": "cosine"}, 0, "x")


def test_unknown_key_lists_the_known_ones():
    with pytest.raises(
        UserError, match=r"known: kind, warmup, warmup_start, decay, shape, final_ratio"
    ):
        validate_spec({"kind": "wsd", "decay_len": 5}, 1000, "s")


def test_refined_file_with_text_is_rejected(tmp_path):
    path = tmp_path / "g.txt"
    path.write_text("1.0 2.0 abc")
    with pytest.raises(UserError, match=r"holds 'abc'"):
        validate_spec({"kind": "refined", "grad_norms": str(path)}, 10, "s")


def test_defaults_are_filled_and_the_input_is_untouched():
    spec = {"kind": "wsd", "warmup": 10}
    out = resolve_spec(spec, 1000, "s")
    assert spec == {"kind": "wsd", "warmup": 10}
    assert out == {
        "kind": "wsd",
        "warmup": 10.0,
        "warmup_start": 0.0,
        "decay": 200.0,
        "shape": "1-sqrt",
        "final_ratio": 0.0,
    }


def test_valid_specs_build():
    assert build({"kind": "wsd", "decay": 100}, 100)(100) == 0.0  # decay = whole length
    validate_spec({"kind": "infinite", "constant_ratio": 0.5, "anneal_start": 1000}, 1000, "s")


CONFIG = """
[run]
name = "r"
[domains.a]
source = "x.txt"
[[stages]]
name = "one"
tokens = 100000
mix = {{ a = 1.0 }}
schedule = {{ kind = "cosine" }}
[[stages]]
name = "two"
tokens = 100000
mix = {{ a = 1.0 }}
schedule = {schedule}
"""


def test_config_loading_names_the_stage_and_key(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text(CONFIG.format(schedule='{ kind = "wsd", decay = 200000 }'))
    with pytest.raises(UserError) as err:
        load_config(path)
    assert str(err.value).startswith(f"{path}: stages[1].schedule.decay must be <=")
