"""kgrec's models on RecBole 1.2.1's own splits of ml-100k, next to RecBole's reported figures.

    # once: RecBole's splits (a separate venv; see experiments/results/recbole-split.md)
    /work/recbole-venv/bin/python experiments/recbole_split.py --out data/cache/recbole-split/ml-100k
    /work/recbole-venv/bin/python experiments/recbole_split.py --kg-linked --out data/cache/recbole-split/ml-100k-kg-linked
    # then, with kgrec's own venv
    .venv/bin/python experiments/recbole_side_by_side.py [--only CKE,KGIN] [--seeds 2024,2025,2026] [--force]

Each row trains one kgrec run per seed (default: seed 2024 alone) with ``--split-dir`` on the split RecBole uses for
that kind of model: its general split (all 100,000 ratings, 8:1:1 per user, seed 2020) for
LightGCN and kgrec, and the split of its knowledge-aware models (the 2,446 ratings of the 84
films without a KG link dropped before splitting) for CKE, KGAT and KGIN. kgrec ranks all
1,682 films (RecBole's KG models rank the 1,598 linked ones), masks training and validation
items, and selects the epoch on validation NDCG@20, as everywhere in kgrec. The RecBole
figures are the ones measured for issue 14 on 2 CPU cores; they are quoted, not re-run here.

Runs go to ``runs/recbole-side-by-side/<row>/`` (seed 2024) and ``<row>-s<seed>/`` (git-ignored);
with several seeds a row shows their mean +- sd and the ratio of the means. A finished run with the same
configuration is reused unless ``--force``. The table is written to
``experiments/results/recbole-side-by-side.md``; a row that is neither trained now nor found in
``runs/`` keeps its line from the table already there, listed as an earlier run with its own
date and hardware. kgrec never imports RecBole.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
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


def run_dir_of(name: str, seed: int) -> Path:
    return ROOT / "runs" / "recbole-side-by-side" / (name.lower() if seed == 2024 else f"{name.lower()}-s{seed}")


def run_row(name: str, seed: int, force: bool, log) -> dict:
    source, split, *_ = ROWS[name]
    if not (split / "train.csv").is_file():
        raise KgrecError(f"{split} has no RecBole split; make it first (see this script's docstring)")
    config = config_for(source)
    config.train.seed = seed
    run_dir = run_dir_of(name, seed)
    if not force and finished_with(run_dir, config, log):  # the suites' rule: same configuration, same run
        log(f"{name}: finished run reused ({run_dir})")
        return json.loads((run_dir / "results.json").read_text())
    log(f"{name}: training on {split.name} ({source}), seed {seed}")
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
    lines = text.rstrip("\n").splitlines()
    last_row = max((i for i, line in enumerate(lines) if line.startswith("|")), default=len(lines) - 1)
    rows["after"] = "\n".join(lines[last_row + 1 :]).strip("\n")  # paragraphs below the table are kept
    return rows


def mean_sd(values: list[float]) -> str:
    return f"{statistics.mean(values):.4f}" + (f" +- {statistics.stdev(values):.4f}" if len(values) > 1 else "")


def table(results: dict[str, list[dict]], seeds: list[int], earlier: dict[str, str] | None = None) -> str:
    """``results``: each row's runs, one per seed of ``seeds``."""
    notes, after = (earlier or {}).get("notes", ""), (earlier or {}).get("after", "")
    earlier = {k: v for k, v in (earlier or {}).items() if k not in ("notes", "after") and k not in results}
    flags = f" --seeds {','.join(map(str, seeds))}" if seeds != [2024] else ""
    lines = [
        "# kgrec on RecBole 1.2.1's splits of ml-100k",
        "",
        f"- Command: `.venv/bin/python experiments/recbole_side_by_side.py{flags}`; seeds {', '.join(map(str, seeds))}, "
        + ("one run per row" if len(seeds) == 1 else "mean +- sd over them, ratios of the means"),
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
        runs = results[name]
        _, split, r_ref, n_ref, s_ref = ROWS[name]
        r = [res["test"]["recall@20"] for res in runs]
        n = [res["test"]["ndcg@20"] for res in runs]
        ratio = f"{statistics.mean(r) / r_ref:.3f} / {statistics.mean(n) / n_ref:.3f}" if r_ref else "-"
        label = f"{name} (RecBole columns: its LightGCN)" if name == "kgrec" else name
        epochs = ", ".join(str(res["best_epoch"]) for res in runs)
        speed = statistics.mean(res["seconds_per_epoch"] for res in runs)
        lines.append(
            f"| {label} | {split.name} | {mean_sd(r)} | {mean_sd(n)} | {r_ref or '-'} | {n_ref or '-'} | {ratio} "
            f"| {epochs} | {speed:.2f} | {s_ref or '-'} |"
        )
    return "\n".join(lines + (["", after] if after else [])) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", help=f"comma-separated rows (of {', '.join(ROWS)})")
    p.add_argument("--seeds", default="2024", help="comma-separated training seeds (default: 2024)")
    p.add_argument("--force", action="store_true", help="re-run finished runs")
    args = p.parse_args(argv)
    try:
        seeds = [int(s) for s in args.seeds.split(",")]
    except ValueError:
        print(f"error: --seeds {args.seeds!r} is not a comma-separated list of integers", file=sys.stderr)
        return 2
    names = args.only.split(",") if args.only else list(ROWS)
    unknown = [n for n in names if n not in ROWS]
    if unknown:
        print(f"error: unknown rows {unknown} (known: {', '.join(ROWS)})", file=sys.stderr)
        return 2
    try:
        results = {}
        for name in ROWS:  # every row finished for every seed goes in the table; --only says which to train
            if name in names:
                results[name] = []
                for seed in seeds:
                    results[name].append(run_row(name, seed, args.force, print))
                    t = results[name][-1]["test"]
                    print(f"{name}, seed {seed}: test recall@20 {t['recall@20']:.4f} ndcg@20 {t['ndcg@20']:.4f}")
            elif all((run_dir_of(name, seed) / "results.json").is_file() for seed in seeds):
                results[name] = [json.loads((run_dir_of(name, seed) / "results.json").read_text()) for seed in seeds]
    except KgrecError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = HERE / "results" / "recbole-side-by-side.md"
    out.write_text(table(results, seeds, earlier_rows(out)))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
