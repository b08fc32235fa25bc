"""Command-line entry point: verbs -> functions, nothing else.

Each verb lives in `rewarm.commands.<module>` with two functions,
`add_arguments(parser)` and `run(args) -> int`. Modules are imported only when
their verb runs, so `rewarm --help` and light verbs stay fast (no torch import).
Notices of every module go through the `rewarm` logger, configured here once
(`rewarm.console`: stderr, above progress bars, rank 0 only under torchrun).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from rewarm import __version__, console
from rewarm.errors import UserError

# verb -> (module under rewarm.commands, one-line help)
VERBS: dict[str, tuple[str, str]] = {
    "demo": ("demo", "continual pre-training vs re-training, on built-in text or your corpora"),
    "prepare": ("prepare", "turn each domain's corpus into memory-mapped token shards"),
    "train": ("train", "run or resume the stages of a config"),
    "eval": ("eval", "held-out loss of a checkpoint on every domain, or harness tasks"),
    "report": ("report", "forgetting, stability gap, comparison, plots and HTML report"),
    "schedule": ("schedule", "list, show and plot learning-rate schedules"),
    "fit": ("fit", "fit a loss-curve law to logged curves"),
    "predict": ("predict", "predict the loss curve of a schedule from a fitted law"),
    "plan": ("plan", "rank candidate schedules by predicted final loss"),
    "export": ("export", "write a checkpoint as a Hugging Face model directory"),
    "merge": ("merge", "merge checkpoints or HF models (linear, task arithmetic, WSM)"),
}


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The `rewarm` parser and each verb's subparser (empty until its verb is chosen)."""
    parser = argparse.ArgumentParser(
        prog="rewarm",
        description="Continual pre-training of language models without forgetting.",
    )
    parser.add_argument("--version", action="version", version=f"rewarm {__version__}")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    verbs = {}
    for verb, (module, help_text) in VERBS.items():
        verbs[verb] = sub.add_parser(verb, help=help_text, description=help_text)
        verbs[verb].set_defaults(_module=module)
        # Arguments are added lazily in main() for the chosen verb only.
    return parser, verbs


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser, verbs = build_parser()
    verb = next((a for a in argv if not a.startswith("-")), None)
    if verb is not None and verb in VERBS:
        module = importlib.import_module(f"rewarm.commands.{VERBS[verb][0]}")
        module.add_arguments(verbs[verb])
    args = parser.parse_args(argv)
    if args.verb is None:
        parser.print_help()
        return 2
    module = importlib.import_module(f"rewarm.commands.{args._module}")
    console.configure()
    try:
        return int(module.run(args) or 0)
    except UserError as err:
        print(f"rewarm {args.verb}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"rewarm {args.verb}: interrupted", file=sys.stderr)
        return 130
