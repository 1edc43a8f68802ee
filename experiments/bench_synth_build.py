"""Wall time and peak memory of ``kgrec data synth`` and ``kgrec build`` at Amazon-Book scale.

Generates a preset of :mod:`kgrec.datasets.synth` (``amazon-book`` by default: 70,679 users,
24,915 items, 847,733 interactions, 88,572 entities, 2,557,746 triples), then builds its graph
with ``kgrec build --spec DIR/graph.toml``. Each command runs in its own child process; its peak
resident set size is that child's own ``ru_maxrss`` (``os.wait4``), so the generation's peak
never hides the build's.

Usage (from the repository root)::

    PYTHONPATH=. python experiments/bench_synth_build.py                      # amazon-book
    PYTHONPATH=. python experiments/bench_synth_build.py --preset amazon-book-10x --skip-build
    PYTHONPATH=. python experiments/bench_synth_build.py --reuse              # data already there

Files go to ``--workdir`` (default ``data/cache/bench-synth``, git-ignored); the generated data
stays (``--reuse`` skips generating it again), the built graph is removed unless ``--keep``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path


def run(command: list[str], env: dict) -> tuple[int, float, float, str]:
    """(exit status, wall seconds, peak RSS in GiB, output) of one child process."""
    start = time.perf_counter()
    child = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    return child.returncode, wall, usage.ru_maxrss / 2**20, output  # ru_maxrss: KiB on Linux


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="amazon-book", help="amazon-book or amazon-book-10x")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workdir", default="data/cache/bench-synth")
    parser.add_argument("--reuse", action="store_true", help="use the data in the workdir if it is complete")
    parser.add_argument("--skip-build", action="store_true", help="only generate")
    parser.add_argument("--keep", action="store_true", help="keep the built graph")
    args = parser.parse_args(argv)

    work = Path(args.workdir)
    data, graph = work / args.preset, work / f"graph-{args.preset}"
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    kgrec = [sys.executable, "-m", "kgrec"]
    print(f"CPU cores available: {len(os.sched_getaffinity(0))}; OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '(unset)')}")

    if args.reuse and (data / "graph.toml").is_file():
        print(f"reusing {data}")
    else:
        command = kgrec + ["data", "synth", "--preset", args.preset, "--seed", str(args.seed), "--out", str(data)]
        print("$ " + " ".join(command[2:]), flush=True)
        rc, wall, peak, output = run(command, env)
        print(output.strip())
        if rc != 0:
            return rc
        sizes = {p.name: p.stat().st_size / 2**20 for p in data.iterdir() if p.is_file()}
        print(f"kgrec data synth: wall {wall:.1f}s, peak RSS {peak:.2f} GiB; "
              + ", ".join(f"{n} {s:,.0f} MiB" for n, s in sorted(sizes.items()) if s >= 1))  # fmt: skip

    if args.skip_build:
        return 0
    shutil.rmtree(graph, ignore_errors=True)
    command = kgrec + ["build", "--spec", str(data / "graph.toml"), "--out", str(graph)]
    print("$ " + " ".join(command[2:]), flush=True)
    rc, wall, peak, output = run(command, env)
    keep = ("read", "kept", "dropped", "note", "Graph", "graph written", "nodes with")
    print("\n".join(line for line in output.splitlines() if line.strip().startswith(keep)))
    if rc != 0:
        print(output[-3000:])
        return rc
    print(f"kgrec build: wall {wall:.1f}s, peak RSS {peak:.2f} GiB ({peak * 1024:,.0f} MiB)")
    if not args.keep:
        shutil.rmtree(graph, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
