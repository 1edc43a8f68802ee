"""kgrec: knowledge-graph-centred recommendation with graph neural networks.

Data flows one way: ``ingest`` (logs + RDF -> validated tables) -> ``graph`` (tables ->
heterogeneous graph, stored as Parquet) -> ``text`` (BERT features) -> ``models`` ->
``train`` -> ``eval``.
"""

from kgrec.version import __version__


def __getattr__(name):  # `kgrec.load_run` without importing torch at `import kgrec`
    if name == "load_run":
        from kgrec.runs import load_run

        return load_run
    raise AttributeError(f"module 'kgrec' has no attribute {name!r}")
