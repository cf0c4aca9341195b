#!/usr/bin/env bash
# Does the dashboard slow training? Trains the same short job with --no-tui and with the TUI (in a
# tmux pseudo-terminal), alternating, and compares the trainer's own img/s from events.jsonl.
# Usage: bash scripts/bench_tui.sh DATA_DIR [rounds]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
data="${1:?usage: bench_tui.sh DATA_DIR [rounds]}"
rounds="${2:-2}"
cargo build --release --quiet
bin="$PWD/target/release/tumorscope"
out=$(mktemp -d)
args="--data $data --limit-per-class 96 --epochs 3 --no-early-stopping --seed 1"
for i in $(seq "$rounds"); do
  "$bin" train $args --no-tui --runs-dir "$out/plain" > /dev/null
  tmux new-session -d -s tsbench -x 100 -y 30 "TUMORSCOPE_IMAGES=halfblocks $bin train $args --runs-dir $out/tui"
  # Leave the dashboard on its busiest view while it trains; quit from the summary.
  sleep 5; tmux send-keys -t tsbench 1
  until grep -q '"event":"finished"' "$out"/tui/*/events.jsonl 2>/dev/null && [ "$(ls "$out"/tui | wc -l)" -ge "$i" ] && \
        [ "$(grep -l '"event":"finished"' "$out"/tui/*/events.jsonl | wc -l)" -ge "$i" ]; do sleep 1; done
  tmux send-keys -t tsbench q; sleep 1; tmux kill-session -t tsbench 2>/dev/null || true
done
.venv/bin/python - "$out" <<'PY'
import json, sys, glob, statistics as st
def rates(kind):
    v = []
    for f in glob.glob(f"{sys.argv[1]}/{kind}/*/events.jsonl"):
        v += [e["metrics"]["img_per_s"] for e in map(json.loads, open(f)) if e.get("event") == "epoch_end"]
    return v
plain, tui = rates("plain"), rates("tui")
a, b = st.median(plain), st.median(tui)
print(f"train img/s  --no-tui {a:.2f}  TUI {b:.2f}  ratio {b / a:.3f} ({len(plain)} vs {len(tui)} epochs)")
PY
