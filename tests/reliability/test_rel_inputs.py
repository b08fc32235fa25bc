"""Bad input, fuzzed: configs, shards and manifests, text sources.

Each case either works or ends with exit code 2 and one stderr line naming the
file (or key): never a traceback, never a half-written output.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
import tomllib
import uuid
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rewarm.config import dump_toml
from rewarm.data import shards
from rewarm.errors import UserError
from rewarm.model.hf import check_init
from rewarm.runconfig import from_dict as config_from_dict
from rewarm.schedules import StagePlan
from tests.reliability.relhelpers import cli
from tests.runhelpers import BASE, ONE_THREAD_ENV, load, write_config

CI = os.environ.get("CI") == "true"
FUZZ = settings(
    max_examples=25 if CI else 100,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)


def _one_line(err: str, *names: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    for name in names:
        assert name in lines[0], (name, lines[0])


# -- configs -----------------------------------------------------------------------------

RAW = tomllib.loads(
    BASE.format(name="fz", out="OUT", root="ROOT", init="scratch", opt_state="keep")
)


def _paths(node, prefix=()):
    if isinstance(node, dict):
        items = node.items()
    elif isinstance(node, list):
        items = enumerate(node)
    else:
        return []
    out = []
    for k, v in items:
        out += [(*prefix, k), *_paths(v, (*prefix, k))]
    return out


PATHS = _paths(RAW)
WORDS = ["cosine", "wsd", "constant", "keep", "reset", "prose", "code", "byte", "bpe", "skip"]
SCALARS = (
    st.integers(-(2**63), 2**63 - 1)
    | st.integers(-3, 5000)
    | st.floats()
    | st.text(max_size=10)
    | st.booleans()
    | st.sampled_from([*WORDS, "hf:/nonexistent", "checkpoint:/nonexistent", "llama-tiny"])
)
VALUES = st.recursive(
    SCALARS,
    lambda kids: (
        st.lists(kids, max_size=3)
        | st.dictionaries(
            st.sampled_from(["kind", "warmup", "fraction", "prose"]), kids, max_size=3
        )
    ),
    max_leaves=6,
)
MUTATION = st.tuples(
    st.sampled_from(PATHS), st.sampled_from(["set", "del", "add"]), st.text(max_size=6), VALUES
)


def _mutate(raw, mutations):
    for path, op, new_key, value in mutations:
        node = raw
        try:
            for part in path[:-1]:
                node = node[part]
            if op == "set":
                node[path[-1]] = value
            elif op == "del":
                del node[path[-1]]
            elif isinstance(node[path[-1]], dict):
                node[path[-1]][new_key] = value
        except (KeyError, IndexError, TypeError):
            pass  # an earlier mutation removed or retyped this path


@FUZZ
@given(mutations=st.lists(MUTATION, min_size=1, max_size=3))
def test_fuzzed_config_loads_or_fails_with_one_line(mutations):
    """Random keys, types and values: a Config, or a one-line UserError naming the file."""
    raw = copy.deepcopy(RAW)
    _mutate(raw, mutations)
    try:
        cfg = config_from_dict(raw, source="fuzz.toml")
        check_init(cfg)
        plan = StagePlan.from_config(cfg)
        for pos in (0.0, plan.total / 2, plan.total):
            plan.lr(pos)
    except UserError as err:
        assert "\n" not in str(err) and str(err).startswith("fuzz.toml"), str(err)


@settings(max_examples=8 if CI else 40, deadline=None, suppress_health_check=list(HealthCheck))
@given(mutations=st.lists(MUTATION, min_size=1, max_size=3), as_text=st.booleans())
def test_fuzzed_bad_config_through_the_cli_writes_nothing(tmp_path, mutations, as_text):
    """The CLI on a bad config (or --set): exit 2, one line naming it, no run directory."""
    tmp = tmp_path / uuid.uuid4().hex
    tmp.mkdir()
    raw = copy.deepcopy(RAW)
    raw["run"]["out_dir"] = str(tmp / "runs")
    _mutate(raw, mutations)
    try:
        config_from_dict(copy.deepcopy(raw), source="x")
        return  # a valid config trains: not this test's business
    except UserError:
        pass
    config = tmp / "bad.toml"
    try:
        text = dump_toml(raw)
        tomllib.loads(text)
    except Exception:  # noqa: BLE001 - not representable as TOML: use --set instead
        as_text = False
    if as_text:
        config.write_text(text, encoding="utf-8")
        rc, err = cli("train", str(config), "--no-progress")
        _one_line(err, str(config))
    else:
        config.write_text(dump_toml({"run": {"name": "x", "out_dir": str(tmp / "runs")}}))
        rc, err = cli("train", str(config), "--set", f"train.seq_len={json.dumps(str(mutations))}")
        _one_line(err, "train.seq_len")
    assert rc == 2
    assert not (tmp / "runs").exists()


@pytest.mark.parametrize(
    "content",
    [b"\xff\xfe\x00garbage\x00", b"[run\nname = 'x'", b"[run]\nname = 'x'\n[run]\n", b""],
    ids=["binary", "truncated", "duplicate_table", "empty"],
)
def test_unreadable_config_file(tmp_path, content):
    config = tmp_path / "c.toml"
    config.write_bytes(content)
    rc, err = cli("train", str(config))
    assert rc == 2
    _one_line(err, str(config))


# -- shards and manifests -----------------------------------------------------------------


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """Prepared shards of the tiny two-domain corpus (read-only for the tests)."""
    tmp = tmp_path_factory.mktemp("shards")
    config = write_config(tmp, "shards")
    rc, err = cli("prepare", str(config), "--quiet")
    assert rc == 0, err
    return load(config)


def _corrupt_domain(directory: Path, draw) -> str:
    """Damage one file of a prepared domain; the name of the damaged file."""
    what = draw(
        st.sampled_from(["truncate_bin", "extend_bin", "dtype", "count", "drop_key", "garbage"])
    )
    manifest_path = directory / shards.MANIFEST
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    if what in ("truncate_bin", "extend_bin"):
        name = draw(st.sampled_from([shards.TRAIN, shards.HELDOUT]))
        data = (directory / name).read_bytes()
        if what == "truncate_bin":
            data = data[: draw(st.integers(0, len(data) - 1))]
        else:
            data += draw(st.binary(min_size=1, max_size=64))
        (directory / name).write_bytes(data)
        return name
    if what == "dtype":
        manifest["dtype"] = draw(
            st.sampled_from(["uint32", "uint8", "float32", "int64", "nonsense", "", 7, None])
        )
    elif what == "count":
        key = draw(st.sampled_from(["train_tokens", "heldout_tokens"]))
        old = manifest["split"][key]
        manifest["split"][key] = draw(
            st.integers(-5, 10**6).filter(lambda n: n != old) | st.text(max_size=4) | st.none()
        )
    elif what == "drop_key":
        key = draw(st.sampled_from(["dtype", "split", "domain", "format"]))
        del manifest[key]
    else:
        manifest_path.write_bytes(draw(st.binary(max_size=200)))
        return shards.MANIFEST
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")
    return shards.MANIFEST


@FUZZ
@given(data=st.data())
def test_corrupted_shards_are_refused_by_name(prepared, tmp_path, data):
    """open_domain and `rewarm prepare --check` refuse a damaged domain, naming it."""
    tmp = tmp_path / uuid.uuid4().hex
    runs = tmp / "runs"
    shutil.copytree(prepared.data_dir, runs / "data")
    domain = data.draw(st.sampled_from(["prose", "code"]))
    _corrupt_domain(runs / "data" / domain, data.draw)
    with pytest.raises(UserError) as caught:
        shards.open_domain(runs / "data" / domain)
    assert str(runs / "data" / domain) in str(caught.value) and "\n" not in str(caught.value)

    config = tmp / "c.toml"
    text = Path(prepared.source).read_text(encoding="utf-8")
    config.write_text(text.replace(str(prepared.run_dir.parent), str(runs)), encoding="utf-8")
    before = {p: p.read_bytes() for p in sorted((runs / "data").rglob("*")) if p.is_file()}
    rc, err = cli("prepare", str(config), "--check", "--quiet")
    assert rc == 2
    _one_line(err, str(runs / "data" / domain))
    after = {p: p.read_bytes() for p in sorted((runs / "data").rglob("*")) if p.is_file()}
    assert after == before  # --check never writes


def test_prepare_rebuilds_a_truncated_shard_with_a_notice(prepared, tmp_path, caplog):
    """`rewarm prepare` (and so `train`; not --check) heals damaged shards from the
    sources, saying so."""
    runs = tmp_path / "runs"
    shutil.copytree(prepared.data_dir, runs / "data")
    train_bin = runs / "data" / "prose" / shards.TRAIN
    good = train_bin.read_bytes()
    train_bin.write_bytes(good[: len(good) // 2])
    text = Path(prepared.source).read_text(encoding="utf-8")
    config = tmp_path / "c.toml"
    config.write_text(text.replace(str(prepared.run_dir.parent), str(runs)), encoding="utf-8")
    rc, err = cli("prepare", str(config), "--quiet")
    assert rc == 0, err
    # The notice goes through logging (stderr for a user; captured here by pytest).
    assert str(runs / "data" / "prose") in caplog.text and "rebuilding" in caplog.text
    assert train_bin.read_bytes() == good


# -- text sources ---------------------------------------------------------------------------


@settings(max_examples=6 if CI else 30, deadline=None, suppress_health_check=list(HealthCheck))
@given(files=st.lists(st.binary(min_size=0, max_size=400), min_size=1, max_size=4))
def test_binary_and_non_utf8_sources_are_counted_or_refused(tmp_path, files):
    """Random bytes as a text domain: prepared with every skip and replacement counted in
    the manifest, or refused with one line naming the domain; never a traceback."""
    tmp = tmp_path / uuid.uuid4().hex
    config = write_config(tmp, "bytes")
    load(config)
    prose = tmp / "corpus" / "prose"
    for p in prose.iterdir():
        p.unlink()
    for i, blob in enumerate(files):
        (prose / f"{i}.txt").write_bytes(blob)
    rc, err = cli("prepare", str(config), "--quiet")
    out = tmp / "runs" / "data" / "prose"
    if rc == 0:
        manifest = json.loads((out / shards.MANIFEST).read_text(encoding="utf-8"))
        nul = sum(b"\0" in blob for blob in files)
        assert manifest["counts"]["skipped_files"] == nul
        bad_utf8 = 0
        for blob in files:
            if b"\0" not in blob:
                try:
                    blob.decode("utf-8")
                except UnicodeDecodeError:
                    bad_utf8 += 1
        assert manifest["counts"]["files_with_undecodable_bytes"] == bad_utf8
        data = shards.open_domain(out)
        assert data.train.size + data.heldout.size == manifest["counts"]["tokens"]
        assert int(np.max(data.train, initial=0)) <= manifest["eos_id"]
    else:
        assert rc == 2
        _one_line(err, "domains.prose")
        assert not (out / shards.MANIFEST).exists()
    assert not list(out.glob(".*.tmp")) if out.exists() else True  # no temp files left


def test_real_process_bad_input_exit_code_and_single_line(tmp_path):
    """The real exit code and stderr of a process, for one bad shard and one bad key."""
    config = write_config(tmp_path, "proc")
    text = config.read_text(encoding="utf-8").replace("[train]", "[train]\nbogus_key = 1")
    config.write_text(text, encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "rewarm", "train", str(config), "--no-progress"],
        capture_output=True, text=True, check=False, env=ONE_THREAD_ENV, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 2
    _one_line(proc.stderr, str(config), "train.bogus_key")
    assert not (tmp_path / "runs").exists()
