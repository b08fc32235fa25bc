"""The run config's schema: one keyword-only dataclass per TOML section.

Field annotations are what `rewarm.config.loader` checks a TOML value against; a
`Literal` is a closed choice (the loader reports its allowed values), and
`Literal[...] | str` an open one: the fixed values plus a pattern that the section's
validator checks (`"cuda:N"`, `"hf:PATH"`). Docstrings are the reference that
docs/config.md repeats (a test keeps the two in step).

Units: lengths are in tokens everywhere (stage lengths, schedule positions, eval and
checkpoint intervals); optimizer steps are derived (`rewarm.config.derived`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

ModelInit = Literal["scratch"] | str
""""scratch", or "hf:PATH" / "checkpoint:PATH" (checked by the model section)."""
TokenizerKind = Literal["byte", "bpe"] | str
""""byte", "bpe", or "hf:PATH" (checked by the tokenizer section)."""
FixedDevice = Literal["auto", "cpu", "cuda"]
Device = FixedDevice | str
""""auto", "cpu", "cuda", or "cuda:N" (checked by the train section)."""
NonFinite = Literal["skip", "stop"]
DomainFormat = Literal["text", "megatron", "flat", "hf-tokens"]
""""text" is read as documents and tokenized; the others are token ids made elsewhere."""
TokenDtype = Literal["", "uint8", "uint16", "int16", "uint32", "int32", "int64"]
Precision = Literal["auto", "fp32", "bf16-mixed"]
ActivationCheckpointing = Literal["none", "full", "selective"]
CheckpointFormat = Literal["auto", "full", "sharded"]
OptimizerState = Literal["keep", "reset"]
SinkName = Literal["tensorboard", "wandb", "mlflow"]
WandbMode = Literal["offline", "online"]

NOT_A_KEY = {"toml": False}
"""Field metadata of a field that is not read from or written to TOML (`Config.source`)."""


@dataclass(kw_only=True)
class RunSection:
    name: str
    """Run name; the run directory is `out_dir/name`."""
    out_dir: str = "runs"
    """Parent directory of run directories (relative to the working directory)."""
    seed: int = 0
    """Seed for model init, data order and every random choice."""
    branch_from: str = ""
    """A checkpoint of another run (`RUN/checkpoints/step_N`) this run continues with its
    full state and log; its stages up to that checkpoint must be the parent's, later ones
    may differ in anything (docs/training.md, "Branch"). "" = not a branch."""


@dataclass(kw_only=True)
class ModelSection:
    init: ModelInit = "scratch"
    """"scratch" (a preset), "hf:PATH" (a local Hugging Face causal LM directory) or
    "checkpoint:PATH" (a rewarm checkpoint directory, e.g. a shared stage-1 end)."""
    preset: str = "llama-tiny"
    """Preset used with init = "scratch" (see `rewarm.model.presets`)."""
    overrides: dict[str, Any] = field(default_factory=dict)
    """Keys of the Hugging Face model config to override (scratch only)."""
    trust_remote_code: bool = False
    """Allow a Hugging Face model directory to run its own Python code. Off by default."""
    extend_vocab: bool = False
    """When the tokenizer has more ids than the model has token embeddings (a tokenizer
    with added tokens), grow the embeddings and the LM head to fit, new rows set to the
    mean of the old ones (`rewarm.model.vocab`), instead of refusing the run."""


@dataclass(kw_only=True)
class TokenizerSection:
    kind: TokenizerKind = "byte"
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
    """Tokenizer processes for `prepare` (each encodes batches with the fast tokenizer);
    0 means one per CPU core."""


@dataclass(kw_only=True)
class DomainSection:
    source: str | list[str]
    """Built-in corpus ("python-docs", "python-code"), or paths/globs of text, .jsonl,
    .parquet files or a `datasets` directory saved with `save_to_disk`; with a token
    `format`, the token files (see docs/data.md)."""
    format: DomainFormat = "text"
    """How `source` is read: "text" (documents, tokenized by `prepare`), or token ids
    another tool wrote, copied without re-tokenizing: "megatron" (a Megatron-LM or
    GPT-NeoX indexed dataset, PREFIX.bin + PREFIX.idx), "flat" (a raw array of ids in
    `dtype`, documents ended by the tokenizer's eos id, as nanoGPT writes them) or
    "hf-tokens" (a `datasets` directory or .parquet files with a column of id lists)."""
    field: str = "text"
    """Text field for .jsonl, column for .parquet and `datasets` directories; with
    format = "hf-tokens" the column of token ids ("text", the default, means
    "input_ids")."""
    dtype: TokenDtype = ""
    """Integer type of the ids in a "flat" file (required there, e.g. "uint16"); with
    "megatron", checked against the type the index declares; unused otherwise."""
    tokenizer: str = ""
    """Token formats (required there): the tokenizer the ids came from, "byte" or
    "hf:PATH". It must be [tokenizer] itself or one that [tokenizer] extends (every
    token keeps its id), and the ids must fit its vocabulary."""
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
    device: Device = "auto"
    """"auto" (CUDA when available), "cpu", "cuda" or "cuda:N"."""
    precision: Precision = "auto"
    """"auto" (fp32 on a CPU, "bf16-mixed" on a GPU with bf16), "fp32", or "bf16-mixed"
    (bf16 autocast, fp32 master weights and moments); evaluation uses the same."""
    compile: bool = False
    """Compile the model and its loss with torch.compile (see docs/performance.md)."""
    activation_checkpointing: ActivationCheckpointing = "none"
    """Recompute activations per decoder layer in the backward pass: "none", "full"
    (keep only each layer's input) or "selective" (keep matrix products and attention,
    recompute the element-wise operations)."""
    fsdp: bool = False
    """Under torchrun, shard the model with FSDP2 `fully_shard` instead of DDP."""
    nonfinite: NonFinite = "skip"
    """On a non-finite loss or gradient: "skip" the batch (up to max_nonfinite_skips) or "stop"."""
    max_nonfinite_skips: int = 3
    log_every_steps: int = 1
    """Write a `train` record every N optimizer steps."""
    tensorboard: bool = False
    """Also write TensorBoard event files (the same as "tensorboard" in `log.sinks`)."""
    document_mask: bool = False
    """In a packed window, a token attends only to earlier tokens of its own document
    and positions restart at each document (Megatron's reset_attention_mask and
    reset_position_ids); documents end at the eos token. Evaluation does the same."""


@dataclass(kw_only=True)
class TaskSection:
    task: str
    """A task for lm-evaluation-harness: "rewarm:KIND:DOMAIN" (a built-in task made from
    a declared domain's held-out split: KIND "names" or "next-line"), a task or group
    name the harness knows, or a path to a task YAML file (docs/tasks.md)."""
    num_fewshot: int = 0
    """Examples placed before each item (drawn by the harness from the task's data)."""
    limit: int = 0
    """Evaluate the first N items only (0 = all)."""
    domain: str = ""
    """The declared domain whose knowledge the task measures (how the continual metrics
    treat it); "" = knowledge from before the run. Built-in tasks set their own."""


@dataclass(kw_only=True)
class EvalSection:
    every_tokens: int | str = "auto"
    """Evaluate every N training tokens; 0 = only at stage starts and ends; "auto" =
    `AUTO_EVAL_FACTOR` x domains x tokens_per_domain (see `derived.eval_interval`).
    Typed `int | str`, not `int | Literal["auto"]`, so that any other string gets the
    eval section's own message (`must be "auto" or an integer >= 0`)."""
    tokens_per_domain: int = 16384
    """Fixed held-out token sample per domain."""
    tasks: list[TaskSection] = field(default_factory=list)
    """Tasks evaluated through lm-evaluation-harness (the `tasks` extra) at every stage
    start and end, and every `tasks_every_tokens`."""
    tasks_every_tokens: int = 0
    """Also evaluate the tasks every N training tokens (0 = stage boundaries only)."""
    task_batch_size: int = 16
    """Sequences per forward pass in task evaluation."""


@dataclass(kw_only=True)
class CheckpointSection:
    every_tokens: int = 0
    """Save every N training tokens (0 = only at stage ends)."""
    keep: int = 3
    """Keep the newest K periodic checkpoints; stage-end checkpoints are always kept."""
    format: CheckpointFormat = "auto"
    """"full" (one process writes the whole state), "sharded" (every process writes its
    own shards with torch.distributed.checkpoint) or "auto" (sharded under torchrun with
    train.fsdp, else full). Either format resumes under any number of processes."""


@dataclass(kw_only=True)
class LogSection:
    sinks: list[SinkName] = field(default_factory=list)
    """Trackers that mirror every record of metrics.jsonl: "tensorboard", "wandb",
    "mlflow" (each an optional extra)."""
    project: str = "rewarm"
    """Weights & Biases project; MLflow experiment name."""
    group: str = ""
    """Run group, so the arms of one experiment sit together (W&B group, MLflow tag
    `group`); "" = the name of `run.out_dir`."""
    dir: str = ""
    """Where the W&B and MLflow sinks write their local files; "" = `run.out_dir`."""
    wandb_mode: WandbMode = "offline"
    """"offline" (local files only; `wandb sync` uploads them later) or "online"."""
    mlflow_uri: str = ""
    """MLflow tracking URI; "" = the local file store `file:<dir>/mlruns`."""


@dataclass(kw_only=True)
class StageSection:
    name: str
    tokens: int
    """Training tokens in this stage."""
    mix: dict[str, float]
    """Domain weights of the stage's own data (normalised)."""
    schedule: dict[str, Any] = field(default_factory=lambda: {"kind": "constant"})
    """Learning-rate schedule spec (see docs/schedules.md); lengths in tokens. Its keys
    belong to `rewarm.schedules` (checked by `rewarm.runconfig`)."""
    replay: dict[str, Any] = field(default_factory=dict)
    """{fraction, policy, domains, ...}: share of each batch drawn from earlier stages.
    Its keys belong to `rewarm.data.replay` (checked by `rewarm.runconfig`)."""
    optimizer_state: OptimizerState = "keep"
    """"keep" the AdamW moments from the previous stage, or "reset" them."""
    lr: float = 0.0
    """Peak LR of this stage; 0 = train.lr."""
    average: dict[str, Any] = field(default_factory=dict)
    """{kind, every_tokens, last, decay, shape, apply_at_end}: a running average of the
    weights (uniform, ema or wsm), evaluated alongside the trained model. Its keys belong
    to `rewarm.mitigate.options` (docs/mitigations.md)."""
    mer: dict[str, Any] = field(default_factory=dict)
    """{every_tokens, beta}: a Reptile step every k steps (meta-experience replay, Abbes
    et al. 2025). Its keys belong to `rewarm.mitigate.options`."""
    merge: dict[str, Any] = field(default_factory=dict)
    """{weight}: at the stage's end, start + weight x (end - start) (task arithmetic).
    Its keys belong to `rewarm.mitigate.options`."""


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
    log: LogSection = field(default_factory=LogSection)
    stages: list[StageSection] = field(default_factory=list)
    source: str = field(default="<config>", compare=False, metadata=NOT_A_KEY)
    """The file this config came from (for error messages); not a TOML key."""

    @property
    def run_dir(self) -> Path:
        return Path(self.run.out_dir) / self.run.name

    @property
    def data_dir(self) -> Path:
        return Path(self.data.dir) if self.data.dir else Path(self.run.out_dir) / "data"

    def stage_lr(self, index: int) -> float:
        """Peak LR of stage `index`: its own `lr`, or train.lr when that is 0."""
        stage = self.stages[index]
        return stage.lr if stage.lr > 0 else self.train.lr

    def to_dict(self) -> dict[str, Any]:
        """The TOML tables of this config (every default filled in)."""
        out = dataclasses.asdict(self)
        for f in dataclasses.fields(self):
            if not f.metadata.get("toml", True):
                del out[f.name]
        return out
