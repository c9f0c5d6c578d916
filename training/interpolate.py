"""Interpolate two checkpoints of the same network in weight space (WiSE-FT, Wortsman et al.,
CVPR 2022): every floating-point tensor becomes (1 - alpha) * A + alpha * B, integer buffers
(BatchNorm's step counters) are taken from B.

A fine-tune that moves a model toward one kind of photo (say streets and landscapes) tends to
trade away what it knew about others; a point between the model it started from and the
fine-tuned one often keeps most of both. Both checkpoints must be the same network (same
`config`, same tensor names and shapes) with the same prior, as when B was trained from A with
`training.train --init A` (A may come from `training.unfold`).

  python -m training.interpolate --a init.pt --b runs/street/last.pt --alpha 0.5 --out wise50.pt
  python -m training.export --checkpoint wise50.pt --out wise50.onnx ...

B may also have grown a stage A lacks, as when it was trained with `--init A --arch
'{"out_stride": 2}'` (A's config is then a part of B's, with the same values): for every
tensor B has and A does not, A's value is what B's network is built with, if that is zero (a
head that starts at zero, so the grown network starts at A's output), and B's own value
otherwise. So alpha = 0 is A's output, alpha = 1 is B, and in between the new stage's trained
layers feed a head scaled by alpha.

The result has no optimizer state: start further training from it with `--init`, not `--resume`.
"""
from __future__ import annotations

import argparse
import json

import numpy as np
import torch


def _state(ck: dict) -> dict:
    return ck.get("ema") or ck["model"]


def _grown_start(a_state: dict, b: dict) -> dict:
    """A's tensors completed with the values B's network starts with where they are zero, and B's
    trained values elsewhere (see the module's docstring)."""
    from training.model import build_model

    fresh = build_model(b["config"]).state_dict()
    sb = _state(b)
    out = dict(a_state)
    for name in sb.keys() - a_state.keys():
        f = fresh.get(name)
        out[name] = torch.zeros_like(sb[name]) if f is not None and f.is_floating_point() and not f.any() else sb[name]
    return out


def interpolate(a: dict, b: dict, alpha: float) -> dict:
    """The checkpoint (1 - alpha) * a + alpha * b; raises ValueError where a and b differ in kind."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
    ca, cb = a.get("config") or {}, b.get("config") or {}
    grown = ca != cb and bool(ca) and all(k in cb and cb[k] == v for k, v in ca.items())
    if ca != cb and not grown:
        raise ValueError(f"the checkpoints are different networks: {a.get('config')} vs {b.get('config')}")
    pa, pb = a.get("prior"), b.get("prior")
    if (pa is None) != (pb is None) or (pa is not None and not np.allclose(pa, pb, rtol=1e-5, atol=1e-12)):
        raise ValueError("the checkpoints were trained with different priors; their head biases do not mix")
    sa, sb = _state(a), _state(b)
    if grown:   # A's own tensors stay A's, so one A lacks in B is still caught by the check below
        sa = _grown_start(sa, b)
    if sa.keys() != sb.keys():
        missing = sorted(set(sa) ^ set(sb))[:5]
        raise ValueError(f"the checkpoints hold different tensors (e.g. {missing})")
    mixed = {}
    for name, tb in sb.items():
        ta = sa[name]
        if ta.shape != tb.shape:
            raise ValueError(f"{name}: shape {tuple(ta.shape)} vs {tuple(tb.shape)}")
        if tb.is_floating_point():
            mixed[name] = (ta.double() * (1.0 - alpha) + tb.double() * alpha).to(tb.dtype)
        else:
            mixed[name] = tb.clone()
    out = {k: v for k, v in b.items() if k not in ("opt", "ema", "model")}
    out["model"] = mixed
    out["state"] = {"step": 0, "epoch": 0}
    out["interpolated_from"] = {"alpha": alpha}
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--a", required=True, help="checkpoint at alpha = 0 (the model the fine-tune started from)")
    ap.add_argument("--b", required=True, help="checkpoint at alpha = 1 (the fine-tuned model)")
    ap.add_argument("--alpha", type=float, required=True, help="weight of B, 0..1")
    ap.add_argument("--out", required=True, help="checkpoint to write (.pt)")
    args = ap.parse_args(argv)
    a = torch.load(args.a, map_location="cpu", weights_only=False)
    b = torch.load(args.b, map_location="cpu", weights_only=False)
    try:
        ck = interpolate(a, b, args.alpha)
    except ValueError as e:
        ap.error(str(e))
    ck["interpolated_from"].update({"a": args.a, "b": args.b})
    torch.save(ck, args.out)
    print(json.dumps({"out": args.out, **ck["interpolated_from"], "tensors": len(ck["model"])}))


if __name__ == "__main__":
    main()
