#!/usr/bin/env python3
"""PyTorch's training step and inference for the same network on a GPU, for side-by-side ratios with
`tumorscope bench --device cuda`. The network is ../shared/bench/pytorch_baseline.py's EfficientNet-Lite0
(TF-SAME padding, 4-class head), run the fast way on a GPU: channels-last, cudnn.benchmark, autocast in
bf16 or fp16 (fp16 with GradScaler), Adam (PyTorch's default multi-tensor one, or --fused). Each step
reads its loss back, as tumorscope's trainer does once per batch. Inference (under the same autocast):
the median batch, each read back. Prints one JSON line.

    python3 scripts/pytorch_cuda_bench.py --baseline ../shared/bench/pytorch_baseline.py [--amp bf16|fp16] [--fused]
"""
import argparse, importlib.util, json, statistics, time
import torch
from torch import nn


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--baseline", required=True, help="pytorch_baseline.py (for its Lite0)")
    p.add_argument("--size", type=int, default=150)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--amp", choices=["off", "bf16", "fp16"], default="off")
    p.add_argument("--fused", action="store_true", help="Adam(fused=True)")
    a = p.parse_args()
    spec = importlib.util.spec_from_file_location("pytorch_baseline", a.baseline)
    base = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(base)
    base.TF_SAME = True
    torch.backends.cudnn.benchmark = True
    dev = torch.device("cuda")
    torch.manual_seed(0)
    m = base.Lite0(4).to(dev).to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(m.parameters(), 1e-3, fused=a.fused or None)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(a.amp)
    scaler = torch.amp.GradScaler("cuda", enabled=a.amp == "fp16")
    x = torch.randn(a.batch, 3, a.size, a.size, device=dev).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 4, (a.batch,), device=dev)

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=dtype or torch.float16, enabled=dtype is not None):
            loss = nn.functional.cross_entropy(m(x), y)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        return loss.item()

    m.train()
    for _ in range(10):
        step()
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(a.steps):
        step()
    train = a.steps * a.batch / (time.perf_counter() - t)
    m.eval()
    times = []
    with torch.inference_mode(), torch.autocast("cuda", dtype=dtype or torch.float16, enabled=dtype is not None):
        for i in range(a.steps * 4 + 3):
            t = time.perf_counter()
            m(x)[0, 0].item()
            if i >= 3:
                times.append(time.perf_counter() - t)
    infer = a.batch / statistics.median(times)
    print(json.dumps({"impl": "pytorch-python", "device": torch.cuda.get_device_name(), "torch": torch.__version__,
                      "amp": a.amp, "fused_adam": a.fused, "size": a.size, "batch": a.batch, "channels_last": True,
                      "train_img_per_s": round(train, 1), "infer_img_per_s": round(infer, 1)}))


if __name__ == "__main__":
    main()
