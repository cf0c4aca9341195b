#!/usr/bin/env bash
# GPU figures, side by side on one CUDA machine: for each precision (f32, --amp bf16, --amp fp16),
#  - the training step and inference of `tumorscope bench --device cuda` vs PyTorch's fast GPU path
#    (scripts/pytorch_cuda_bench.py: channels-last, cudnn.benchmark, autocast, GradScaler for fp16;
#    Adam multi-tensor and fused), the three alternating round by round;
#  - real training throughput: `tumorscope train --device cuda` for 2 epochs of 300 images per class of
#    DATA (augmentation, batch workers, events), as a share of the pure step.
# Prints medians, spreads and ratios.
# Usage: bash scripts/bench_gpu.sh [rounds] [DATA]   (default 3 rounds, ../shared/datasets/brain-tumor-mri)
# Environment: TUMORSCOPE_BIN (default: build ./target/release/tumorscope), PYTHON (default .venv/bin/python),
# PYTORCH_BASELINE (default ../shared/bench/pytorch_baseline.py).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
rounds="${1:-3}"
data="${2:-../shared/datasets/brain-tumor-mri}"
baseline="${PYTORCH_BASELINE:-../shared/bench/pytorch_baseline.py}"
py="${PYTHON:-.venv/bin/python}"
[ -f "$baseline" ] || { echo "bench_gpu: $baseline not found (set PYTORCH_BASELINE)" >&2; exit 1; }
[ -d "$data" ] || { echo "bench_gpu: $data: no such folder (give the dataset as the second argument)" >&2; exit 1; }
if [ -z "${TUMORSCOPE_BIN:-}" ]; then
  cargo build --release --quiet
fi
ts="${TUMORSCOPE_BIN:-./target/release/tumorscope}"
"$ts" bench --device cuda --steps 2 >/dev/null || { echo "bench_gpu: tumorscope sees no CUDA device" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for i in $(seq "$rounds"); do
  for amp in off bf16 fp16; do
    "$py" scripts/pytorch_cuda_bench.py --baseline "$baseline" --amp "$amp" | tee -a "$tmp/py-$amp"
    "$py" scripts/pytorch_cuda_bench.py --baseline "$baseline" --amp "$amp" --fused | tee -a "$tmp/pyf-$amp"
    "$ts" bench --device cuda --amp "$amp" --steps 50 | tee -a "$tmp/rs-$amp"
    rm -rf "$tmp/real"
    "$ts" train --device cuda --amp "$amp" --recipe article --data "$data" --no-tui --epochs 2 --limit-per-class 300 \
        --runs-dir "$tmp/real" --no-tensorboard >/dev/null 2>&1
    "$py" scripts/train_throughput.py "$tmp"/real/*/events.jsonl | tee -a "$tmp/real-$amp"
  done
done
"$py" - "$tmp" <<'PY'
import json, sys, statistics as st
d = sys.argv[1]
rd = lambda f: [json.loads(l) for l in open(f"{d}/{f}")]
print(f"\n{len(rd('rs-off'))} rounds on {rd('py-off')[0]['device']} (torch {rd('py-off')[0]['torch']}); medians (min-max), img/s")
def cell(v):
    return f"{st.median(v):8.1f} ({min(v):.1f}-{max(v):.1f})"
for amp in ["off", "bf16", "fp16"]:
    py, pyf, rs, real = rd(f"py-{amp}"), rd(f"pyf-{amp}"), rd(f"rs-{amp}"), rd(f"real-{amp}")
    # Inference: tumorscope's folded network in f32, or in bf16 (`eval --bf16`); it has no fp16 inference.
    for what, ours in [("train", "train_img_per_s"), ("infer", {"off": "infer_img_per_s", "bf16": "infer_bf16_img_per_s"}.get(amp))]:
        if ours is None:
            continue
        k = f"{what}_img_per_s"
        a, b, c = [x[k] for x in py], [x[k] for x in pyf], [x[ours] for x in rs]
        print(f"{amp:<5} {what:<6} pytorch {cell(a)}  pytorch fused-adam {cell(b)}  tumorscope {cell(c)}"
              f"  ratio {st.median(c) / st.median(a):.2f}x / {st.median(c) / st.median(b):.2f}x")
    r = [x["real_train_img_per_s"] for x in real]
    print(f"{amp:<5} real training {cell(r)} = {st.median(r) / st.median([x['train_img_per_s'] for x in rs]):.2f} of the pure step")
PY
