#!/usr/bin/env python3
"""Functions in src/ longer than a limit (default 80 lines), by brace matching; `#[cfg(test)]` modules
are left out. Usage: scripts/fn_lengths.py [LIMIT]. Exits 1 when any function is over the limit."""
import pathlib, re, sys

limit = int(sys.argv[1]) if len(sys.argv) > 1 else 80
root = pathlib.Path(__file__).resolve().parent.parent / "src"
fn_re = re.compile(r"^\s*(pub(\([^)]*\))?\s+)?(async\s+)?(const\s+)?(unsafe\s+)?(extern\s+\"C\"\s+)?fn\s+(\w+)")
over = []
for path in sorted(root.rglob("*.rs")):
    lines = path.read_text().splitlines()
    i, n = 0, len(lines)
    while i < n:
        if lines[i].strip().startswith("#[cfg(test)]"):
            break  # the test module runs to the end of the file in this code base
        m = fn_re.match(lines[i])
        if not m:
            i += 1
            continue
        # Find the body's opening brace, then its match (strings and chars with braces are rare here).
        depth, start, j, opened = 0, i, i, False
        while j < n:
            code = re.sub(r'"(\\.|[^"\\])*"', '""', lines[j].split("//")[0])
            code = re.sub(r"'(\\.|[^'\\])'", "''", code)
            for ch in code:
                if ch == "{":
                    depth += 1
                    opened = True
                elif ch == "}":
                    depth -= 1
            if opened and depth == 0:
                break
            if not opened and code.rstrip().endswith(";"):
                break  # a declaration without a body
            j += 1
        length = j - start + 1
        if opened and length > limit:
            over.append((length, f"{path.relative_to(root.parent)}:{start + 1}", m.group(7)))
        i = start + 1
for length, where, name in sorted(over, reverse=True):
    print(f"{length:4d}  {where}  {name}")
print(f"{len(over)} function(s) over {limit} lines")
sys.exit(1 if over else 0)
