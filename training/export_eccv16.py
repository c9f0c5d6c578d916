"""Export the official ECCV16 colorization network (Zhang, Isola, Efros 2016) to the
service's 313-logit model contract.

The architecture is written here from the paper (conv1..conv8 of the VGG-style network with
BatchNorm after each block, dilation 2 in conv5/conv6, a stride-2 deconvolution in conv8, a
1x1 conv to 313 bins). Module names follow the published PyTorch port (model1..model8,
model_out) so its state_dict loads with --weights (e.g. colorization_release_v2-9b330a0b.pth,
downloaded by the user; this script never downloads anything). Without --weights the network
is randomly initialised (for tests).

Exported graph: input `L` [N,1,H,W] raw L 0..100 -> (L - 50) / 100 (in the graph, as the
reference) -> conv1..conv8 -> output `logits` [N,313,H/4,W/4], i.e. the conv8_313 values
BEFORE the reference's softmax; no 2.606 factor is applied: the service's annealed-mean
decoder divides by T (T = 0.38 ~ 1/2.606). model_out (the 313->2 expectation conv) and the
x4 upsampling are not part of the export: the service decodes and upsamples itself.

Caution on the released PyTorch weights: the reference PyTorch forward is
softmax(conv8_313) . centres, i.e. our decoder at T = 1 over this output. If a release has the
Caffe model's 2.606 rescale folded into model8's last conv, then T = 1.0 reproduces the
reference exactly; write that into the metadata with --temperature 1.0.

  python training/export_eccv16.py --out /tmp/eccv16.onnx                      (random weights)
  python training/export_eccv16.py --weights colorization_release_v2-9b330a0b.pth --out models/eccv16.onnx
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import torch
import torch.nn as nn

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _block(cin, cout, n, stride_last=1, dilation=1, bn=True):
    layers = []
    for i in range(n):
        s = stride_last if i == n - 1 else 1
        layers += [nn.Conv2d(cin if i == 0 else cout, cout, 3, stride=s, padding=dilation, dilation=dilation, bias=True),
                   nn.ReLU(True)]
    if bn:
        layers.append(nn.BatchNorm2d(cout))
    return nn.Sequential(*layers)


class ECCV16(nn.Module):
    """conv1 (2 convs, /2) conv2 (2, /2) conv3 (3, /2) conv4 (3) conv5 (3, dil 2) conv6 (3, dil 2)
    conv7 (3) conv8 (deconv x2 + 2 convs) + 1x1 -> 313. Output: 313 logits at 1/4 resolution."""

    def __init__(self):
        super().__init__()
        self.model1 = _block(1, 64, 2, stride_last=2)
        self.model2 = _block(64, 128, 2, stride_last=2)
        self.model3 = _block(128, 256, 3, stride_last=2)
        self.model4 = _block(256, 512, 3)
        self.model5 = _block(512, 512, 3, dilation=2)
        self.model6 = _block(512, 512, 3, dilation=2)
        self.model7 = _block(512, 512, 3)
        self.model8 = nn.Sequential(
            nn.ConvTranspose2d(512, 256, 4, stride=2, padding=1, bias=True), nn.ReLU(True),
            nn.Conv2d(256, 256, 3, padding=1, bias=True), nn.ReLU(True),
            nn.Conv2d(256, 256, 3, padding=1, bias=True), nn.ReLU(True),
            nn.Conv2d(256, 313, 1, bias=True))
        # kept so that the published state_dict (which has model_out.weight) loads strictly;
        # not used in the exported graph (the service decodes the 313 logits itself)
        self.model_out = nn.Conv2d(313, 2, 1, bias=False)

    def forward(self, L):
        x = (L - 50.0) / 100.0
        for m in (self.model1, self.model2, self.model3, self.model4, self.model5, self.model6,
                  self.model7, self.model8):
            x = m(x)
        return x


def load_weights(model: ECCV16, path: str) -> None:
    sd = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(sd, dict) and "state_dict" in sd:
        sd = sd["state_dict"]
    sd = {k.replace("module.", "", 1): v for k, v in sd.items()}
    missing, unexpected = model.load_state_dict(sd, strict=False)
    if missing or unexpected:
        raise SystemExit(f"weights do not match the ECCV16 architecture: missing {missing}, unexpected {unexpected}")


def export(out: str, weights: str | None = None, temperature: float = 0.38, input_size: int = 256,
           weights_dtype: str = "fp16", seed: int = 0) -> dict:
    import onnx
    from training.export import (set_metadata, torch_to_onnx_bytes, weights_to_fp16,
                                 format_temperature, verify_onnx)
    torch.manual_seed(seed)
    model = ECCV16().eval()
    trained = weights is not None
    if trained:
        load_weights(model, weights)
    model.model_out = nn.Identity()  # not exported
    folded = fold_batchnorm_after_relu(model)
    m = onnx.load_from_string(torch_to_onnx_bytes(folded, "logits", sample_hw=(64, 64)))
    if weights_dtype == "fp16":
        m = weights_to_fp16(m)
    m.producer_name = "colorizer-training/export_eccv16"
    set_metadata(m, {
        "name": "eccv16" if trained else "eccv16-random",
        "description": ("Official ECCV16 colorization network (Zhang et al. 2016)" +
                        (f", weights {os.path.basename(weights)}" if trained else ", RANDOM weights (test only)")),
        "temperature": format_temperature(temperature), "input_size": str(input_size),
        "trained": "true" if trained else "false", "output": "logits313"})
    onnx.checker.check_model(m)
    onnx.save_model(m, out, save_as_external_data=False)
    return {"path": out, "bytes": os.path.getsize(out), **verify_onnx(out, folded, hw=(64, 96))}


def fold_batchnorm_after_relu(model: nn.Module) -> nn.Module:
    """ECCV16 puts BatchNorm AFTER the last ReLU of each block (conv, relu, ..., bn), so it
    cannot be folded into the preceding conv; folding it into the next conv would be inexact
    at zero-padded borders. It is exported as its eval-mode per-channel affine (Mul + Add)."""
    import copy
    m = copy.deepcopy(model).eval()
    for name in ("model1", "model2", "model3", "model4", "model5", "model6", "model7"):
        seq = getattr(m, name)
        layers = list(seq)
        bn = layers[-1]
        assert isinstance(bn, nn.BatchNorm2d)
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        shift = bn.bias - bn.running_mean * scale
        layers[-1] = _Affine(scale.detach(), shift.detach())
        setattr(m, name, nn.Sequential(*layers))
    return m


class _Affine(nn.Module):
    def __init__(self, scale, shift):
        super().__init__()
        self.register_buffer("scale", scale.view(1, -1, 1, 1))
        self.register_buffer("shift", shift.view(1, -1, 1, 1))

    def forward(self, x):
        return x * self.scale + self.shift


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", help="published PyTorch state_dict (.pth); random init without it")
    ap.add_argument("--out", required=True)
    ap.add_argument("--temperature", type=float, default=0.38)
    ap.add_argument("--input-size", type=int, default=256, help="the reference runs at 256x256")
    ap.add_argument("--weights-dtype", choices=["fp16", "fp32"], default="fp16")
    a = ap.parse_args(argv)
    print(json.dumps(export(a.out, a.weights, a.temperature, a.input_size, a.weights_dtype), indent=1))


if __name__ == "__main__":
    main()
