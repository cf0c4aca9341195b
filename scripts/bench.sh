#!/usr/bin/env bash
# Throughput side by side, same machine, same run: PyTorch (Python) reference vs tumorscope (tch),
# EfficientNet-Lite0, 150 px, batch 32, Adam, TF-SAME padding, channels-last. Prints both JSON lines
# and the ratios: the median of the rounds, the spread (min–max) of each side and of the per-round
# ratio. The two alternate round by round, so a noisy neighbour hits both. Usage: bash scripts/bench.sh
# [rounds] (default 5; each round warms up before it measures).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
rounds="${1:-5}"
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
    a = [x[k] for x in py]
    b = [x[k] for x in rs]
    r = [y / x for x, y in zip(a, b)]
    print(f"{k}: pytorch {st.median(a):.1f} ({min(a):.1f}-{max(a):.1f})  tumorscope {st.median(b):.1f} ({min(b):.1f}-{max(b):.1f})"
          f"  ratio {st.median(b) / st.median(a):.2f}x, per round {st.median(r):.2f}x ({min(r):.2f}-{max(r):.2f}), {len(a)} rounds")
if "gradcam_s_median" in rs[0]:
    g = [x["gradcam_s_median"] for x in rs]
    print(f"gradcam_s: tumorscope {st.median(g):.4f} ({min(g):.4f}-{max(g):.4f}) per image, EfficientNet-Lite0 at 150 px")
PY
