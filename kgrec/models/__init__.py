"""Models: the contract every recommender implements, and kgrec's GNNs.

* :mod:`~kgrec.models.base` -- the contract (:class:`Recommender`), :class:`Embeddings`, :class:`Batch`;
* :mod:`~kgrec.models.registry` -- :data:`MODELS` (``[model] encoder`` name -> class) and
  :func:`build_model`;
* :mod:`~kgrec.models.gnn` -- :class:`GraphRecommender`: node inputs -> encoder -> dot product,
  with its losses;
* :mod:`~kgrec.models.lightgcn` -- LightGCN propagation over the collaborative knowledge graph;
* :mod:`~kgrec.models.relational` -- a relation-aware attentive encoder;
* :mod:`~kgrec.models.inputs` -- layer-0 node representations (ID embedding + text projection);
* :mod:`~kgrec.models.item_item` -- EASE's item-item view, blended into the ranking scores;
* :mod:`~kgrec.models.losses` -- BPR, sampled softmax, L2, KG link and contrastive losses;
* :mod:`~kgrec.models.graph_tensors` -- the flat training graph every encoder consumes;
* :mod:`~kgrec.models.propagation` -- per-graph cached edge structures shared by the encoders.

Nothing is imported here, so ``import kgrec.models.graph_tensors`` stays cheap.
"""
