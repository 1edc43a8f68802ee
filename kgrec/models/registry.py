"""Which model each ``[model] encoder`` name builds, and the one place that builds it.

Adding a model: write its :class:`~kgrec.models.base.Recommender` subclass in a module of its
own, with ``check_config(config)`` (the settings it cannot honour, named by key) and
``from_config(config, g, item_item)``, and add one line to :data:`MODELS`. Everything else --
training (full-graph, sampled, distributed), evaluation, the run object, exports, benchmarks --
goes through the contract and needs no change.
"""

from __future__ import annotations

from kgrec.config import ExperimentConfig
from kgrec.errors import KgrecError
from kgrec.models.base import Recommender
from kgrec.models.cke import CKERecommender
from kgrec.models.graph_tensors import GraphTensors
from kgrec.models.item_item import ItemItemView
from kgrec.models.kgat import KGATRecommender
from kgrec.models.kgcl import KGCLRecommender
from kgrec.models.kgin import KGINRecommender
from kgrec.models.lightgcn import LightGCNRecommender
from kgrec.models.relational import RelationalRecommender
from kgrec.models.sequential import GRU4RecRecommender, SASRecRecommender

#: ``[model] encoder`` name -> the model class it builds.
MODELS: dict[str, type[Recommender]] = {
    "lightgcn": LightGCNRecommender,
    "relational": RelationalRecommender,
    "cke": CKERecommender,
    "kgat": KGATRecommender,
    "kgin": KGINRecommender,
    "kgcl": KGCLRecommender,
    "sasrec": SASRecRecommender,
    "gru4rec": GRU4RecRecommender,
}


def model_class(name: str) -> type[Recommender]:
    """The class registered as ``name``; an unknown name is an error that lists the known ones."""
    cls = MODELS.get(name)
    if cls is None:
        raise KgrecError(f"model.encoder = {name!r} is not a model kgrec knows (known: {', '.join(MODELS)})")
    return cls


def check_model_config(config: ExperimentConfig) -> None:
    """The model's own checks of ``config`` (its name, ranges, settings it cannot honour)."""
    model_class(config.model.encoder).check_config(config)


def build_model(config: ExperimentConfig, g: GraphTensors, item_item: ItemItemView | None = None) -> Recommender:
    """Build the model that ``config`` describes, sized for graph ``g``.

    Args:
        config: the experiment configuration (``[model]``, and the loss settings of ``[train]``).
        g: the training graph (its node count, feature width and relations size the model).
        item_item: the item-item view to blend into the ranking scores, if any.

    Raises:
        KgrecError: an unknown model name or a setting the model cannot honour, named by key.
    """
    cls = model_class(config.model.encoder)
    cls.check_config(config)
    return cls.from_config(config, g, item_item)


__all__ = ["MODELS", "build_model", "check_model_config", "model_class"]
