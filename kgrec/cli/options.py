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


def add_run(p: argparse.ArgumentParser, *, required: bool = True, help: str = "a run folder written by `kgrec train`") -> None:
    p.add_argument("--run", required=required, help=help)


def add_graph_override(p: argparse.ArgumentParser) -> None:
    """``--graph`` for commands that load a run: where its graph is now, if it moved."""
    p.add_argument(
        "--graph", dest="run_graph", metavar="GRAPH",
        help="the run's graph folder, if it is no longer where training found it (same content: checked by hash)",
    )  # fmt: skip


def add_device(p: argparse.ArgumentParser, *, default: str | None = "auto", what: str = "device for the model") -> None:
    p.add_argument("--device", default=default, help=f"{what}: auto, cpu, cuda, cuda:N or mps")


def add_k(p: argparse.ArgumentParser, default: int, what: str = "items per list") -> None:
    p.add_argument("--k", type=at_least_one, default=default, help=what)


def add_output_format(p: argparse.ArgumentParser) -> None:
    """``--format text|json``: text for people, JSON for scripts (one document on stdout)."""
    p.add_argument("--format", dest="output_format", choices=["text", "json"], default="text", help="what to print: text for people, json for scripts")


def add_force(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--force", action="store_true", help=f"replace an existing {what} (atomically: the old one stays whole until the new one is complete)")
