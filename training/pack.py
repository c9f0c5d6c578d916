"""Pack photo folders into compact shards for a GPU machine that has only the repo and the shards.

Each photo is resized (short side --size, antialiased bicubic), centre-cropped square and
re-encoded as WebP at --quality, then all bytes go into one .npz per source:
  data uint8 [total bytes], offsets int64 [N+1], labels int16 [N], classes str [C], meta (JSON str)
The shards are written to an ignored folder (default .pack/) and carried to the device.
Research-only photos: never commit the pack.

  python -m training.pack --src PHOTOS/intel/train --out .pack/intel.npz --size 112 --quality 70
  python -m training.pack --src PHOTOS/general/train --out .pack/general.npz --size 112 --quality 60
"""
from __future__ import annotations

import argparse
import io
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np
from PIL import Image

from .data import list_images, square_resize


def encode(args):
    path, size, quality = args
    with Image.open(path) as im:
        im = square_resize(im, size)
    b = io.BytesIO()
    im.save(b, "WEBP", quality=quality, method=6)
    return b.getvalue()


def pack(src: str, out: str, size: int, quality: int, limit: int | None = None, workers: int = 2):
    items = list_images(src)
    if limit and limit < len(items):
        rng = np.random.default_rng(0)
        items = [items[i] for i in sorted(rng.choice(len(items), limit, replace=False))]
    classes = sorted({c for _, c in items})
    t0 = time.time()
    with ProcessPoolExecutor(workers) as ex:
        blobs = list(ex.map(encode, [(p, size, quality) for p, _ in items], chunksize=64))
    lens = np.array([len(b) for b in blobs], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lens)])
    data = np.frombuffer(b"".join(blobs), dtype=np.uint8)
    labels = np.array([classes.index(c) for _, c in items], dtype=np.int16)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    np.savez(out, data=data, offsets=offsets, labels=labels, classes=np.array(classes),
             meta=np.array(json.dumps({"src": os.path.abspath(src), "size": size, "quality": quality,
                                       "format": "webp"})))
    info = {"out": out, "images": len(items), "classes": {c: int((labels == i).sum()) for i, c in enumerate(classes)},
            "size": size, "quality": quality, "bytes": int(os.path.getsize(out)),
            "mean_bytes_per_image": float(lens.mean()), "seconds": round(time.time() - t0, 1)}
    return info


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--src", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--size", type=int, default=112)
    ap.add_argument("--quality", type=int, default=70)
    ap.add_argument("--limit", type=int, help="random subset of this many photos")
    ap.add_argument("--workers", type=int, default=2)
    a = ap.parse_args(argv)
    info = pack(a.src, a.out, a.size, a.quality, a.limit, a.workers)
    print(json.dumps(info, indent=1))
    with open(a.out.replace(".npz", ".json"), "w") as f:
        json.dump(info, f, indent=1)


if __name__ == "__main__":
    main()
