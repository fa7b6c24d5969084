#!/usr/bin/env python3
"""A/B of gort against itself: the same workloads built at two git revisions, run
interleaved (A, B, A, B, ...) on one machine, medians and the B/A ratio.

For "no behaviour change" checks of a refactor or a change that must not cost a program
that does not use it (say, the netpoller for a program without I/O):

    python3 bench/ab.py 9cdd9e7 HEAD                       # pingpong, ring, yield, skynet
    python3 bench/ab.py main~3 main --workloads ring --runs 9

Each revision is checked out in a temporary git worktree and its bench/gort-bench built
in release mode there (so the first run takes a few minutes). The workloads and their
output line are shared/bench/WORKLOADS.md's (`ns_per_op=` / `total_ms=`). The machine is
shared and noisy: read the ratio, not the absolute figures, and rerun a surprise.
Python 3.11, standard library only.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
METRIC = {"skynet": "total_ms", "sleep": "total_ms", "syscall_handoff": "total_ms"}


def build(rev: str, root: Path) -> Path:
    sha = subprocess.run(["git", "rev-parse", rev], cwd=REPO, check=True,
                         capture_output=True, text=True).stdout.strip()
    tree = root / sha[:12]
    if not tree.exists():
        subprocess.run(["git", "worktree", "add", "--detach", str(tree), sha], cwd=REPO,
                       check=True, capture_output=True)
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "gort-bench"],
                   cwd=tree / "bench", check=True)
    return tree / "bench" / "target" / "release" / "gort-bench"


def run(binary: Path, workload: str, n: str | None, workers: int) -> float:
    env = dict(os.environ, WORKERS=str(workers))
    cmd = [str(binary), workload] + ([n] if n else [])
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True,
                         timeout=300).stdout
    key = METRIC.get(workload, "ns_per_op")
    m = re.search(rf"\b{key}=([0-9.eE+-]+)", out)
    if not m:
        sys.exit(f"{cmd}: no {key}= in {out!r}")
    return float(m.group(1))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("a", help="revision A (the baseline)")
    ap.add_argument("b", help="revision B")
    ap.add_argument("--workloads", default="pingpong,ring,yield,skynet")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--n", action="append", default=[], help="WORKLOAD=N size override")
    ap.add_argument("--keep", default=os.path.join(tempfile.gettempdir(), "gort-ab"),
                    help="where the worktrees are kept between calls")
    args = ap.parse_args()
    sizes = dict(s.split("=", 1) for s in args.n)
    root = Path(args.keep)
    root.mkdir(parents=True, exist_ok=True)
    bins = {"A": build(args.a, root), "B": build(args.b, root)}
    print(f"A = {args.a}, B = {args.b}, {args.runs} interleaved runs, WORKERS={args.workers}")
    print(f"{'workload':<12} {'metric':<10} {'A median':>10} {'B median':>10} {'B/A':>6}   runs A | B")
    for w in args.workloads.split(","):
        got = {"A": [], "B": []}
        for _ in range(args.runs):
            for side in ("A", "B"):
                got[side].append(run(bins[side], w, sizes.get(w), args.workers))
        ma, mb = statistics.median(got["A"]), statistics.median(got["B"])
        fmt = lambda xs: " ".join(f"{x:.4g}" for x in xs)
        print(f"{w:<12} {METRIC.get(w, 'ns_per_op'):<10} {ma:>10.4g} {mb:>10.4g} {mb / ma:>6.3f}"
              f"   {fmt(got['A'])} | {fmt(got['B'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
