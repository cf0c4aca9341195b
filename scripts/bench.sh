#!/usr/bin/env bash
# Throughput side by side, same machine, same run: PyTorch (Python) reference vs tumorscope (tch),
# EfficientNet-Lite0, 150 px, batch 32, Adam, TF-SAME padding, channels-last. Prints both JSON lines
# and the ratios. Usage: bash scripts/bench.sh [rounds]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
rounds="${1:-3}"
baseline="${PYTORCH_BASELINE:-../shared/bench/pytorch_baseline.py}"
[ -f "$baseline" ] || { echo "bench: $baseline not found (set PYTORCH_BASELINE)" >&2; exit 1; }
cargo build --release --quiet
tmp=$(mktemp -d)
for i in $(seq "$rounds"); do
  .venv/bin/python "$baseline" --tf-same --channels-last --steps 8 | tee -a "$tmp/py"
  ./target/release/tumorscope bench --steps 8 | tee -a "$tmp/rs"
done
.venv/bin/python - "$tmp/py" "$tmp/rs" <<'PY'
import json, sys, statistics as st
py = [json.loads(l) for l in open(sys.argv[1])]
rs = [json.loads(l) for l in open(sys.argv[2])]
for k in ("train_img_per_s", "infer_img_per_s"):
    a, b = st.median(x[k] for x in py), st.median(x[k] for x in rs)
    print(f"{k}: pytorch {a:.1f}  tumorscope {b:.1f}  ratio {b / a:.2f}x (median of {len(py)})")
PY
