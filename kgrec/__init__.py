"""kgrec: knowledge-graph-centred recommendation with graph neural networks.

Data flows one way: ``ingest`` (logs + RDF -> validated tables) -> ``graph`` (tables ->
heterogeneous graph, stored as Parquet) -> ``text`` (BERT features) -> ``models`` ->
``train`` -> ``eval``.
"""

__version__ = "0.1.0"
