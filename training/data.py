"""Training data: photo folders or packed shards -> one uint8 array [N,S,S,3]; batches are
cropped, flipped and converted to LAB on the training device (GPU-friendly: the whole
dataset lives on the device as uint8 and nothing goes through a DataLoader)."""
from __future__ import annotations

import io
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from PIL import Image

from .lab import rgb_to_lab_torch

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".webp", ".bmp")


def list_images(root: str) -> list[tuple[str, str]]:
    """Recursive list of (path, class) where class = name of the parent folder relative to
    root ('' for files directly in root). Sorted for determinism; symbolic links to folders are
    followed (a set assembled from links to other sets' class folders)."""
    out = []
    for dp, dns, fns in os.walk(root, followlinks=True):
        dns.sort()
        for f in sorted(fns):
            if f.lower().endswith(IMAGE_EXTS):
                p = os.path.join(dp, f)
                rel = os.path.relpath(dp, root)
                out.append((p, "" if rel == "." else os.path.basename(dp)))
    return out


def square_resize(im: Image.Image, size: int) -> Image.Image:
    """Resize the short side to `size` (antialiased bicubic) and centre-crop to size x size."""
    im = im.convert("RGB")
    w, h = im.size
    s = size / min(w, h)
    if (w, h) != (size, size):
        nw, nh = max(size, round(w * s)), max(size, round(h * s))
        im = im.resize((nw, nh), Image.BICUBIC)
        l, t = (nw - size) // 2, (nh - size) // 2
        im = im.crop((l, t, l + size, t + size))
    return im


def _load_one(args):
    path, size = args
    with Image.open(path) as im:
        return np.asarray(square_resize(im, size), dtype=np.uint8)


def load_folder(root: str, size: int, limit: int | None = None, workers: int = 4):
    """-> (images uint8 [N,size,size,3], labels int [N], classes list)."""
    items = list_images(root)
    if limit:
        rng = np.random.default_rng(0)
        items = [items[i] for i in sorted(rng.choice(len(items), min(limit, len(items)), replace=False))]
    classes = sorted({c for _, c in items})
    with ThreadPoolExecutor(workers) as ex:
        imgs = list(ex.map(_load_one, [(p, size) for p, _ in items]))
    labels = np.array([classes.index(c) for _, c in items], dtype=np.int64)
    return np.stack(imgs), labels, classes


def _decode(b: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(b)) as im:
        return np.asarray(im.convert("RGB"), dtype=np.uint8)


def load_pack(path: str, workers: int = 8, limit: int | None = None):
    """Read a shard written by training.pack -> (images uint8 [N,S,S,3], labels, classes).
    With `limit`, an evenly spaced subset of that many photos (all classes represented)."""
    z = np.load(path, allow_pickle=False)
    data, off = z["data"], z["offsets"]
    n = len(off) - 1
    sel = np.arange(n) if not limit or limit >= n else np.linspace(0, n - 1, limit).round().astype(int)
    blobs = [data[off[i]:off[i + 1]].tobytes() for i in sel]
    with ThreadPoolExecutor(workers) as ex:
        imgs = list(ex.map(_decode, blobs))
    return np.stack(imgs), z["labels"][sel].astype(np.int64), [str(c) for c in z["classes"]]


def load_sources(sources: list[str], size: int, limit: int | None = None):
    """Each source is a folder of photos or a .npz pack. Returns the concatenation."""
    ims, labs, names = [], [], []
    for src in sources:
        if src.endswith(".npz"):
            x, y, c = load_pack(src, workers=min(8, os.cpu_count() or 1), limit=limit)
            if x.shape[1] != size:
                x = np.stack([np.asarray(Image.fromarray(i).resize((size, size), Image.BICUBIC)) for i in x])
        else:
            x, y, c = load_folder(src, size, limit)
        tag = os.path.basename(src.rstrip("/")).replace(".npz", "")
        labs.append(y + len(names))
        names += [f"{tag}/{k}" for k in c]
        ims.append(x)
    return np.concatenate(ims), np.concatenate(labs), names


class GpuBatcher:
    """Holds the uint8 images on `device`; yields (L, ab) batches of random crops and flips.
    One epoch = one pass over a random permutation (last partial batch kept)."""

    def __init__(self, images: np.ndarray, device, crop: int, batch: int, seed: int = 0):
        self.x = torch.from_numpy(images).to(device)               # [N,S,S,3] uint8
        self.n, self.s = self.x.shape[0], self.x.shape[1]
        self.crop = min(crop, self.s)
        self.batch = batch
        self.device = torch.device(device)
        self.g = torch.Generator(device="cpu").manual_seed(seed)
        self.ar = torch.arange(self.crop, device=device)

    def steps_per_epoch(self) -> int:
        return (self.n + self.batch - 1) // self.batch

    def epoch(self):
        perm = torch.randperm(self.n, generator=self.g)
        for s in range(0, self.n, self.batch):
            idx = perm[s:s + self.batch]
            yield self.make_batch(idx)

    def make_batch(self, idx: torch.Tensor):
        b = idx.numel()
        span = self.s - self.crop + 1
        oy = torch.randint(0, span, (b,), generator=self.g)
        ox = torch.randint(0, span, (b,), generator=self.g)
        flip = torch.rand(b, generator=self.g) < 0.5
        idx, oy, ox, flip = idx.to(self.device), oy.to(self.device), ox.to(self.device), flip.to(self.device)
        rows = oy[:, None] + self.ar[None, :]                                   # [b,c]
        cols = torch.where(flip[:, None], ox[:, None] + self.crop - 1 - self.ar[None, :],
                           ox[:, None] + self.ar[None, :])
        x = self.x[idx[:, None, None], rows[:, :, None], cols[:, None, :]]      # [b,c,c,3]
        rgb = x.permute(0, 3, 1, 2).float() / 255.0
        lab = rgb_to_lab_torch(rgb)
        return lab[:, :1].contiguous(), lab[:, 1:].contiguous()


def pack_count(path: str) -> int:
    """Number of photos in a training.pack shard (reads only its offsets)."""
    with np.load(path, allow_pickle=False) as z:
        return len(z["offsets"]) - 1


class ShardStream:
    """Trains over packed shards one at a time, so that a run can hold one shard in memory and
    continue across calls that each carry a few shards (the device takes ~64 MiB per call).

    One round (= the training loop's epoch) is one pass over `total` shards (default: the shards
    given). Progress lives in `state["stream"]` (shards done this round, the current shard and
    how many of its batches were trained), which the checkpoint saves: on --resume the current
    shard restarts at the same batch (its permutation and crops are re-drawn from the same seed),
    finished shards are skipped, and a call whose given shards are all done before the round is
    complete stops (`self.needs_more` is set) so the next call can carry the next shards."""

    def __init__(self, paths: list[str], size: int, device, crop: int, batch: int, seed: int, state: dict,
                 total: int = 0, limit: int | None = None):
        self.paths = sorted(paths, key=os.path.basename)
        self.size, self.device, self.batch, self.seed = size, device, batch, seed
        self.limit = limit
        self.state = state
        self.total = total or len(self.paths)
        self.counts = {os.path.basename(p): min(pack_count(p), limit or 1 << 62) for p in self.paths}
        self.n = sum(self.counts.values())
        self.needs_more = False
        state.setdefault("stream", {"round": 0, "done": [], "current": None, "pos": 0})
        self.crop = min(crop, size)

    def steps_per_epoch(self) -> int:
        return sum((c + self.batch - 1) // self.batch for c in self.counts.values())

    def epoch(self):
        """Shards in name order (so calls can carry them in that order; pack shards with their
        rows shuffled across sources), each in a fresh random order of its photos per round."""
        st = self.state["stream"]
        rnd = st["round"]
        order = sorted(self.counts)
        if st["current"] in order:          # resume inside a shard: it goes first
            order.remove(st["current"])
            order.insert(0, st["current"])
        by_name = {os.path.basename(p): p for p in self.paths}
        for name in order:
            if name in st["done"]:
                continue
            skip = st["pos"] if st["current"] == name else 0
            st["current"], st["pos"] = name, skip
            x, _, _ = load_sources([by_name[name]], self.size, self.limit)
            b = GpuBatcher(x, self.device, self.crop, self.batch,
                           seed=self.seed + 1000003 * rnd + sum(map(ord, name)))
            del x
            for k, batch in enumerate(b.epoch()):
                if k < skip:
                    continue
                st["pos"] = k + 1          # the loop trains on a batch before it can stop
                yield batch
            st["done"].append(name)
            st["current"], st["pos"] = None, 0
        if len(st["done"]) >= self.total:
            st["round"], st["done"] = rnd + 1, []
        else:
            self.needs_more = True
