"""The reference of issue 12: the service's job done single-threaded with OpenCV (libjpeg-turbo,
SIMD colour conversion) and raw ONNX Runtime, stage by stage, on the same photo and model.

1. decode: ``cv2.imdecode`` (a gray JPEG as one channel; EXIF orientation applied);
2. resize: L of every pixel by a 256-entry table (``cv2.LUT``; gray input, the service's
   ``srgb_to_l``), then ``cv2.resize`` (INTER_AREA) to the model size of ``Engine::input_size_for``;
3. infer: ``InferenceSession.run``, 1 intra-op thread;
4. bin_decode: annealed mean at T (numpy, ``[313, h/4, w/4]``);
5. upsample: ``cv2.resize`` of a and b (INTER_LINEAR, half-pixel centres as the service), merged with
   L, ``cv2.cvtColor(COLOR_Lab2BGR)`` in float, to 8 bits with saturation (``cv2.addWeighted``);
6. encode: ``cv2.imencode`` JPEG q90 (libjpeg-turbo, 4:2:0) or PNG at compression level 1.

``cv2.setNumThreads(1)``. Used by bench/speed.py (in-process); alone:
``bench/out/ref-venv/bin/python bench/reference/reference.py --model M.onnx photo.jpg``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

HERE = Path(__file__).resolve().parent
PTS_IN_HULL = np.load(HERE.parent / "python_peer" / "pts_in_hull.npy").astype(np.float32)  # (313, 2)
STAGES = ["decode", "resize", "infer", "bin_decode", "upsample", "encode"]


def l_table() -> np.ndarray:
    """L (0..100) of the 256 gray sRGB values, as src/color/lab.rs (scikit-image's constants)."""
    v = np.arange(256, dtype=np.float64) / 255.0
    lin = np.where(v > 0.04045, ((v + 0.055) / 1.055) ** 2.4, v / 12.92)
    y = (0.212671 + 0.715160 + 0.072169) * lin
    f = np.where(y > 0.008856, np.cbrt(y), 7.787 * y + 16.0 / 116.0)
    return (116.0 * f - 16.0).astype(np.float32)


class Reference:
    def __init__(self, model: str, inference_size: int | None = None):
        cv2.setNumThreads(1)
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.intra_op_num_threads = 1
        so.inter_op_num_threads = 1
        self.session = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.session.get_inputs()]
        meta = self.session.get_modelmeta().custom_metadata_map
        size = inference_size or int(meta.get("colorizer.input_size", 256))
        self.inference_size = max(8, -(-size // 8) * 8)
        self.temperature = float(meta.get("colorizer.temperature", 0.38))
        self.lut = l_table()

    def input_size_for(self, width: int, height: int) -> tuple[int, int]:
        target = float(self.inference_size)
        short, long_ = max(1, min(width, height)), max(1, max(width, height))
        scale = min(target / short, 4.0 * target / long_)
        return tuple(max(1, int(np.floor(v * scale / 8.0 + 0.5))) * 8 for v in (height, width))

    def run(self, data: bytes, fmt: str = "jpeg", quality: int = 90) -> tuple[bytes, dict]:
        """Colorizes `data`; returns the encoded bytes and the time of each stage in ms."""
        t = {}
        t0 = time.perf_counter()
        gray = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
        t1 = time.perf_counter()
        h, w = gray.shape
        l_full = cv2.LUT(gray, self.lut)
        mh, mw = self.input_size_for(w, h)
        l_small = cv2.resize(l_full, (mw, mh), interpolation=cv2.INTER_AREA)
        t2 = time.perf_counter()
        feed = {self.inputs[0]: l_small[None, None]}
        if len(self.inputs) > 1:
            feed[self.inputs[1]] = np.zeros((1, 3, mh, mw), np.float32)
        out = self.session.run(None, feed)[0][0]
        t3 = time.perf_counter()
        if out.shape[0] == 313:
            z = out / np.float32(self.temperature)
            z -= z.max(axis=0, keepdims=True)
            np.exp(z, out=z)
            z /= z.sum(axis=0, keepdims=True)
            ab = np.tensordot(PTS_IN_HULL.T, z, axes=(1, 0)).astype(np.float32)
        else:
            ab = out.astype(np.float32)
        t4 = time.perf_counter()
        a = cv2.resize(ab[0], (w, h), interpolation=cv2.INTER_LINEAR)
        b = cv2.resize(ab[1], (w, h), interpolation=cv2.INTER_LINEAR)
        bgr = cv2.cvtColor(cv2.merge([l_full, a, b]), cv2.COLOR_Lab2BGR)
        bgr8 = cv2.addWeighted(bgr, 255.0, bgr, 0.0, 0.0, dtype=cv2.CV_8U)
        t5 = time.perf_counter()
        if fmt == "jpeg":
            ok, enc = cv2.imencode(".jpg", bgr8, [cv2.IMWRITE_JPEG_QUALITY, quality])
        else:
            ok, enc = cv2.imencode(".png", bgr8, [cv2.IMWRITE_PNG_COMPRESSION, 1])
        assert ok
        t6 = time.perf_counter()
        ms = [1000 * (b_ - a_) for a_, b_ in zip([t0, t1, t2, t3, t4, t5], [t1, t2, t3, t4, t5, t6])]
        t = dict(zip(STAGES, ms))
        t["total"] = 1000 * (t6 - t0)
        return enc.tobytes(), t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--format", default="jpeg", choices=["jpeg", "png"])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("photo")
    args = ap.parse_args()
    ref = Reference(args.model)
    data = Path(args.photo).read_bytes()
    for _ in range(args.runs):
        _, t = ref.run(data, args.format)
        print(" ".join(f"{k} {v:.1f}" for k, v in t.items()))


if __name__ == "__main__":
    main()
