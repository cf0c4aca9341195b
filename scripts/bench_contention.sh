#!/usr/bin/env bash
# Real training beside a busy process, as on a machine that is never idle. A short real run
# (`train --recipe article`, 3 epochs of 150 images per class, 2 threads on these cores) with one
# single-threaded busy loop beside it:
#  - "later": the loop starts 8 s into the run, after the process tuning chose spinning waits (the
#    machine was idle); the run's thread watch should give a thread up;
#  - "start": the loop is there from the start, so the tuning chooses passive waits.
# Prints the img/s of the batches from 7 s after the loop started, and the run's thread changes.
# Usage: bash scripts/bench_contention.sh [rounds] [DATA] [BIN...]
# (BIN: binaries to compare, alternating; default ./target/release/tumorscope)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
rounds="${1:-2}"
data="${2:-../shared/datasets/brain-tumor-mri}"
shift 2 || shift $#
bins=("$@")
if [ ${#bins[@]} -eq 0 ]; then
  cargo build --release --quiet
  bins=(./target/release/tumorscope)
fi
[ -d "$data" ] || { echo "bench_contention: $data: no such folder" >&2; exit 1; }
tmp=$(mktemp -d)
busy=
trap '[ -n "$busy" ] && kill $busy 2>/dev/null; rm -rf "$tmp"' EXIT
one() { # BIN WHEN
  local bin=$1 when=$2 d
  d=$(mktemp -d -p "$tmp")
  if [ "$when" = start ]; then python3 -c "while True: pass" & busy=$!; sleep 1; fi
  "$bin" train --recipe article --data "$data" --no-tui --epochs 3 --limit-per-class 150 \
    --runs-dir "$d" --no-tensorboard >/dev/null 2>&1 &
  local run=$!
  if [ "$when" = later ]; then sleep 8; python3 -c "while True: pass" & busy=$!; fi
  local t0; t0=$(date +%s.%N)
  wait $run
  kill $busy; wait $busy 2>/dev/null || true; busy=
  printf '%s %-6s ' "$bin" "$when"
  .venv/bin/python scripts/train_throughput.py "$d"/*/events.jsonl "$(python3 -c "print($t0 + 7)")"
}
for r in $(seq "$rounds"); do
  for when in later start; do
    for b in "${bins[@]}"; do one "$b" "$when"; done
  done
done
