"""kgrec.train.step's two small helpers, shared by every training loop."""

import torch

from kgrec.train.step import descend, total_loss


def test_total_loss_adds_the_terms_in_order():
    terms = {"bpr": torch.tensor(1.5), "reg": torch.tensor(0.25), "kg": torch.tensor(-0.5)}
    assert float(total_loss(terms)) == 1.25


def test_descend_takes_one_step_on_fresh_gradients():
    w = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    optimizer = torch.optim.SGD([w], lr=0.1)
    w.grad = torch.tensor([100.0, 100.0])  # stale gradient from an earlier step: must not be added
    descend(optimizer, (w * w).sum())  # gradient 2w
    assert torch.allclose(w.detach(), torch.tensor([0.8, -1.6]))
