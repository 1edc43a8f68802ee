r"""Is a difference between two models larger than the test set's own noise?

Why: every row of a suite is scored on the same test users, and a 1-2% difference in NDCG@20
between two rows can come from *which* users and items happen to be in the test set rather than
from the models. The seeds' standard deviation shows training noise only: the test set is the
same for every seed. The standard answer in IR and recommender evaluation is a **paired test
over users** (Sakai, "Statistical Reform in Information Retrieval?", SIGIR Forum 2014; Smucker
et al., CIKM 2007): both models are scored on each user, and the per-user differences carry the
evaluation set's variance.

For two rows A (the reference) and B, with :math:`m_u` a user's metric averaged over the seeds
each row has:

.. math::
    d_u = m^B_u - m^A_u, \qquad \bar d = \frac1n \sum_u d_u, \qquad
    \mathrm{CI}_{95} = \bar d \pm 1.96\, \frac{s_d}{\sqrt n}, \qquad
    p = \operatorname{erfc}\!\left(\frac{|\bar d|}{s_d \sqrt{2/n}}\right)

the mean difference, its 95% confidence interval and the two-sided p-value of the paired t-test
in its normal approximation (suites have hundreds of test users or more; with fewer than
:data:`MIN_USERS` nothing is reported). Users scored by only one of the rows are left out.

Each run keeps its per-user test metrics in :data:`PER_USER_FILE` (user position and the
metrics of :data:`PER_USER_METRICS` that the run computed), written next to ``results.json``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from kgrec.io import atomic_path

#: Per-user test metrics of a run, next to its ``results.json``.
PER_USER_FILE = "test_per_user.csv"

#: The metrics a run keeps per user (those it computed): enough for the suites' headline
#: columns and selection metrics, small enough to keep with the results (about 30 kB for
#: a thousand users).
PER_USER_METRICS = ("recall@10", "ndcg@10", "recall@20", "ndcg@20")

#: Fewer paired users than this: no interval is reported (the normal approximation needs some).
MIN_USERS = 30

_Z95 = 1.959963984540054


def write_per_user(per_user: pd.DataFrame, run_dir: Path) -> Path:
    """Keep ``per_user`` (``full_ranking_metrics(..., return_per_user=True)``'s frame) in the run."""
    columns = ["user"] + [c for c in PER_USER_METRICS if c in per_user.columns]
    path = Path(run_dir) / PER_USER_FILE
    with atomic_path(path, ".csv") as tmp:
        per_user[columns].to_csv(tmp, index=False, float_format="%.6g")
    return path


def read_per_user(run_dirs: Sequence[Path], metric: str) -> pd.Series | None:
    """``metric`` per user, averaged over the runs (seeds) that have it; None when none has."""
    frames = []
    for run_dir in run_dirs:
        path = Path(run_dir) / PER_USER_FILE
        if path.is_file():
            frame = pd.read_csv(path)
            if metric in frame.columns:
                frames.append(frame.set_index("user")[metric])
    if not frames:
        return None
    return pd.concat(frames, axis=1).mean(axis=1)


def paired_difference(reference: pd.Series, other: pd.Series) -> dict | None:
    """``other - reference`` over the users both have: the mean, its 95% CI, the relative
    difference (over the reference's mean on those users) and the two-sided p-value.

    Returns None when fewer than :data:`MIN_USERS` users are shared.
    """
    both = pd.concat([reference.rename("a"), other.rename("b")], axis=1, join="inner").dropna()
    n = len(both)
    if n < MIN_USERS:
        return None
    d = both["b"] - both["a"]
    mean, sd = float(d.mean()), float(d.std(ddof=1))
    half = _Z95 * sd / math.sqrt(n)
    base = float(both["a"].mean())
    if sd > 0:
        p = math.erfc(abs(mean) / (sd * math.sqrt(2.0 / n)))
    else:
        p = 1.0 if mean == 0 else 0.0
    return {
        "users": n,
        "reference_mean": base,
        "difference": mean,
        "ci_low": mean - half,
        "ci_high": mean + half,
        "relative": mean / base if base else float("nan"),
        "p_value": p,
    }


__all__ = ["MIN_USERS", "PER_USER_FILE", "PER_USER_METRICS", "paired_difference", "read_per_user", "write_per_user"]
