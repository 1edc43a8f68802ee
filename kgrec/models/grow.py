"""Carry a trained model's weights over to the same model built for a grown graph.

A graph that grew (:mod:`kgrec.graph.append`) has more nodes, and every node after a grown type
has moved (new users shift every item's global index), so the ID embedding table neither has
the old shape nor the old row order. What a GNN owns per node is its row of that table; every
other weight (the text projection, LightGCN's none, a relational encoder's per-relation
weights) does not depend on the nodes. :func:`carry_over` therefore

* copies each old node's ID row to the node's new row (the map comes from node identity,
  :func:`kgrec.graph.append.node_map`), and fills the new nodes' rows from what the model
  learnt (:func:`new_node_rows`);
* copies a per-relation row by relation name (a grown graph may add relations);
* copies every other tensor as it is, and refuses a model that keeps another graph-sized
  tensor, naming it: such a model cannot be grown, only retrained;
* copies the item-item view's blend weight (when both have a view): the view itself is fitted
  on the grown history, and its weight chosen again on validation after the update's
  fine-tuning, as after training.
"""

from __future__ import annotations

import torch
from torch import Tensor

from kgrec.errors import KgrecError
from kgrec.models.base import Recommender
from kgrec.models.graph_tensors import GraphTensors

#: The state key of the per-node ID embedding (:class:`kgrec.models.inputs.NodeInput`).
ID_ROWS = "node_input.id_embedding.weight"
#: State keys of the item-item view (its blend weight): the grown model's view is fitted on the
#: grown history; its weight starts as the trained one's and is chosen again on validation.
VIEW = "item_item."
#: State keys (their endings) of tensors with one row per relation id: the DistMult relation
#: vectors of every GNN, and the relational encoder's per-relation weights and biases.
RELATION_ROWS = ("relation_embedding.weight", ".relation", ".relation_bias")


def carry_over(
    old_state: dict[str, Tensor],
    model: Recommender,
    rows: Tensor,
    old_relations: list[str],
    new_relations: list[str],
    new_rows: Tensor | None = None,
) -> None:
    """Load ``old_state`` (a trained model's weights) into ``model``, built for the grown graph.

    Args:
        old_state: the trained model's ``state_dict``.
        model: the same model class and settings, built for the grown graph (fresh weights).
        rows: ``[old nodes]`` each old node's global index in the grown graph (-1: gone).
        old_relations, new_relations: relation names of the two training graphs, in id order.
        new_rows: ``[new nodes, d]`` ID rows of the grown graph's new nodes, in node order
            (:func:`new_node_rows`); None keeps the fresh initialisation.

    Raises:
        KgrecError: the model keeps a graph-sized tensor other than the ID table and the
            per-relation rows (it cannot be grown).
    """
    state = model.state_dict()
    relation_at = {name: k for k, name in enumerate(new_relations)}
    same = [(k, relation_at[name]) for k, name in enumerate(old_relations) if name in relation_at]
    old_rel = torch.as_tensor([a for a, _ in same], dtype=torch.long)
    new_rel = torch.as_tensor([b for _, b in same], dtype=torch.long)
    grown = {}
    for key, fresh in state.items():
        if key.startswith(VIEW):  # the blend weight, as it was (chosen again after fine-tuning)
            grown[key] = old_state[key].to(fresh) if key in old_state and old_state[key].shape == fresh.shape else fresh
            continue
        old = old_state.get(key)
        if old is None:
            raise KgrecError(f"the trained weights have no {key!r}: the run was trained with another model")
        if key.endswith(ID_ROWS):
            grown[key] = _node_rows(old, fresh, rows, new_rows)
        elif key.endswith(RELATION_ROWS) and old.shape[1:] == fresh.shape[1:]:
            table = fresh.clone()  # relations new to the graph keep their fresh initialisation
            table[new_rel.to(table.device)] = old[old_rel.to(old.device)].to(table)
            grown[key] = table
        elif old.shape == fresh.shape:
            grown[key] = old.to(fresh)
        else:
            raise KgrecError(
                f"{type(model).__name__} keeps {key!r} sized by the graph ({tuple(old.shape)} -> {tuple(fresh.shape)}): "
                "it cannot be grown with new nodes; train it again instead"
            )
    model.load_state_dict(grown)


def _node_rows(old: Tensor, fresh: Tensor, rows: Tensor, new_rows: Tensor | None) -> Tensor:
    table = fresh.clone()
    rows = torch.as_tensor(rows, dtype=torch.long)
    kept = rows >= 0
    table[rows[kept].to(table.device)] = old[kept.to(old.device)].to(table)
    if new_rows is not None:
        is_new = new_node_mask(rows, table.size(0))
        if int(is_new.sum()) != new_rows.size(0):
            raise ValueError(f"{new_rows.size(0)} new ID rows for {int(is_new.sum())} new nodes")
        table[is_new.to(table.device)] = new_rows.to(table)
    return table


def new_node_mask(rows: Tensor, num_nodes: int) -> Tensor:
    """``[num_nodes]`` True for the grown graph's nodes that no old node maps to (the new ones);
    ``rows``: each old node's global index in the grown graph (-1: gone)."""
    new = torch.ones(num_nodes, dtype=torch.bool)
    old = torch.as_tensor(rows, dtype=torch.long)
    new[old[old >= 0]] = False
    return new


def new_node_rows(
    old_ids: Tensor,
    rows: Tensor,
    g: GraphTensors,
    user_items: dict[int, list[int]],
    layer0: Tensor,
    *,
    user_init: str = "items",
) -> Tensor:
    """ID rows for the grown graph's new nodes, in node order, from what the trained model learnt.

    * a new **item** starts from the mean trained item ID row (as ``kgrec add-items`` does):
      its own text projection is added by the model;
    * a new **user** starts from the mean layer-0 embedding of their training items
      (``user_init = "items"``: where the user's own interactions would have pulled their row),
      or zero (``"zero"``: the user is the propagation of their items alone, as a cold user's
      fold-in);
    * a new **entity** starts from zero: its text (when it has one) and its neighbours speak.

    Args:
        old_ids: ``[old nodes, d]`` the trained ID table.
        rows: ``[old nodes]`` each old node's global index in the grown graph (-1: gone).
        g: the grown training graph (node types: 0 user, 1 item, then entities).
        user_items: new user's global node -> global nodes of their training items.
        layer0: ``[nodes of g, d]`` the grown model's layer-0 embeddings with the old rows
            carried over and the new items' rows set (for ``user_init = "items"``).
    """
    new_nodes = new_node_mask(rows, g.num_nodes).nonzero(as_tuple=True)[0]
    types = g.node_type.cpu()[new_nodes]
    out = torch.zeros(new_nodes.numel(), old_ids.size(1), dtype=old_ids.dtype)
    old_types = _old_types(g.node_type.cpu(), torch.as_tensor(rows, dtype=torch.long))
    item_rows = old_ids[(old_types == 1).to(old_ids.device)].cpu()
    if item_rows.numel():
        out[types == 1] = item_rows.float().mean(0).to(out.dtype)
    if user_init == "items":
        for k, node in enumerate(new_nodes.tolist()):
            items = user_items.get(node)
            if types[k] == 0 and items:
                out[k] = layer0[torch.as_tensor(items, device=layer0.device)].float().mean(0).cpu().to(out.dtype)
    return out


def _old_types(new_node_type: Tensor, rows: Tensor) -> Tensor:
    """Node type of each old node (read in the grown graph, where it kept its type)."""
    types = torch.full((rows.numel(),), -1, dtype=torch.long)
    kept = rows >= 0
    types[kept] = new_node_type[rows[kept]]
    return types


__all__ = ["ID_ROWS", "RELATION_ROWS", "VIEW", "carry_over", "new_node_mask", "new_node_rows"]
