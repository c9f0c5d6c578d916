"""The Python peer: the same job as the Rust service, done the usual Python way.

FastAPI + uvicorn, onnxruntime + numpy + scikit-image LAB + Pillow, one process, the same model
and the same pre- and post-processing as src/pipeline.rs:

1. decode the upload with Pillow (EXIF orientation applied), sRGB -> LAB with
   ``skimage.color.rgb2lab``, keep the full-resolution L;
2. resize L (antialiased bilinear, Pillow) so that its short side is the model's
   ``colorizer.input_size`` (each side a multiple of 8, long side at most 4x that), the rule of
   ``Engine::input_size_for``;
3. ``InferenceSession.run`` -> ``[1, 313, h, w]`` logits;
4. annealed mean at T (query ``temperature``, else the model's ``colorizer.temperature``, else
   0.38): ``ab = sum_q softmax(z / T)_q * centre_q``;
5. bilinear upsampling of a and b to full size (Pillow, half-pixel centres), joined with the
   full-resolution L, ``skimage.color.lab2rgb``, rounded to 8 bits;
6. PNG with Pillow at compression level 1 (the service's ``CompressionType::Fast``).

Endpoints: ``POST /colorize`` (raw body), ``GET /healthz``, ``GET /readyz``, ``GET /info``.

Settings (environment): PEER_MODEL (ONNX path), PEER_THREADS (intra-op threads, default: the
number of CPUs, ONNX Runtime's own default), PEER_INFERENCE_SIZE (overrides the metadata).

Run: ``uvicorn bench.python_peer.app:app --host 127.0.0.1 --port 8091`` from the repo root, or
``python bench/python_peer/app.py --port 8091``.
"""

from __future__ import annotations

import io
import os
from contextlib import asynccontextmanager
from pathlib import Path

import numpy as np
import onnxruntime as ort
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from PIL import Image, ImageOps, UnidentifiedImageError
from skimage.color import lab2rgb, rgb2lab

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
DEFAULT_MODEL = REPO / "tests" / "fixtures" / "untrained-colorizer.onnx"
DEFAULT_TEMPERATURE = 0.38
MAX_PIXELS = 50_000_000
# Pillow refuses images over its own bomb limit; the service's limit is 50 MP.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS

PTS_IN_HULL = np.load(HERE / "pts_in_hull.npy").astype(np.float32)  # (313, 2), a and b centres


def round8(v: int) -> int:
    return max(8, -(-v // 8) * 8)


class Model:
    def __init__(self, path: str, threads: int, inference_size: int | None):
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        self.session = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        meta = self.session.get_modelmeta().custom_metadata_map
        size = inference_size or int(meta.get("colorizer.input_size", 256))
        self.inference_size = round8(size)
        try:
            t = float(meta.get("colorizer.temperature", DEFAULT_TEMPERATURE))
        except ValueError:
            t = DEFAULT_TEMPERATURE
        self.temperature = t if 0 < t <= 1 else DEFAULT_TEMPERATURE
        self.path = path
        self.threads = threads

    def input_size_for(self, width: int, height: int) -> tuple[int, int]:
        """(height, width) of the model input, as Engine::input_size_for."""
        target = float(self.inference_size)
        short, long_ = max(1, min(width, height)), max(1, max(width, height))
        scale = min(target / short, 4.0 * target / long_)

        def side(v: int) -> int:
            return max(1, int(round_half_away(v * scale / 8.0))) * 8

        return side(height), side(width)

    def run(self, l_small: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: l_small[None, None]})[0][0]


def round_half_away(x: float) -> float:
    # Rust's f64::round rounds half away from zero; Python's round() rounds half to even.
    return float(np.floor(x + 0.5))


def annealed_mean(logits: np.ndarray, t: float) -> np.ndarray:
    """[313, h, w] logits -> [2, h, w] ab, ``sum_q softmax(z / T)_q * centre_q``."""
    z = logits / np.float32(t)
    z -= z.max(axis=0, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=0, keepdims=True)
    return np.tensordot(PTS_IN_HULL.T, z, axes=(1, 0))  # (2, h, w)


def resize_plane(plane: np.ndarray, width: int, height: int) -> np.ndarray:
    """Bilinear resize of a float32 plane (antialiased when shrinking), Pillow mode F."""
    return np.asarray(Image.fromarray(np.ascontiguousarray(plane, dtype=np.float32)).resize((width, height), Image.BILINEAR))


def colorize_bytes(model: Model, data: bytes, temperature: float) -> bytes:
    try:
        img = Image.open(io.BytesIO(data))
        if img.width * img.height > MAX_PIXELS:
            raise HTTPException(422, f"the image is {img.width}x{img.height}; the limit is {MAX_PIXELS} pixels")
        img = ImageOps.exif_transpose(img)
        rgb = np.asarray(img.convert("RGB"))
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as e:
        raise HTTPException(400, f"the body is not a decodable image: {e}") from e
    height, width = rgb.shape[:2]
    l_full = rgb2lab(rgb)[..., 0].astype(np.float32)
    mh, mw = model.input_size_for(width, height)
    l_small = resize_plane(l_full, mw, mh)
    logits = model.run(l_small)
    ab = annealed_mean(logits, temperature)
    a = resize_plane(ab[0], width, height)
    b = resize_plane(ab[1], width, height)
    lab = np.stack([l_full, a, b], axis=-1)
    out = (lab2rgb(lab) * 255.0).round().astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(out).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


STATE: dict = {}


@asynccontextmanager
async def lifespan(_app: FastAPI):
    path = os.environ.get("PEER_MODEL", str(DEFAULT_MODEL))
    threads = int(os.environ.get("PEER_THREADS", str(os.cpu_count() or 1)))
    size = os.environ.get("PEER_INFERENCE_SIZE")
    model = Model(path, threads, int(size) if size else None)
    # Warm-up: one run at the inference size, so that the first request does not pay for it.
    h, w = model.input_size_for(model.inference_size, model.inference_size)
    model.run(np.full((h, w), 50.0, dtype=np.float32))
    STATE["model"] = model
    yield
    STATE.clear()


app = FastAPI(title="colorizer python peer", lifespan=lifespan)


@app.post("/colorize")
async def colorize(request: Request, temperature: float | None = Query(default=None, gt=0, le=1)):
    model: Model = STATE["model"]
    data = await request.body()
    if not data:
        raise HTTPException(400, "the body is empty")
    t = temperature if temperature is not None else model.temperature
    png = await run_in_threadpool(colorize_bytes, model, data, t)
    return Response(content=png, media_type="image/png")


@app.get("/healthz")
async def healthz():
    return {"status": "ok"}


@app.get("/readyz")
async def readyz():
    if "model" not in STATE:
        return JSONResponse({"status": "starting"}, status_code=503)
    return {"status": "ready"}


@app.get("/info")
async def info():
    m: Model = STATE["model"]
    return {"model": m.path, "inference_size": m.inference_size, "default_temperature": m.temperature, "threads": m.threads}


if __name__ == "__main__":
    import argparse

    import uvicorn

    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8091)
    args = ap.parse_args()
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)
