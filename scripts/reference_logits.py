#!/usr/bin/env python3
"""Reference ImageNet logits and Grad-CAM of EfficientNet-Lite0 from PyTorch, for the Rust tests.

Builds the network (TF-SAME padding, ReLU6, no SE) in PyTorch, loads the converted safetensors weights,
feeds one fixed, deterministic 224x224 image scaled as (x - 127) / 128, and writes the input and the
1000 logits to a safetensors file that the Rust test reads back, with the plain Grad-CAM of the top
class on the head convolution's activations (gradient of the class logit, spatially averaged, weights
the channels; ReLU; scaled to a maximum of 1).
"""
import argparse, math
import torch
from torch import nn
from safetensors.torch import load_file, save_file

STAGES = [(1, 3, 1, 32, 16, 1), (6, 3, 2, 16, 24, 2), (6, 5, 2, 24, 40, 2), (6, 3, 2, 40, 80, 3),
          (6, 5, 1, 80, 112, 3), (6, 5, 2, 112, 192, 4), (6, 3, 1, 192, 320, 1)]


class SameConv(nn.Conv2d):
    def forward(self, x):
        ih, iw = x.shape[-2:]
        k, s = self.kernel_size[0], self.stride[0]
        ph = max((-(-ih // s) - 1) * s + k - ih, 0)
        pw = max((-(-iw // s) - 1) * s + k - iw, 0)
        x = nn.functional.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])
        return super().forward(x)


def conv(cin, cout, k, s=1, groups=1):
    return SameConv(cin, cout, k, s, 0, groups=groups, bias=False)


def bn(c):
    return nn.BatchNorm2d(c, momentum=0.01, eps=1e-3)


class Block(nn.Module):
    def __init__(self, e, k, s, cin, cout):
        super().__init__()
        mid = cin * e
        self.expand = e != 1
        if self.expand:
            self._expand_conv, self._bn0 = conv(cin, mid, 1), bn(mid)
        self._depthwise_conv, self._bn1 = conv(mid, mid, k, s, groups=mid), bn(mid)
        self._project_conv, self._bn2 = conv(mid, cout, 1), bn(cout)
        self.residual = s == 1 and cin == cout

    def forward(self, x):
        y = nn.functional.relu6(self._bn0(self._expand_conv(x))) if self.expand else x
        y = nn.functional.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.residual else y


class Lite0(nn.Module):
    def __init__(self):
        super().__init__()
        self._conv_stem, self._bn0 = conv(3, 32, 3, 2), bn(32)
        blocks = []
        for e, k, s, cin, cout, r in STAGES:
            for i in range(r):
                blocks.append(Block(e, k, s if i == 0 else 1, cin if i == 0 else cout, cout))
        self._blocks = nn.ModuleList(blocks)
        self._conv_head, self._bn1 = conv(320, 1280, 1), bn(1280)
        self._fc = nn.Linear(1280, 1000)

    def conv_features(self, x):
        x = nn.functional.relu6(self._bn0(self._conv_stem(x)))
        for b in self._blocks:
            x = b(x)
        return nn.functional.relu6(self._bn1(self._conv_head(x)))

    def forward(self, x):
        return self._fc(self.conv_features(x).mean((2, 3)))


def grad_cam(m, x):
    with torch.enable_grad():
        fmap = m.conv_features(x).detach().requires_grad_(True)
        logits = m._fc(fmap.mean((2, 3)))
        cls = int(logits.argmax())
        (grad,) = torch.autograd.grad(logits[0, cls], fmap)
        cam = torch.relu((grad.mean((2, 3), keepdim=True) * fmap).sum(1))[0].detach()
    if cam.max() > 0:
        cam = cam / cam.max()
    return cls, cam


def fixed_image(size=224):
    """A deterministic, structured 0..255 RGB image (no file needed)."""
    h = torch.arange(size, dtype=torch.float64).view(size, 1)
    w = torch.arange(size, dtype=torch.float64).view(1, size)
    chans = [127.5 + 120 * torch.sin(0.05 * h * (c + 1) + 0.07 * w) * torch.cos(0.03 * (w - h) * (c + 1)) for c in range(3)]
    return torch.stack(chans).round().clamp(0, 255).float().unsqueeze(0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    torch.set_grad_enabled(False)
    m = Lite0().eval()
    sd = load_file(a.weights)
    missing, unexpected = m.load_state_dict(sd, strict=False)
    assert not missing and not unexpected, (missing, unexpected)
    x = (fixed_image() - 127.0) / 128.0
    logits = m(x)
    cls, cam = grad_cam(m, x)
    save_file({"input": x.contiguous(), "logits": logits.contiguous(), "cam": cam.contiguous(),
               "cam_class": torch.tensor([cls], dtype=torch.int64)}, a.out)
    print(f"reference_logits: top-1 class {int(logits.argmax())}, logit {float(logits.max()):.4f} -> {a.out}")


if __name__ == "__main__":
    main()
