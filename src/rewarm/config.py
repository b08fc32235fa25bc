"""Run configuration: typed, keyword-only dataclasses loaded from TOML.

Every section is validated on load; any problem raises `UserError` naming the
file and the dotted key (`stages[1].mix.code`). Unknown keys are errors, not
warnings: a typo must never silently fall back to a default.

Units: lengths are in tokens everywhere (stage lengths, schedule positions,
eval and checkpoint intervals); optimizer steps are derived and printed.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rewarm.errors import UserError


@dataclass(kw_only=True)
class RunSection:
    name: str
    """Run name; the run directory is `out_dir/name`."""
    out_dir: str = "runs"
    """Parent directory of run directories (relative to the working directory)."""
    seed: int = 0
    """Seed for model init, data order and every random choice."""


@dataclass(kw_only=True)
class ModelSection:
    init: str = "scratch"
    """"scratch" (a preset), "hf:PATH" (a local Hugging Face causal LM directory) or
    "checkpoint:PATH" (a rewarm checkpoint directory, e.g. a shared stage-1 end)."""
    preset: str = "llama-tiny"
    """Preset used with init = "scratch" (see `rewarm.model.presets`)."""
    overrides: dict[str, Any] = field(default_factory=dict)
    """Keys of the Hugging Face model config to override (scratch only)."""
    trust_remote_code: bool = False
    """Allow a Hugging Face model directory to run its own Python code. Off by default."""


@dataclass(kw_only=True)
class TokenizerSection:
    kind: str = "byte"
    """"byte" (UTF-8 bytes + special tokens), "bpe" (trained locally) or "hf:PATH"."""
    vocab_size: int = 4096
    """Vocabulary size for "bpe"."""
    sample_bytes: int = 8_000_000
    """Bytes of text (spread over the configured domains) used to train "bpe"."""


@dataclass(kw_only=True)
class DataSection:
    dir: str = ""
    """Where token shards are written; default `<out_dir>/data` (shared by runs)."""
    heldout_fraction: float = 0.02
    """Fraction of each domain's documents held out for evaluation (whole documents)."""
    heldout_min_tokens: int = 16384
    """The held-out split grows past the fraction until it has at least this many tokens."""
    workers: int = 0
    """Tokenizer processes; 0 means one per CPU core."""


@dataclass(kw_only=True)
class DomainSection:
    source: str | list[str]
    """Built-in corpus ("python-docs", "python-code"), or paths/globs of text, .jsonl,
    .parquet files or a `datasets` directory saved with `save_to_disk`."""
    field: str = "text"
    """Text field for .jsonl, column for .parquet and `datasets` directories."""
    max_bytes: int = 0
    """Read at most this many bytes of text from the source (0 = all)."""
    max_epochs: float = 10.0
    """Cap on how many times a domain's training tokens may be repeated in the run."""


@dataclass(kw_only=True)
class TrainSection:
    seq_len: int = 256
    """Tokens per training sequence (windows of seq_len + 1 tokens are drawn)."""
    batch_tokens: int = 8192
    """Tokens per optimizer step across all ranks (a multiple of seq_len)."""
    micro_batch_tokens: int = 0
    """Tokens per forward/backward on one rank; 0 = the whole per-rank batch."""
    lr: float = 1e-3
    """Peak learning rate (a stage's `lr` overrides it)."""
    weight_decay: float = 0.1
    """AdamW weight decay, applied to matrices only (not norms, biases, embeddings)."""
    betas: list[float] = field(default_factory=lambda: [0.9, 0.95])
    eps: float = 1e-8
    grad_clip: float = 1.0
    """Max global gradient norm; 0 disables clipping."""
    device: str = "auto"
    """"auto" (CUDA when available), "cpu" or "cuda"."""
    compile: bool = False
    """Compile the model and its loss with torch.compile (see docs/performance.md)."""
    fsdp: bool = False
    """Under torchrun, shard the model with FSDP2 `fully_shard` instead of DDP."""
    nonfinite: str = "skip"
    """On a non-finite loss or gradient: "skip" the batch (up to max_nonfinite_skips) or "stop"."""
    max_nonfinite_skips: int = 3
    log_every_steps: int = 1
    """Write a `train` record every N optimizer steps."""
    tensorboard: bool = False
    """Also write TensorBoard event files (needs the `tensorboard` package)."""


@dataclass(kw_only=True)
class EvalSection:
    every_tokens: int | str = "auto"
    """Evaluate every N training tokens; 0 = only at stage starts and ends; "auto" =
    `AUTO_EVAL_FACTOR` x domains x tokens_per_domain (see `eval_interval`)."""
    tokens_per_domain: int = 16384
    """Fixed held-out token sample per domain."""


@dataclass(kw_only=True)
class CheckpointSection:
    every_tokens: int = 0
    """Save every N training tokens (0 = only at stage ends)."""
    keep: int = 3
    """Keep the newest K periodic checkpoints; stage-end checkpoints are always kept."""


@dataclass(kw_only=True)
class StageSection:
    name: str
    tokens: int
    """Training tokens in this stage."""
    mix: dict[str, float]
    """Domain weights of the stage's own data (normalised)."""
    schedule: dict[str, Any] = field(default_factory=lambda: {"kind": "constant"})
    """Learning-rate schedule spec (see docs/schedules.md); lengths in tokens."""
    replay: dict[str, Any] = field(default_factory=dict)
    """{fraction, policy, domains, ...}: share of each batch drawn from earlier stages."""
    optimizer_state: str = "keep"
    """"keep" the AdamW moments from the previous stage, or "reset" them."""
    lr: float = 0.0
    """Peak LR of this stage; 0 = train.lr."""


@dataclass(kw_only=True)
class Config:
    run: RunSection
    model: ModelSection = field(default_factory=ModelSection)
    tokenizer: TokenizerSection = field(default_factory=TokenizerSection)
    data: DataSection = field(default_factory=DataSection)
    domains: dict[str, DomainSection] = field(default_factory=dict)
    train: TrainSection = field(default_factory=TrainSection)
    eval: EvalSection = field(default_factory=EvalSection)
    checkpoint: CheckpointSection = field(default_factory=CheckpointSection)
    stages: list[StageSection] = field(default_factory=list)
    source: str = field(default="<config>", compare=False)
    """The file this config came from (for error messages); not a TOML key."""

    # -- derived -------------------------------------------------------------------

    @property
    def run_dir(self) -> Path:
        return Path(self.run.out_dir) / self.run.name

    @property
    def data_dir(self) -> Path:
        return Path(self.data.dir) if self.data.dir else Path(self.run.out_dir) / "data"

    def stage_lr(self, index: int) -> float:
        stage = self.stages[index]
        return stage.lr if stage.lr > 0 else self.train.lr

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out.pop("source")
        return out


# -- loading ---------------------------------------------------------------------------


def load_config(path: str | Path, overrides: list[str] | None = None) -> Config:
    """Read a TOML config, apply `--set key=value` overrides and validate everything."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: config file not found") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: not valid TOML: {err}") from None
    except OSError as err:
        raise UserError(f"{path}: cannot read: {err.strerror}") from None
    for item in overrides or []:
        apply_override(raw, item, str(path))
    return config_from_dict(raw, source=str(path))


def apply_override(raw: dict[str, Any], item: str, source: str = "--set") -> None:
    """Apply `a.b.c=value` (value parsed as a TOML literal, else a plain string).

    List items are addressed by index: `stages.1.tokens=2e6` is not valid TOML for an
    int, so write `stages.1.tokens=2000000`.
    """
    if "=" not in item:
        raise UserError(f"--set {item!r}: expected key=value")
    key, _, text = item.partition("=")
    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        value = text
    parts = key.strip().split(".")
    node: Any = raw
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise UserError(f"--set {key}: no list item {part!r}")
            if last:
                node[int(part)] = value
            else:
                node = node[int(part)]
        elif isinstance(node, dict):
            if last:
                node[part] = value
            else:
                node = node.setdefault(part, {})
        else:
            raise UserError(f"--set {key}: {'.'.join(parts[:i])} is not a table")


def config_from_dict(raw: dict[str, Any], source: str = "<config>") -> Config:
    if not isinstance(raw, dict):
        raise UserError(f"{source}: config must be a table")
    if "run" not in raw:
        raise UserError(f"{source}: missing required table [run] (with at least run.name)")
    cfg = _build(Config, raw, source, "")
    cfg.source = source
    _validate(cfg)
    return cfg


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (types.UnionType, typing.Union):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is not None:
        return {list: "array", dict: "table"}.get(origin, str(origin))
    return {
        str: "string",
        int: "integer",
        float: "number",
        bool: "boolean",
        list: "array",
        dict: "table",
    }.get(tp, getattr(tp, "__name__", str(tp)))


def _convert(tp: Any, value: Any, source: str, key: str) -> Any:
    """Check `value` against the annotation `tp`, converting where lossless (int -> float)."""
    origin = typing.get_origin(tp)
    if origin in (types.UnionType, typing.Union):
        for arg in typing.get_args(tp):
            try:
                return _convert(arg, value, source, key)
            except UserError:
                continue
        raise UserError(f"{source}: {key} must be {_type_name(tp)}, got {value!r}")
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, source, key)
    if origin is list:
        if not isinstance(value, list):
            raise UserError(f"{source}: {key} must be an array, got {value!r}")
        (item_tp,) = typing.get_args(tp)
        return [_convert(item_tp, v, source, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise UserError(f"{source}: {key} must be a table, got {value!r}")
        _, val_tp = typing.get_args(tp)
        return {k: _convert(val_tp, v, source, f"{key}.{k}") for k, v in value.items()}
    if tp is Any:
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise UserError(f"{source}: {key} must be a number, got {value!r}")
        if not math.isfinite(value):
            raise UserError(f"{source}: {key} must be finite, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
            value = int(value)  # allow 2e6-style literals given as floats
        if isinstance(value, bool) or not isinstance(value, int):
            raise UserError(f"{source}: {key} must be an integer, got {value!r}")
        return value
    if tp in (str, bool):
        if not isinstance(value, tp):
            raise UserError(f"{source}: {key} must be a {_type_name(tp)}, got {value!r}")
        return value
    raise TypeError(f"unsupported config annotation {tp!r}")  # programming error


def _build(cls: type, value: Any, source: str, prefix: str) -> Any:
    where = prefix or "the top level"
    if not isinstance(value, dict):
        raise UserError(f"{source}: {where} must be a table, got {value!r}")
    hints = typing.get_type_hints(cls)
    fields = {
        f.name: f for f in dataclasses.fields(cls) if not (cls is Config and f.name == "source")
    }
    for key in value:
        if key not in fields:
            known = ", ".join(sorted(fields))
            dotted = f"{prefix}.{key}" if prefix else key
            raise UserError(f"{source}: unknown key {dotted!r} (known here: {known})")
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        dotted = f"{prefix}.{name}" if prefix else name
        if name in value:
            kwargs[name] = _convert(hints[name], value[name], source, dotted)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise UserError(f"{source}: missing required key {dotted!r}")
    return cls(**kwargs)


def _require(ok: bool, source: str, key: str, message: str) -> None:
    if not ok:
        raise UserError(f"{source}: {key} {message}")


def _validate(cfg: Config) -> None:
    """Cross-field checks the types alone cannot express."""
    s = cfg.source
    _require(
        bool(cfg.run.name.strip()) and "/" not in cfg.run.name,
        s,
        "run.name",
        "must be a non-empty name without '/'",
    )
    init = cfg.model.init
    _require(
        init == "scratch" or init.startswith(("hf:", "checkpoint:")),
        s,
        "model.init",
        f"must be 'scratch', 'hf:PATH' or 'checkpoint:PATH', got {init!r}",
    )
    kind = cfg.tokenizer.kind
    _require(
        kind in ("byte", "bpe") or kind.startswith("hf:"),
        s,
        "tokenizer.kind",
        f"must be 'byte', 'bpe' or 'hf:PATH', got {kind!r}",
    )
    _require(cfg.tokenizer.vocab_size >= 260, s, "tokenizer.vocab_size", "must be >= 260")
    _require(0 < cfg.data.heldout_fraction < 1, s, "data.heldout_fraction", "must be in (0, 1)")
    _require(cfg.data.workers >= 0, s, "data.workers", "must be >= 0")
    _require(bool(cfg.domains), s, "domains", "must declare at least one [domains.NAME]")
    for name, dom in cfg.domains.items():
        src = dom.source if isinstance(dom.source, list) else [dom.source]
        _require(
            bool(src) and all(isinstance(x, str) and x for x in src),
            s,
            f"domains.{name}.source",
            "must be a non-empty string or array of strings",
        )
        _require(dom.max_bytes >= 0, s, f"domains.{name}.max_bytes", "must be >= 0")
        _require(dom.max_epochs > 0, s, f"domains.{name}.max_epochs", "must be > 0")
    t = cfg.train
    _require(t.seq_len >= 2, s, "train.seq_len", "must be >= 2")
    _require(
        t.batch_tokens >= t.seq_len and t.batch_tokens % t.seq_len == 0,
        s,
        "train.batch_tokens",
        f"must be a positive multiple of train.seq_len ({t.seq_len})",
    )
    _require(
        t.micro_batch_tokens >= 0 and t.micro_batch_tokens % t.seq_len == 0,
        s,
        "train.micro_batch_tokens",
        f"must be 0 or a multiple of train.seq_len ({t.seq_len})",
    )
    _require(t.lr > 0, s, "train.lr", "must be > 0")
    _require(t.weight_decay >= 0, s, "train.weight_decay", "must be >= 0")
    _require(
        len(t.betas) == 2 and all(0 <= b < 1 for b in t.betas),
        s,
        "train.betas",
        "must be two numbers in [0, 1)",
    )
    _require(t.eps > 0, s, "train.eps", "must be > 0")
    _require(t.grad_clip >= 0, s, "train.grad_clip", "must be >= 0")
    _require(
        t.device in ("auto", "cpu", "cuda") or t.device.startswith("cuda:"),
        s,
        "train.device",
        "must be 'auto', 'cpu' or 'cuda'",
    )
    _require(t.nonfinite in ("skip", "stop"), s, "train.nonfinite", "must be 'skip' or 'stop'")
    _require(t.max_nonfinite_skips >= 0, s, "train.max_nonfinite_skips", "must be >= 0")
    _require(t.log_every_steps >= 1, s, "train.log_every_steps", "must be >= 1")
    every = cfg.eval.every_tokens
    _require(
        every == "auto" or (isinstance(every, int) and every >= 0),
        s,
        "eval.every_tokens",
        f'must be "auto" or an integer >= 0, got {every!r}',
    )
    _require(
        cfg.eval.tokens_per_domain >= t.seq_len,
        s,
        "eval.tokens_per_domain",
        f"must be >= train.seq_len ({t.seq_len})",
    )
    _require(cfg.checkpoint.every_tokens >= 0, s, "checkpoint.every_tokens", "must be >= 0")
    _require(cfg.checkpoint.keep >= 1, s, "checkpoint.keep", "must be >= 1")
    _require(bool(cfg.stages), s, "stages", "must have at least one [[stages]] entry")
    names: set[str] = set()
    for i, st in enumerate(cfg.stages):
        key = f"stages[{i}]"
        _require(
            bool(st.name.strip()) and st.name not in names,
            s,
            f"{key}.name",
            f"must be a non-empty, unique name, got {st.name!r}",
        )
        names.add(st.name)
        _require(
            st.tokens >= t.batch_tokens,
            s,
            f"{key}.tokens",
            f"must be at least one batch (train.batch_tokens = {t.batch_tokens})",
        )
        _require(bool(st.mix), s, f"{key}.mix", "must name at least one domain")
        for dom, w in st.mix.items():
            _require(
                dom in cfg.domains,
                s,
                f"{key}.mix.{dom}",
                f"names an undeclared domain (declared: {', '.join(cfg.domains)})",
            )
            _require(w >= 0, s, f"{key}.mix.{dom}", "must be >= 0")
        _require(sum(st.mix.values()) > 0, s, f"{key}.mix", "weights must not all be 0")
        _require(
            st.optimizer_state in ("keep", "reset"),
            s,
            f"{key}.optimizer_state",
            "must be 'keep' or 'reset'",
        )
        _require(st.lr >= 0, s, f"{key}.lr", "must be >= 0")
        _require("kind" in st.schedule, s, f"{key}.schedule", "must have a 'kind'")
    _validate_plugins(cfg)


AUTO_EVAL_FACTOR = 10
"""With `eval.every_tokens = "auto"`, train this many times the evaluated tokens
between evaluations. A forward-only evaluation costs about a third of a training
step per token (2N vs 6N FLOPs), so evaluation takes about 1 / (1 + 3 x 10) = 3%
of the compute (3-4% of wall time measured on a CPU: benchmarks/overheads.py)."""


def eval_interval(cfg: Config) -> int:
    """Training tokens between evaluations (0 = stage boundaries only).

    "auto" resolves to AUTO_EVAL_FACTOR x (declared domains) x tokens_per_domain,
    rounded up to whole optimizer steps: continual evaluation on by default at a
    bounded cost.
    """
    every = cfg.eval.every_tokens
    if every != "auto":
        return int(every)
    tokens = AUTO_EVAL_FACTOR * len(cfg.domains) * cfg.eval.tokens_per_domain
    batch = cfg.train.batch_tokens
    return -(-tokens // batch) * batch


def _validate_plugins(cfg: Config) -> None:
    """Hand schedule and replay specs to the modules that own their meaning."""
    from rewarm import schedules
    from rewarm.data import mixture

    for i, st in enumerate(cfg.stages):
        schedules.validate_spec(st.schedule, st.tokens, where=f"{cfg.source}: stages[{i}].schedule")
        if st.replay:
            mixture.validate_replay(st.replay, cfg, i, where=f"{cfg.source}: stages[{i}].replay")


def dump_toml(data: dict[str, Any]) -> str:
    """Serialise a resolved config dict as TOML.

    Top-level dicts become tables and lists of dicts arrays of tables; a dict whose
    values are all dicts (like `domains`) becomes one sub-table per entry; any other
    nested dict (mix, schedule, replay) is written inline.
    """
    lines: list[str] = []
    for name, value in data.items():
        if isinstance(value, dict):
            _table(lines, _key(name), value, array=False)
        elif isinstance(value, list) and value and all(isinstance(x, dict) for x in value):
            for item in value:
                _table(lines, _key(name), item, array=True)
        else:
            lines.insert(0, f"{_key(name)} = {_scalar(value)}")
    return "\n".join(lines).strip() + "\n"


def _table(lines: list[str], header: str, d: dict[str, Any], array: bool) -> None:
    if d and all(isinstance(v, dict) for v in d.values()):
        for k, v in d.items():
            _table(lines, f"{header}.{_key(k)}", v, array=False)
        return
    lines.append(f"[[{header}]]" if array else f"[{header}]")
    lines.extend(f"{_key(k)} = {_scalar(v)}" for k, v in d.items())
    lines.append("")


def _scalar(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list):
        return "[" + ", ".join(_scalar(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_scalar(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"cannot write {v!r} as TOML")


def _key(k: str) -> str:
    return k if k.replace("_", "").replace("-", "").isalnum() else f'"{k}"'
