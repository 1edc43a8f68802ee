"""Write RecBole 1.2.1's own train/valid/test split of MovieLens-100K as CSV files for kgrec.

kgrec never imports RecBole: this script runs in a separate virtual environment that has
RecBole, and writes a folder that kgrec reads with ``kgrec train --split-dir DIR``
(``kgrec.eval.splits.read_split``: ``train.csv``, ``valid.csv``, ``test.csv``, columns
``user,item``, RecBole's raw tokens, which are ml-100k's own user and item ids, e.g. user
``196``, item ``242``, the ids of kgrec's ``graphs/ml-100k``).

The RecBole venv (outside the repository; torch first and pinned, so that pip takes the local
CPU build instead of pulling several GB; recbole without its dependencies, which include ray)::

    python3 -m venv /work/recbole-venv
    /work/recbole-venv/bin/pip install torch==2.13.0
    /work/recbole-venv/bin/pip install --no-deps recbole==1.2.1 colorlog==4.7.2 colorama==0.4.4 texttable==1.7.2
    /work/recbole-venv/bin/pip install numpy scipy pandas scikit-learn pyyaml tqdm tensorboard

(``tensorboard``: ``recbole.utils`` imports ``torch.utils.tensorboard`` at import time.)

Run it (from the repository root; the folder is under the git-ignored ``data/cache/``: the
data's licence forbids redistributing it)::

    /work/recbole-venv/bin/python experiments/recbole_split.py --out data/cache/recbole-split/ml-100k
    .venv/bin/kgrec train --graph graphs/ml-100k --config experiments/ml-100k-best.toml \\
        --run runs/ml-100k-recbole-split --split-dir data/cache/recbole-split/ml-100k

What it does, as RecBole's own ``run_recbole`` does up to the split (``recbole.quick_start`` is
not used: it imports ray): ``Config(model="BPR", dataset="ml-100k")``, ``init_seed(seed,
reproducibility)``, ``create_dataset``, ``data_preparation``; then it maps the internal ids of
each part's ``inter_feat`` back to raw tokens with ``dataset.id2token`` and writes the three
files, plus ``recbole_split.json`` (versions, settings, counts; kgrec ignores it). For a
general recommender the split does not depend on the model: every model of type GENERAL gets the
same ``Dataset`` class and the same configuration files below.

RecBole settings, all RecBole 1.2.1 defaults (nothing is set here but ``use_gpu: False``, a
throw-away ``checkpoint_dir`` so that no dataset or dataloaders saved by an earlier RecBole run
are loaded instead, and ``data_path``, which RecBole replaces for ml-100k anyway by the copy in
its wheel, ``recbole/dataset_example/ml-100k/``). Read from ``properties/overall.yaml``,
``properties/dataset/sample.yaml`` and ``properties/dataset/ml-100k.yaml``, in that order, and
checked by the script before it splits:

* ``eval_args``: ``order: RO`` (one random shuffle of all interactions, ``torch.randperm``
  after ``init_seed``), ``split: {'RS': [0.8, 0.1, 0.1]}``, ``group_by: user``; ``seed: 2020``.
  Per user, valid and test get ``int(0.1 * n)`` each, train the rest, and a part whose exact
  share is strictly between 0 and 1 gets one interaction from train (the rule of
  ``kgrec.eval.splits.recbole_split_counts``).
* ``load_col: {inter: [user_id, item_id, rating, timestamp]}``: only ``ml-100k.inter`` is
  loaded (not ``.user``, ``.item``, ``.kg``, ``.link``), so ``filter_inter_by_user_or_item:
  True`` has no feature table to filter by.
* No filtering: ``ml-100k.yaml`` sets ``user_inter_num_interval`` and
  ``item_inter_num_interval`` to null (``sample.yaml``'s ``[0,inf)`` is overridden),
  ``val_interval: null``, ``rm_dup_inter: null``, ``threshold: null``: all 100,000 ratings
  are kept, whatever their value, and all are positives.

``--kg-linked``: the split RecBole's knowledge-aware models (model type KNOWLEDGE: CKE, KGAT,
KGIN, KGCN, ...) train and test on, made the same way with ``model="KGAT"``
(``KnowledgeBasedDataset``, which also loads ``.kg`` and ``.link`` by
``properties/quick_start_config/knowledge_base.yaml``). Its ``_filter_link`` drops every
interaction whose item has no entity in ``ml-100k.link`` that occurs in ``ml-100k.kg``, before
the split; the same seed on fewer rows gives a different shuffle, so this split is not a subset
of the default one. The dropped interactions are written to ``withheld.csv``, which kgrec's
``read_split`` reads as pairs in no part and removes from the training graph, so they are not
message-passing edges; kgrec still ranks all of its items, RecBole only the linked ones.

Caveats: under numpy 2, RecBole 1.2.1 needs the aliases ``np.float_``, ``np.complex_`` and
``np.unicode_``, which this script sets before importing it. RecBole reads ``--key=value``
arguments from ``sys.argv`` into its configuration, so the script empties ``sys.argv`` before
``Config``. Under pandas 3 RecBole's in-place ``fillna`` on a column warns and does nothing;
ml-100k.inter has no missing values, so that changes nothing here (RecBole's warnings are
silenced). The shuffle comes from torch's CPU generator: another torch may in principle give
another permutation, so ``recbole_split.json`` records the versions.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import warnings
from pathlib import Path

SPLIT_FILES = ("train", "valid", "test")
WITHHELD = "withheld"
MANIFEST = "recbole_split.json"
RECBOLE_VERSION = "1.2.1"

#: The settings this script reproduces; it refuses to split if RecBole's configuration differs.
EXPECTED = {
    "seed": 2020,
    "eval_args.order": "RO",
    "eval_args.split": {"RS": [0.8, 0.1, 0.1]},
    "eval_args.group_by": "user",
    "user_inter_num_interval": None,
    "item_inter_num_interval": None,
    "val_interval": None,
    "rm_dup_inter": None,
    "threshold": None,
    "benchmark_filename": None,
}
RECORDED = ["load_col", "filter_inter_by_user_or_item", "reproducibility", "normalize_all", "MODEL_TYPE"]


class ScriptError(Exception):
    """A problem to report in one line, without a traceback."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="folder to write train.csv, valid.csv, test.csv into")
    parser.add_argument(
        "--force", action="store_true", help="write into a non-empty --out (replacing this script's files)"
    )
    parser.add_argument(
        "--kg-linked",
        action="store_true",
        help="the split of RecBole's KG models (interactions of items without a KG link dropped, "
        "written to withheld.csv)",
    )
    args = parser.parse_args(argv)
    try:
        out = check_out(Path(args.out), args.force)
        recbole = import_recbole()
        result = make_split(recbole, kg_linked=args.kg_linked)
        write(out, result)
    except ScriptError as error:
        print(f"recbole_split.py: error: {error}", file=sys.stderr)
        return 2
    counts = result["manifest"]["counts"]
    total = sum(counts[name] for name in SPLIT_FILES)
    print(f"RecBole {recbole.__version__} split of ml-100k ({result['manifest']['dataset_class']}), written to {out}:")
    for name in SPLIT_FILES:
        print(f"  {name + '.csv':<12} {counts[name]:>7,}  ({counts[name] / total:.1%})")
    print(f"  {'total':<12} {total:>7,}  ({result['manifest']['users']} users, {result['manifest']['items']} items)")
    if WITHHELD in counts:
        print(f"  {WITHHELD + '.csv':<12} {counts[WITHHELD]:>7,}  (dropped by RecBole: items without a KG link)")
    return 0


def check_out(out: Path, force: bool) -> Path:
    if out.exists() and not out.is_dir():
        raise ScriptError(f"--out {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise ScriptError(f"--out {out} exists and is not empty; pass --force to replace its split files")
    return out


def import_recbole():
    """RecBole 1.2.1, with the numpy 2 aliases it needs; a clear error if it is not installed."""
    try:
        import numpy as np

        # numpy 2 removed these; RecBole 1.2.1 uses the first two and its Config aliases the third.
        for name, value in (("float_", np.float64), ("complex_", np.complex128), ("unicode_", np.str_)):
            if not hasattr(np, name):
                setattr(np, name, value)
        import recbole
        import recbole.config  # noqa: F401
        import recbole.data  # noqa: F401
        import recbole.utils  # noqa: F401
    except ImportError as error:
        raise ScriptError(
            f"RecBole is not importable with {sys.executable} ({error}); run this script with the "
            f"python of a RecBole {RECBOLE_VERSION} venv (how to make one: the docstring of {Path(__file__).name})"
        ) from None
    if recbole.__version__ != RECBOLE_VERSION:
        raise ScriptError(
            f"this script reproduces RecBole {RECBOLE_VERSION}'s split; "
            f"{sys.executable} has RecBole {recbole.__version__}"
        )
    return recbole


def make_split(recbole, kg_linked: bool) -> dict:
    import numpy as np
    import pandas as pd
    import torch
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.utils import init_seed

    data_dir = Path(recbole.__file__).resolve().parent / "dataset_example" / "ml-100k"
    inter_file = data_dir / "ml-100k.inter"
    if not inter_file.is_file():
        raise ScriptError(f"RecBole's copy of ml-100k is missing: {inter_file}")
    model = "KGAT" if kg_linked else "BPR"
    sys.argv = sys.argv[:1]  # RecBole's Config reads --key=value arguments from the command line
    warnings.filterwarnings("ignore", module=r"recbole(\.|$)")
    with tempfile.TemporaryDirectory(prefix="recbole-split-") as scratch:
        config = Config(
            model=model,
            dataset="ml-100k",
            config_dict={"use_gpu": False, "checkpoint_dir": scratch, "data_path": str(data_dir.parent)},
        )
        settings = check_settings(config)
        if Path(config["data_path"]).resolve() != data_dir:
            raise ScriptError(f"RecBole reads ml-100k from {config['data_path']}, not from its wheel's {data_dir}")
        init_seed(config["seed"], config["reproducibility"])  # as run_recbole does, right after Config
        dataset = create_dataset(config)
        loaders = data_preparation(config, dataset)
    uid, iid = dataset.uid_field, dataset.iid_field
    parts = {}
    for name, loader in zip(SPLIT_FILES, loaders):
        feat = loader._dataset.inter_feat
        table = pd.DataFrame(
            {
                "user": dataset.id2token(uid, feat[uid].numpy()).astype(str),
                "item": dataset.id2token(iid, feat[iid].numpy()).astype(str),
            }
        )
        parts[name] = table.sort_values(["user", "item"], key=_natural).reset_index(drop=True)

    raw = pd.read_csv(inter_file, sep="\t", dtype=str, keep_default_na=False)
    raw = raw.rename(columns={"user_id:token": "user", "item_id:token": "item"})[["user", "item"]]
    check_parts(parts, raw, dataset.inter_num)
    if kg_linked:
        kept = pd.concat(parts.values(), ignore_index=True)
        dropped = raw.merge(kept, on=["user", "item"], how="left", indicator=True)
        dropped = dropped.loc[dropped["_merge"] == "left_only", ["user", "item"]]
        parts[WITHHELD] = dropped.sort_values(["user", "item"], key=_natural).reset_index(drop=True)
    elif dataset.inter_num != len(raw):
        raise ScriptError(f"RecBole kept {dataset.inter_num:,} of the {len(raw):,} ratings; expected all of them")

    split_parts = [parts[name] for name in SPLIT_FILES]
    manifest = {
        "made_by": "experiments/recbole_split.py",
        "dataset": "ml-100k",
        "model_for_dataset": model,
        "dataset_class": type(dataset).__name__,
        "settings": settings,
        "counts": {name: len(table) for name, table in parts.items()},
        "users": int(pd.concat(split_parts)["user"].nunique()),
        "items": int(pd.concat(split_parts)["item"].nunique()),
        "source": {
            "file": "recbole/dataset_example/ml-100k/ml-100k.inter",
            "rows": len(raw),
            "sha256": _sha256(inter_file),
        },
        "versions": {
            "python": sys.version.split()[0],
            "recbole": recbole.__version__,
            "torch": torch.__version__,
            "numpy": np.__version__,
            "pandas": pd.__version__,
        },
    }
    return {"parts": parts, "manifest": manifest}


def check_settings(config) -> dict:
    """The configuration values the split depends on; a ScriptError if one is not RecBole's default."""
    values = {}
    for key in list(EXPECTED) + RECORDED:
        head, _, tail = key.partition(".")
        value = config[head][tail] if tail else config[head]
        values[key] = value if isinstance(value, (str, int, float, bool, list, dict, type(None))) else str(value)
    wrong = {key: values[key] for key, expected in EXPECTED.items() if values[key] != expected}
    if wrong:
        raise ScriptError(f"RecBole's configuration is not the default this script reproduces: {wrong}")
    return values


def check_parts(parts: dict, raw, inter_num: int) -> None:
    import pandas as pd

    for name, table in parts.items():
        if table.duplicated().any():
            raise ScriptError(f"{name}: a (user, item) pair appears twice")
        if (table == "[PAD]").any().any():
            raise ScriptError(f"{name}: RecBole's padding id in the split")
    both = pd.concat([table.assign(part=name) for name, table in parts.items()], ignore_index=True)
    if both.duplicated(["user", "item"]).any():
        raise ScriptError("a (user, item) pair is in two parts")
    if len(both) != inter_num:
        raise ScriptError(f"the parts hold {len(both):,} pairs, RecBole's dataset {inter_num:,}")
    unknown = both.merge(raw, on=["user", "item"], how="left", indicator=True)["_merge"] == "left_only"
    if unknown.any():
        raise ScriptError(f"{int(unknown.sum())} pairs of the split are not in ml-100k.inter")


def write(out: Path, result: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    # A stale withheld.csv from an earlier --kg-linked run would be read by kgrec with the new split.
    (out / f"{WITHHELD}.csv").unlink(missing_ok=True)
    for name, table in result["parts"].items():
        _write_atomically(out / f"{name}.csv", table.to_csv(index=False, lineterminator="\n"))
    _write_atomically(out / MANIFEST, json.dumps(result["manifest"], indent=2) + "\n")


def _write_atomically(path: Path, text: str) -> None:
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(temp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        with os.fdopen(handle, "w", newline="", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _natural(column):
    """Sort ids as numbers when they all are (ml-100k's are), else as text."""
    return column.astype(int) if column.str.fullmatch(r"\d+").all() else column


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


if __name__ == "__main__":
    sys.exit(main())
