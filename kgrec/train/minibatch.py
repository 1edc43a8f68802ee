"""Mini-batch training over sampled neighbourhoods (``train.sampler = "neighbor"``).

Full-graph training (:func:`kgrec.train.loop.full_graph_step`) propagates every node at every
step: memory grows with the whole graph. Here a step touches only the batch's neighbourhood:

1. draw the negatives (and, with the knowledge-edge loss, the triples and corrupted tails)
   exactly as the full-graph step does;
2. take every node the losses score -- users, positive and negative items, heads, tails -- as
   seeds and sample their ``K``-hop neighbourhood, ``fanouts[k]`` neighbours per node at hop
   ``k`` (:mod:`kgrec.train.neighbor_sampler`);
3. compute layer-0 embeddings for the sampled nodes only, propagate ``K`` LightGCN layers over
   the sampled edges (each layer trimmed to the nodes whose output is still needed) and average
   the layers at the seeds;
4. apply the same losses (:mod:`kgrec.train.losses`) to the seeds' embeddings.

**How this approximates full-graph propagation.** A LightGCN layer is
``x'_i = sum_j w_ij x_j`` with ``w_ij = m_ij / sqrt(d_i d_j)`` (``m_ij`` parallel edges between
``i`` and ``j``, ``d`` the weighted degrees). Sampled edges keep these coefficients, computed
from the *full* training graph's degrees, and node ``i``'s sampled sum is scaled by
``n_i / s_i`` (its number of neighbours over the number sampled): a Horvitz-Thompson estimate,
so each layer's message sum is unbiased for ``x'_i`` (across layers the estimate is nearly
unbiased: a node's sample is reused when a walk returns to it). The result lives in the same
space as full-graph embeddings, which is what evaluation uses (:func:`kgrec.train.loop.
evaluate_sets` propagates over the whole graph). Re-normalising by *sampled* degrees instead
would have lower variance but a bias that depends on the fanouts. When every fanout covers
every degree (or is -1), nothing is left out, the scale is 1 and the seeds' embeddings equal
full-graph propagation exactly (the tests check it to 1e-5).

Only the ``lightgcn`` encoder is supported, without edge dropout (sampling already drops
edges). Evaluation stays full-graph.
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import Tensor

from kgrec.config import ExperimentConfig
from kgrec.errors import KgrecError
from kgrec.models.graph_tensors import GraphTensors
from kgrec.models.inputs import NodeInput
from kgrec.models.lightgcn import KGLightGCN
from kgrec.models.recommender import Recommender
from kgrec.train.loop import SplitSets, StepLoss
from kgrec.train.losses import bpr_loss, kg_link_loss, l2_regularisation, sampled_softmax_loss
from kgrec.train.neighbor_sampler import SampledSubgraph, make_neighbor_sampler
from kgrec.train.sampling import NodeTypeIndex, sample_kg_triples, sample_negative_items


def node_input_rows(node_input: NodeInput, g: GraphTensors, nodes: Tensor) -> Tensor:
    """Layer-0 embeddings of ``nodes`` only: row for row what ``node_input(g)[nodes]`` gives.

    The ID embedding is gathered and the text projection applied to the sampled rows alone, so
    a step never materialises the ``[num_nodes, dim]`` table.
    """
    if g.num_nodes != node_input.num_nodes:
        raise KgrecError(
            f"the model was built for {node_input.num_nodes} nodes but the graph has "
            f"{g.num_nodes}; was it trained on a different graph?"
        )
    out: Tensor | None = None
    if node_input.id_embedding is not None:
        out = node_input.id_embedding(nodes)
    if node_input.text_projection is not None:
        weight = node_input.text_projection.weight
        if g.features is None or g.features.size(1) != weight.size(1):
            raise KgrecError(f"the model expects {weight.size(1)}-dimensional text features but the graph has {g.feature_dim}")
        text = node_input.text_projection(g.features[nodes].to(weight.dtype))
        if g.has_text is not None:  # nodes without text get no projection, as in NodeInput
            text = text * g.has_text[nodes].unsqueeze(-1).to(text.dtype)
        out = text if out is None else out + text.to(out.dtype)
    assert out is not None
    return out


class SampledLightGCN:
    """Embeddings of a batch of nodes by LightGCN over their sampled neighbourhood.

    Samples over the encoder's own normalised adjacency (:meth:`KGLightGCN.adjacency`, built
    once per graph and cached by the encoder): its CSR structure is the graph to sample, its
    values are the full-graph coefficients, and full-graph evaluation reuses the very same
    tensors, so mini-batch training adds no second copy of the graph.

    Args:
        model: a :class:`Recommender` whose encoder is :class:`KGLightGCN`.
        g: the training graph.
        fanouts: neighbours per node at each hop, one entry per encoder layer (-1: all).
        backend: sampler backend (``auto``, ``torch`` or ``pyg``; see
            :func:`~kgrec.train.neighbor_sampler.make_neighbor_sampler`).
    """

    def __init__(self, model: Recommender, g: GraphTensors, fanouts: list[int], backend: str = "auto"):
        encoder = model.encoder
        if not isinstance(encoder, KGLightGCN):
            raise KgrecError('train.sampler = "neighbor" needs model.encoder = "lightgcn"')
        if encoder.edge_dropout > 0:
            raise KgrecError(
                'model.edge_dropout must be 0 with train.sampler = "neighbor" (neighbour sampling '
                f"already leaves edges out), got {encoder.edge_dropout}"
            )
        if len(fanouts) != encoder.num_layers:
            raise KgrecError(
                f"train.fanouts has {len(fanouts)} entries but the model has {encoder.num_layers} "
                f"layers: give one fanout per layer"
            )
        self.model = model
        self.g = g
        self.num_layers = encoder.num_layers
        adj = encoder.adjacency(g)  # D^-1/2 A D^-1/2 in CSR; no edge dropout, so the cached one
        rowptr, col = adj.crow_indices(), adj.col_indices()
        self.coefficient = adj.values()
        self.row_length = (rowptr[1:] - rowptr[:-1]).float()
        self.sampler = make_neighbor_sampler(rowptr, col, fanouts, backend)

    def __call__(self, seeds: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """Sample, then encode: ``(emb [n_seeds, d], layer0 [n_seeds, d], seed_index [len(seeds)])``.

        Rows are the distinct seeds; ``emb[seed_index]`` lines up with ``seeds``. ``emb`` is
        float32 (L2-normalised when the model normalises); ``layer0`` is for the regulariser.
        """
        sub = self.sampler.sample(seeds, generator)
        x0 = node_input_rows(self.model.node_input, self.g, sub.nodes)
        emb = self.propagate(x0, sub)
        if self.model.normalize:
            emb = F.normalize(emb, dim=-1)
        return emb, x0[: sub.num_seeds], sub.seed_index

    def edge_weights(self, sub: SampledSubgraph) -> Tensor:
        """Full-graph coefficient of every sampled edge times ``n_i / s_i`` of its target."""
        target = sub.edge_index[1]
        sampled = torch.bincount(target, minlength=sub.num_nodes).float()
        scale = self.row_length[sub.nodes] / sampled.clamp(min=1)
        return self.coefficient[sub.edge_ids] * scale[target]

    def propagate(self, x0: Tensor, sub: SampledSubgraph) -> Tensor:
        """The seeds' layer average after ``K`` layers over the sampled edges, in float32.

        With per-hop counts, layer ``l`` computes outputs only for nodes within ``K - l`` hops
        of a seed, from the edges into them: with edges sorted by target (kgrec's sampler emits
        them so) both are prefixes, because nodes are numbered by hop. Without the counts every
        layer covers the whole block. Each layer is one sparse CSR product, so no
        ``[edges, dim]`` message tensor is ever materialised.
        """
        with torch.autocast(device_type=x0.device.type, enabled=False):
            x = x0.float()
            k, s = self.num_layers, sub.num_seeds
            total = x[:s]
            if k == 0:
                return total
            weight = self.edge_weights(sub)
            src, dst = sub.edge_index
            if sub.num_edges > 1 and not bool((dst[1:] >= dst[:-1]).all()):  # PyG promises no order
                order = torch.argsort(dst, stable=True)
                src, dst, weight = src[order], dst[order], weight[order]
            crow = torch.zeros(sub.num_nodes + 1, dtype=torch.long, device=x.device)
            crow[1:] = torch.cumsum(torch.bincount(dst, minlength=sub.num_nodes), 0)
            trim = sub.nodes_per_hop is not None and len(sub.nodes_per_hop) == k + 1
            for layer in range(1, k + 1):
                outputs = sum(sub.nodes_per_hop[: k - layer + 1]) if trim else sub.num_nodes
                edges = int(crow[outputs])
                with warnings.catch_warnings():  # "sparse CSR support is in beta state"
                    warnings.simplefilter("ignore", UserWarning)
                    block = torch.sparse_csr_tensor(
                        crow[: outputs + 1], src[:edges], weight[:edges], (outputs, x.size(0)), check_invariants=False
                    )
                x = block @ x
                total = total + x[:s]
            return total / (k + 1)


def neighbor_step(
    model: Recommender, g: GraphTensors, sets: SplitSets, config: ExperimentConfig, generator: torch.Generator
) -> StepLoss:
    """The per-batch loss of mini-batch training: :func:`~kgrec.train.loop.full_graph_step`'s
    losses, on embeddings from the batch's sampled neighbourhood (:class:`SampledLightGCN`).

    The sampler, like the negative sampling, draws from ``generator``, so a CPU run is
    reproducible from its seed and resumes exactly (with kgrec's own sampler).
    """
    if isinstance(model, torch.nn.parallel.DistributedDataParallel):
        # The step reads the node input and encoder directly, never DDP's forward, so DDP
        # would not all-reduce the gradients: the replicas would silently drift apart.
        raise KgrecError('train.sampler = "neighbor" does not support several processes (torchrun) yet; run one process')
    tc = config.train
    encode = SampledLightGCN(model, g, tc.fanouts)
    train_keys = sets.train.keys()
    kg_weight = tc.kg_loss_weight if g.kg_edge_index.size(1) else 0.0
    tail_index = NodeTypeIndex.from_node_type(g.node_type)

    def step_loss(users: Tensor, pos: Tensor) -> Tensor:
        batch, n = users.numel(), tc.num_negatives
        if tc.loss == "softmax":  # one set of negatives shared by the batch, as in full-graph
            if n >= g.num_items:
                neg = torch.arange(g.num_items, device=users.device)
            else:
                neg = torch.randint(g.num_items, (n,), generator=generator, device=generator.device).to(users.device)
        else:
            neg = sample_negative_items(users, sets.train, g.num_items, n, generator, keys=train_keys)
        parts = [users, g.num_users + pos, g.num_users + neg.reshape(-1)]
        if kg_weight > 0:
            heads, rels, tails, neg_tails = sample_kg_triples(
                g.kg_edge_index, g.kg_edge_type, g.node_type, tc.kg_batch_size, generator, users.device, tail_index
            )
            parts += [heads, tails, neg_tails]
        emb, ego, index = encode(torch.cat(parts), generator)
        at = torch.split(index, [p.numel() for p in parts])  # local rows of each part
        u = emb[at[0]]
        pos_scores = (u * emb[at[1]]).sum(-1)
        if tc.loss == "softmax":
            neg_scores = u @ emb[at[2]].T  # [B, n]
            accidental = sets.train.contains(users.unsqueeze(1).expand(batch, neg.numel()), neg.expand(batch, -1), train_keys)
            loss = sampled_softmax_loss(pos_scores, neg_scores.masked_fill(accidental, float("-inf")), tc.temperature)
        else:
            neg_scores = torch.einsum("bd,bnd->bn", u, emb[at[2]].view(batch, n, -1))
            loss = bpr_loss(pos_scores, neg_scores)
        loss = loss + tc.reg_weight * l2_regularisation(ego[at[0]], ego[at[1]], ego[at[2]], batch_size=batch)
        if kg_weight > 0:
            loss = loss + kg_weight * kg_link_loss(model, emb, at[3], rels, at[4], at[5])
        return loss

    return step_loss
