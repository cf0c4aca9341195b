#!/usr/bin/env bash
# The test command (README and .ci/run run exactly this): set up once, then the whole test suite.
# Tests that need real MRI read the folder from TUMORSCOPE_TEST_DATA and say SKIPPED without it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
if ! command -v tmux >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "test: installing tmux for the end-to-end dashboard test"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tmux >/dev/null
  else
    echo "test: tmux is missing (the end-to-end dashboard test needs it): install it and rerun" >&2
    exit 1
  fi
fi
# The Slurm test starts a one-node cluster here (installing slurm-wlm and munge when root).
bash scripts/slurm-local.sh || true
cargo test
