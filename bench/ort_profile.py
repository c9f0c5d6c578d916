"""Where a model's time goes in ONNX Runtime, by operator type: one session with one thread (as
each of the service's sessions), ORT's own profiler, the mean kernel time per run.

  bench/out/ref-venv/bin/python bench/ort_profile.py models/colorizer.onnx [--size 160] [--runs 60]

A hint model gets an all-zero hint map, as the service feeds it. Profiling adds its own cost, so
compare shares, not the total, with `ort-raw`'s times.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import tempfile

import numpy as np
import onnxruntime as ort


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--size", type=int, default=160, help="input side (the default model's inference size)")
    ap.add_argument("--runs", type=int, default=60)
    ap.add_argument("--top", type=int, default=12)
    a = ap.parse_args()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.enable_profiling = True
    opts.profile_file_prefix = os.path.join(tempfile.mkdtemp(), "ort")
    sess = ort.InferenceSession(a.model, opts, providers=["CPUExecutionProvider"])
    inputs = sess.get_inputs()
    feed = {inputs[0].name: (np.random.default_rng(0).random((1, 1, a.size, a.size)) * 100).astype(np.float32)}
    if len(inputs) == 2:
        feed[inputs[1].name] = np.zeros((1, 3, a.size, a.size), np.float32)
    for _ in range(a.runs):
        sess.run(None, feed)
    path = sess.end_profiling()
    with open(path) as f:
        events = json.load(f)
    os.remove(path)
    time_by_op, count_by_op = collections.Counter(), collections.Counter()
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            op = e["args"].get("op_name", "?")
            time_by_op[op] += e["dur"]
            count_by_op[op] += 1
    total = sum(time_by_op.values())
    print(f"{a.model}: {a.size} x {a.size}, {a.runs} runs, kernel time {total / a.runs / 1000:.2f} ms a run (profiled)")
    for op, us in time_by_op.most_common(a.top):
        print(f"{op:16s} {us / a.runs:9.1f} us a run {100 * us / total:5.1f}%  {count_by_op[op] / a.runs:4.0f} nodes")


if __name__ == "__main__":
    main()
