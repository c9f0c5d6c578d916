"""CPU latency of ONNX models with onnxruntime (default 2 threads, 256x256), plus the
parameter count and GFLOPs of the ColorNet config recorded in the model's metadata.

  python -m training.latency models/colorizer.onnx models/colorizer-l2.onnx [--threads 2 --size 256]
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np


def measure(path: str, threads: int = 2, size: int = 256, runs: int = 50) -> dict:
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    x = (np.random.default_rng(0).random((1, 1, size, size)) * 100).astype(np.float32)
    feed = {sess.get_inputs()[0].name: x}
    if len(sess.get_inputs()) == 2:   # a hint model without hints: an all-zero map, as the service feeds it
        feed[sess.get_inputs()[1].name] = np.zeros((1, 3, size, size), np.float32)
    for _ in range(5):
        sess.run(None, feed)
    ts = []
    for _ in range(runs):
        t = time.perf_counter()
        sess.run(None, feed)
        ts.append((time.perf_counter() - t) * 1000)
    meta = sess.get_modelmeta().custom_metadata_map
    out = {"model": path, "threads": threads, "size": size, "median_ms": round(float(np.median(ts)), 1),
           "p90_ms": round(float(np.percentile(ts, 90)), 1), "min_ms": round(float(np.min(ts)), 1)}
    if "colorizer.arch" in meta:
        import torch  # noqa: F401
        from .model import build_model, count_params, conv_flops
        m = build_model(json.loads(meta["colorizer.arch"]))
        out["params"] = count_params(m)
        out["params_folded"] = sum(p.numel() for n, p in m.named_parameters() if "weight" in n and p.dim() == 4) \
            + sum(mm.out_channels for mm in m.modules() if mm.__class__.__name__ == "Conv2d")
        out["gflops"] = round(conv_flops(m, size, size), 2)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("models", nargs="+")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--runs", type=int, default=50)
    a = ap.parse_args(argv)
    for p in a.models:
        print(json.dumps(measure(p, a.threads, a.size, a.runs)))


if __name__ == "__main__":
    main()
