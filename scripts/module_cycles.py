#!/usr/bin/env python3
"""Import cycles in src/: between top-level modules (run, config, data, model, train, report, …) and
between files. A reference is any `crate::NAME` (top level) or a path that names another file's
module. `#[cfg(test)]` modules and comments are left out. Prints each cycle; exits 1 if any."""
import pathlib, re, sys

src = pathlib.Path(__file__).resolve().parent.parent / "src"
tops = {p.stem if p.is_file() else p.name for p in src.iterdir() if (p.suffix == ".rs" or p.is_dir()) and p.stem not in ("lib", "main")}

def code(path):
    text = path.read_text()
    cut = text.find("#[cfg(test)]")
    text = text if cut < 0 else text[:cut]
    return "\n".join(l.split("//")[0] for l in text.splitlines())

def top_of(path):
    rel = path.relative_to(src).parts
    return rel[0][:-3] if rel[0].endswith(".rs") else rel[0]

def module_of(path):
    rel = list(path.relative_to(src).with_suffix("").parts)
    if rel[-1] == "mod":
        rel = rel[:-1]
    return "::".join(rel)

files = [p for p in src.rglob("*.rs") if p.name not in ("lib.rs", "main.rs")]
mods = {module_of(p): p for p in files}
top_edges, file_edges = {}, {}
for p in files:
    c, me = code(p), module_of(p)
    for t in set(re.findall(r"crate::(\w+)", c)):
        if t in tops and t != top_of(p):
            top_edges.setdefault(top_of(p), set()).add(t)
    # file-level: crate::a::b paths and super::x siblings
    parent = me.rsplit("::", 1)[0] if "::" in me else ""
    if p.name == "mod.rs":
        parent = me
    targets = set()
    for path in re.findall(r"crate::((?:\w+::)*\w+)", c):
        parts = path.split("::")
        for k in range(len(parts), 0, -1):
            cand = "::".join(parts[:k])
            if cand in mods:
                targets.add(cand)
                break
    for name in re.findall(r"\bsuper::(\w+)", c):
        base = me.rsplit("::", 1)[0] if p.name != "mod.rs" else me.rsplit("::", 1)[0] if "::" in me else ""
        cand = f"{base}::{name}" if base else name
        if cand in mods:
            targets.add(cand)
    for t in targets:
        if t != me and not me.startswith(t + "::") and not t.startswith(me + "::"):
            file_edges.setdefault(me, set()).add(t)

def cycles(edges):
    found, seen = [], set()
    def dfs(node, stack, on):
        for n in sorted(edges.get(node, ())):
            if n in on:
                cyc = stack[stack.index(n):] + [n]
                key = frozenset(cyc)
                if key not in seen:
                    seen.add(key)
                    found.append(cyc)
            elif len(stack) < 12:
                dfs(n, stack + [n], on | {n})
    for start in sorted(edges):
        dfs(start, [start], {start})
    return found

bad = 0
for label, edges in (("module", top_edges), ("file", file_edges)):
    for c in cycles(edges):
        print(f"{label} cycle: {' -> '.join(c)}")
        bad += 1
print(f"{bad} cycle(s)")
sys.exit(1 if bad else 0)
