"""Turn an exported ONNX model back into a trainable checkpoint (the inverse of training.export).

The export folds every BatchNorm into its convolution, stores the weights as float16 and moves
the head bias by the prior correction. This rebuilds the network from the file's
`colorizer.arch`, loads every initializer by name into the folded network (every weight of the
network must be in the file; the graph's other constants are not weights), and unfolds it: each conv keeps the folded weight and its
BatchNorm gets running mean m and variance v, gamma sqrt(v + eps) and beta (folded bias + m), so
in eval mode the network computes exactly what the ONNX file computes, for any m and v. m and v
are set to the statistics of each conv's output on calibration photos (with simulated hints for
a hint model, as in training), so in train mode, where a BatchNorm normalises with the batch's
own statistics, the network also starts close to the file. The head bias gets the prior
correction back (+ alpha * log w), with w the rebalancing weights of the given prior.

  python -m training.unfold --onnx models/colorizer-guided.onnx --calib PHOTOS/general/train \
      --prior-data SHARDS/part_000.npz --out init.pt        # then: training.train --init init.pt

The prior: `--prior FILE.npy`, or the empirical prior of `--prior-data` (smoothed as training
does). Exporting the result again with the same prior correction gives back the file's outputs
(float16 rounding aside); a different prior than the one the file was trained with only shifts
the starting head bias by alpha * (log w_new - log w_old), which fine-tuning absorbs.
"""
from __future__ import annotations

import argparse
import json

import numpy as np
import onnx
import torch
import torch.nn as nn
from onnx import numpy_helper

from .bins import SoftEncoder, load_pts
from .export import apply_prior_correction, fold_batchnorm, read_metadata
from .model import build_model


def conv_pairs(orig: nn.Module, folded: nn.Module):
    """Yield (conv, batchnorm or None, folded conv) over `orig`, walking it exactly as
    export.fold_batchnorm walks it (Conv2d -> BatchNorm2d pairs inside nn.Sequential fuse)."""
    def seq(o: nn.Sequential, f: nn.Sequential):
        lo, lf = list(o), list(f)
        i = j = 0
        while i < len(lo):
            if isinstance(lo[i], nn.Sequential):
                yield from seq(lo[i], lf[j])
                i += 1
            elif (isinstance(lo[i], nn.Conv2d) and i + 1 < len(lo)
                  and isinstance(lo[i + 1], nn.BatchNorm2d)):
                yield lo[i], lo[i + 1], lf[j]
                i += 2
            else:
                yield from visit(lo[i], lf[j])
                i += 1
            j += 1
        if j != len(lf):
            raise RuntimeError(f"folded sequence has {len(lf)} layers, walked {j}")

    def visit(o: nn.Module, f: nn.Module):
        if isinstance(o, nn.Conv2d):
            yield o, None, f
            return
        for name, co in o.named_children():
            cf = getattr(f, name)
            yield from (seq(co, cf) if isinstance(co, nn.Sequential) else visit(co, cf))

    yield from visit(orig, folded)


def load_onnx_weights(path: str) -> tuple[nn.Module, nn.Module, dict]:
    """(unfolded model with BN at identity statistics, the folded model, metadata)."""
    meta = read_metadata(path)
    if "colorizer.arch" not in meta:
        raise SystemExit(f"{path}: no colorizer.arch metadata (not exported by training.export)")
    config = json.loads(meta["colorizer.arch"])
    model = build_model(config).eval()
    folded = fold_batchnorm(model)
    m = onnx.load(path)
    arrays = {}
    for init in m.graph.initializer:
        name = init.name[:-len("__fp16")] if init.name.endswith("__fp16") else init.name
        arrays[name] = torch.from_numpy(numpy_helper.to_array(init).astype(np.float32))
    for node in m.graph.node:   # the exporter shares equal weights (e.g. two zero biases) through Identity
        if node.op_type == "Identity" and node.input[0] in arrays:
            arrays[node.output[0]] = arrays[node.input[0]]
    want = folded.state_dict()
    missing = sorted(set(want) - set(arrays))
    if missing:
        raise SystemExit(f"{path}: weights missing from the file: {missing[:5]} ...")
    folded.load_state_dict({k: arrays[k].reshape(want[k].shape) for k in want}, strict=True)
    with torch.no_grad():
        for conv, bn, fused in conv_pairs(model, folded):
            conv.weight.copy_(fused.weight)
            fb = folded_bias(fused)
            if bn is None:
                if conv.bias is not None:
                    conv.bias.copy_(fb)
                continue
            if conv.bias is not None:
                conv.bias.zero_()
            set_bn(bn, fb, torch.zeros_like(fb), torch.ones_like(fb))
    return model, folded, meta


def folded_bias(fused: nn.Conv2d) -> torch.Tensor:
    return fused.bias if fused.bias is not None else torch.zeros(fused.out_channels)


def set_bn(bn: nn.BatchNorm2d, folded_bias: torch.Tensor, mean: torch.Tensor, var: torch.Tensor) -> None:
    """BN(z) = z + folded_bias in eval mode, with these running statistics."""
    with torch.no_grad():
        bn.running_mean.copy_(mean)
        bn.running_var.copy_(var)
        bn.weight.copy_(torch.sqrt(var + bn.eps))
        bn.bias.copy_(folded_bias + mean)


@torch.no_grad()
def calibrate(model: nn.Module, folded: nn.Module, batches) -> int:
    """Set each BatchNorm's running statistics to those of its conv's output over `batches`
    (tuples of model inputs), keeping the eval-mode function unchanged. Returns the count."""
    pairs = [(conv, bn, fused) for conv, bn, fused in conv_pairs(model, folded) if bn is not None]
    sums = {id(c): [0.0, 0.0, 0] for c, _, _ in pairs}

    def hook(mod, inp, out):
        z = out.double()
        s = sums[id(mod)]
        s[0] = s[0] + z.sum((0, 2, 3))
        s[1] = s[1] + (z * z).sum((0, 2, 3))
        s[2] += z.numel() // z.shape[1]
    hs = [c.register_forward_hook(hook) for c, _, _ in pairs]
    model.eval()
    try:
        for args in batches:
            model(*args)
    finally:
        for h in hs:
            h.remove()
    for conv, bn, fused in pairs:
        s0, s1, n = sums[id(conv)]
        if n == 0:
            continue
        mean = s0 / n
        var = (s1 / n - mean * mean).clamp_min(0)
        set_bn(bn, folded_bias(fused), mean.float(), var.float())
    return len(pairs)


def calibration_batches(images: np.ndarray, hints: bool, batch: int = 64, crop: int = 112, seed: int = 0):
    """Model inputs from uint8 photos [N,H,W,3]: centre crops, L (and simulated hints, none for
    half of the photos, as the training recipe)."""
    from .hints import training_hints
    from .lab import rgb_to_lab_torch
    rng = np.random.default_rng(seed)
    H, W = images.shape[1:3]
    y0, x0 = (H - crop) // 2, (W - crop) // 2
    for s in range(0, len(images), batch):
        x = torch.from_numpy(images[s:s + batch, y0:y0 + crop, x0:x0 + crop]).permute(0, 3, 1, 2).float() / 255
        lab = rgb_to_lab_torch(x)
        L, ab = lab[:, :1], lab[:, 1:]
        yield (L, training_hints(ab, rng, p_none=0.5)) if hints else (L,)


def unfold(onnx_path: str, prior: np.ndarray, lam: float = 0.5, calib_images: np.ndarray | None = None) -> dict:
    """A checkpoint dict that training.train --init and training.export load."""
    model, folded, meta = load_onnx_weights(onnx_path)
    n_bn = 0
    if calib_images is not None and len(calib_images):
        n_bn = calibrate(model, folded, calibration_batches(calib_images, bool(getattr(model, "takes_hints", False))))
    alpha = float(meta.get("colorizer.prior_correction", "0") or 0)
    if model.head_kind == "ce" and alpha:   # the export's correction, taken back out
        model = apply_prior_correction(model, prior, lam, -alpha)
    return {"model": model.state_dict(), "prior": np.asarray(prior, np.float64), "prior_counts": None,
            "config": model.config, "state": {"step": 0, "epoch": 0},
            "args": {"name": meta.get("colorizer.name", "colorizer"), "description": meta.get("colorizer.description", ""),
                     "input_size": int(meta.get("colorizer.input_size", "112")), "lam": lam},
            "unfolded_from": {"onnx": onnx_path, "prior_correction": alpha, "calibrated_bn": n_bn}}


def main(argv=None):
    from .data import load_sources
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--onnx", required=True, help="a model exported by training.export")
    ap.add_argument("--out", required=True, help="checkpoint to write (.pt)")
    ap.add_argument("--prior", help="prior (.npy, 313 values) the rebalancing weights come from")
    ap.add_argument("--prior-data", action="append", default=[], help="else: photos (folder or .npz) for the empirical prior")
    ap.add_argument("--prior-limit", type=int, default=20000, help="evenly spaced photos for the empirical prior")
    ap.add_argument("--calib", action="append", default=[], help="photos (folder or .npz) for the BatchNorm statistics")
    ap.add_argument("--calib-limit", type=int, default=1024)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--lam", type=float, default=0.5)
    ap.add_argument("--sigma", type=float, default=5.0)
    a = ap.parse_args(argv)
    if bool(a.prior) == bool(a.prior_data):
        ap.error("give one of --prior or --prior-data")
    if a.prior:
        prior = np.load(a.prior).astype(np.float64)
    else:   # as a fresh training run builds it
        from .train import build_prior
        images, _, _ = load_sources(a.prior_data, a.size)
        pts = load_pts()
        prior, _ = build_prior(argparse.Namespace(prior="empirical", prior_limit=a.prior_limit, sigma=a.sigma), images,
                               SoftEncoder(pts, k=5, sigma=a.sigma, device=torch.device("cpu")), pts, print)
    prior = prior / prior.sum()
    calib = None
    if a.calib:
        calib, _, _ = load_sources(a.calib, a.size)
        if len(calib) > a.calib_limit:
            calib = calib[np.linspace(0, len(calib) - 1, a.calib_limit).round().astype(int)]
    ck = unfold(a.onnx, prior, a.lam, calib)
    torch.save(ck, a.out)
    print(json.dumps({"out": a.out, **ck["unfolded_from"], "config": ck["config"]}))


if __name__ == "__main__":
    main()
