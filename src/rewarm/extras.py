"""Optional dependencies (pyproject extras): check one is installed before any work.

A feature that needs an extra (`eval.tasks` needs `lm-eval`, each tracker sink its
client) calls `require` when a config or command asks for it, so a missing package
stops the command at once with exit code 2 and the install command, instead of an
ImportError after data preparation or in the middle of a run.
"""

from __future__ import annotations

import importlib.util

from rewarm.errors import UserError

EXTRAS: dict[str, tuple[str, str]] = {
    # import name -> (pip distribution, rewarm extra)
    "lm_eval": ("lm-eval", "tasks"),
    "wandb": ("wandb", "wandb"),
    "mlflow": ("mlflow-skinny", "mlflow"),
    "tensorboard": ("tensorboard", "tensorboard"),
}


def install_hint(module: str) -> str:
    """`pip install 'rewarm[EXTRA]'` (or the package itself) for an import name."""
    dist, extra = EXTRAS[module]
    return f"pip install 'rewarm[{extra}]' (or pip install {dist})"


def available(module: str) -> bool:
    """Is the top-level package `module` importable (without importing it)?"""
    return importlib.util.find_spec(module) is not None


def require(module: str, what: str) -> None:
    """`UserError` naming `what` (the key or option that needs it) and the install
    command unless `module` can be imported."""
    if not available(module):
        raise UserError(f"{what} needs the {EXTRAS[module][0]} package: {install_hint(module)}")
