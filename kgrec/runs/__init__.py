"""Runs: train one (:mod:`~kgrec.runs.training`), or load a finished one (:mod:`~kgrec.runs.run`).

* :func:`train_run` / :func:`resume_run` -- a built graph and a configuration in, a run folder
  out (:mod:`~kgrec.runs.folder` describes the folder);
* :func:`load_run` -> :class:`Run` -- the one trained-run object that every command, the Python
  API (``kgrec.load_run``), the exports and the benchmarks use: evaluate, recommend, explain,
  similar items and bundles, cold items and users;
* :mod:`~kgrec.runs.added` -- items added after training, kept in the run folder;
* :mod:`~kgrec.runs.update` -- ``kgrec update``: a new run from a trained one and new
  interactions, users and items, without retraining.
"""

from kgrec.runs.folder import RUN_FORMAT_VERSION, read_run_meta
from kgrec.runs.run import Run, load_run
from kgrec.runs.training import prepare_model, resume_run, split_for, train_run

__all__ = ["RUN_FORMAT_VERSION", "Run", "load_run", "prepare_model", "read_run_meta", "resume_run", "split_for", "train_run"]
