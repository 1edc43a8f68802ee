"""Options that several commands share, spelled and explained once, and the help layout.

Every option has a one-line help; :class:`HelpFormatter` adds its default where it has one,
so ``kgrec CMD --help`` is enough to work from.
"""

from __future__ import annotations

import argparse


class HelpFormatter(argparse.HelpFormatter):
    """Each option's default appended to its help (when it has one)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        shown = "(default" in text or "%(default)" in text
        if action.option_strings and not shown and default not in (None, False, argparse.SUPPRESS) and not isinstance(default, list):
            text += " (default: %(default)s)"
        return text


def at_least_one(value: str) -> int:
    """An argparse type: a whole number >= 1 (K, counts, repeats)."""
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {n}")
    return n


def add_run_options(p: argparse.ArgumentParser) -> None:
    """What a command that asks a trained run needs: ``--run``, ``--graph`` (where the run's
    graph is now, if it moved) and ``--device``; :func:`load_run_from_args` loads it."""
    p.add_argument("--run", required=True, help="a run folder written by `kgrec train`")
    p.add_argument(
        "--graph", dest="run_graph", metavar="GRAPH",
        help="the run's graph folder, if it is no longer where training found it (same content: checked by hash)",
    )  # fmt: skip
    add_device(p)


def load_run_from_args(args: argparse.Namespace, **kwargs):
    """The run named by :func:`add_run_options`' options (``kwargs`` go to :func:`kgrec.runs.load_run`)."""
    from pathlib import Path

    from kgrec.runs import load_run

    return load_run(Path(args.run), device=args.device, graph=args.run_graph, **kwargs)


def add_device(p: argparse.ArgumentParser, *, default: str | None = "auto", what: str = "device for the model") -> None:
    p.add_argument("--device", default=default, help=f"{what}: auto, cpu, cuda, cuda:N or mps")


def add_k(p: argparse.ArgumentParser, default: int, what: str = "items per list") -> None:
    p.add_argument("--k", type=at_least_one, default=default, help=what)


def add_output_format(p: argparse.ArgumentParser) -> None:
    """``--format text|json``: text for people, JSON for scripts (one document on stdout)."""
    p.add_argument("--format", dest="output_format", choices=["text", "json"], default="text", help="what to print: text for people, json for scripts")


def add_force(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--force", action="store_true", help=f"replace an existing {what} (atomically: the old one stays whole until the new one is complete)")
