"""The resolved config (`config.resolved.toml`) always parses back to the same Config."""

from __future__ import annotations

import tomllib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rewarm.config import (
    CheckpointSection,
    Config,
    DataSection,
    DomainSection,
    EvalSection,
    ModelSection,
    RunSection,
    StageSection,
    TokenizerSection,
    TrainSection,
    config_from_dict,
    resolved_toml,
)
from rewarm.train.changes import RESOLVED, check


def _config(stage_name: str) -> Config:
    return config_from_dict(
        {
            "run": {"name": "t"},
            "domains": {"a": {"source": "x.txt"}},
            "train": {"seq_len": 8, "batch_tokens": 32},
            "stages": [{"name": stage_name, "tokens": 64, "mix": {"a": 1.0}}],
        },
        source="c.toml",
    )


def test_a_stage_name_with_a_newline_round_trips_and_the_run_resumes(tmp_path):
    """A name that needs escaping ("a\\nb" is valid) must not break the resolved file,
    which `rewarm train` reads back to resume the run."""
    cfg = _config('a\nb "quoted" \\ \t\x7f')
    cfg.run.out_dir = str(tmp_path)
    text = resolved_toml(cfg)
    assert config_from_dict(tomllib.loads(text)) == cfg
    cfg.run_dir.mkdir(parents=True)
    (cfg.run_dir / RESOLVED).write_text(text, encoding="utf-8")
    assert check(cfg, allowed=[]) == {}  # the resume path: no change, no error


# -- any valid Config -> TOML -> the same Config --------------------------------------------

TEXT = st.text(alphabet=st.characters(codec="utf-8") | st.sampled_from('\n\r\t"\\\x00\x7f.[]= '))
NAME = TEXT.filter(lambda s: bool(s.strip()))
KEY = st.text(max_size=6) | st.sampled_from(["a.b", "", "x y", '"', "[t]"])
SCALAR = (
    st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT
)
VALUE = st.recursive(
    SCALAR,
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(KEY, kids, max_size=3),
    max_leaves=8,
)
FLOAT = st.floats(min_value=0.0, max_value=1e6, allow_nan=False)
POSITIVE = st.floats(min_value=0.0, max_value=1e6, exclude_min=True)
COUNT = st.integers(0, 2**62)


@st.composite
def configs(draw: st.DrawFn) -> Config:
    seq_len = draw(st.integers(2, 4096))
    batch = seq_len * draw(st.integers(1, 64))
    names = draw(st.lists(NAME, min_size=1, max_size=3, unique=True))
    domains = {
        n: DomainSection(
            source=draw(NAME | st.lists(NAME, min_size=1, max_size=2)),
            field=draw(TEXT),
            max_bytes=draw(COUNT),
            max_epochs=draw(POSITIVE),
        )
        for n in names
    }
    stages = []
    for stage_name in draw(st.lists(NAME, min_size=1, max_size=3, unique=True)):
        mix = {n: draw(FLOAT) for n in draw(st.lists(st.sampled_from(names), min_size=1))}
        mix[next(iter(mix))] = draw(POSITIVE)
        stages.append(
            StageSection(
                name=stage_name,
                tokens=draw(st.integers(batch, 2**62)),
                mix=mix,
                schedule={"kind": draw(TEXT), **draw(st.dictionaries(KEY, VALUE, max_size=3))},
                replay=draw(st.dictionaries(KEY, VALUE, max_size=3)),
                optimizer_state=draw(st.sampled_from(["keep", "reset"])),
                lr=draw(FLOAT),
            )
        )
    return Config(
        run=RunSection(
            name=draw(NAME.filter(lambda s: "/" not in s)),
            out_dir=draw(TEXT),
            seed=draw(st.integers(-(2**63), 2**63 - 1)),
        ),
        model=ModelSection(
            init=draw(
                st.just("scratch")
                | st.builds("{}{}".format, st.sampled_from(["hf:", "checkpoint:"]), TEXT)
            ),
            preset=draw(TEXT),
            overrides=draw(st.dictionaries(KEY, VALUE, max_size=3)),
            trust_remote_code=draw(st.booleans()),
        ),
        tokenizer=TokenizerSection(
            kind=draw(st.sampled_from(["byte", "bpe"]) | st.builds("hf:{}".format, TEXT)),
            vocab_size=draw(st.integers(260, 2**40)),
            sample_bytes=draw(COUNT),
        ),
        data=DataSection(
            dir=draw(TEXT),
            heldout_fraction=draw(st.floats(0.0, 1.0, exclude_min=True, exclude_max=True)),
            heldout_min_tokens=draw(COUNT),
            workers=draw(st.integers(0, 256)),
        ),
        domains=domains,
        train=TrainSection(
            seq_len=seq_len,
            batch_tokens=batch,
            micro_batch_tokens=seq_len * draw(st.integers(0, 64)),
            lr=draw(POSITIVE),
            weight_decay=draw(FLOAT),
            betas=draw(st.lists(st.floats(0.0, 1.0, exclude_max=True), min_size=2, max_size=2)),
            eps=draw(POSITIVE),
            grad_clip=draw(FLOAT),
            device=draw(st.sampled_from(["auto", "cpu", "cuda", "cuda:0", "cuda:7"])),
            compile=draw(st.booleans()),
            fsdp=draw(st.booleans()),
            nonfinite=draw(st.sampled_from(["skip", "stop"])),
            max_nonfinite_skips=draw(COUNT),
            log_every_steps=draw(st.integers(1, 2**62)),
            tensorboard=draw(st.booleans()),
        ),
        eval=EvalSection(
            every_tokens=draw(st.just("auto") | COUNT),
            tokens_per_domain=draw(st.integers(seq_len, 2**62)),
        ),
        checkpoint=CheckpointSection(every_tokens=draw(COUNT), keep=draw(st.integers(1, 100))),
        stages=stages,
    )


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cfg=configs())
def test_any_valid_config_round_trips_through_the_resolved_toml(cfg):
    assert config_from_dict(cfg.to_dict()) == cfg  # the strategy draws valid configs only
    again = config_from_dict(tomllib.loads(resolved_toml(cfg)))
    assert again == cfg
    assert again.to_dict() == cfg.to_dict()
