"""Trackers: the run log's records mirrored to the tools teams compare runs in.

`metrics.jsonl` stays the record of truth; each tracker is a `rewarm.runlog.Sink`
that the writer hands every record after writing its line (rank 0 only):

- "tensorboard": event files under `RUN/tensorboard` (`tensorboard_sink`;
  `train.tensorboard = true` is the same),
- "wandb": a Weights & Biases run (`wandb_sink`; offline by default: local files
  under `log.dir/wandb`, uploaded later with `wandb sync`),
- "mlflow": an MLflow run (`mlflow_sink`; a local file store `log.dir/mlruns` by
  default, or any `log.mlflow_uri`).

All of them get the same scalars (`scalars.scalars`: `train/loss`, `eval/DOMAIN/loss`,
`task/TASK/METRIC`, ...) against training tokens, and the arms of one experiment share
a project and a group (`log.project`, `log.group`, default the `run.out_dir` name).
Each is an optional extra; `require(cfg)` exits 2 with the install command when one
is configured but missing.
"""

from __future__ import annotations

from pathlib import Path

from rewarm import extras
from rewarm.config import Config
from rewarm.runlog import Sink

MODULES = {"tensorboard": "tensorboard", "wandb": "wandb", "mlflow": "mlflow"}
"""Sink name -> the package it needs."""


def sink_names(cfg: Config) -> list[str]:
    """`log.sinks`, with "tensorboard" added when `train.tensorboard` is on."""
    names: list[str] = list(cfg.log.sinks)
    if cfg.train.tensorboard and "tensorboard" not in names:
        names.insert(0, "tensorboard")
    return names


def group(cfg: Config) -> str:
    """`log.group`, else the name of the directory the run sits in (`run.out_dir`)."""
    return cfg.log.group or Path(cfg.run.out_dir).resolve().name


def log_dir(cfg: Config) -> Path:
    """Where the W&B and MLflow sinks keep local files (`log.dir`, else `run.out_dir`)."""
    return Path(cfg.log.dir or cfg.run.out_dir)


def require(cfg: Config) -> None:
    """`UserError` (exit 2, with the install command) for a configured sink whose
    package is missing."""
    for name in sink_names(cfg):
        implied = name == "tensorboard" and name not in cfg.log.sinks
        key = "train.tensorboard" if implied else "log.sinks"
        extras.require(MODULES[name], f"{cfg.source}: {key} = {name!r}")


def open_sinks(cfg: Config, *, resume: bool = False) -> list[Sink]:
    """Every configured sink, opened (call on rank 0 only). With `resume`, W&B and
    MLflow continue the tracker runs named in `RUN/trackers.json`; a fresh start
    opens new ones."""
    out: list[Sink] = []
    for name in sink_names(cfg):
        if name == "tensorboard":
            from rewarm.trackers.tensorboard_sink import TensorBoardSink

            out.append(TensorBoardSink.open(cfg.run_dir / "tensorboard"))
        elif name == "wandb":
            from rewarm.trackers.wandb_sink import WandbSink

            out.append(WandbSink.open(cfg, resume=resume))
        elif name == "mlflow":
            from rewarm.trackers.mlflow_sink import MlflowSink

            out.append(MlflowSink.open(cfg, resume=resume))
    return out
