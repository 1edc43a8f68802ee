"""Peak memory and wall time of ``kgrec build`` on a large generated interaction log.

The log is written to disk in chunks (never held whole in memory), with a small N-Triples file
giving every item a genre, so that the build runs the whole ingestion path: the byte scan,
chunked CSV parsing and validation, deduplication, RDF parsing, item matching, graph building
and the Parquet store. The build runs in a child process; its peak resident set size comes
from ``getrusage(RUSAGE_CHILDREN).ru_maxrss`` (the largest child waited for: only the build).

Usage (from the repository root)::

    PYTHONPATH=. python experiments/bench_ingest_memory.py --rows 10000000
    PYTHONPATH=. python experiments/bench_ingest_memory.py --rows 1000000 --lenient

Generated files go to ``--workdir`` (default ``data/cache/bench-ingest``, git-ignored) and are
removed afterwards unless ``--keep``.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

EVENTS = np.array(["view", "click", "buy", "rate"])
ITEM_IRI = "http://example.org/bench/item/{id}"


def write_log(
    path: Path, rows: int, users: int, items: int, seed: int, zipf: float = 1.3, chunk: int = 1_000_000
) -> None:
    """Stream ``rows`` random interactions to a CSV file, ``chunk`` rows at a time.

    Items follow a Zipf law of exponent ``zipf`` (skewed popularity, as in real logs, so many
    rows repeat a (user, item, event)); ``zipf = 0`` draws them uniformly (few repeats: the
    most rows kept, the hardest case for memory).
    """
    rng = np.random.default_rng(seed)
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write("user,item,event,rating,timestamp\n")
        for start in range(0, rows, chunk):
            n = min(chunk, rows - start)
            event = rng.integers(0, len(EVENTS), n)
            rating = np.where(event == 3, rng.integers(1, 6, n).astype(str), "")
            item = np.minimum(rng.zipf(zipf, n) - 1, items - 1) if zipf > 0 else rng.integers(0, items, n)
            frame = pd.DataFrame(
                {
                    "user": np.char.add("u", rng.integers(0, users, n).astype(str)),
                    "item": np.char.add("i", item.astype(str)),
                    "event": EVENTS[event],
                    "rating": rating,
                    "timestamp": 1_600_000_000 + start + np.arange(n),
                }
            )
            frame.to_csv(handle, header=False, index=False)


def write_rdf(path: Path, items: int) -> None:
    """One genre statement per item, as N-Triples."""
    with path.open("w", encoding="utf-8") as handle:
        for k in range(items):
            iri = ITEM_IRI.format(id=f"i{k}")
            handle.write(f"<{iri}> <http://schema.org/genre> <http://example.org/bench/genre/g{k % 20}> .\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--users", type=int, default=200_000)
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--zipf", type=float, default=1.3, help="item popularity exponent; 0 = uniform")
    parser.add_argument("--workdir", default="data/cache/bench-ingest")
    parser.add_argument("--lenient", action="store_true", help="build with --lenient")
    parser.add_argument("--keep", action="store_true", help="keep the generated files and graph")
    args = parser.parse_args(argv)

    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    log, rdf, graph = work / "log.csv", work / "items.nt", work / "graph"
    t0 = time.perf_counter()
    write_log(log, args.rows, args.users, args.items, args.seed, args.zipf)
    write_rdf(rdf, args.items)
    generated = time.perf_counter() - t0
    print(f"generated {args.rows:,} rows ({log.stat().st_size / 2**20:,.0f} MiB) in {generated:.0f}s")

    command = [
        sys.executable, "-m", "kgrec", "build",
        "--interactions", str(log), "--rdf", str(rdf), "--item-iri", ITEM_IRI, "--out", str(graph),
    ] + (["--lenient"] if args.lenient else [])
    print("$ " + " ".join(command), flush=True)
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    start = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
    if result.returncode != 0:
        print(result.stdout[-3000:], result.stderr[-3000:], sep="\n")
        return result.returncode
    print("\n".join(line for line in result.stdout.splitlines() if line.strip().startswith(("read", "kept", "dropped", "Graph", "graph written"))))
    print(
        f"kgrec build: {args.rows:,} rows, peak RSS {peak_kib / 2**20:.2f} GiB ({peak_kib / 1024:,.0f} MiB), "
        f"wall {wall:.1f}s"
    )
    if not args.keep:
        shutil.rmtree(work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
