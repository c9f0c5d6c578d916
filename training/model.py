"""The colorization network: a small fully-convolutional encoder-decoder.

Input  [N,1,H,W] raw L in 0..100 (normalised inside the model: (L-50)/50).
Output [N,313,H/4,W/4] logits over the bins of pts_in_hull (head='ce')
    or [N,2,H/4,W/4] ab (head='l2').

Layout (H=W=256 shown):
  stem    3x3 s2  1->c1           128x128   + 3x3 c1->c1
  down2   3x3 s2  c1->c2          64x64     + 3x3 c2->c2       (skip, 1/4)
  down3   3x3 s2  c2->c3          32x32
  body    n residual blocks at 1/8, each two dilated 3x3 convs (dilation 1,2,4,...)
  up      bilinear x2 to the 1/4 skip size, 1x1 c3->c4 + 1x1 skip c2->c4, add, ReLU,
          two 3x3 c4->c4
  head    1x1 c4->313 (logits) or 1x1 c4->2 (ab, scaled by 100)
Every conv is followed by BatchNorm + ReLU except the head; BN is folded at export.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

NUM_BINS = 313
L2_SCALE = 100.0


def conv_bn(cin, cout, k=3, stride=1, dilation=1, relu=True):
    pad = dilation * (k // 2)
    layers = [nn.Conv2d(cin, cout, k, stride=stride, padding=pad, dilation=dilation, bias=False),
              nn.BatchNorm2d(cout)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class ResBlock(nn.Module):
    def __init__(self, c, dilation):
        super().__init__()
        self.c1 = conv_bn(c, c, dilation=dilation)
        self.c2 = conv_bn(c, c, dilation=dilation, relu=False)

    def forward(self, x):
        return F.relu(x + self.c2(self.c1(x)))


class ColorNet(nn.Module):
    def __init__(self, head: str = "ce", c1: int = 32, c2: int = 64, c3: int = 192, c4: int = 128,
                 dilations=(1, 2, 4, 1)):
        super().__init__()
        assert head in ("ce", "l2")
        self.head_kind = head
        self.config = dict(head=head, c1=c1, c2=c2, c3=c3, c4=c4, dilations=list(dilations))
        self.stem = nn.Sequential(conv_bn(1, c1, stride=2), conv_bn(c1, c1))
        self.down2 = nn.Sequential(conv_bn(c1, c2, stride=2), conv_bn(c2, c2))
        self.down3 = conv_bn(c2, c3, stride=2)
        self.body = nn.Sequential(*[ResBlock(c3, d) for d in dilations])
        self.up_main = conv_bn(c3, c4, k=1, relu=False)
        self.up_skip = conv_bn(c2, c4, k=1, relu=False)
        self.dec = nn.Sequential(conv_bn(c4, c4), conv_bn(c4, c4))
        self.head = nn.Conv2d(c4, NUM_BINS if head == "ce" else 2, 1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
        nn.init.normal_(self.head.weight, std=0.01)
        nn.init.zeros_(self.head.bias)

    def forward(self, L: torch.Tensor) -> torch.Tensor:
        x = (L - 50.0) * (1.0 / 50.0)
        x = self.stem(x)
        s = self.down2(x)
        x = self.body(self.down3(s))
        x = F.interpolate(self.up_main(x), size=s.shape[-2:], mode="bilinear", align_corners=False)
        x = F.relu(x + self.up_skip(s))
        x = self.head(self.dec(x))
        if self.head_kind == "l2":
            x = x * L2_SCALE
        return x


def build_model(config: dict | None = None, head: str = "ce") -> ColorNet:
    cfg = dict(config or {})
    cfg.setdefault("head", head)
    return ColorNet(**cfg)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def conv_flops(model: nn.Module, h: int = 256, w: int = 256) -> float:
    """Multiply-adds x 2 of all convolutions for one [1,1,h,w] input (GFLOPs)."""
    total = 0
    hooks = []

    def hook(m, inp, out):
        nonlocal total
        k = m.weight[0].numel()  # cin/groups * kh * kw
        total += 2 * k * out.numel()

    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(hook))
    was = model.training
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 1, h, w))
    model.train(was)
    for hk in hooks:
        hk.remove()
    return total / 1e9
