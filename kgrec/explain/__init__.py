"""Explanations: knowledge-graph paths that connect a user to a recommended item.

* :mod:`~kgrec.explain.paths` -- path enumeration over the training graph, scored with the
  trained model's embeddings (:class:`PathFinder`);
* :mod:`~kgrec.explain.picture` -- a PNG of the paths (imports matplotlib only when drawing);
* :mod:`~kgrec.explain.names` -- readable node names.
"""

from kgrec.explain.names import NodeNames
from kgrec.explain.paths import Explanation, Path, PathFinder, explanation_record, format_explanation, format_path

__all__ = ["Explanation", "NodeNames", "Path", "PathFinder", "explanation_record", "format_explanation", "format_path"]
