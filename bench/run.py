#!/usr/bin/env python3
"""Run gort's anchor workloads side by side with Go, may and tokio, and report.

The one command behind the comparison table: it builds every bench binary (cargo in
bench/, go build in bench/go), runs each selected (workload, system) --runs times,
interleaved across systems (run 1 of every system, then run 2, ...), each run under a
timeout and under GNU `/usr/bin/time -v` for its peak RSS, and writes

    OUT/results.md    machine, command, tool versions, date, the table of medians
                      [min-max] and notes (channel kinds, failures)
    OUT/results.json  the same plus every raw run (stdout line, stderr tail, RSS, status)
    OUT/chart.svg     each system's cost relative to Go per row (log scale)

Workloads and the binaries' contract are defined in shared/bench/WORKLOADS.md:
`<binary> <workload> [n]`, env WORKERS, one line
`workload=<name> n=<N> ns_per_op=<x> total_ms=<y> workers=<w> [key=value ...]`.
Exit status 3 with "unsupported workload <name>" on stderr means the system has no
implementation yet ("—"); any other failure counts as FAIL.

Examples:
    python3 bench/run.py --quick                      # smoke run, seconds
    python3 bench/run.py --workloads yield,pingpong --systems go,may,tokio
    python3 bench/run.py --n spawn=100000 --runs 5 --out /tmp/res

Python 3.11, standard library only.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import math
import os
import platform
import re
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
RELEASE_DIR = BENCH_DIR / "target" / "release"
GNU_TIME = "/usr/bin/time"

SYSTEMS = ["gort", "go", "may", "tokio"]
BINARIES = {s: RELEASE_DIR / f"{s}-bench" for s in SYSTEMS}
WORKLOADS = [
    "spawn", "skynet", "pingpong", "locked_pingpong", "yield", "ring",
    "sleep", "idle_mem", "mutex", "syscall_handoff", "syscall_cost", "echo",
]
# tokio's idiomatic variants of syscall_handoff; other systems answer "unsupported".
HANDOFF_VARIANTS = ["syscall_handoff_spawn_blocking", "syscall_handoff_block_in_place"]

# --quick: small sizes so that the whole suite runs in seconds (n must stay a multiple
# of 1000 / 10,000 / 100 where the workload splits it, and a power of 10 for skynet).
QUICK_N = {
    "spawn": 10_000, "skynet": 10_000, "pingpong": 20_000, "yield": 20_000,
    "ring": 100_000, "sleep": 2_000, "idle_mem": 2_000, "mutex": 20_000,
    "syscall_handoff": 20_000, "echo": 10_000, "locked_pingpong": 5_000,
    "syscall_cost": 100_000,
}

EXIT_UNSUPPORTED = 3
COLORS = {"gort": "#d62728", "go": "#555555", "may": "#1f77b4", "tokio": "#2ca02c"}


# --------------------------------------------------------------------------- model

@dataclasses.dataclass(frozen=True)
class Metric:
    """One table row's quantity, taken from a successful run."""

    label: str
    unit: str
    key: str  # a field of the output line, or "peak_rss_mib" (from GNU time)
    higher_is_better: bool = False


@dataclasses.dataclass(frozen=True)
class Case:
    """One (workload, workers) combination run on every system."""

    key: str        # unique id, e.g. "pingpong_1w"
    workload: str   # the name passed to the binaries
    label: str      # row prefix in the table
    workers: int
    metrics: tuple[Metric, ...]


NS = "ns"
RSS = Metric("peak RSS", "MiB", "peak_rss_mib")
METRICS: dict[str, tuple[Metric, ...]] = {
    "spawn": (Metric("ns per goroutine", NS, "ns_per_op"), RSS),
    "skynet": (Metric("total", "ms", "total_ms"), RSS),
    "pingpong": (Metric("ns per round trip", NS, "ns_per_op"),),
    "locked_pingpong": (Metric("µs per round trip", "µs", "us_per_round_trip"),),
    "yield": (Metric("ns per yield", NS, "ns_per_op"),),
    "ring": (Metric("ns per hop", NS, "ns_per_op"),),
    "sleep": (
        Metric("total", "ms", "total_ms"),
        Metric("p99 lateness", "µs", "p99_late_us"),
        Metric("p50 lateness", "µs", "p50_late_us"),
    ),
    "idle_mem": (
        Metric("bytes per parked goroutine (incl. its channel)", "B", "bytes_per_goroutine"),
        Metric("bytes per parked goroutine (excl. channel)", "B",
               "bytes_per_goroutine_excl_chan"),
        RSS,
    ),
    "mutex": (Metric("ns per lock/unlock", NS, "ns_per_op"),),
    "syscall_handoff": (
        Metric("total", "ms", "total_ms"),
        Metric("yielders done at", "ms", "yielders_done_ms"),
    ),
    # The wrapper's overhead (wrapped minus raw getppid) is the figure that matters; the
    # parallel row's label gets the goroutine count in make_cases.
    "syscall_cost": (
        Metric("wrapper overhead per call (1 goroutine)", NS, "overhead_ns"),
        Metric("wrapped getppid (1 goroutine)", NS, "wrapped_ns"),
        Metric("raw getppid (1 goroutine)", NS, "raw_ns"),
        Metric("wrapper overhead per call (parallel)", NS, "par_overhead_ns"),
    ),
    "echo": (
        Metric("round trips per second", "rt/s", "rps", higher_is_better=True),
        Metric("ns per round trip", NS, "ns_per_op"),
    ),
}


def make_cases(workloads: list[str], workers: int) -> list[Case]:
    """The table's row groups for the selected workloads, in WORKLOADS order."""
    cases = []
    for w in workloads:
        if w == "pingpong":
            plural = "worker" if workers == 1 else "workers"
            cases.append(Case("pingpong", w, f"pingpong ({workers} {plural})", workers,
                              METRICS[w]))
            if workers != 1:
                cases.append(Case("pingpong_1w", w, "pingpong (1 worker)", 1, METRICS[w]))
        elif w == "syscall_handoff":
            # Always 2 workers, whatever --workers says (the binaries force it too).
            cases.append(Case(w, w, "syscall_handoff (blocking call in the goroutine)", 2,
                              METRICS[w]))
            for v in HANDOFF_VARIANTS:
                label = "syscall_handoff, " + v.removeprefix("syscall_handoff_")
                cases.append(Case(v, v, label, 2, METRICS[w]))
        elif w == "syscall_cost":
            par = f"{workers} goroutine" + ("" if workers == 1 else "s")
            label = f"({par} in parallel)"
            metrics = tuple(dataclasses.replace(m, label=m.label.replace("(parallel)", label))
                            for m in METRICS[w])
            cases.append(Case(w, w, w, workers, metrics))
        elif w == "locked_pingpong":
            cases.append(Case(w, w, "locked_pingpong (echoer locked to its thread)", workers,
                              METRICS[w]))
        else:
            cases.append(Case(w, w, w, workers, METRICS[w]))
    return cases


@dataclasses.dataclass
class Run:
    """One execution of one binary."""

    case: str
    system: str
    index: int
    command: list[str]
    workers: int
    status: str = "fail"  # ok | fail | timeout | unsupported
    returncode: int | None = None
    wall_s: float = 0.0
    line: str = ""
    fields: dict[str, str] = dataclasses.field(default_factory=dict)
    peak_rss_kib: int | None = None
    error: str = ""
    stderr_tail: str = ""

    def value(self, key: str) -> float | None:
        if key == "peak_rss_mib":
            return None if self.peak_rss_kib is None else self.peak_rss_kib / 1024
        v = self.fields.get(key)
        try:
            return None if v is None else float(v)
        except ValueError:
            return None


# --------------------------------------------------------------------------- helpers

def sh(cmd: list[str], **kw) -> str:
    """Output of a short informational command, or a note that it failed."""
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=30, **kw)
        return (p.stdout or p.stderr).strip()
    except (OSError, subprocess.SubprocessError) as e:
        return f"unavailable ({e})"


def machine_info() -> dict[str, str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "unknown"
    try:
        kib = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text())[1])
        mem = f"{kib / 1024 / 1024:.1f} GiB"
    except (OSError, TypeError):
        pass
    try:
        maps = Path("/proc/sys/vm/max_map_count").read_text().strip()
    except OSError:
        maps = "unknown"
    return {
        "uname -r": platform.release(),
        "cpu": cpu,
        "nproc": sh(["nproc"]),
        "memory": mem,
        "vm.max_map_count": maps,
    }


def crate_versions() -> dict[str, str]:
    """Versions of the peer crates as locked in bench/Cargo.lock."""
    out = {}
    try:
        lock = (BENCH_DIR / "Cargo.lock").read_text()
    except OSError:
        return out
    for m in re.finditer(r'\[\[package\]\]\nname = "([^"]+)"\nversion = "([^"]+)"', lock):
        if m[1] in ("may", "generator", "may_queue", "tokio", "mio", "corosensei"):
            out[m[1]] = m[2]
    return out


def gnu_time_version() -> str:
    """GNU time's version; Debian's build says "UNKNOWN", so ask dpkg as well."""
    if not Path(GNU_TIME).exists():
        return "missing"
    version = sh([GNU_TIME, "--version"]).splitlines()[0]
    if "UNKNOWN" in version:
        deb = sh(["dpkg-query", "-W", "-f=${Version}", "time"])
        if deb and not deb.startswith("unavailable") and "no packages" not in deb:
            version = f"GNU time (Debian package {deb})"
    return version


def tool_versions() -> dict[str, str]:
    versions = {
        "go": sh(["go", "version"]),
        "rustc": sh(["rustc", "--version"]),
        "cargo": sh(["cargo", "--version"]),
        "python": platform.python_version(),
        "time": gnu_time_version(),
    }
    versions.update({f"crate {k}": v for k, v in crate_versions().items()})
    return versions


def fmt_num(v: float) -> str:
    """Three significant digits below 100, whole numbers above (as in WORKLOADS.md)."""
    if math.isnan(v):
        return "nan"
    if abs(v) >= 100:
        return f"{v:.0f}"
    return f"{v:.3g}"


# --------------------------------------------------------------------------- build

def build(systems: list[str], log: Path) -> dict[str, str]:
    """Builds the selected systems; returns {system: reason} for those that failed."""
    failed: dict[str, str] = {}
    with log.open("w") as f:
        def step(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> bool:
            print(f"$ (cd {cwd} && {shlex.join(cmd)})", flush=True)
            f.write(f"$ (cd {cwd} && {shlex.join(cmd)})\n")
            f.flush()
            try:
                p = subprocess.run(cmd, cwd=cwd, stdout=f, stderr=subprocess.STDOUT,
                                   env=env)
            except OSError as e:
                f.write(f"{e}\n")
                return False
            return p.returncode == 0

        peers = [s for s in ("may", "tokio") if s in systems]
        if peers:
            cmd = ["cargo", "build", "--release"]
            for s in peers:
                cmd += ["-p", f"{s}-bench"]
            if not step(cmd, BENCH_DIR):
                failed.update({s: "cargo build failed" for s in peers})
        # gort separately: the library is under construction and must not hold up the peers.
        if "gort" in systems and not step(
                ["cargo", "build", "--release", "-p", "gort-bench"], BENCH_DIR):
            failed["gort"] = "cargo build failed"
        if "go" in systems:
            env = dict(os.environ, GOPROXY="off", GOFLAGS="-mod=mod", GO111MODULE="on")
            if not step(["go", "build", "-o", str(BINARIES["go"]), "."], BENCH_DIR / "go",
                        env):
                failed["go"] = "go build failed"
    for s, why in failed.items():
        print(f"warning: {s} not built ({why}; see {log}); it is left out of this run",
              file=sys.stderr)
    return failed


# --------------------------------------------------------------------------- running

def interesting_error(stderr: str) -> str:
    """The most telling line(s) of a failed run's stderr."""
    # Thread ids differ from run to run; drop them so equal failures read as one.
    stderr = re.sub(r"thread '([^']*)' \(\d+\)", r"thread '\1'", stderr)
    lines = [l.strip() for l in stderr.splitlines() if l.strip()]
    for i, l in enumerate(lines):
        if "panicked" in l:
            return " ".join(lines[i:i + 2])[:300]
    for l in lines:
        if re.search(r"check failed|error|fatal|cannot|failed", l, re.I):
            return l[:300]
    return lines[-1][:300] if lines else ""


def run_one(case: Case, system: str, index: int, n: int | None, timeout: float,
            scratch: Path) -> Run:
    cmd = [str(BINARIES[system]), case.workload] + ([str(n)] if n else [])
    run = Run(case.key, system, index, cmd, case.workers)
    time_file = scratch / "time.txt"
    env = dict(os.environ, WORKERS=str(case.workers))
    t0 = time.monotonic()
    proc = subprocess.Popen([GNU_TIME, "-v", "-o", str(time_file)] + cmd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # our own child's process group only
        out, err = proc.communicate()
        run.status = "timeout"
        run.error = f"timed out after {timeout:g} s"
    run.wall_s = time.monotonic() - t0
    run.returncode = proc.returncode
    run.stderr_tail = err[-2000:]
    try:
        tv = time_file.read_text()
        m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", tv)
        run.peak_rss_kib = int(m[1]) if m else None
        sig = re.search(r"Command terminated by signal (\d+)", tv)
        if sig and not run.error:
            run.error = f"killed by signal {sig[1]}"
    except OSError:
        pass
    if run.status == "timeout":
        return run
    lines = [l for l in out.splitlines() if l.startswith("workload=")]
    if proc.returncode == EXIT_UNSUPPORTED and "unsupported workload" in err:
        run.status = "unsupported"
    elif proc.returncode != 0:
        run.error = run.error or f"exit {proc.returncode}: {interesting_error(err)}"
    elif len(lines) != 1:
        run.error = f"expected one result line, got {len(lines)}"
    else:
        run.line = lines[0]
        run.fields = dict(kv.split("=", 1) for kv in run.line.split() if "=" in kv)
        missing = [m.key for m in case.metrics
                   if m.key != "peak_rss_mib" and m.key not in run.fields]
        if run.fields.get("workload") != case.workload:
            run.error = f"line is for workload {run.fields.get('workload')}"
        elif missing:
            run.error = f"line lacks {', '.join(missing)}"
        else:
            run.status = "ok"
    return run


def describe(run: Run) -> str:
    if run.status == "ok":
        rss = f" peak_rss={run.peak_rss_kib / 1024:.0f}MiB" if run.peak_rss_kib else ""
        return run.line.split(" ", 1)[1] + rss
    return f"{run.status.upper()} {run.error}".strip()


def run_all(cases: list[Case], systems: list[str], runs: int, timeout: float,
            sizes: dict[str, int], scratch: Path) -> list[Run]:
    """Runs every case `runs` times, round-robin over systems within each round."""
    results: list[Run] = []
    unsupported: set[tuple[str, str]] = set()
    total = len(cases) * runs * len(systems)
    done = 0
    for case in cases:
        n = sizes.get(case.workload)
        for i in range(1, runs + 1):
            for system in systems:
                done += 1
                if (case.key, system) in unsupported:
                    continue
                r = run_one(case, system, i, n, timeout, scratch)
                results.append(r)
                if r.status == "unsupported":
                    unsupported.add((case.key, system))
                print(f"[{done}/{total}] {case.label} {system} run {i}/{runs} "
                      f"({r.wall_s:.1f} s): {describe(r)}", flush=True)
    return results


# --------------------------------------------------------------------------- report

@dataclasses.dataclass
class Cell:
    """One (row, system) summary."""

    values: list[float]
    failed: int
    attempted: int
    unsupported: bool
    notes: list[str]

    @property
    def median(self) -> float | None:
        return statistics.median(self.values) if self.values else None

    def text(self) -> str:
        if self.unsupported or self.attempted == 0:
            return "—"
        parts = []
        if self.values:
            med = fmt_num(self.median)
            lo, hi = fmt_num(min(self.values)), fmt_num(max(self.values))
            parts.append(med if len(self.values) == 1 else f"{med} [{lo}–{hi}]")
        if self.failed:
            parts.append(f"FAIL {self.failed}/{self.attempted}")
        parts += [f"({n})" for n in self.notes]
        return " ".join(parts)


def summarize(cases: list[Case], systems: list[str], results: list[Run]):
    """Rows of (case, metric, {system: Cell}) in table order."""
    rows = []
    for case in cases:
        for metric in case.metrics:
            cells = {}
            for s in systems:
                rs = [r for r in results if r.case == case.key and r.system == s]
                ok = [r for r in rs if r.status == "ok"]
                values = [v for r in ok if (v := r.value(metric.key)) is not None]
                notes = sorted({f"park={r.fields['park']}" for r in ok if "park" in r.fields})
                cells[s] = Cell(values, sum(r.status in ("fail", "timeout") for r in rs),
                                sum(r.status != "unsupported" for r in rs),
                                any(r.status == "unsupported" for r in rs), notes)
            rows.append((case, metric, cells))
    return rows


def markdown_table(rows, systems: list[str]) -> str:
    out = ["| workload: metric | unit | " + " | ".join(systems) + " |",
           "|---|---|" + "---|" * len(systems)]
    for case, metric, cells in rows:
        out.append(f"| {case.label}: {metric.label} | {metric.unit} | "
                   + " | ".join(cells[s].text() for s in systems) + " |")
    return "\n".join(out)


def field_notes(results: list[Run], systems: list[str]) -> list[str]:
    """Per-system facts the binaries reported (channel capacity, blocking call, ...)."""
    notes = []
    for case, key, what in [("pingpong", "chan_capacity", "pingpong channel capacity"),
                            ("locked_pingpong", "locked", "locked_pingpong locked goroutine"),
                            ("syscall_handoff", "blocking", "syscall_handoff blocking call"),
                            ("syscall_cost", "wrapper", "syscall_cost wrapper"),
                            ("idle_mem", "park", "idle_mem parks on")]:
        seen = {}
        for s in systems:
            vals = sorted({r.fields[key] for r in results
                           if r.system == s and r.case == case and key in r.fields})
            if vals:
                seen[s] = "/".join(vals)
        if seen:
            notes.append(f"{what}: " + ", ".join(f"{s} {v}" for s, v in seen.items()))
    # tokio's block_in_place gives its core away once per poll: its syscall_cost overhead is
    # measured with a yield after every call, and the plain loop's figure is noted here.
    for s in systems:
        ok = [r for r in results if r.system == s and r.case == "syscall_cost"
              and r.status == "ok" and "per_call" in r.fields]
        loop = [v for r in ok if (v := r.value("loop_overhead_ns")) is not None]
        if ok and loop:
            f = ok[0].fields
            notes.append(
                f"syscall_cost on {s}: overhead measured with a {f['per_call']} after every "
                f"call ({f.get('yield_n', '?')} calls), since block_in_place hands the core "
                "off only on the first call of a poll; in a plain loop of wrapped calls the "
                f"overhead is {fmt_num(statistics.median(loop))} ns (median)")
    return notes


def failure_notes(results: list[Run], cases: list[Case]) -> list[str]:
    labels = {c.key: c.label for c in cases}
    notes = []
    for (case, system) in dict.fromkeys((r.case, r.system) for r in results):
        bad = [r for r in results if r.case == case and r.system == system
               and r.status in ("fail", "timeout")]
        if bad:
            errors = sorted({r.error for r in bad})
            notes.append(f"{labels[case]} on {system}: {len(bad)} failed: "
                         + " | ".join(errors))
    return notes


def write_markdown(path: Path, meta: dict, rows, systems: list[str], results: list[Run],
                   cases: list[Case]) -> str:
    lines = ["# gort side-by-side benchmark", ""]
    lines.append(f"- Date: {meta['date']}")
    lines.append(f"- Command: `{meta['command']}`")
    m = meta["machine"]
    lines.append(f"- Machine: Linux {m['uname -r']}, {m['cpu']}, nproc {m['nproc']}, "
                 f"{m['memory']}, vm.max_map_count {m['vm.max_map_count']}")
    lines.append("- Tools: " + "; ".join(f"{k}: {v}" for k, v in meta["tools"].items()))
    lines.append(f"- Runs per (workload, system): {meta['runs']}, interleaved across systems; "
                 f"timeout {meta['timeout_s']:g} s per run; peak RSS from GNU time -v")
    lines.append(f"- Workers: {meta['workers']} (syscall_handoff always 2; pingpong also "
                 "with 1; syscall_cost's parallel row runs one goroutine per worker)")
    sizes = meta["n"]
    lines.append("- n: " + (", ".join(f"{k}={v}" for k, v in sizes.items()) if sizes
                            else "the binaries' defaults (WORKLOADS.md)"))
    if meta["not_built"]:
        lines.append("- Not built, left out: " + ", ".join(
            f"{s} ({why})" for s, why in meta["not_built"].items()))
    lines += ["", "Cells: **median** [min–max] of the successful runs; FAIL k/N = k of N "
              "runs failed; — = the system does not implement that workload.", ""]
    table = markdown_table(rows, systems)
    lines += [table, ""]
    notes = field_notes(results, systems) + failure_notes(results, cases)
    if notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    lines += ["Chart: [chart.svg](chart.svg) (each system's cost relative to "
              f"{meta['baseline']}, log scale).", ""]
    path.write_text("\n".join(lines))
    return table


# --------------------------------------------------------------------------- chart

def write_chart(path: Path, rows, systems: list[str], baseline: str | None) -> None:
    """Horizontal bars: cost relative to the baseline (time, bytes, or 1/throughput), on a
    log axis centred on 1; bars to the left are better than the baseline."""
    others = [s for s in systems if s != baseline]
    entries = []  # (row label, [(system, ratio | None, text)])
    for case, metric, cells in rows:
        base = cells[baseline].median if baseline else None
        if not base or not others:
            continue
        bars = []
        for s in others:
            c = cells[s]
            if c.median is not None and c.median > 0:
                ratio = c.median / base
                ratio = 1 / ratio if metric.higher_is_better else ratio
                bars.append((s, ratio, f"{ratio:.2f}×" if ratio < 10 else f"{ratio:.0f}×"))
            else:
                bars.append((s, None, "—" if (c.unsupported or c.attempted == 0) else "FAIL"))
        entries.append((f"{case.label}: {metric.label}", bars))

    ratios = [r for _, bars in entries for _, r, _ in bars if r]
    lo = min([0.1] + ratios)
    hi = max([10.0] + ratios)
    lo_exp = max(-3, math.floor(math.log10(lo)))
    hi_exp = min(4, math.ceil(math.log10(hi)))

    label_w, plot_w, right_pad = 430, 560, 70
    bar_h, gap = 13, 10
    group_h = len(others) * bar_h + gap
    top = 78
    height = top + max(1, len(entries)) * group_h + 50
    width = label_w + plot_w + right_pad

    def x_of(ratio: float) -> float:
        r = min(max(ratio, 10.0 ** lo_exp), 10.0 ** hi_exp)
        return label_w + (math.log10(r) - lo_exp) / (hi_exp - lo_exp) * plot_w

    def esc(s: str) -> str:
        return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="sans-serif" font-size="11">',
           f'<rect width="{width}" height="{height}" fill="white"/>']
    title = (f"Cost relative to {baseline} (time, bytes, or 1/throughput; log scale; "
             f"left of 1 = better than {baseline})" if baseline and entries
             else "No baseline system (go) with results in this run: no ratios to draw")
    svg.append(f'<text x="10" y="20" font-size="14" font-weight="bold">{esc(title)}</text>')
    if not entries:
        svg.append("</svg>")
        path.write_text("\n".join(svg) + "\n")
        return
    for i, s in enumerate(others):  # legend
        lx = 10 + i * 110
        svg.append(f'<rect x="{lx}" y="32" width="12" height="12" fill="{COLORS[s]}"/>')
        svg.append(f'<text x="{lx + 16}" y="42">{esc(s)}</text>')
    plot_bottom = top + len(entries) * group_h
    for e in range(lo_exp, hi_exp + 1):  # grid and tick labels
        for mult in ((1, 2, 5) if e < hi_exp else (1,)):
            x = x_of(mult * 10.0 ** e)
            major = mult == 1
            svg.append(f'<line x1="{x:.1f}" y1="{top - 6}" x2="{x:.1f}" y2="{plot_bottom}" '
                       f'stroke="{"#bbb" if major else "#e5e5e5"}"/>')
            if major or hi_exp - lo_exp <= 3:
                v = mult * 10.0 ** e
                svg.append(f'<text x="{x:.1f}" y="{top - 10}" text-anchor="middle" '
                           f'fill="#444">{esc(f"{v:g}×")}</text>')
    one = x_of(1.0)
    svg.append(f'<line x1="{one:.1f}" y1="{top - 6}" x2="{one:.1f}" y2="{plot_bottom}" '
               f'stroke="{COLORS.get(baseline or "", "#000")}" stroke-width="2"/>')
    for gi, (label, bars) in enumerate(entries):
        y0 = top + gi * group_h
        if gi % 2 == 0:
            svg.append(f'<rect x="0" y="{y0 - gap / 2 + 1}" width="{width}" '
                       f'height="{group_h}" fill="#f6f6f6"/>')
        svg.append(f'<text x="{label_w - 8}" y="{y0 + len(others) * bar_h / 2 + 4}" '
                   f'text-anchor="end">{esc(label)}</text>')
        for bi, (s, ratio, text) in enumerate(bars):
            y = y0 + bi * bar_h
            if ratio is None:
                svg.append(f'<text x="{one + 4:.1f}" y="{y + bar_h - 3}" fill="#888">'
                           f'{esc(s)}: {esc(text)}</text>')
                continue
            x = x_of(ratio)
            x1, x2 = min(one, x), max(one, x)
            svg.append(f'<rect x="{x1:.1f}" y="{y + 1}" width="{max(x2 - x1, 1):.1f}" '
                       f'height="{bar_h - 2}" fill="{COLORS[s]}"><title>{esc(s)} '
                       f'{esc(label)}: {esc(text)}</title></rect>')
            tx, anchor = (x2 + 4, "start") if ratio >= 1 else (x1 - 4, "end")
            svg.append(f'<text x="{tx:.1f}" y="{y + bar_h - 3}" text-anchor="{anchor}" '
                       f'font-size="10">{esc(text)}</text>')
    svg.append(f'<text x="10" y="{height - 15}" fill="#666">One bar per system and row: '
               f'median / {baseline or "baseline"} median; FAIL = every run failed; '
               '— = not implemented.</text>')
    svg.append("</svg>")
    path.write_text("\n".join(svg) + "\n")


# --------------------------------------------------------------------------- main

def parse_sizes(specs: list[str] | None, quick: bool) -> dict[str, int]:
    sizes = dict(QUICK_N) if quick else {}
    for spec in specs or []:
        for item in filter(None, spec.split(",")):
            name, _, value = item.partition("=")
            if name not in WORKLOADS + HANDOFF_VARIANTS or not value.replace("_", "").isdigit():
                sys.exit(f"run.py: bad --n {item!r}: want workload=N")
            sizes[name] = int(value.replace("_", ""))
    for v in HANDOFF_VARIANTS:  # the variants follow syscall_handoff unless given
        if v not in sizes and "syscall_handoff" in sizes:
            sizes[v] = sizes["syscall_handoff"]
    return sizes


def parse_list(value: str, allowed: list[str], what: str) -> list[str]:
    items = [v.strip() for v in value.split(",") if v.strip()]
    bad = [v for v in items if v not in allowed]
    if bad or not items:
        sys.exit(f"run.py: unknown {what} {', '.join(bad) or '(none)'}; "
                 f"choose from {','.join(allowed)}")
    return [a for a in allowed if a in items]  # canonical order


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workloads", default=",".join(WORKLOADS),
                    help="comma-separated workloads (default: all)")
    ap.add_argument("--systems", default=None,
                    help="comma-separated systems among gort,go,may,tokio "
                         "(default: all that build)")
    ap.add_argument("--runs", type=int, default=None,
                    help="runs per (workload, system) (default 3; 1 with --quick)")
    ap.add_argument("--timeout", type=float, default=120, help="seconds per run (default 120)")
    ap.add_argument("--workers", type=int, default=2,
                    help="WORKERS for every workload but syscall_handoff (default 2)")
    ap.add_argument("--n", action="append", metavar="WORKLOAD=N",
                    help="size override, e.g. --n spawn=100000 (repeatable, or comma-separated)")
    ap.add_argument("--quick", action="store_true", help="small sizes: a smoke run in seconds")
    ap.add_argument("--out", type=Path, default=None,
                    help="output directory (default bench/out/<UTC timestamp>)")
    ap.add_argument("--no-build", action="store_true", help="use the binaries already built")
    args = ap.parse_args()

    if not Path(GNU_TIME).exists():
        sys.exit(f"run.py: {GNU_TIME} is missing: apt-get install -y time")
    if args.workers < 1 or args.timeout <= 0 or (args.runs is not None and args.runs < 1):
        sys.exit("run.py: --workers, --timeout and --runs must be positive")
    workloads = parse_list(args.workloads, WORKLOADS, "workload")
    systems = parse_list(args.systems or ",".join(SYSTEMS), SYSTEMS, "system")
    runs = args.runs or (1 if args.quick else 3)
    sizes = parse_sizes(args.n, args.quick)
    stamp = datetime.datetime.now(datetime.timezone.utc)
    out = args.out or BENCH_DIR / "out" / stamp.strftime("%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)

    command = shlex.join([Path(sys.executable).name] + sys.argv)
    meta = {"date": stamp.isoformat(timespec="seconds"), "command": command,
            "machine": machine_info(), "runs": runs, "timeout_s": args.timeout,
            "workers": args.workers, "n": sizes, "not_built": {}}
    print(f"# {command}\n# machine: {meta['machine']}", flush=True)

    if not args.no_build:
        meta["not_built"] = build(systems, out / "build.log")
    missing = {s: "binary missing" for s in systems
               if s not in meta["not_built"] and not BINARIES[s].exists()}
    meta["not_built"].update(missing)
    systems = [s for s in systems if s not in meta["not_built"]]
    if not systems:
        sys.exit("run.py: no system built; see build.log")
    meta["tools"] = tool_versions()
    meta["systems"] = systems
    baseline = "go" if "go" in systems else None
    meta["baseline"] = baseline or "(none)"

    cases = make_cases(workloads, args.workers)
    with tempfile.TemporaryDirectory(dir=out) as scratch:
        results = run_all(cases, systems, runs, args.timeout, sizes, Path(scratch))

    rows = summarize(cases, systems, results)
    table = write_markdown(out / "results.md", meta, rows, systems, results, cases)
    write_chart(out / "chart.svg", rows, systems, baseline)
    summary = [{"row": f"{c.label}: {m.label}", "unit": m.unit,
                "cells": {s: {"median": cell.median, "min": min(cell.values, default=None),
                              "max": max(cell.values, default=None), "values": cell.values,
                              "failed": cell.failed, "attempted": cell.attempted,
                              "unsupported": cell.unsupported, "text": cell.text()}
                          for s, cell in cells.items()}}
               for c, m, cells in rows]
    (out / "results.json").write_text(json.dumps(
        {"meta": meta, "summary": summary,
         "runs": [dataclasses.asdict(r) for r in results]}, indent=1, ensure_ascii=False))
    print("\n" + table + "\n")
    print(f"wrote {out}/results.md, results.json, chart.svg")
    return 0


if __name__ == "__main__":
    sys.exit(main())
