"""The update's distillation terms: zero for a model that still says what its parent said."""

from __future__ import annotations

import torch

from kgrec.models.base import Embeddings
from kgrec.models.graph_tensors import GraphTensors
from kgrec.train.update import Teacher, distillation_terms, neighbour_mean


def _graph() -> GraphTensors:
    # users 0, 1; items 2, 3, 4; entity 5. Clicks 0-2, 0-3, 1-3 (both ways) and a genre edge 2-5.
    src = torch.tensor([0, 2, 0, 3, 1, 3, 2, 5])
    dst = torch.tensor([2, 0, 3, 0, 3, 1, 5, 2])
    return GraphTensors(2, 3, 6, torch.stack([src, dst]), torch.zeros(8, dtype=torch.long), ["click"], torch.tensor([0, 0, 1, 1, 1, 2]))


def test_neighbour_mean_is_the_mean_over_user_item_neighbours_only():
    z = torch.arange(12.0).reshape(6, 2)
    mean = neighbour_mean(z, _graph())
    torch.testing.assert_close(mean[0], (z[2] + z[3]) / 2)
    torch.testing.assert_close(mean[2], z[0])  # the genre edge is not a user-item edge
    torch.testing.assert_close(mean[4], torch.zeros(2))  # no neighbour


def test_a_model_that_agrees_with_its_parent_pays_nothing_and_one_that_moved_pays():
    g = _graph()
    z = torch.randn(6, 4)
    rows = torch.tensor([0, 1, 2, 3, 4, 5])
    teacher = Teacher.from_parent(z, g, rows)
    assert teacher.nodes.tolist() == [0, 1, 2, 3, 4]  # users and items, not the entity
    emb = Embeddings(z.clone(), z.clone(), 2, 3)
    terms = distillation_terms(emb, g, teacher, 1.0, 1.0)
    assert float(terms["distill"]) == 0.0 and float(terms["structure"]) < 1e-10
    moved = Embeddings(z + 0.5, z, 2, 3)
    terms = distillation_terms(moved, g, teacher, 2.0, 0.0)
    assert set(terms) == {"distill"} and abs(float(terms["distill"]) - 2.0 * 4 * 0.25) < 1e-5


def test_the_teacher_follows_nodes_to_their_grown_indices():
    g = _graph()
    z = torch.randn(6, 4)
    rows = torch.tensor([0, 1, 3, 4, 5, 7])  # a new user took index 2
    teacher = Teacher.from_parent(z, g, rows)
    assert teacher.nodes.tolist() == [0, 1, 3, 4, 5]
    torch.testing.assert_close(teacher.final, z[:5])
