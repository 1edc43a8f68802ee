"""Help a newcomer can work from: every option explained, defaults shown, commands in order."""

from __future__ import annotations

import argparse

from kgrec.cli.main import build_parser


def _commands(parser: argparse.ArgumentParser, prefix=()):
    """(name path, parser) of every command and sub-command."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield prefix + (name,), sub
                yield from _commands(sub, prefix + (name,))


def test_every_option_of_every_command_has_help_and_its_default():
    missing, no_default = [], []
    for path, parser in _commands(build_parser()):
        formatter = parser._get_formatter()
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            where = f"kgrec {' '.join(path)} {'/'.join(action.option_strings) or action.dest}"
            if not (action.help or "").strip():
                missing.append(where)
                continue
            shown = formatter._get_help_string(action) % {"default": action.default}
            if action.option_strings and action.default not in (None, False) and str(action.default) not in shown:
                no_default.append(f"{where}: {shown}")
    assert not missing, "options without help:\n" + "\n".join(missing)
    assert not no_default, "defaults not shown:\n" + "\n".join(no_default)


def test_every_command_has_a_description_and_they_come_in_pipeline_order():
    names = [path[0] for path, _ in _commands(build_parser()) if len(path) == 1]
    assert names[:5] == ["build", "data", "text", "train", "evaluate"] and names.index("export") > names.index("recommend")
    for path, parser in _commands(build_parser()):
        if len(path) == 1 and path[0] not in ("data", "bench"):
            assert parser.description, f"kgrec {path[0]} has no description"


def test_k_below_one_is_refused_by_the_parser(capsys):
    import pytest

    with pytest.raises(SystemExit) as stop:
        build_parser().parse_args(["recommend", "--run", "r", "--k", "0"])
    assert stop.value.code == 2 and "must be 1 or more, got 0" in capsys.readouterr().err
