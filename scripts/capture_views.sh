#!/usr/bin/env bash
# Text captures of every dashboard view for a run folder (README screenshots): follows the run with
# `tumorscope watch` in a 100x32 tmux pane and prints each view.  Usage: scripts/capture_views.sh RUN
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
run="${1:?usage: capture_views.sh RUN}"
bin="${TUMORSCOPE_BIN:-./target/release/tumorscope}"
tmux kill-session -t tscap 2>/dev/null || true
tmux new-session -d -s tscap -x 100 -y 32 "TUMORSCOPE_IMAGES=halfblocks $bin watch $run; sleep 5"
sleep 3
for v in 1 2 3 4 5; do
  tmux send-keys -t tscap "$v"; sleep 1
  if [ "$v" = 3 ]; then tmux send-keys -t tscap f; sleep 1; fi
  echo "----- view $v -----"
  tmux capture-pane -p -t tscap
done
tmux send-keys -t tscap q
