"""The ``kgrec`` command line: :func:`kgrec.cli.main.main` (the ``kgrec`` console script).

One module per kind of command, each with a ``register(subparsers)``: :mod:`~kgrec.cli.graph`
(build, data), :mod:`~kgrec.cli.runs` (train, evaluate, recommend), :mod:`~kgrec.cli.analysis`
(explain, similar, add-items, new-user, cold-start), :mod:`~kgrec.cli.export` (export,
sparql), :mod:`~kgrec.cli.bench` (bench suite, bench speed).
"""
