"""Choose the ``[update]`` defaults on the validation window of the streaming protocol.

The window is the log up to 70% only (nothing after it is read): the base run trains on the
first 50%, then two chunks of 10% (50-60%, 60-70%) are evaluated and added, exactly as
``kgrec bench incremental`` does with ``--base 0.5 --chunks 2``. The stale and incremental arms
run with the ``[update]`` settings of :data:`START`; every variant then reruns the incremental
arm alone from the same base run, one setting changed. The retrained reference is the run of
``default/runs/retrain-1`` where one was trained (``kgrec bench incremental --base 0.5 --chunks
2`` with all arms). A variant is judged by the incremental arm's NDCG@20 on chunk 2 (the chunk
where the arms differ: at chunk 1 every arm is the base run), then on chunk 1 after the last
update (forgetting); its updates' own validation NDCG@20 and seconds are shown beside.

    .venv/bin/python experiments/incremental_select.py --graph graphs/ml-100k \\
        --config experiments/ml-100k-incremental.toml --work runs/incremental-select \\
        --out experiments/results/ml-100k-incremental/selection.md
"""

from __future__ import annotations

import argparse
import copy
import json
import shutil
from pathlib import Path

from kgrec.bench.incremental import run_incremental
from kgrec.experiment import check_experiment, load_experiment

#: Where the selection started: every variant changes these [update] settings in one place.
START = {"epochs": 3, "batch_size": 2048, "lr": 1e-3, "replay_ratio": 1.0, "distill_weight": 1.0, "structure_weight": 0.0, "user_init": "items"}
#: [update] settings tried, each against START. Chosen: "distillation x10" (the best NDCG@20 on
#: chunk 2, and within 0.004 of the best on chunk 1 after both updates), now kgrec's default.
VARIANTS = {
    "no fine-tuning (grow, refit EASE)": {"epochs": 0},
    "no distillation": {"distill_weight": 0.0},
    "distillation x10": {"distill_weight": 10.0},
    "+ local structure (GraphSAIL)": {"structure_weight": 1.0},
    "no replay": {"replay_ratio": 0.0},
    "lr 5e-3": {"lr": 5e-3},
    "1 pass": {"epochs": 1},
    "6 passes": {"epochs": 6},
    "new users start at zero": {"user_init": "zero"},
}
WINDOW = {"base": 0.5, "chunk": 0.1, "chunks": 2}


def _row(name: str, settings: dict, results: dict, folder: Path) -> dict:
    c2 = results["chunks"][1]["arms"]["incremental"]
    forget = results["forgetting"]["arms"]["incremental"]
    seconds = [c["arms"]["incremental"]["seconds"] for c in results["chunks"]]
    # the updates' own validation sets (old and new pairs, random per user), after the blend
    valid = [json.loads((folder / "runs" / f"incremental-{k}" / "results.json").read_text())["valid"]["ndcg@20"] for k in (1, 2)]
    return {"variant": name, "settings": settings, "ndcg@20 chunk 2": c2["ndcg@20"], "recall@20 chunk 2": c2["recall@20"],
            "ndcg@20 past users": c2["past users"]["ndcg@20"], "ndcg@20 recent users": c2["recent users"]["ndcg@20"],
            "ndcg@20 chunk 1 after (forgetting)": forget["ndcg@20"], "valid ndcg@20 of the updates": valid,
            "seconds per update": sum(seconds) / len(seconds)}  # fmt: skip


def _retrain_reference(graph: Path, default: Path) -> dict | None:
    """The retrained arm on chunk 2 (the run trained from scratch on the past and chunk 1)."""
    import numpy as np

    from kgrec.bench.incremental import _load_arms, cut_stream, evaluate_arms
    from kgrec.graph.store import load_graph

    if not (default / "runs" / "retrain-1" / "results.json").is_file():
        return None
    full = load_graph(graph)
    stream = cut_stream(full, **WINDOW)
    runs = _load_arms({"retrain": default / "runs" / "retrain-1"})
    results, _ = evaluate_arms(runs, full, stream.chunks[1], np.concatenate([stream.base, stream.chunks[0]]), stream.chunks[0])
    return results["retrain"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--graph", required=True)
    parser.add_argument("--config", required=True)
    parser.add_argument("--work", required=True, help="work folder (one protocol folder per variant)")
    parser.add_argument("--out", required=True, help="the selection table (Markdown; a .json beside it)")
    parser.add_argument("--only", help="comma-separated variant names to (re)run")
    parser.add_argument("--variants-only", action="store_true", help="run the variants only (the default's base run must be there)")
    args = parser.parse_args()
    config = load_experiment(Path(args.config))
    for key, value in START.items():
        setattr(config.update, key, value)
    work = Path(args.work)
    default = work / "default"
    reference = None
    if not args.variants_only:  # the retrained arm is read from the default's folder where it ran (retrain-1)
        reference = run_incremental(Path(args.graph), config, default, arms=("stale", "incremental"), resume=default.exists(), **WINDOW)
    rows = [] if reference is None else [_row("start: " + ", ".join(f"{k} {v}" for k, v in START.items() if k != "batch_size"), {}, reference, default)]
    only = set(args.only.split(",")) if args.only else None
    for name, overrides in VARIANTS.items():
        if only is not None and name not in only:
            continue
        variant = copy.deepcopy(config)
        for key, value in overrides.items():
            setattr(variant.update, key, value)
        check_experiment(variant)
        folder = work / name.replace(" ", "-").replace("(", "").replace(")", "").replace(",", "").replace("+", "plus")
        if not folder.exists():  # the same past and base run as the default's
            (folder / "runs").mkdir(parents=True)
            shutil.copytree(default / "graphs" / "graph-0", folder / "graphs" / "graph-0")
            shutil.copytree(default / "runs" / "base", folder / "runs" / "base")
            shutil.copy2(default / "incremental.json", folder / "incremental.json")
            timings = json.loads((default / "timings.json").read_text())
            (folder / "timings.json").write_text(json.dumps({"base": timings["base"]}))
        results = run_incremental(Path(args.graph), variant, folder, arms=("stale", "incremental"), resume=True, **WINDOW)
        rows.append(_row(name, overrides, results, folder))
        print(rows[-1])
    if reference is None:
        return
    stale = reference["chunks"][1]["arms"]["stale"]
    retrain = _retrain_reference(Path(args.graph), default)
    timings = json.loads((default / "timings.json").read_text())
    info = reference["chunks"][1]
    lines = [
        "# Choosing the [update] defaults on the validation window",
        "",
        f"`{args.config}` on `{args.graph}`: base run on the first 50% of the log (by time), chunks 50-60% and 60-70%; "
        "nothing after 70% is read. Chunk 2 scores "
        f"{info['pairs_scored']:,} pairs of users and items seen before it ({info['new_users']} users first seen in it, with "
        f"{info['new_users_pairs']:,} of its {info['interactions']:,} interactions, are no arm's to score). Per variant: the "
        "incremental arm's NDCG@20 on chunk 2 (after one update; past users: those of the first 50%, recent users: first "
        "seen in chunk 1), on chunk 1 after both updates (forgetting, everything but chunk 1 masked), the updates' own "
        "validation NDCG@20 (their random validation pairs, old and new, after the blend) and the seconds an update took "
        "(2 CPU cores shared with other jobs: the seconds are noisy). Reference on chunk 2: stale "
        f"{stale['ndcg@20']:.4f} (past users {stale['past users']['ndcg@20']:.4f}, recent users {stale['recent users']['ndcg@20']:.4f})"
        + (f", retrained {retrain['ndcg@20']:.4f} (past users {retrain['past users']['ndcg@20']:.4f}, recent users "
           f"{retrain['recent users']['ndcg@20']:.4f}; {timings['retrain-1']:.0f} s)" if retrain else "") + ".",
        "",
        "| variant | NDCG@20 chunk 2 | past users | recent users | Recall@20 chunk 2 | NDCG@20 chunk 1 after (forgetting) | valid NDCG@20 (update 1, 2) | s per update |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]  # fmt: skip
    for r in rows:
        lines.append(
            f"| {r['variant']} | {r['ndcg@20 chunk 2']:.4f} | {r['ndcg@20 past users']:.4f} | {r['ndcg@20 recent users']:.4f} | "
            f"{r['recall@20 chunk 2']:.4f} | {r['ndcg@20 chunk 1 after (forgetting)']:.4f} | "
            f"{r['valid ndcg@20 of the updates'][0]:.4f}, {r['valid ndcg@20 of the updates'][1]:.4f} | {r['seconds per update']:.0f} |"
        )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out.with_suffix(".json").write_text(json.dumps({"reference": {"stale": stale, "retrain": retrain}, "rows": rows}, indent=2) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
