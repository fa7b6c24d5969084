#!/usr/bin/env python3
"""Go's channel micro-benchmarks, side by side: Go itself vs their gort port.

Builds `go/` into a test binary (`go test -c`, GOPROXY=off) and the `chanbench` crate
(`cargo build --release -p chanbench` in bench/), then runs every benchmark on both
sides `--runs` times, interleaved (run 1 of every benchmark on both sides, then run 2,
...; which side goes first alternates), each run in its own process, GOMAXPROCS =
WORKERS = `--workers`. gort runs a fixed N per benchmark; Go runs as `go test -bench`
normally does, ramping b.N up to `-benchtime` (`--go-benchtime`, default 0.5s), because
with `-benchtime=<N>x` Go's RunParallel takes its grain from a single cold iteration and
the benchmarks built on it then mostly measure pb.Next's shared counter
(`--go-benchtime x` does that anyway: the same N as gort).
Prints a Markdown table (median [min-max] ns/op per side, and the ratio of the medians)
and writes it, with the machine and the raw runs, to `--out`
(default bench/out/chanbench-<UTC timestamp>/results.md and results.json).

Python 3.11, standard library only.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import re
import shlex
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCH_DIR = HERE.parent
GO_DIR = HERE / "go"
GORT_BIN = BENCH_DIR / "target" / "release" / "chanbench"
GO_BIN = BENCH_DIR / "target" / "release" / "chanbench-go.test"

# Benchmark name -> default N (0.2-1 s on each side on a 2-vCPU VM; the
# Rust binary's own defaults are the same) and what one op is.
BENCHMARKS: dict[str, tuple[int, str]] = {
    "BenchmarkChanSync": (4_000_000, "one hand-off on an unbuffered channel, 2 goroutines taking turns"),
    "BenchmarkChanProdCons0": (2_500_000, "one value, GOMAXPROCS producers → GOMAXPROCS consumers, unbuffered"),
    "BenchmarkChanProdCons10": (5_000_000, "one value, as ProdCons0 with capacity 10"),
    "BenchmarkChanProdCons100": (8_000_000, "one value, as ProdCons0 with capacity 100"),
    "BenchmarkSelectUncontended": (15_000_000, "a 2-case select + a send on a private pair of cap-1 channels (RunParallel)"),
    "BenchmarkSelectSyncContended": (700_000, "a 3-case select receive on 3 shared unbuffered channels fed by 4-case select senders (RunParallel)"),
    "BenchmarkChanPopular": (1_500, "1000 hand-offs to 1000 goroutines each selecting on its own channel + one shared idle channel"),
    "BenchmarkChanUncontended": (350_000, "100 sends then 100 receives on a private cap-100 channel (RunParallel)"),
    "BenchmarkChanContended": (150_000, "100 sends then 100 receives on one shared cap-100×GOMAXPROCS channel (RunParallel)"),
}
SIDES = ("go", "gort")


@dataclass
class Run:
    bench: str
    side: str
    index: int
    n: int
    cmd: list[str]
    status: str = "fail"  # ok | fail | timeout
    ns_per_op: float | None = None
    wall_s: float = 0.0
    returncode: int | None = None
    line: str = ""
    error: str = ""
    stderr_tail: str = ""


@dataclass
class Row:
    bench: str
    n: int
    cells: dict[str, list[float]] = field(default_factory=dict)
    ns: dict[str, list[int]] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)


def _load_harness():
    """bench/run.py, the main harness, whose machine-description helpers this shares.
    Loaded by path: this file is also called run.py."""
    spec = importlib.util.spec_from_file_location("bench_harness", HERE.parent / "run.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


_harness = _load_harness()
sh = _harness.sh


def machine_info() -> dict[str, str]:
    """The main harness's machine description, plus the two toolchains compared here."""
    return {
        **_harness.machine_info(),
        "go": sh(["go", "version"]),
        "rustc": sh(["rustc", "--version"]),
        "python": platform.python_version(),
    }


def build(log: Path) -> None:
    """Builds both sides; exits with the log's tail on failure."""
    steps = [
        (["cargo", "build", "--release", "-p", "chanbench"], BENCH_DIR, {}),
        (["go", "test", "-c", "-o", str(GO_BIN), "."], GO_DIR, {"GOPROXY": "off"}),
    ]
    GO_BIN.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as f:
        for cmd, cwd, env in steps:
            print(f"build: {shlex.join(cmd)}  (in {cwd})", file=sys.stderr)
            f.write(f"$ {shlex.join(cmd)}  # in {cwd}\n")
            f.flush()
            p = subprocess.run(cmd, cwd=cwd, env=dict(os.environ, **env), stdout=f,
                               stderr=subprocess.STDOUT)
            if p.returncode != 0:
                f.close()
                tail = log.read_text()[-3000:]
                sys.exit(f"build failed: {shlex.join(cmd)}\n{tail}")


def command(side: str, bench: str, n: int, go_benchtime: str) -> list[str]:
    if side == "go":
        benchtime = f"{n}x" if go_benchtime == "x" else go_benchtime
        return [str(GO_BIN), "-test.run=NONE", f"-test.bench=^{bench}$",
                f"-test.benchtime={benchtime}"]
    return [str(GORT_BIN), f"{bench}={n}"]


def parse(side: str, bench: str, n: int | None, out: str
          ) -> tuple[int | None, float | None, str, str]:
    """(N, ns/op, the result line, error) from a run's stdout; `n`: the N asked for."""
    if side == "go":
        pat = re.compile(rf"^{bench}(?:-\d+)?\s+(\d+)\s+([\d.]+) ns/op", re.M)
    else:
        pat = re.compile(rf"^bench={bench} n=(\d+) ns_per_op=([\d.]+)$", re.M)
    ms = pat.findall(out)
    if len(ms) != 1:
        return None, None, "", f"expected one result line for {bench}, got {len(ms)}"
    got_n, ns = int(ms[0][0]), float(ms[0][1])
    line = pat.search(out)[0]
    if n is not None and got_n != n:
        return got_n, None, line, f"ran N={got_n}, asked for {n}"
    return got_n, ns, line, ""


def run_one(side: str, bench: str, index: int, n: int, workers: int, timeout: float,
            go_benchtime: str) -> Run:
    cmd = command(side, bench, n, go_benchtime)
    run = Run(bench, side, index, n, cmd)
    env = dict(os.environ, GOMAXPROCS=str(workers), WORKERS=str(workers))
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # our own child's process group only
        out, err = proc.communicate()
        run.status = "timeout"
        run.error = f"timed out after {timeout:g} s"
    run.wall_s = time.monotonic() - t0
    run.returncode = proc.returncode
    run.stderr_tail = (err or "")[-2000:]
    if run.status == "timeout":
        return run
    if proc.returncode != 0:
        last = [l for l in ((err or "") + (out or "")).splitlines() if l.strip()][-3:]
        run.error = f"exit {proc.returncode}: {' | '.join(last)}"
        return run
    fixed = side == "gort" or go_benchtime == "x"
    got_n, ns, run.line, error = parse(side, bench, n if fixed else None, out)
    run.n = got_n if got_n is not None else run.n
    if error:
        run.error = error
    else:
        run.ns_per_op, run.status = ns, "ok"
    return run


def n_text(ns: list[int]) -> str:
    if not ns:
        return "—"
    lo, hi = min(ns), max(ns)
    return f"{lo:,}" if lo == hi else f"{lo:,}–{hi:,}"


def fmt(v: float) -> str:
    if v >= 100:
        return f"{v:,.0f}"
    return f"{v:.3g}"


def cell(values: list[float], failures: int, runs: int) -> str:
    if not values:
        return f"FAIL {failures}/{runs}"
    text = f"{fmt(statistics.median(values))} [{fmt(min(values))}–{fmt(max(values))}]"
    if failures:
        text += f" (FAIL {failures}/{runs})"
    return text


def table(rows: list[Row], runs: int) -> str:
    lines = [
        "| benchmark | Go ns/op median [min–max] | gort ns/op median [min–max] | gort/Go |",
        "|---|---:|---:|---:|",
    ]
    for r in rows:
        go, gort = r.cells.get("go", []), r.cells.get("gort", [])
        ratio = (f"{statistics.median(gort) / statistics.median(go):.2f}"
                 if go and gort else "—")
        lines.append(f"| {r.bench} | {cell(go, r.failures.get('go', 0), runs)} "
                     f"| {cell(gort, r.failures.get('gort', 0), runs)} | {ratio} |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3, help="runs per benchmark and side (3)")
    ap.add_argument("--workers", type=int, default=2, help="GOMAXPROCS / WORKERS (2)")
    ap.add_argument("--benchmarks", help="comma-separated Go names (default: all)")
    ap.add_argument("--n", action="append", default=[], metavar="NAME=N",
                    help="N for one benchmark (repeatable)")
    ap.add_argument("--go-benchtime", default="0.5s",
                    help="Go's -benchtime (default 0.5s); x: -benchtime=<gort's N>x")
    ap.add_argument("--timeout", type=float, default=120, help="seconds per run (120)")
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--out", help="output directory (default bench/out/chanbench-<UTC>/)")
    args = ap.parse_args()

    names = list(BENCHMARKS)
    if args.benchmarks:
        names = [b.strip() for b in args.benchmarks.split(",") if b.strip()]
        unknown = [b for b in names if b not in BENCHMARKS]
        if unknown:
            ap.error(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
    sizes = {b: BENCHMARKS[b][0] for b in names}
    for spec in args.n:
        name, _, n = spec.partition("=")
        if name not in BENCHMARKS or not n.isdigit() or int(n) < 1:
            ap.error(f"bad --n {spec!r}")
        sizes[name] = int(n)

    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out_dir = Path(args.out) if args.out else BENCH_DIR / "out" / f"chanbench-{stamp}"
    out_dir.mkdir(parents=True, exist_ok=True)
    if not args.no_build:
        build(out_dir / "build.log")

    runs: list[Run] = []
    for i in range(args.runs):
        for bench in names:
            order = SIDES if i % 2 == 0 else SIDES[::-1]
            for side in order:
                r = run_one(side, bench, i + 1, sizes[bench], args.workers, args.timeout,
                            args.go_benchtime)
                shown = f"{r.ns_per_op:.1f} ns/op" if r.status == "ok" else f"{r.status.upper()}: {r.error}"
                print(f"run {i + 1}/{args.runs} {side:4} {bench}: {shown} ({r.wall_s:.1f} s)",
                      file=sys.stderr)
                runs.append(r)

    rows = []
    for bench in names:
        row = Row(bench, sizes[bench])
        for side in SIDES:
            mine = [r for r in runs if r.bench == bench and r.side == side]
            row.cells[side] = [r.ns_per_op for r in mine if r.status == "ok"]
            row.ns[side] = [r.n for r in mine if r.status == "ok"]
            row.failures[side] = sum(r.status != "ok" for r in mine)
        rows.append(row)

    md = table(rows, args.runs)
    print(md)
    cmdline = shlex.join([sys.executable, *sys.argv])
    meta = machine_info()
    failures = [f"- {r.side} {r.bench} run {r.index}: {r.error}" for r in runs if r.status != "ok"]
    doc = [
        "# Go's channel micro-benchmarks: Go vs gort",
        "",
        f"- date: {datetime.now(timezone.utc).isoformat(timespec='seconds')}",
        f"- command: `{cmdline}`",
        f"- GOMAXPROCS = WORKERS = {args.workers}; {args.runs} runs per side, interleaved; "
        "one process per run; gort: a fixed N (after untimed runs with N = 1 and N/100); "
        + ("Go: the same N (`-test.benchtime=<N>x`)" if args.go_benchtime == "x"
           else f"Go: `-test.benchtime={args.go_benchtime}` (Go picks N)"),
        *[f"- {k}: {v}" for k, v in meta.items()],
        "",
        md,
        "",
        "Cells: ns/op, median [min–max] of the successful runs; gort/Go is the ratio of "
        "the medians (< 1: gort faster). What one op is, and the N of the successful runs:",
        "",
        *[f"- {b}: {BENCHMARKS[b][1]}; N gort {n_text(r.ns.get('gort', []))}, "
          f"Go {n_text(r.ns.get('go', []))}" for b, r in zip(names, rows)],
    ]
    if failures:
        doc += ["", "Failures:", "", *failures]
    (out_dir / "results.md").write_text("\n".join(doc) + "\n")
    (out_dir / "results.json").write_text(json.dumps(
        {"command": cmdline, "workers": args.workers, "machine": meta,
         "runs": [asdict(r) for r in runs]}, indent=1) + "\n")
    print(f"\nwritten: {out_dir / 'results.md'}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
