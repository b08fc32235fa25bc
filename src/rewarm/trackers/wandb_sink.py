"""`log.sinks = ["wandb"]`: the run log mirrored to a Weights & Biases run.

One W&B run per rewarm run (name `run.name`, project `log.project`, group
`log.group`), its config the resolved config. Every record's scalars
(`rewarm.trackers.scalars`) are one `log` call with `tokens` as the x axis
(`define_metric("*", step_metric="tokens")`), so a resumed run, which writes the
records after its checkpoint again, adds points at the same tokens rather than being
refused for a smaller step. The run id is kept in `RUN/trackers.json`: a resume
continues the same W&B run.

`log.wandb_mode = "offline"` (the default) writes only local files under
`log.dir/wandb/offline-run-*` (upload later with `wandb sync DIR`); "online" needs
`wandb login` or `WANDB_API_KEY`. Console capture and system metrics are off: the
trainer's own records already say where the time goes.
"""

from __future__ import annotations

import secrets
from typing import Any

from rewarm.config import Config
from rewarm.runlog import Record, RunEnd
from rewarm.trackers import group, ids, log_dir
from rewarm.trackers.scalars import scalars


class WandbSink:
    def __init__(self, run: Any) -> None:
        self._run = run
        self._ended = False

    @classmethod
    def open(cls, cfg: Config, *, resume: bool) -> WandbSink:
        import wandb

        run_id = (ids.load(cfg.run_dir).get("wandb") if resume else None) or secrets.token_hex(4)
        directory = log_dir(cfg)
        directory.mkdir(parents=True, exist_ok=True)
        run = wandb.init(
            project=cfg.log.project,
            group=group(cfg),
            name=cfg.run.name,
            dir=str(directory),
            mode=cfg.log.wandb_mode,
            id=run_id,
            resume="allow",
            reinit="create_new",
            config=cfg.to_dict(),
            settings=wandb.Settings(
                console="off", silent=True, x_disable_stats=True, save_code=False, disable_git=True
            ),
        )
        run.define_metric("tokens")
        run.define_metric("*", step_metric="tokens")
        ids.save(cfg.run_dir, "wandb", run_id)
        return cls(run)

    def write(self, record: Record) -> None:
        values = scalars(record)
        if values:
            self._run.log({"tokens": record.tokens, **values})
        if isinstance(record, RunEnd):
            self._ended = True

    def close(self) -> None:
        self._run.finish(exit_code=0 if self._ended else 1)
