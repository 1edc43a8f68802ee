"""Turn a suite's run folders into tables (Markdown, CSV) and plots.

Every number in the table is the mean and the standard deviation over seeds of a run's
``results.json`` test metrics, for the weights selected on validation.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import pandas as pd
import torch

from kgrec.bench.suite import run_folder
from kgrec.eval.paired import paired_difference, read_per_user
from kgrec.io import atomic_path, write_text
from kgrec.version import __version__

METRICS = ["recall", "ndcg", "hit", "precision", "mrr"]
KS = [10, 20, 50]


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware(jobs: int = 1) -> str:
    if jobs > 1:
        threads = f"{jobs} runs at a time, {max(1, (os.cpu_count() or 1) // jobs)} torch thread(s) each"
    else:
        threads = f"{torch.get_num_threads()} threads"
    return f"{cpu_name()}, {os.cpu_count()} cores visible, torch {torch.__version__} ({threads})"


#: (column, heading) of the breakdown table: beyond accuracy, then NDCG@20 by group.
DETAIL_COLUMNS = [
    ("auc", "AUC"),
    ("coverage@20", "cov@20"),
    ("long_tail_share@20", "tail share@20"),
    ("novelty@20", "novelty@20"),
    ("ild@20", "ILD@20"),
    ("ndcg@20 history 1-5", "NDCG@20 hist 1-5"),
    ("ndcg@20 history 6-20", "hist 6-20"),
    ("ndcg@20 history 21+", "hist 21+"),
    ("ndcg@20 head", "head items"),
    ("ndcg@20 tail", "tail items"),
]


#: What a scenes suite's table shows per scene.
SCENE_METRICS = ("recall@20", "ndcg@20")


def _scene_table(table: pd.DataFrame) -> list[str]:
    """Per-scene test NDCG@20 and Recall@20 (mean ± sd), when the suite's runs have scenes."""
    scenes = sorted({c.split(" ")[1] for c in table.columns if c.startswith("scene ") and c.endswith("ndcg@20_mean")})
    if not scenes:
        return []
    lines = [
        "Per scene (each held-out pair ranked in its own scene over that scene's catalogue; "
        "kgrec.train.scenes), test NDCG@20 / Recall@20:",
        "",
        "| model | " + " | ".join(scenes) + " |",
        "|---|" + "|".join("---:" for _ in scenes) + "|",
    ]
    for _, r in table.iterrows():
        cells = []
        for s in scenes:
            n, rc = f"scene {s} ndcg@20", f"scene {s} recall@20"
            if pd.isna(r.get(n + "_mean")):
                cells.append("-")
                continue
            sd = "" if r["seeds"] == 1 else f" ± {r[n + '_std']:.4f}"
            cells.append(f"{r[n + '_mean']:.4f}{sd} / {r[rc + '_mean']:.4f}")
        lines.append(f"| {r['model']} | " + " | ".join(cells) + " |")
    return lines + [""]


def _detail_columns(details: dict | None) -> dict:
    """The breakdown of one run's ``test_details`` as flat columns (NaN where absent)."""
    if not details:
        return {}
    row = {k: v for k, v in details["beyond"].items() if k in dict(DETAIL_COLUMNS)}
    for name, group in details["by_history"].items():
        row[f"ndcg@20 history {name}"] = group.get("ndcg@20") if group.get("num_users") else float("nan")
    for name, group in details["by_popularity"].items():
        row[f"ndcg@20 {name}"] = group.get("ndcg@20") if group.get("num_users") else float("nan")
    return row


def collect(suite, out: Path, models=None) -> pd.DataFrame:
    rows = []
    for dataset in suite.datasets:
        for model in models or suite.models:
            for seed in suite.seeds_for(model):
                path = run_folder(out, dataset.name, model.name, seed) / "results.json"
                if not path.is_file():
                    continue
                res = json.loads(path.read_text())
                row = {"dataset": dataset.name, "model": model.name, "seed": seed}
                row.update({f"{m}@{k}": res["test"][f"{m}@{k}"] for m in METRICS for k in KS})
                row["valid_ndcg@20"] = res["valid"].get("ndcg@20")
                row["best_epoch"] = res["best_epoch"]
                row["epochs_run"] = res["epochs_run"]
                row["seconds_per_epoch"] = res["seconds_per_epoch"]
                row["total_seconds"] = res["train_seconds"]
                row["device"] = res.get("device_name", res.get("device"))
                row.update(_detail_columns(res.get("test_details")))
                for scene, metrics in (res.get("test_scenes") or {}).items():  # a scenes run (kgrec.train.scenes)
                    row.update({f"scene {scene} {m}": metrics[m] for m in SCENE_METRICS})
                rows.append(row)
    return pd.DataFrame(rows)


def summarise(runs: pd.DataFrame) -> pd.DataFrame:
    numeric = [c for c in runs.columns if c not in ("dataset", "model", "seed", "device")]
    grouped = runs.groupby(["dataset", "model"], sort=False)
    mean = grouped[numeric].mean().add_suffix("_mean")
    std = grouped[numeric].std(ddof=1).fillna(0.0).add_suffix("_std")
    out = pd.concat([mean, std], axis=1)
    out["seeds"] = grouped.size()
    out["device"] = grouped["device"].first()
    return out.reset_index()


def _metric_label(metric: str) -> str:
    """``ndcg@10`` -> ``NDCG@10``, ``recall@20`` -> ``Recall@20``: how the tables name them."""
    name, _, k = metric.partition("@")
    return f"{name.upper() if name in ('ndcg', 'mrr', 'auc') else name.capitalize()}@{k}"


def paired_rows(suite, out: Path, dataset: str, metric: str) -> list[tuple[str, dict]]:
    """Each row against ``suite.reference`` on ``metric``, user by user (:mod:`kgrec.eval.paired`):
    ``(row name, paired_difference)`` for the rows whose runs kept per-user metrics. Only the
    seeds both rows have count, so each pair of runs shares its split and its test users."""
    if suite.reference is None:
        return []
    by_name = {m.name: m for m in suite.models}
    reference_seeds = suite.seeds_for(by_name[suite.reference])
    reference_by_seeds: dict[tuple, pd.Series | None] = {}  # the reference is read once per set of seeds, not once per row

    def values(name, seeds):
        return read_per_user([run_folder(out, dataset, name, seed) for seed in seeds], metric)

    rows = []
    for model in suite.models:
        if model.name == suite.reference:
            continue
        seeds = tuple(s for s in suite.seeds_for(model) if s in reference_seeds)
        if seeds not in reference_by_seeds:
            reference_by_seeds[seeds] = values(suite.reference, seeds)
        reference, other = reference_by_seeds[seeds], values(model.name, seeds)
        result = paired_difference(reference, other) if reference is not None and other is not None else None
        if result is not None:
            rows.append((model.name, result))
    return rows


def _paired_markdown(rows: list[tuple[str, dict]], reference: str, metric: str, split: str) -> list[str]:
    label = _metric_label(metric)
    noise = (
        "The seeds' sd above is training noise only (every seed has the same test set); this is the test set's."
        if split == "fixed"
        else "Each seed has its own split here; a user's value is averaged over the splits that hold them in test."
    )
    lines = [
        f"Against `{reference}`, user by user (kgrec.eval.paired): the mean over test users of (row − {reference}) "
        f"in {label}, each user's value averaged over the seeds both rows have; 95% interval and two-sided p of the "
        f"paired t-test (normal approximation). {noise} "
        "An interval that holds 0 is a difference this test set cannot tell from none.",
        "",
        f"| model | {reference} {label} | row − {reference} | relative | 95% interval | p | users |",
        "|---|---:|---:|---:|---|---:|---:|",
    ]
    for name, r in rows:
        lines.append(
            f"| {name} | {r['reference_mean']:.4f} | {r['difference']:+.4f} | {100 * r['relative']:+.1f}% "
            f"| [{r['ci_low']:+.4f}, {r['ci_high']:+.4f}] | {r['p_value']:.3g} | {r['users']} |"
        )
    return lines + [""]


def markdown(summary: pd.DataFrame, suite, jobs: int = 1, wall_seconds: float | None = None, out: Path | None = None) -> str:
    cols = [f"{m}@{k}" for k in KS for m in METRICS]
    selection = " / ".join(_metric_label(m) for m in sorted({model.config.eval.metric for model in suite.models}))
    lines = [
        f"# Benchmark suite `{suite.name}`",
        "",
        f"Test metrics (full ranking, train and validation items masked; weights selected on validation "
        f"{selection}), "
        f"mean ± standard deviation over seeds {suite.seeds}"
        + (" (each seed with its own split: the sd holds the split's noise too)." if suite.split == "per-seed" else "."),
        "",
        f"- Hardware: {hardware(jobs)}",
        f"- kgrec {__version__}; written {time.strftime('%Y-%m-%d %H:%M %Z')}",
        f"- Command: `kgrec bench {os.path.relpath(suite.path)}{f' --jobs {jobs}' if jobs > 1 else ''}`",
    ]
    if wall_seconds is not None:
        lines.append(f"- Wall time of the command that wrote this (finished runs are skipped): {wall_seconds / 60:.1f} min")
    lines.append("")
    for dataset, table in summary.groupby("dataset", sort=False):
        lines += [f"## {dataset}", "", "Headline (the full table follows):", ""]
        lines += ["| model | Recall@20 | NDCG@20 | seeds | best epoch | s/epoch | total s |", "|---|---:|---:|---:|---:|---:|---:|"]
        for _, r in table.iterrows():
            sd = lambda c: "(1 seed)" if r["seeds"] == 1 else f"± {r[c + '_std']:.4f}"  # noqa: E731
            lines.append(
                f"| {r['model']} | {r['recall@20_mean']:.4f} {sd('recall@20')} "
                f"| {r['ndcg@20_mean']:.4f} {sd('ndcg@20')} | {r['seeds']} | {r['best_epoch_mean']:.0f} "
                f"| {r['seconds_per_epoch_mean']:.2f} | {r['total_seconds_mean']:.0f} |"
            )
        total = table["total_seconds_mean"].mul(table["seeds"]).sum()
        lines += ["", f"Training time summed over every run: {total / 60:.1f} min.", ""]
        head = ["model"] + cols + ["best epoch", "s/epoch", "total s", "device"]
        lines.append("| " + " | ".join(head) + " |")
        lines.append("|" + "|".join(["---"] + ["---:"] * (len(head) - 2) + ["---"]) + "|")
        for _, r in table.iterrows():
            cells = [r["model"]]
            cells += [f"{r[c + '_mean']:.4f} ± {r[c + '_std']:.4f}" for c in cols]
            cells += [f"{r['best_epoch_mean']:.0f}", f"{r['seconds_per_epoch_mean']:.2f}", f"{r['total_seconds_mean']:.0f}", str(r["device"])]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
        lines += _scene_table(table)
        present = [(c, h) for c, h in DETAIL_COLUMNS if f"{c}_mean" in table.columns]
        if present:
            lines += [
                "Beyond accuracy and by group (kgrec.eval.beyond): AUC over all unobserved items, catalogue "
                "coverage, share of the top 20 outside the 20% most popular items, novelty (mean self-information), "
                "ILD by KG entities; then NDCG@20 for users with 1-5 / 6-20 / 21+ training items and for held-out "
                "head / long-tail items:",
                "",
                "| model | " + " | ".join(h for _, h in present) + " |",
                "|---|" + "|".join("---:" for _ in present) + "|",
            ]
            for _, r in table.iterrows():
                cells = [f"{r[c + '_mean']:.4f}" if pd.notna(r[c + "_mean"]) else "-" for c, _ in present]
                lines.append(f"| {r['model']} | " + " | ".join(cells) + " |")
            lines.append("")
        if out is not None and suite.reference is not None:
            metrics = sorted({model.config.eval.metric for model in suite.models})
            for metric in metrics:
                rows = paired_rows(suite, out, dataset, metric)
                if rows:
                    lines += _paired_markdown(rows, suite.reference, metric, suite.split)
    return "\n".join(lines) + "\n"


def plots(runs: pd.DataFrame, summary: pd.DataFrame, suite, out: Path, models) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    for dataset, table in summary.groupby("dataset", sort=False):
        fig, axes = plt.subplots(1, 2, figsize=(12, 0.45 * len(table) + 2))
        for ax, metric in zip(axes, ["recall@20", "ndcg@20"]):
            ax.barh(table["model"], table[f"{metric}_mean"], xerr=table[f"{metric}_std"], capsize=3, color="#4c72b0")
            ax.invert_yaxis()
            ax.set_xlabel(f"test {metric}")
        fig.suptitle(f"{suite.name}: {dataset} (mean ± sd over up to {len(suite.seeds)} seeds; see results.md)")
        fig.tight_layout()
        path = out / f"{dataset}-metrics.png"
        with atomic_path(path, ".png") as tmp:
            fig.savefig(tmp, format="png", dpi=110)
        plt.close(fig)
        written.append(path)

        fig, ax = plt.subplots(figsize=(12, 5.5))
        colours = plt.get_cmap("tab20").colors  # 20 distinct colours: no two rows of a suite alike
        starred = False
        for index, model in enumerate(models):
            colour = colours[(2 * index) % 20 + (2 * index) // 20 % 2]  # the dark shades first
            curves, finals = [], []
            for seed in suite.seeds_for(model):
                run = run_folder(out, dataset, model.name, seed)
                p = run / "metrics.jsonl"
                if p.is_file() and p.stat().st_size:
                    df = pd.read_json(p, lines=True)
                    curves.append(df.set_index("epoch")["valid_ndcg@20"])
                if (run / "results.json").is_file():
                    res = json.loads((run / "results.json").read_text())
                    finals.append((res["best_epoch"], res["valid"].get("ndcg@20", float("nan")), "item_item" in res))
            if curves:
                mean = pd.concat(curves, axis=1).mean(axis=1)
                ax.plot(mean.index, mean.values, label=model.name, color=colour)
                if finals and all(blended for _, _, blended in finals):  # the item-item blend, after training
                    ax.scatter([sum(e for e, _, _ in finals) / len(finals)], [sum(v for _, v, _ in finals) / len(finals)],
                               marker="*", s=90, color=colour, zorder=3)
                    starred = True
            elif finals:  # training-free: one validation value, drawn across
                ax.axhline(sum(v for _, v, _ in finals) / len(finals), linestyle="--", linewidth=1, color=colour,
                           label=f"{model.name} (no training)")
        if starred:  # one legend entry for every star
            ax.scatter([], [], marker="*", s=90, color="black", label="after the item-item blend (chosen on validation)")
        ax.set_xlabel("epoch")
        ax.set_ylabel("validation NDCG@20 (mean over seeds)")
        ax.set_title(f"{suite.name}: {dataset}")
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        fig.tight_layout()
        path = out / f"{dataset}-validation-ndcg.png"
        with atomic_path(path, ".png") as tmp:
            fig.savefig(tmp, format="png", dpi=110)
        plt.close(fig)
        written.append(path)
    return written


def write_report(suite, out: Path, models=None, jobs: int = 1, wall_seconds: float | None = None) -> None:
    runs = collect(suite, out, models)
    if runs.empty:
        return
    summary = summarise(runs)
    with atomic_path(out / "runs.csv", ".csv") as tmp:
        runs.to_csv(tmp, index=False)
    with atomic_path(out / "summary.csv", ".csv") as tmp:
        summary.to_csv(tmp, index=False)
    write_text(out / "results.md", markdown(summary, suite, jobs, wall_seconds, out))
    plots(runs, summary, suite, out, models or suite.models)
