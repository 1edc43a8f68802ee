"""GNN encoders and the dot-product CF head.

* :mod:`~kgrec.models.graph_tensors` -- the flat training graph every encoder consumes;
* :mod:`~kgrec.models.inputs` -- layer-0 node representations (ID embedding + text projection);
* :mod:`~kgrec.models.lightgcn` -- LightGCN propagation over the collaborative knowledge graph;
* :mod:`~kgrec.models.relational` -- a relation-aware attentive encoder;
* :mod:`~kgrec.models.recommender` -- :class:`Recommender` and :func:`build_model`;
* :mod:`~kgrec.models.propagation` -- per-graph cached edge structures shared by the encoders.

Nothing is imported here, so ``import kgrec.models.graph_tensors`` stays cheap.
"""
