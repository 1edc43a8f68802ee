"""Cold-start users: a few liked items, or a text profile."""

from __future__ import annotations

import numpy as np
import pytest

from kgrec.coldstart.users import items_for_text, main_behaviour, user_embedding
from kgrec.errors import KgrecError


@pytest.fixture
def state(tiny_trained):
    model, g = tiny_trained.model, tiny_trained.graph
    x0 = model.layer0(g)
    return model, g, x0, model.propagate(g, x0)


@pytest.mark.parametrize("method", ["fold-in", "mean"])
def test_a_comedy_lover_gets_comedies(tiny_trained, state, method):
    model, g, x0, z = state
    index = tiny_trained.kg.item_index
    comedies = [g.num_users + index[m] for m in ("m0", "m2", "m4")]  # even films are comedies
    is_comedy = {i: int(m[1:]) % 2 == 0 for m, i in index.items()}
    user = user_embedding(model, g, x0, z, comedies, behaviour="click", method=method)
    scores = z[g.num_users : g.num_users + g.num_items] @ user
    order = scores.argsort(descending=True).tolist()
    rest = [is_comedy[i] for i in order if g.num_users + i not in comedies]
    assert rest == sorted(rest, reverse=True)  # the other comedies (m6..m12) first, then the dramas


def test_bad_inputs(state):
    model, g, x0, z = state
    with pytest.raises(KgrecError, match="at least one liked item"):
        user_embedding(model, g, x0, z, [], behaviour="click")
    with pytest.raises(KgrecError, match="unknown cold-user method"):
        user_embedding(model, g, x0, z, [g.num_users], behaviour="click", method="magic")


def test_main_behaviour_is_the_most_common(tiny_trained):
    assert main_behaviour(tiny_trained.graph, tiny_trained.kg.behaviours) == "click"


def test_items_for_text_picks_the_closest_descriptions(encoder):
    texts = ["A comedy film.", "A drama film.", "Another comedy film.", "Space war."]
    feats = encoder.encode(texts)
    top, sims = items_for_text(encoder.encode(["comedy"])[0], feats, n=2)
    assert sorted(top.tolist()) == [0, 2] and np.all(np.diff(sims) <= 0)
