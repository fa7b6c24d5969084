#!/usr/bin/env python3
"""gort's module graph: which top-level module of src/ names which other.

Reads every `crate::a::...` path in src/ (in `use` trees, expressions, doc links are
skipped) and `$crate::`/`crate::` macro paths, maps each file to its top-level module
(src/sched/idle.rs -> sched) and prints the edges, then the strongly connected
components. Exits 1 if a module that must be a leaf of the layering (LEAVES) sits in a
cycle, or imports a module above it (ALLOWED lists what each may name).

Usage: python3 .ci/modgraph.py [--sub]   (--sub: one node per file, to look closer)
"""
import os
import re
import sys

SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")

# The layering (docs/design/layering.md): a module may name only those listed for it.
ALLOWED = {
    "loom": set(),
    "throw": set(),
    "arch": {"loom"},
    "stack": {"loom", "throw"},
    "os": {"loom", "throw", "stack"},
    "config": {"loom", "throw", "os", "stack"},
}
LEAVES = set(ALLOWED)


def module_of(path, sub):
    rel = os.path.relpath(path, SRC)
    parts = rel[:-3].split(os.sep)
    if parts[-1] == "mod":
        parts = parts[:-1]
    if not parts or parts == ["lib"]:
        return "lib"
    return ".".join(parts[:2]) if sub else parts[0]


def strip_comments(text):
    out = []
    for line in text.splitlines():
        s = line.lstrip()
        if s.startswith("//"):
            continue
        # drop trailing comments (good enough: gort has no "//" inside strings that name crate paths)
        i = line.find("//")
        if i >= 0 and '"' not in line[:i]:
            line = line[:i]
        out.append(line)
    return "\n".join(out)


def use_targets(tree, prefix=()):
    """Expand a use tree `a::{b, c::d}` into paths."""
    tree = tree.strip()
    if not tree:
        return []
    depth, parts, cur = 0, [], ""
    # split on top-level commas
    for ch in tree:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    res = []
    for p in parts:
        p = p.strip()
        if not p:
            continue
        m = re.match(r"^([\w:]*?)(::)?\{(.*)\}$", p, re.S)
        if m:
            head = tuple(x for x in m.group(1).split("::") if x)
            res += use_targets(m.group(3), prefix + head)
        else:
            p = re.split(r"\s+as\s+", p)[0]
            res.append(prefix + tuple(x for x in p.split("::") if x))
    return res


def edges(sub):
    graph = {}
    for root, _, files in os.walk(SRC):
        for f in files:
            if not f.endswith(".rs"):
                continue
            path = os.path.join(root, f)
            mod = module_of(path, sub)
            text = open(path).read()
            # unit tests may use anything: the graph is of the library proper
            for marker in ("#[cfg(test)]\nmod tests", "#[cfg(all(test, not(loom)))]\nmod tests"):
                if marker in text:
                    text = text[: text.index(marker)]
            text = strip_comments(text)
            targets = []
            for m in re.finditer(r"\buse\s+(\$?crate)::(\{.*?\}|[^;]*);", text, re.S):
                for t in use_targets(m.group(2)):
                    targets.append(t)
            for m in re.finditer(r"(?<![\w:])\$?crate::((?:\w+::)*\w+)", text):
                targets.append(tuple(m.group(1).split("::")))
            for t in targets:
                if not t:
                    continue
                top = t[0]
                if not os.path.exists(os.path.join(SRC, top + ".rs")) and not os.path.isdir(
                    os.path.join(SRC, top)
                ):
                    continue  # a re-export at the crate root (crate::go): resolved below
                name = ".".join(t[:2]) if sub and os.path.isdir(os.path.join(SRC, top)) and len(t) > 1 and (
                    os.path.exists(os.path.join(SRC, top, t[1] + ".rs")) or os.path.isdir(os.path.join(SRC, top, t[1]))
                ) else top
                if name != mod:
                    graph.setdefault(mod, set()).add(name)
            # paths through crate-root re-exports (crate::num_cpu, crate::throw!)
            for m in re.finditer(r"(?<![\w:$])crate::(\w+)(?!::)", text):
                n = m.group(1)
                if os.path.exists(os.path.join(SRC, n + ".rs")) or os.path.isdir(os.path.join(SRC, n)):
                    continue  # `use crate::stack;`: the module itself, counted above
                graph.setdefault(mod, set()).add("lib:" + n)
            graph.setdefault(mod, set())
    return graph


def resolve_root_reexports(graph):
    lib = open(os.path.join(SRC, "lib.rs")).read()
    reexp = {}
    for m in re.finditer(r"pub use\s+(\w+)::(\{[^}]*\}|[^;]*);", lib):
        names = [n.strip().split(" as ")[-1] for n in m.group(2).strip("{}").split(",")]
        for n in names:
            n = n.split("::")[-1].strip()
            if n:
                reexp[n] = m.group(1)
    macros = {}
    for root, _, files in os.walk(SRC):
        for f in files:
            if f.endswith(".rs"):
                p = os.path.join(root, f)
                for m in re.finditer(r"#\[macro_export\]\s*macro_rules!\s*(\w+)", open(p).read()):
                    macros[m.group(1)] = module_of(p, False)
    for mod, ts in graph.items():
        new = set()
        for t in ts:
            if t.startswith("lib:"):
                n = t[4:]
                owner = reexp.get(n) or macros.get(n)
                if owner and owner != mod.split(".")[0]:
                    new.add(owner)
            else:
                new.add(t)
        graph[mod] = new
    return graph


def sccs(graph):
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def main():
    sub = "--sub" in sys.argv
    graph = edges(sub)
    if not sub:
        graph = resolve_root_reexports(graph)
    for mod in sorted(graph):
        print(f"{mod:>12} -> {', '.join(sorted(graph[mod])) or '-'}")
    bad = False
    cycles = [c for c in sccs(graph) if len(c) > 1]
    for c in cycles:
        print("cycle:", " <-> ".join(c))
    if not sub:
        for c in cycles:
            if LEAVES & set(c):
                print("error: a leaf module is in a cycle:", ", ".join(sorted(LEAVES & set(c))))
                bad = True
        for mod, allowed in ALLOWED.items():
            extra = graph.get(mod, set()) - allowed
            if extra:
                print(f"error: {mod} may name only {sorted(allowed) or 'nothing'}, names {sorted(extra)}")
                bad = True
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
