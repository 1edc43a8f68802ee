"""kgrec's models on RecBole 1.2.1's own splits of ml-100k, next to RecBole's reported figures.

    # once: RecBole's splits (a separate venv; see experiments/results/recbole-split.md)
    /work/recbole-venv/bin/python experiments/recbole_split.py --out data/cache/recbole-split/ml-100k
    /work/recbole-venv/bin/python experiments/recbole_split.py --kg-linked --out data/cache/recbole-split/ml-100k-kg-linked
    # then, with kgrec's own venv
    .venv/bin/python experiments/recbole_side_by_side.py [--only CKE,KGIN] [--force]

Each row trains one kgrec run (seed 2024) with ``--split-dir`` on the split RecBole uses for
that kind of model: its general split (all 100,000 ratings, 8:1:1 per user, seed 2020) for
LightGCN and kgrec, and the split of its knowledge-aware models (the 2,446 ratings of the 84
films without a KG link dropped before splitting) for CKE, KGAT and KGIN. kgrec ranks all
1,682 films (RecBole's KG models rank the 1,598 linked ones), masks training and validation
items, and selects the epoch on validation NDCG@20, as everywhere in kgrec. The RecBole
figures are the ones measured for issue 14 on 2 CPU cores; they are quoted, not re-run here.

Runs go to ``runs/recbole-side-by-side/<row>/`` (git-ignored); a finished run with the same
configuration is reused unless ``--force``. The table is written to
``experiments/results/recbole-side-by-side.md``; a row that is neither trained now nor found in
``runs/`` keeps its line from the table already there, listed as an earlier run with its own
date and hardware. kgrec never imports RecBole.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

from kgrec.bench import load_suite
from kgrec.bench.report import hardware
from kgrec.bench.runner import finished_with
from kgrec.errors import KgrecError
from kgrec.experiment import load_experiment
from kgrec.runs import train_run

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
GENERAL = ROOT / "data/cache/recbole-split/ml-100k"
KG_LINKED = ROOT / "data/cache/recbole-split/ml-100k-kg-linked"

#: row -> (where its configuration comes from, split, RecBole 1.2.1's Recall@20, NDCG@20, s/epoch)
ROWS = {
    "LightGCN": ("ml-100k.toml#LightGCN", GENERAL, 0.3791, 0.3230, None),
    "kgrec": ("ml-100k.toml#kgrec", GENERAL, 0.3791, 0.3230, None),  # against RecBole's LightGCN
    "CKE": ("ml-100k-cke.toml", KG_LINKED, 0.3652, 0.3088, 5.9),
    "KGAT": ("ml-100k-kgat.toml", KG_LINKED, 0.3212, 0.2646, 11.5),
    "KGIN": ("ml-100k-kgin.toml", KG_LINKED, 0.3446, 0.2860, 6.6),
}


def config_for(source: str):
    if "#" in source:
        suite, name = source.split("#")
        return next(m.config for m in load_suite(HERE / suite).models if m.name == name)
    return load_experiment(HERE / source)


def run_row(name: str, force: bool, log) -> dict:
    source, split, *_ = ROWS[name]
    if not (split / "train.csv").is_file():
        raise KgrecError(f"{split} has no RecBole split; make it first (see this script's docstring)")
    config = config_for(source)
    config.train.seed = 2024
    run_dir = ROOT / "runs" / "recbole-side-by-side" / name.lower()
    if not force and finished_with(run_dir, config, log):  # the suites' rule: same configuration, same run
        log(f"{name}: finished run reused ({run_dir})")
        return json.loads((run_dir / "results.json").read_text())
    log(f"{name}: training on {split.name} ({source})")
    return train_run(ROOT / "graphs/ml-100k", config, run_dir, split_dir=split, progress=False, log=lambda *a: None, force=True)


def earlier_rows(path: Path) -> dict[str, str]:
    """The table rows already in ``path``, by row name, and its header notes (``"notes"``)."""
    if not path.is_file():
        return {}
    text = path.read_text()
    rows = {}
    for line in text.splitlines():
        cell = line.split("|")[1].strip() if line.startswith("| ") else ""
        name = cell.split(" (")[0]
        if name in ROWS:
            rows[name] = line
    rows["notes"] = "; ".join(
        line[2:] for line in text.splitlines() if line.startswith("- Hardware:") or line.startswith("- Written")
    )
    return rows


def table(results: dict, earlier: dict[str, str] | None = None) -> str:
    notes = (earlier or {}).get("notes", "")
    earlier = {k: v for k, v in (earlier or {}).items() if k != "notes" and k not in results}
    lines = [
        "# kgrec on RecBole 1.2.1's splits of ml-100k",
        "",
        "- Command: `.venv/bin/python experiments/recbole_side_by_side.py`; seed 2024, one run per row",
        f"- Hardware: {hardware(1)}; Python {platform.python_version()}",
        f"- Written {time.strftime('%Y-%m-%d %H:%M %Z')}",
        "- Splits: RecBole's general split for LightGCN and kgrec; its KG models' split (films with a KG link) for CKE, KGAT, KGIN",
        "- RecBole columns: the figures RecBole 1.2.1 reported on 2 CPU cores (quoted, not re-run)",
        *([f"- Rows from an earlier run of this script, kept as they were: {', '.join(earlier)} ({notes})"] if earlier else []),
        "",
        "| model | split | Recall@20 | NDCG@20 | RecBole Recall@20 | RecBole NDCG@20 | ratio R / N | best epoch | s/epoch | RecBole s/epoch |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name in ROWS:
        if name in earlier:
            lines.append(earlier[name])
            continue
        if name not in results:
            continue
        res = results[name]
        _, split, r_ref, n_ref, s_ref = ROWS[name]
        r, n = res["test"]["recall@20"], res["test"]["ndcg@20"]
        ratio = f"{r / r_ref:.3f} / {n / n_ref:.3f}" if r_ref else "-"
        label = f"{name} (RecBole columns: its LightGCN)" if name == "kgrec" else name
        lines.append(
            f"| {label} | {split.name} | {r:.4f} | {n:.4f} | {r_ref or '-'} | {n_ref or '-'} | {ratio} "
            f"| {res['best_epoch']} | {res['seconds_per_epoch']:.2f} | {s_ref or '-'} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", help=f"comma-separated rows (of {', '.join(ROWS)})")
    p.add_argument("--force", action="store_true", help="re-run finished runs")
    args = p.parse_args(argv)
    names = args.only.split(",") if args.only else list(ROWS)
    unknown = [n for n in names if n not in ROWS]
    if unknown:
        print(f"error: unknown rows {unknown} (known: {', '.join(ROWS)})", file=sys.stderr)
        return 2
    try:
        results = {}
        for name in ROWS:  # every finished row goes in the table; --only says which to train
            run_dir = ROOT / "runs" / "recbole-side-by-side" / name.lower()
            if name in names:
                results[name] = run_row(name, args.force, print)
                t = results[name]["test"]
                print(f"{name}: test recall@20 {t['recall@20']:.4f} ndcg@20 {t['ndcg@20']:.4f}")
            elif (run_dir / "results.json").is_file():
                results[name] = json.loads((run_dir / "results.json").read_text())
    except KgrecError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = HERE / "results" / "recbole-side-by-side.md"
    out.write_text(table(results, earlier_rows(out)))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
