"""Regenerate the test fixtures the Rust service uses:

  tests/fixtures/untrained-colorizer.onnx  UNTRAINED ColorNet, CE head (313 logits), name "untrained-fixture"
  tests/fixtures/untrained-l2.onnx         UNTRAINED ColorNet, L2 head (2 ab), name "untrained-l2"
  tests/fixtures/decode_reference.json     logits -> ab decoded by training.bins.decode_annealed_np

  python -m training.make_fixtures [--pts training/resources/pts_in_hull.npy] [--out tests/fixtures]

decode_reference.json is a JSON array of cases, each
  {"temperature": T, "channels": 313, "height": 2, "width": 3,
   "logits": [313*2*3 floats, C-order [313][2][3]], "ab": [2*2*3 floats, C-order [2][2][3]]}
with T in 0.38, 1.0, 0.05. ab is computed in float64 from the logits as written (they are
float32-exact), with the max-subtracted softmax of logits/T.
"""
from __future__ import annotations

import argparse
import json
import os

import numpy as np

from . import DEFAULT_PTS, REPO_ROOT
from .bins import load_pts, decode_annealed_np


def decode_cases(pts: np.ndarray) -> list[dict]:
    rng = np.random.default_rng(2016)
    C, H, W = 313, 2, 3
    base = rng.normal(0.0, 2.0, size=(C, H, W))
    base[:, 0, 0] = 0.0                                 # all equal: plain mean of the centres
    base[:, 0, 1] += np.where(np.arange(C) == 200, 40.0, 0.0)   # one dominant bin
    base[:, 0, 2] = rng.normal(0.0, 15.0, size=C)       # large, spread logits
    base[:, 1, 0] -= 60.0                               # large negative offset (shift invariance)
    base[[30, 31], 1, 1] += 25.0                        # two competing bins
    base[:, 1, 2] = np.linspace(-35.0, 35.0, C)         # ramp over the bin order
    logits = base.astype(np.float32)
    cases = []
    for T in (0.38, 1.0, 0.05):
        ab = decode_annealed_np(logits.astype(np.float64), pts, T=T, axis=0)
        cases.append({
            "temperature": T, "channels": C, "height": H, "width": W,
            "logits": [float(v) for v in logits.reshape(-1)],
            "ab": [round(float(v), 6) for v in ab.reshape(-1)],
        })
    return cases


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pts", default=DEFAULT_PTS)
    ap.add_argument("--out", default=os.path.join(REPO_ROOT, "tests", "fixtures"))
    ap.add_argument("--skip-onnx", action="store_true")
    a = ap.parse_args(argv)
    os.makedirs(a.out, exist_ok=True)
    pts = load_pts(a.pts)
    with open(os.path.join(a.out, "decode_reference.json"), "w") as f:
        json.dump(decode_cases(pts), f)
        f.write("\n")
    if a.skip_onnx:
        return
    from .export import export_model, untrained_model
    for head, fname, name in (("ce", "untrained-colorizer.onnx", "untrained-fixture"),
                              ("l2", "untrained-l2.onnx", "untrained-l2")):
        info = export_model(untrained_model(head, seed=0), os.path.join(a.out, fname), name=name,
                            description=f"UNTRAINED random-init ColorNet ({head} head, seed 0): test fixture only, not a colorizer",
                            temperature=0.38, input_size=112, trained=False)
        print(json.dumps(info))


if __name__ == "__main__":
    main()
