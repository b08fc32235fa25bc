"""`log.sinks = ["mlflow"]`: the run log mirrored to an MLflow run.

One MLflow run per rewarm run (run name `run.name`, tag `group` = `log.group`) in
the experiment `log.project`; the resolved config as parameters (dotted keys, on a
fresh start); every record's scalars (`rewarm.trackers.scalars`) as metrics with
`step` = training tokens. The run ends FINISHED after the `run` "end" record, KILLED
if the process stops before it; its id is kept in `RUN/trackers.json`, so a resume
continues it.

The tracking URI is `log.mlflow_uri`, by default a local file store
`file:<log.dir>/mlruns` (browse with `mlflow ui --backend-store-uri URI`). MLflow 3
keeps that store in maintenance mode and refuses it unless `MLFLOW_ALLOW_FILE_STORE`
is set; this sink sets it (if unset) for a `file:` URI only. A database backend
(`sqlite:///...`) needs the full `mlflow` package.
"""

from __future__ import annotations

import os
import time
from typing import Any

from rewarm.config import Config
from rewarm.runlog import Record, RunEnd, RunStart
from rewarm.trackers import group, ids, log_dir
from rewarm.trackers.scalars import flat_config, scalars

PARAM_BATCH = 100
"""MLflow takes at most this many parameters per `log_batch`."""
PARAM_CHARS = 6000
"""Longest parameter value MLflow stores."""


def tracking_uri(cfg: Config) -> str:
    return cfg.log.mlflow_uri or (log_dir(cfg).resolve() / "mlruns").as_uri()


class MlflowSink:
    def __init__(self, client: Any, run_id: str) -> None:
        self._client = client
        self.run_id = run_id
        self._ended = False

    @classmethod
    def open(cls, cfg: Config, *, resume: bool) -> MlflowSink:
        uri = tracking_uri(cfg)
        if uri.startswith("file:"):
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        from mlflow.exceptions import MlflowException
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=uri)
        run_id = ids.load(cfg.run_dir).get("mlflow") if resume else None
        if run_id is not None:
            try:
                client.update_run(run_id, status="RUNNING")
            except MlflowException:
                run_id = None  # the store was moved or cleared: start a new run
        if run_id is None:
            exp = client.get_experiment_by_name(cfg.log.project)
            exp_id = exp.experiment_id if exp else client.create_experiment(cfg.log.project)
            tags = {"group": group(cfg), "rewarm.run_dir": str(cfg.run_dir.resolve())}
            run_id = client.create_run(exp_id, run_name=cfg.run.name, tags=tags).info.run_id
            ids.save(cfg.run_dir, "mlflow", run_id)
        return cls(client, run_id)

    def write(self, record: Record) -> None:
        from mlflow.entities import Metric, Param

        if isinstance(record, RunStart) and record.event == "start":
            params = [
                Param(k[:250], v[:PARAM_CHARS]) for k, v in flat_config(record.config).items()
            ]
            for i in range(0, len(params), PARAM_BATCH):
                self._client.log_batch(self.run_id, params=params[i : i + PARAM_BATCH])
        values = scalars(record)
        if values:
            now = int(time.time() * 1000)
            step = record.tokens or 0  # every record with scalars carries its tokens
            metrics = [Metric(k, v, now, step) for k, v in values.items()]
            self._client.log_batch(self.run_id, metrics=metrics)
        if isinstance(record, RunEnd):
            self._ended = True

    def close(self) -> None:
        self._client.set_terminated(self.run_id, "FINISHED" if self._ended else "KILLED")
