#!/usr/bin/env bash
# Every performance figure, side by side on this machine, in one run:
#  - train step and inference throughput: PyTorch (Python) reference vs tumorscope (tch), EfficientNet-Lite0,
#    150 px, batch 32, Adam, TF-SAME padding, channels-last. The two alternate round by round, so a noisy
#    neighbour hits both; each round warms up before it measures.
#  - the step with the stem and first 3 stages frozen (what the default recipe trains), vs the full step;
#  - real training throughput: a short real `tumorscope train --recipe article` on DATA (the full
#    network, as the pure step; augmentation, the batch worker, events; from its events.jsonl), in the
#    same rounds, as a share of the pure step;
#  - ingest: every JPEG of DATA decoded and resized to 150 px (tumorscope on all cores, no cache) vs the
#    article's one-at-a-time OpenCV loop, alternating (page cache warm for both);
#  - `predict` of one image, whole process (start, load, infer), median of the rounds;
#  - inference spread over the cores (eval's path: one share of each batch per core, one thread each)
#    beside the one-pass figure;
#  - inference with the folded network in bf16 (`eval --bf16`, `predict --bf16`) vs the folded f32 one;
#  - peak RSS of the short training run (the full run's peak is in README).
# Prints the median, the spread (min–max) and the ratios.
# Usage: bash scripts/bench.sh [rounds] [DATA] (default 5 rounds, ../shared/datasets/brain-tumor-mri).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
rounds="${1:-5}"
data="${2:-../shared/datasets/brain-tumor-mri}"
baseline="${PYTORCH_BASELINE:-../shared/bench/pytorch_baseline.py}"
[ -f "$baseline" ] || { echo "bench: $baseline not found (set PYTORCH_BASELINE)" >&2; exit 1; }
[ -d "$data" ] || { echo "bench: $data: no such folder (give the dataset as the second argument)" >&2; exit 1; }
.venv/bin/python -c "import cv2" 2>/dev/null || .venv/bin/python -m pip install --quiet --disable-pip-version-check opencv-python-headless
cargo build --release --quiet
ts=./target/release/tumorscope
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# A small run to predict with, and the real-training job: 2 epochs of 150 images per class.
"$ts" train --data "$data" --no-tui --epochs 2 --limit-per-class 150 --runs-dir "$tmp/pred" --no-tensorboard >/dev/null 2>&1
runs=("$tmp"/pred/*/)
run="${runs[0]}"
one=$(find "$data" -iname '*.jpg' -print -quit)
for i in $(seq "$rounds"); do
  .venv/bin/python "$baseline" --tf-same --channels-last --steps 8 | tee -a "$tmp/py"
  "$ts" bench --steps 8 | tee -a "$tmp/rs"
  "$ts" bench --steps 8 --freeze-stages 3 | tee -a "$tmp/frozen"
  rm -rf "$tmp/real"
  /usr/bin/time -f '{"peak_rss_kb": %M}' -a -o "$tmp/rss.jsonl" "$ts" train --recipe article --data "$data" --no-tui --epochs 2 \
      --limit-per-class 150 --runs-dir "$tmp/real" --no-tensorboard >/dev/null 2>&1
  .venv/bin/python scripts/train_throughput.py "$tmp"/real/*/events.jsonl | tee -a "$tmp/real.jsonl"
  .venv/bin/python scripts/ingest_opencv.py "$data" | tee -a "$tmp/cv"
  "$ts" bench --ingest "$data" | tee -a "$tmp/ingest"
  /usr/bin/time -f '{"predict_s": %e}' -a -o "$tmp/predict" "$ts" predict --run "$run" --no-image "$one" >/dev/null
done
.venv/bin/python - "$tmp" <<'PY'
import json, sys, statistics as st
d = sys.argv[1]
rd = lambda f: [json.loads(l) for l in open(f"{d}/{f}")]
py, rs, real, cv, ing, pr, rss = rd("py"), rd("rs"), rd("real.jsonl"), rd("cv"), rd("ingest"), rd("predict"), rd("rss.jsonl")
fr = rd("frozen")
def row(name, a, b, what):
    r = [y / x for x, y in zip(a, b)]
    print(f"{name:<18} {what[0]} {st.median(a):8.1f} ({min(a):.1f}-{max(a):.1f})   {what[1]} {st.median(b):8.1f} ({min(b):.1f}-{max(b):.1f})"
          f"   ratio {st.median(b) / st.median(a):.2f}x, per round {st.median(r):.2f}x ({min(r):.2f}-{max(r):.2f})")
print(f"\n{len(py)} rounds; medians (min-max)")
row("train img/s", [x["train_img_per_s"] for x in py], [x["train_img_per_s"] for x in rs], ("pytorch", "tumorscope"))
row("inference img/s", [x["infer_img_per_s"] for x in py], [x["infer_img_per_s"] for x in rs], ("pytorch", "tumorscope"))
sp = [(p, x) for p, x in zip(py, rs) if x.get("infer_spread_img_per_s")]
if sp:
    row("inference, spread", [p["infer_img_per_s"] for p, _ in sp], [x["infer_spread_img_per_s"] for _, x in sp], ("pytorch", "tumorscope"))
row("3 stages frozen", [x["train_img_per_s"] for x in rs], [x["train_img_per_s"] for x in fr], ("full step", "frozen step"))
row("real/pure train", [x["train_img_per_s"] for x in rs], [x["real_train_img_per_s"] for x in real], ("pure step", "real run"))
row("ingest img/s", [x["ingest_img_per_s"] for x in cv], [x["ingest_img_per_s"] for x in ing], ("opencv loop", "tumorscope"))
unf = [x["infer_unfolded_img_per_s"] for x in rs if "infer_unfolded_img_per_s" in x]
if unf:
    row("BN folding", unf, [x["infer_img_per_s"] for x in rs], ("unfolded", "folded"))
bf = [x for x in rs if x.get("infer_bf16_img_per_s")]
if bf:
    row("bf16 inference", [x["infer_img_per_s"] for x in bf], [x["infer_bf16_img_per_s"] for x in bf], ("folded f32", "folded bf16"))
p = [x["predict_s"] for x in pr]
print(f"{'predict, 1 image':<18} whole process {st.median(p):.3f} s ({min(p):.3f}-{max(p):.3f})")
m = [x["peak_rss_kb"] / 1024 for x in rss]
print(f"{'peak RSS':<18} short real run {st.median(m):.0f} MB ({min(m):.0f}-{max(m):.0f})")
g = [x["gradcam_s_median"] for x in rs]
print(f"{'Grad-CAM':<18} {st.median(g):.4f} s per image ({min(g):.4f}-{max(g):.4f})")
PY
