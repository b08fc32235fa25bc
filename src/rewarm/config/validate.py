"""Checks the types alone cannot express, one function per section.

Each raises `UserError("SOURCE: KEY MESSAGE")` at the first problem; `validate` runs
them in the order of the sections in a config file. Stage `schedule` and `replay`
tables are only checked for their presence here (see `rewarm.runconfig`).
"""

from __future__ import annotations

import typing

from rewarm.config.schema import Config, FixedDevice
from rewarm.errors import UserError


def validate(cfg: Config) -> None:
    """Every section's checks, in file order."""
    for check in (
        check_run,
        check_model,
        check_tokenizer,
        check_data,
        check_domains,
        check_train,
        check_eval,
        check_checkpoint,
        check_log,
        check_stages,
    ):
        check(cfg)


def _require(ok: bool, cfg: Config, key: str, message: str) -> None:
    if not ok:
        raise UserError(f"{cfg.source}: {key} {message}")


def check_run(cfg: Config) -> None:
    name = cfg.run.name
    _require(
        bool(name.strip()) and "/" not in name,
        cfg,
        "run.name",
        "must be a non-empty name without '/'",
    )


def check_model(cfg: Config) -> None:
    init = cfg.model.init
    _require(
        init == "scratch" or init.startswith(("hf:", "checkpoint:")),
        cfg,
        "model.init",
        f"must be 'scratch', 'hf:PATH' or 'checkpoint:PATH', got {init!r}",
    )


def check_tokenizer(cfg: Config) -> None:
    kind = cfg.tokenizer.kind
    _require(
        kind in ("byte", "bpe") or kind.startswith("hf:"),
        cfg,
        "tokenizer.kind",
        f"must be 'byte', 'bpe' or 'hf:PATH', got {kind!r}",
    )
    _require(cfg.tokenizer.vocab_size >= 260, cfg, "tokenizer.vocab_size", "must be >= 260")


def check_data(cfg: Config) -> None:
    d = cfg.data
    _require(0 < d.heldout_fraction < 1, cfg, "data.heldout_fraction", "must be in (0, 1)")
    _require(d.workers >= 0, cfg, "data.workers", "must be >= 0")


def check_domains(cfg: Config) -> None:
    _require(bool(cfg.domains), cfg, "domains", "must declare at least one [domains.NAME]")
    for name, dom in cfg.domains.items():
        src = dom.source if isinstance(dom.source, list) else [dom.source]
        _require(
            bool(src) and all(isinstance(x, str) and x for x in src),
            cfg,
            f"domains.{name}.source",
            "must be a non-empty string or array of strings",
        )
        _require(dom.max_bytes >= 0, cfg, f"domains.{name}.max_bytes", "must be >= 0")
        _require(dom.max_epochs > 0, cfg, f"domains.{name}.max_epochs", "must be > 0")
        _check_domain_format(cfg, name)


def _check_domain_format(cfg: Config, name: str) -> None:
    """`format` and the keys that only token formats use (`dtype`, `tokenizer`)."""
    dom, key = cfg.domains[name], f"domains.{name}"
    if dom.format == "text":
        for field, value in (("dtype", dom.dtype), ("tokenizer", dom.tokenizer)):
            _require(
                not value,
                cfg,
                f"{key}.{field}",
                'applies to token formats only (format = "megatron", "flat" or "hf-tokens")',
            )
        return
    _require(
        dom.tokenizer == "byte" or dom.tokenizer.startswith("hf:"),
        cfg,
        f"{key}.tokenizer",
        f'must name the tokenizer the ids of format = "{dom.format}" came from: '
        f'"byte" or "hf:PATH", got {dom.tokenizer!r}',
    )
    _require(
        dom.max_bytes == 0,
        cfg,
        f"{key}.max_bytes",
        f'counts bytes of text; it does not apply to format = "{dom.format}"',
    )
    if dom.format == "flat":
        _require(bool(dom.dtype), cfg, f"{key}.dtype", 'is required with format = "flat"')
    elif dom.format == "hf-tokens":
        _require(not dom.dtype, cfg, f"{key}.dtype", 'is unused with format = "hf-tokens"')


_DEVICES = typing.get_args(FixedDevice)


def check_train(cfg: Config) -> None:
    t = cfg.train
    _require(t.seq_len >= 2, cfg, "train.seq_len", "must be >= 2")
    _require(
        t.batch_tokens >= t.seq_len and t.batch_tokens % t.seq_len == 0,
        cfg,
        "train.batch_tokens",
        f"must be a positive multiple of train.seq_len ({t.seq_len})",
    )
    _require(
        t.micro_batch_tokens >= 0 and t.micro_batch_tokens % t.seq_len == 0,
        cfg,
        "train.micro_batch_tokens",
        f"must be 0 or a multiple of train.seq_len ({t.seq_len})",
    )
    _require(t.lr > 0, cfg, "train.lr", "must be > 0")
    _require(t.weight_decay >= 0, cfg, "train.weight_decay", "must be >= 0")
    _require(
        len(t.betas) == 2 and all(0 <= b < 1 for b in t.betas),
        cfg,
        "train.betas",
        "must be two numbers in [0, 1)",
    )
    _require(t.eps > 0, cfg, "train.eps", "must be > 0")
    _require(t.grad_clip >= 0, cfg, "train.grad_clip", "must be >= 0")
    _require(
        t.device in _DEVICES or t.device.startswith("cuda:"),
        cfg,
        "train.device",
        "must be 'auto', 'cpu' or 'cuda'",
    )
    _require(t.max_nonfinite_skips >= 0, cfg, "train.max_nonfinite_skips", "must be >= 0")
    _require(t.log_every_steps >= 1, cfg, "train.log_every_steps", "must be >= 1")


def check_eval(cfg: Config) -> None:
    every = cfg.eval.every_tokens
    _require(
        every == "auto" or (isinstance(every, int) and every >= 0),
        cfg,
        "eval.every_tokens",
        f'must be "auto" or an integer >= 0, got {every!r}',
    )
    seq_len = cfg.train.seq_len
    _require(
        cfg.eval.tokens_per_domain >= seq_len,
        cfg,
        "eval.tokens_per_domain",
        f"must be >= train.seq_len ({seq_len})",
    )
    check_tasks(cfg)


def check_tasks(cfg: Config) -> None:
    """`eval.tasks` entries (what `task` names is checked by `rewarm.tasks.spec`)."""
    e = cfg.eval
    _require(e.tasks_every_tokens >= 0, cfg, "eval.tasks_every_tokens", "must be >= 0")
    _require(e.task_batch_size >= 1, cfg, "eval.task_batch_size", "must be >= 1")
    for i, t in enumerate(e.tasks):
        key = f"eval.tasks[{i}]"
        _require(bool(t.task.strip()), cfg, f"{key}.task", "must be a non-empty string")
        _require(t.num_fewshot >= 0, cfg, f"{key}.num_fewshot", "must be >= 0")
        _require(t.limit >= 0, cfg, f"{key}.limit", "must be >= 0")
        _require(
            not t.domain or t.domain in cfg.domains,
            cfg,
            f"{key}.domain",
            f"names an undeclared domain (declared: {', '.join(cfg.domains)})",
        )


def check_checkpoint(cfg: Config) -> None:
    _require(cfg.checkpoint.every_tokens >= 0, cfg, "checkpoint.every_tokens", "must be >= 0")
    _require(cfg.checkpoint.keep >= 1, cfg, "checkpoint.keep", "must be >= 1")


def check_log(cfg: Config) -> None:
    sinks = cfg.log.sinks
    dup = next((x for i, x in enumerate(sinks) if x in sinks[:i]), None)
    _require(dup is None, cfg, "log.sinks", f"names {dup!r} twice")
    _require(bool(cfg.log.project.strip()), cfg, "log.project", "must be a non-empty name")


def check_stages(cfg: Config) -> None:
    _require(bool(cfg.stages), cfg, "stages", "must have at least one [[stages]] entry")
    batch = cfg.train.batch_tokens
    names: set[str] = set()
    for i, st in enumerate(cfg.stages):
        key = f"stages[{i}]"
        _require(
            bool(st.name.strip()) and st.name not in names,
            cfg,
            f"{key}.name",
            f"must be a non-empty, unique name, got {st.name!r}",
        )
        names.add(st.name)
        _require(
            st.tokens >= batch,
            cfg,
            f"{key}.tokens",
            f"must be at least one batch (train.batch_tokens = {batch})",
        )
        _require(bool(st.mix), cfg, f"{key}.mix", "must name at least one domain")
        for dom, w in st.mix.items():
            _require(
                dom in cfg.domains,
                cfg,
                f"{key}.mix.{dom}",
                f"names an undeclared domain (declared: {', '.join(cfg.domains)})",
            )
            _require(w >= 0, cfg, f"{key}.mix.{dom}", "must be >= 0")
        _require(sum(st.mix.values()) > 0, cfg, f"{key}.mix", "weights must not all be 0")
        _require(st.lr >= 0, cfg, f"{key}.lr", "must be >= 0")
        _require("kind" in st.schedule, cfg, f"{key}.schedule", "must have a 'kind'")
