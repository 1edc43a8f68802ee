"""One training step: draw the batch, encode, and the model's own loss.

Every step -- full-graph or sampled, in one process or under torchrun -- is the same three
calls: :class:`~kgrec.train.sampling.BatchSampler` draws the negatives (and knowledge triples),
the model encodes, and :meth:`Recommender.loss <kgrec.models.base.Recommender.loss>` returns
the weighted terms. Only the encoding differs (:func:`make_step`):

* ``train.sampler = "full"`` (:class:`FullGraphStep`): every step propagates over the whole
  training graph, as LightGCN does; memory grows with the whole graph.
* ``train.sampler = "neighbor"`` (:class:`SampledStep`): a step touches only the batch's
  neighbourhood:

  1. draw the batch exactly as the full-graph step does;
  2. take every node the losses score -- users, positive and negative items, heads, tails -- as
     seeds and sample their ``K``-hop neighbourhood, ``fanouts[k]`` neighbours per node at hop
     ``k`` (:mod:`kgrec.train.neighbor_sampler`);
  3. compute layer-0 embeddings for the sampled nodes only, propagate ``K`` LightGCN layers
     over the sampled edges (each layer trimmed to the nodes whose output is still needed,
     :meth:`KGLightGCN.forward_block <kgrec.models.lightgcn.KGLightGCN.forward_block>`) and
     average the layers at the seeds;
  4. apply the same loss to the seeds' embeddings.

**How this approximates full-graph propagation.** A LightGCN layer is
``x'_i = sum_j w_ij x_j`` with ``w_ij = m_ij / sqrt(d_i d_j)`` (``m_ij`` parallel edges between
``i`` and ``j``, ``d`` the weighted degrees). Sampled edges keep these coefficients, computed
from the *full* training graph's degrees, and node ``i``'s sampled sum is scaled by
``n_i / s_i`` (its number of neighbours over the number sampled): a Horvitz-Thompson estimate,
so each layer's message sum is unbiased for ``x'_i`` (across layers the estimate is nearly
unbiased: a node's sample is reused when a walk returns to it). The result lives in the same
space as full-graph embeddings, which is what evaluation uses (it propagates over the whole
graph). Re-normalising by *sampled* degrees instead
would have lower variance but a bias that depends on the fanouts. When every fanout covers
every degree (or is -1), nothing is left out, the scale is 1 and the seeds' embeddings equal
full-graph propagation exactly (the tests check it to 1e-5).

Models that can propagate over blocks say so (``supports_blocks``: the ``lightgcn`` encoder,
without edge dropout, since sampling already drops edges); the configuration check refuses the
others when the file is read. Evaluation stays full-graph.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from kgrec.config import ExperimentConfig
from kgrec.eval.sets import SplitSets
from kgrec.models.base import Batch, Embeddings, Recommender
from kgrec.models.graph_tensors import GraphTensors
from kgrec.train.neighbor_sampler import make_neighbor_sampler
from kgrec.train.sampling import BatchSampler


class TrainingStep:
    """``step(users, positives) -> {term: loss}`` for one batch of training pairs.

    Args:
        model: the recommender (its :meth:`~Recommender.embeddings` and :meth:`~Recommender.loss`).
        replica: what is called for the forward pass: ``model`` itself, or its DDP wrapper
            under torchrun (so that gradients are averaged across processes).
        g: the training graph.
        sets: the split's per-user sets (the training positives are the negatives' exclusions).
        config: the experiment configuration.
        generator: the sampling generator (negatives, knowledge triples, neighbourhoods).
    """

    def __init__(
        self, model: Recommender, replica: nn.Module, g: GraphTensors, sets: SplitSets, config: ExperimentConfig, generator: torch.Generator
    ):
        self.model = model
        self.replica = replica
        self.g = g
        self.draw = BatchSampler(g, sets.train, config.train, generator)
        self.generator = generator
        self.layers = config.train.contrast_weight > 0  # NCL's contrast reads the per-layer embeddings

    def encode(self, batch: Batch) -> Embeddings:
        raise NotImplementedError

    def __call__(self, users: Tensor, positives: Tensor) -> dict[str, Tensor]:
        batch = self.draw(users, positives)
        return self.model.loss(batch, self.encode(batch))


class FullGraphStep(TrainingStep):
    """Every step propagates over the whole training graph."""

    def encode(self, batch: Batch) -> Embeddings:
        return self.model.embeddings(self.replica(self.g, layers=self.layers), self.g)


class SampledStep(TrainingStep):
    """Every step propagates over the sampled neighbourhood of the nodes the batch scores.

    The sampler, like the negative sampling, draws from the step's generator, so a CPU run is
    reproducible from its seed and resumes exactly (with kgrec's own sampler).
    """

    def __init__(self, model, replica, g, sets, config, generator):
        super().__init__(model, replica, g, sets, config, generator)
        rowptr, col = model.sampling_csr(g)
        self.sampler = make_neighbor_sampler(rowptr, col, config.train.fanouts)

    def encode(self, batch: Batch) -> Embeddings:
        block = self.sampler.sample(batch.nodes(self.g.num_users), self.generator)
        return self.model.embeddings(self.replica(self.g, layers=self.layers, block=block), self.g, block)


#: ``train.sampler`` -> the step that encodes for it.
STEPS: dict[str, type[TrainingStep]] = {"full": FullGraphStep, "neighbor": SampledStep}


def make_step(model: Recommender, replica: nn.Module, g: GraphTensors, sets: SplitSets, config: ExperimentConfig, generator: torch.Generator) -> TrainingStep:
    """The training step that ``train.sampler`` names."""
    return STEPS[config.train.sampler](model, replica, g, sets, config, generator)


def total_loss(terms: dict[str, Tensor]) -> Tensor:
    """The loss to back-propagate: the terms added in the order the model returned them."""
    values = iter(terms.values())
    total = next(values)
    for value in values:
        total = total + value
    return total


def descend(optimizer: torch.optim.Optimizer, loss: Tensor) -> None:
    """One gradient step on ``loss``: the previous step's gradients cleared, back-propagation,
    the optimiser's update. Every training loop in kgrec steps this way."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


#: ``step(users, positives) -> {term: loss}``.
StepLoss = Callable[[Tensor, Tensor], dict[str, Tensor]]
