"""The ``kgrec`` command line: the parser, and the one place errors are turned into messages.

Each subcommand lives with its kind (:mod:`~kgrec.cli.graph`: build, data; :mod:`~kgrec.cli.runs`:
train, evaluate, recommend; :mod:`~kgrec.cli.update`: update; :mod:`~kgrec.cli.analysis`: explain, similar, add-items, new-user,
cold-start; :mod:`~kgrec.cli.export`: export, sparql; :mod:`~kgrec.cli.bench`: bench), parses
its options, calls one library function and prints what it did. Errors in the user's input
arrive as :class:`~kgrec.errors.KgrecError` and are printed as one line, without a traceback,
with exit status 2. The command modules import the library only when their command runs, so
``kgrec --help`` stays quick.
"""

from __future__ import annotations

import argparse
import sys

from kgrec.cli import analysis, bench, export, graph, runs, update
from kgrec.cli.options import HelpFormatter
from kgrec.errors import KgrecError
from kgrec.version import __version__


class _Parser(argparse.ArgumentParser):
    """The top-level parser: ``kgrec bench SUITE.toml`` stays short for ``kgrec bench suite SUITE.toml``.

    ``bench`` has subcommands (``suite``, ``speed``); argparse cannot mix those with a file
    argument, so a ``bench`` not followed by one of them gets ``suite`` inserted.
    """

    def parse_known_args(self, args=None, namespace=None):
        args = list(sys.argv[1:] if args is None else args)
        if args[:1] == ["bench"] and (len(args) == 1 or args[1] not in ("suite", "speed", "incremental", "-h", "--help")):
            args.insert(1, "suite")
        return super().parse_known_args(args, namespace)


class _SubParser(argparse.ArgumentParser):
    """Every subcommand's parser: options listed with their defaults (:class:`HelpFormatter`)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def add_subparsers(self, **kwargs):
        kwargs.setdefault("parser_class", _SubParser)
        return super().add_subparsers(**kwargs)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="kgrec",
        description="Knowledge-graph-centred recommendation with GNNs. "
        "The commands in the order of the work: build a graph, train on it, ask the run "
        "(evaluate, recommend, explain, similar, add-items, new-user), export, benchmark. "
        "`kgrec COMMAND --help` lists a command's options with their defaults.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"kgrec {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_SubParser, metavar="COMMAND")
    # in the order of the work: build a graph, train on it, use the run, export, benchmark
    for module in (graph, runs, update, analysis, export, bench):
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except KgrecError as e:
        from kgrec.train.distributed import leave, rank_label  # under torchrun: which process failed

        print(f"kgrec: error{rank_label()}: {e}", file=sys.stderr)
        return leave(2)
    except KeyboardInterrupt:
        print("kgrec: interrupted", file=sys.stderr)
        return 130
    except Exception:
        from kgrec.train.distributed import abandoned, leave

        if abandoned():  # a bug in one of several training processes: its traceback, then leave
            import traceback

            traceback.print_exc()
            leave(1)
        raise


if __name__ == "__main__":
    sys.exit(main())
