"""Pack photo folders into compact shards for a GPU machine that has only the repo and the shards.

Each photo is resized (short side --size, antialiased bicubic), centre-cropped square and
re-encoded as WebP at --quality, then all bytes go into one .npz per source:
  data uint8 [total bytes], offsets int64 [N+1], labels int16 [N], classes str [C], meta (JSON str)
The shards are written to an ignored folder (default .pack/) and carried to the device.
Research-only photos: never commit the pack.

  python -m training.pack --src PHOTOS/intel/train --out .pack/intel.npz --size 112 --quality 70
  python -m training.pack --src PHOTOS/general/train --out .pack/general.npz --size 112 --quality 60

Several sources (folders or packed shards, e.g. the broad shards of training/broad.py) into
shards of at most --shard-mb each, rows shuffled across sources (seed 0), so that each device
call can carry one shard (the device takes ~64 MiB per call, the repo included):

  python -m training.pack --src SHARDS/broad_000.npz ... --src PHOTOS/general/train \
      --src PHOTOS/intel/train --out-dir .gp --size 128 --quality 50 --shard-mb 55 \
      --class-limit debris-objects=5000
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
    """(path or encoded bytes, size, quality) -> WebP bytes of the square-resized photo."""
    src, size, quality = args
    with Image.open(io.BytesIO(src) if isinstance(src, bytes) else src) as im:
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


def source_items(src: str) -> list[tuple[object, str]]:
    """(path or encoded bytes, class) of every photo of a folder or a packed shard; a shard's
    classes are its own (e.g. the broad source sets), a folder's its subfolder names."""
    if not src.endswith(".npz"):
        return list_images(src)
    with np.load(src, allow_pickle=False) as z:
        data, off, labels, classes = z["data"], z["offsets"], z["labels"], [str(c) for c in z["classes"]]
        return [(data[off[i]:off[i + 1]].tobytes(), classes[labels[i]]) for i in range(len(off) - 1)]


def pack_shards(sources: list[str], out_dir: str, size: int, quality: int, shard_mb: float,
                class_limits: list[str], workers: int = 2, prefix: str = "part"):
    """Every photo of `sources`, re-encoded, shuffled (seed 0), cut into shards of at most
    `shard_mb` MB: out_dir/{prefix}_000.npz, ... A class NAME=N limit keeps an evenly spaced N
    of that class (classes are "<source>/<class>"; NAME matches the part after the slash)."""
    items = []
    for src in sources:
        tag = os.path.basename(src.rstrip("/")).replace(".npz", "")
        tag = "broad" if tag.startswith("broad_") else tag
        items += [(b, f"{tag}/{c}" if c else tag) for b, c in source_items(src)]
    keep = np.ones(len(items), bool)
    for spec in class_limits:
        name, _, n = spec.rpartition("=")
        idx = np.flatnonzero([c == name or c.endswith("/" + name) for _, c in items])
        if not len(idx) or not n.isdigit():
            raise SystemExit(f"--class-limit {spec!r}: no class {name!r} or no count")
        if len(idx) > int(n):
            keep[np.setdiff1d(idx, idx[np.linspace(0, len(idx) - 1, int(n)).round().astype(int)])] = False
    items = [it for it, k in zip(items, keep) if k]
    order = np.random.default_rng(0).permutation(len(items))
    items = [items[i] for i in order]
    classes = sorted({c for _, c in items})
    t0 = time.time()
    with ProcessPoolExecutor(workers) as ex:
        blobs = list(ex.map(encode, [(b, size, quality) for b, _ in items], chunksize=64))
    os.makedirs(out_dir, exist_ok=True)
    shards, start, used = [], 0, 0
    limit = int(shard_mb * 1e6) - 4096   # the npz headers, classes and meta
    per_photo = 8 + 2                     # its offset (int64) and label (int16)
    for i, b in enumerate(blobs + [None]):
        if (b is None or used + len(b) + per_photo > limit) and i > start:   # a photo larger than a shard gets its own
            part = slice(start, i)
            lens = np.array([len(x) for x in blobs[part]], dtype=np.int64)
            labels = np.array([classes.index(c) for _, c in items[part]], dtype=np.int16)
            out = os.path.join(out_dir, f"{prefix}_{len(shards):03d}.npz")
            np.savez(out, data=np.frombuffer(b"".join(blobs[part]), dtype=np.uint8),
                     offsets=np.concatenate([[0], np.cumsum(lens)]), labels=labels,
                     classes=np.array(classes),
                     meta=np.array(json.dumps({"sources": sources, "size": size, "quality": quality,
                                               "format": "webp"})))
            shards.append({"out": out, "images": int(i - start), "bytes": int(os.path.getsize(out))})
            start, used = i, 0
        if b is not None:
            used += len(b) + per_photo
    counts = {c: sum(1 for _, x in items if x == c) for c in classes}
    return {"shards": shards, "images": len(items), "classes": counts, "size": size, "quality": quality,
            "seconds": round(time.time() - t0, 1)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--src", required=True, action="append", help="folder or .npz shard; repeatable with --out-dir")
    ap.add_argument("--out", help="one .npz for one --src folder")
    ap.add_argument("--out-dir", help="shards of at most --shard-mb from every --src")
    ap.add_argument("--shard-mb", type=float, default=55.0)
    ap.add_argument("--class-limit", action="append", default=[], metavar="NAME=N")
    ap.add_argument("--size", type=int, default=112)
    ap.add_argument("--quality", type=int, default=70)
    ap.add_argument("--limit", type=int, help="random subset of this many photos")
    ap.add_argument("--workers", type=int, default=2)
    a = ap.parse_args(argv)
    if a.out_dir:
        info = pack_shards(a.src, a.out_dir, a.size, a.quality, a.shard_mb, a.class_limit, a.workers)
        report = os.path.join(a.out_dir, "index.json")
    elif a.out and len(a.src) == 1:
        info = pack(a.src[0], a.out, a.size, a.quality, a.limit, a.workers)
        report = a.out.replace(".npz", ".json")
    else:
        ap.error("give --out with one --src folder, or --out-dir")
    print(json.dumps(info, indent=1))
    with open(report, "w") as f:
        json.dump(info, f, indent=1)


if __name__ == "__main__":
    main()
