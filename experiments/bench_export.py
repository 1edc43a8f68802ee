"""Time `kgrec export` in every format on one graph: seconds and output size per format.

    PYTHONPATH=. python experiments/bench_export.py --graph graphs/ml-100k [--run runs/NAME] [--formats turtle,neo4j]

Each format is timed end to end as the command line runs it (start Python, load the graph,
build the export tables, write), in a fresh process, so no format profits from another's warm
caches. Wall-clock and CPU seconds (user + system of that process) are both reported: on a
shared machine the CPU time is the steadier figure. Outputs
go to a temporary folder (or --out-dir) and are deleted afterwards unless --keep.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kgrec.export import FORMATS  # noqa: E402


def size_of(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size if path.exists() else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--graph", required=True)
    parser.add_argument("--run")
    parser.add_argument("--formats", default=",".join(FORMATS), help="comma-separated (default: all)")
    parser.add_argument("--out-dir", help="where the exports go (default: a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the exported files")
    args = parser.parse_args()

    out_dir = Path(args.out_dir) if args.out_dir else Path(tempfile.mkdtemp(prefix="kgrec-bench-export-"))
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    try:
        for fmt in [f.strip() for f in args.formats.split(",") if f.strip()]:
            if fmt not in FORMATS:
                parser.error(f"unknown format {fmt!r}")
            out = out_dir / f"export{FORMATS[fmt][1]}" if FORMATS[fmt][0] == "file" else out_dir / f"export-{fmt}"
            cmd = [sys.executable, "-c", "import sys; from kgrec.cli_export import main; sys.exit(main(sys.argv[1:]))"]
            cmd += ["export", "--graph", args.graph, "--format", fmt, "--out", str(out)]
            if args.run:
                cmd += ["--run", args.run]
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=_env())
            seconds = time.perf_counter() - t0
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            if proc.returncode != 0:
                print(proc.stderr, file=sys.stderr)
                rows.append((fmt, seconds, cpu, 0, "FAILED"))
                continue
            rows.append((fmt, seconds, cpu, size_of(out), proc.stdout.strip().split(" written")[0]))
            print(f"  {fmt}: {seconds:.1f}s", file=sys.stderr, flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(out_dir, ignore_errors=True)

    print(f"\nexport of {args.graph}" + (f" with {args.run}" if args.run else ""))
    print(f"{'format':<10} {'wall s':>7} {'cpu s':>7} {'size MB':>8}  contents")
    for fmt, seconds, cpu, size, what in rows:
        print(f"{fmt:<10} {seconds:>7.1f} {cpu:>7.1f} {size / 1e6:>8.1f}  {what}")
    return 0 if all(r[-1] != "FAILED" for r in rows) else 1


def _env() -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.setdefault("HF_HUB_OFFLINE", "1")
    return env


if __name__ == "__main__":
    sys.exit(main())
