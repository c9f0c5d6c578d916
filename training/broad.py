"""Broad training photos: select them from public git repositories into a manifest, and
rebuild the packed shards from that manifest.

The photos never enter this repository. What the repository keeps is
training/data/broad_manifest.tsv.gz: one row per photo with the public repository, the commit,
the path inside it, the sha256 of the file's bytes, the licence, the source set, a label and the
source size. Anyone with the repositories cloned (or fetched) at those commits can rebuild
exactly the same shards.

  # 1. choose photos (filters + dedupe) from local git dirs of the repositories in SOURCES
  python -m training.broad select --mirror MIRRORS/owner+name/repo [--mirror ...] \\
      --manifest training/data/broad_manifest.tsv.gz --exclude-shared PHOTOS
  # 2. rebuild the shards (WebP, short side --size, centre crop) from the manifest
  python -m training.broad rebuild --manifest training/data/broad_manifest.tsv.gz \\
      --mirrors MIRRORS --out SHARDS --size 128 --quality 75 --shard-size 10000

Git dirs are read with `git ls-tree` and `git cat-file --batch` at the recorded commit; no work
tree is needed. `--mirrors ROOT` accepts ROOT/owner+name/repo[/.git] (what the fetch tool makes),
ROOT/owner+name[/.git] and ROOT/owner/name[/.git] (plain `git clone` checkouts).

Each shard has the format of training/pack.py (np.savez: data uint8, offsets int64 [N+1],
labels int16 [N], classes str [C], meta JSON str), so training.data.load_pack reads it. The class
of a photo is its source set; rows are shuffled across shards with a fixed seed.
"""
from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import time
from functools import partial
from concurrent.futures import ProcessPoolExecutor

import numpy as np
from PIL import Image

from .data import square_resize

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
COLUMNS = ["repo", "commit", "path", "sha256", "licence", "source_set", "label", "width", "height"]

MIN_SHORT = 112       # px, short side of the source photo
MAX_ASPECT = 3.0      # long / short; banners and strips are dropped
GRAY_THRESH = 2.0     # mean |R-G| + |G-B| (0..255 scale) under this = gray / near-gray
NEAR_DUP_BITS = 6     # 8x8 difference hash within this Hamming distance = near-duplicate

# Source sets: which paths of which repository, at which commit. `label`: "parent" = name of
# the photo's folder, "none" = no label, or a regex whose first group (on the file name) is the
# label. `exclude`: regexes on the path that are left out.
SOURCES: dict[str, dict] = {
    "pets-catsdogs": {
        "repo": "karemsaeed21/cat_vs_dog_classification_CNN",
        "commit": "16df905b",
        "prefixes": ["PetImages/Cat/", "PetImages/Dog/"],
        "label": "parent",
        "licence": "repo: no LICENSE file; photos: Kaggle Dogs vs. Cats / Microsoft Asirra "
                   "(Petfinder.com photos), research use (unknown/research-only)",
        "about": "cats and dogs, pet photos (stored at 180x180, stretched)",
    },
    "stanford-cars": {
        "repo": "fmejbah/car_dataset1",
        "commit": "2ac6920297f51277ac4e24afd231c46d35077831",
        "prefixes": ["cars_train/"],
        "label": "none",
        "licence": "repo: no LICENSE file; photos: Stanford Cars (Krause et al. 2013), "
                   "non-commercial research use",
        "about": "cars, 196 models, street and showroom photos (Stanford Cars train split)",
    },
    "clothing": {
        "repo": "alexeygrigorev/clothing-dataset",
        "commit": "7ed86a9cc56763b6acb35e41cb35184e43a5d218",
        "prefixes": ["images/"],
        "label": "none",
        "licence": "CC0 1.0 (repo LICENSE and dataset statement)",
        "about": "clothes and shoes, mostly on floors, beds and tables (people in some)",
    },
    "houses": {
        "repo": "emanhamed/Houses-dataset",
        "commit": "5e148219500558089cf5cf121b626b17fdde9b92",
        "prefixes": ["Houses Dataset/"],
        "label": r"^\d+_(\w+)\.",
        "licence": "repo: no LICENSE file; dataset (Ahmed & Moustafa 2016): research use "
                   "(unknown/research-only)",
        "about": "real-estate photos: bathrooms, bedrooms, kitchens, house fronts",
    },
    "caltech101": {
        "repo": "TomislavZupanovic/Caltech101",
        "commit": "ffa65b4ce18720dd57c5ab80b6b6432a6809e1b0",
        "prefixes": ["source/data/Dataset/train/", "source/data/Dataset/val/", "source/data/Dataset/test/"],
        # Faces_easy are crops of Faces; cartoons, drawings and banknotes are not photos
        "exclude": [r"/(Faces_easy|garfield|snoopy|yin_yang|dollar_bill|stegosaurus|brontosaurus)/"],
        "label": "parent",
        "licence": "repo: MIT LICENSE (its code); photos: Caltech 101 (Fei-Fei, Fergus, Perona 2004), "
                   "CaltechDATA doi:10.22002/D1.20086, listed there as CC BY 4.0",
        "about": "objects in 95 classes: instruments, tools, animals, vehicles, furniture, faces",
    },
    "grocery": {
        "repo": "marcusklasson/GroceryStoreDataset",
        "commit": "fc80ba90f803d79d0383df52c5a4ac5de99ff6fc",
        "prefixes": ["dataset/train/", "dataset/val/", "dataset/test/"],
        "label": "parent",
        "licence": "repo: MIT LICENSE (the repository holds the photos; no separate dataset licence); "
                   "Grocery Store Dataset (Klasson et al. WACV 2019), cite the paper",
        "about": "fruit, vegetables and packages photographed in grocery stores (phone camera)",
    },
    "house-rooms": {
        "repo": "ZunairaWeb/MLINTERN_II",
        "commit": "12f26b579bfe7b484140818eeffb45b899dde977",
        "prefixes": ["House Pricing Prediction/images/House_Room_Dataset/"],
        "label": "parent",
        "licence": "repo: no LICENSE file; Kaggle 'House Rooms Image Dataset' (robinreni), web photos, "
                   "unknown/research-only",
        "about": "interiors: bathrooms, bedrooms, dining rooms, kitchens, living rooms",
    },
    "faces-allage": {
        "repo": "middleyuan/All-Age-Faces-Dataset",
        "commit": "28741a75e2efb7a2f96e13d4beb58411536f473d",
        "prefixes": ["All-Age-Faces Dataset/original images/"],
        "label": "none",
        "licence": "repo: no LICENSE file; All-Age-Faces (Cheng et al.), research use "
                   "(unknown/research-only); the 5000 photos already in the general set drop out by sha256",
        "about": "face and upper-body portraits, ages 2-80, mostly East Asian",
    },
    "faces-utk": {
        "repo": "Mohanish-5744/Major_Ensemble_Gender",
        "commit": "2f8aa4a5932c395d465f4f58d864b6a17a1b03f6",
        "prefixes": ["crop_part1/"],
        "label": "none",
        "licence": "repo: no LICENSE file; UTKFace crop_part1 (Zhang, Song, Qi 2017), non-commercial "
                   "research use",
        "about": "face crops (200x200), ages 1-116, many ethnicities",
    },
    "car-bike": {
        "repo": "arnavagrawal2701/CNN_From_Scratch",
        "commit": "8696babf651c54ece1dad5dfd728f1abd21e9bc6",
        "prefixes": ["Car-Bike-Dataset/"],
        "label": "parent",
        "licence": "repo: no LICENSE file; Kaggle 'Car vs Bike' web photos (unknown/research-only)",
        "about": "cars and motorbikes, street and studio web photos",
    },
    "flickr8k": {
        "repo": "quantumnaan/sic_translator",
        "commit": "d27da85cff2dbf143fcaf365aece667d66c4298f",
        "prefixes": ["data/images/"],
        "label": "none",
        "licence": "repo: no LICENSE file; Flickr8k (Hodosh et al. 2013) Flickr photos, research use "
                   "(unknown/research-only)",
        "about": "1000 Flickr8k photos: people and dogs in everyday activities",
    },
    "debris-objects": {
        "repo": "thenorthwes/fodadataset",
        "commit": "39ed3b9d98a4c33e283963ae6a7a1e2b456bbdca",
        "prefixes": ["JPEGImages/"],
        "label": "none",
        "licence": "repo: no LICENSE file; FOD-A (Munyer et al. 2021, airport foreign-object debris), "
                   "unknown/research-only",
        "about": "small everyday objects (tools, bolts, cables, batteries) on pavement, 300x300; "
                 "low-saturation backgrounds",
    },
}


# ------------------------------------------------------------------------------ git access
def git_dir_ok(p: str) -> bool:
    return os.path.isfile(os.path.join(p, "HEAD")) and os.path.isdir(os.path.join(p, "objects"))


def find_git_dir(root: str, repo: str) -> str | None:
    """The git dir of `repo` ("owner/name") under `root`, in any of the accepted layouts."""
    owner, name = repo.split("/", 1)
    for base in (os.path.join(root, f"{owner}+{name}", "repo"), os.path.join(root, f"{owner}+{name}"),
                 os.path.join(root, owner, name), os.path.join(root, name)):
        for cand in (base, os.path.join(base, ".git")):
            if git_dir_ok(cand):
                return cand
    return None


def repo_of_git_dir(git_dir: str) -> str | None:
    """owner/name from a path such as MIRRORS/owner+name/repo/.git or ROOT/owner/name/.git."""
    parts = [p for p in os.path.abspath(git_dir).split(os.sep) if p and p not in (".git", "repo")]
    for p in reversed(parts):
        if "+" in p:
            o, n = p.split("+", 1)
            return f"{o}/{n}"
    return f"{parts[-2]}/{parts[-1]}" if len(parts) >= 2 else None


def resolve_commit(git_dir: str, commit: str) -> str:
    return subprocess.run(["git", f"--git-dir={git_dir}", "rev-parse", "--verify", f"{commit}^{{commit}}"],
                          check=True, capture_output=True, text=True).stdout.strip()


def ls_tree(git_dir: str, commit: str, prefixes: list[str]):
    """-> [(blob sha1, size or None, path)] for the image files under prefixes."""
    out = subprocess.run(["git", f"--git-dir={git_dir}", "ls-tree", "-r", "-l", "-z", commit, "--", *prefixes],
                         check=True, capture_output=True).stdout.decode("utf-8", "surrogateescape")
    rows = []
    for rec in out.split("\0"):
        if not rec:
            continue
        meta, path = rec.split("\t", 1)
        mode, typ, sha, size = meta.split()
        if typ == "blob" and mode in ("100644", "100755") and path.lower().endswith(IMAGE_EXTS):
            rows.append((sha, int(size) if size.isdigit() else None, path))  # "BAD": blob absent
    rows.sort(key=lambda r: r[2])
    return rows


class BlobReader:
    """One `git cat-file --batch` process; read(spec) -> bytes or None when missing."""

    def __init__(self, git_dir: str):
        self.p = subprocess.Popen(["git", f"--git-dir={git_dir}", "cat-file", "--batch"],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def read(self, spec: str) -> bytes | None:
        self.p.stdin.write(spec.encode("utf-8", "surrogateescape") + b"\n")
        self.p.stdin.flush()
        header = self.p.stdout.readline().decode()
        if header.rstrip().endswith("missing") or header.rstrip().endswith("ambiguous"):
            return None
        size = int(header.split()[2])
        data = self.p.stdout.read(size)
        self.p.stdout.read(1)
        return data

    def close(self):
        # kill, not wait: forked pool workers may hold a copy of the stdin pipe, so git would
        # never see end-of-file
        self.p.stdin.close()
        self.p.kill()
        self.p.wait()


# ------------------------------------------------------------------------------ photo checks
def dhash(im: Image.Image) -> int:
    """64-bit difference hash: gray, 9x8, each bit = left pixel brighter than its right one."""
    g = np.asarray(im.convert("L").resize((9, 8), Image.BILINEAR), dtype=np.int16)
    bits = (g[:, :-1] > g[:, 1:]).flatten()
    return int(np.packbits(bits).view(">u8")[0])


def _small(im: Image.Image) -> Image.Image:
    """A downscaled RGB copy (long side <= 256) for the gray check and the hash."""
    im = im.convert("RGB")
    im.thumbnail((256, 256), Image.BILINEAR)
    return im


def colour_diff(im: Image.Image) -> float:
    a = np.asarray(im, dtype=np.int16)
    return float((np.abs(a[..., 0] - a[..., 1]) + np.abs(a[..., 1] - a[..., 2])).mean())


def inspect(data: bytes) -> dict:
    """sha256, decode, size, colourfulness and hash of one source file (runs in a worker)."""
    out = {"sha256": hashlib.sha256(data).hexdigest()}
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            out["w"], out["h"] = im.size
            sm = _small(im)
    except Exception as e:  # noqa: BLE001 - any decode failure drops the photo
        out["error"] = type(e).__name__
        return out
    out["colour"] = colour_diff(sm)
    out["dhash"] = dhash(sm)
    return out


def _inspect_path(path: str) -> dict:
    with open(path, "rb") as f:
        d = inspect(f.read())
    d["path"] = path
    return d


def popcount64(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.uint64)
    return np.unpackbits(x.view(np.uint8).reshape(-1, 8), axis=1).sum(1)


class NearDupIndex:
    def __init__(self, hashes: list[int]):
        self.h = np.array(hashes, dtype=np.uint64)

    def near(self, h: int, bits: int = NEAR_DUP_BITS) -> bool:
        if not len(self.h):
            return False
        return bool((popcount64(self.h ^ np.uint64(h)) <= bits).any())


def shared_exclusions(shared: str | None, workers: int = 2):
    """(sha256 set, near-duplicate hash index) from the project's own PHOTOS folder (general/, intel/): the source hashes of the
    general and intel sets, and the difference hashes of their validation photos."""
    shas: set[str] = set()
    paths: list[str] = []
    if shared:
        man = os.path.join(shared, "general", "MANIFEST.tsv")
        if os.path.exists(man):
            with open(man) as f:
                for r in csv.DictReader(f, delimiter="\t"):
                    shas.add(r["source_sha256"])
        sums = os.path.join(shared, "SHA256SUMS")
        if os.path.exists(sums):
            with open(sums) as f:
                shas.update(line.split()[0] for line in f if line.strip())
        for sub in ("general/val", "intel/val"):
            d = os.path.join(shared, sub)
            for dp, _, fns in os.walk(d):
                paths += [os.path.join(dp, f) for f in sorted(fns) if f.lower().endswith(IMAGE_EXTS)]
    hashes = []
    if paths:
        with ProcessPoolExecutor(workers) as ex:
            hashes = [d["dhash"] for d in ex.map(_inspect_path, sorted(paths), chunksize=32) if "dhash" in d]
    return shas, NearDupIndex(hashes), len(paths)


def label_of(path: str, rule: str) -> str:
    if rule == "none":
        return ""
    if rule == "parent":
        return os.path.basename(os.path.dirname(path))
    m = re.search(rule, os.path.basename(path))
    return m.group(1) if m else ""


# ------------------------------------------------------------------------------ select
def _inspect_all(ex, git_dir: str, files, st: dict, batch: int = 1024):
    """(path, inspect() result) for each present blob, read in batches (bounded memory)."""
    reader = BlobReader(git_dir)
    try:
        for b in range(0, len(files), batch):
            got = []
            for sha, _, path in files[b:b + batch]:
                data = reader.read(sha)
                if data is None:
                    st["missing"] += 1
                else:
                    got.append((path, data))
            yield from zip([p for p, _ in got], ex.map(inspect, [d for _, d in got], chunksize=16))
    finally:
        reader.close()


def select(mirrors: list[str], sources: dict[str, dict], manifest: str, exclude_shared: str | None,
           workers: int = 2, log=partial(print, flush=True)) -> dict:
    ex_sha, ex_near, n_val = shared_exclusions(exclude_shared, workers)
    log(f"exclusions: {len(ex_sha)} shared sha256, {n_val} validation photos hashed")
    by_repo = {}
    for g in mirrors:
        repo = repo_of_git_dir(g)
        by_repo[repo] = g
    rows, seen = [], set()
    stats: dict[str, dict] = {}
    t0 = time.time()
    with ProcessPoolExecutor(workers) as ex:
        for name, src in sources.items():
            g = by_repo.get(src["repo"])
            if g is None:
                log(f"{name}: no --mirror for {src['repo']}, skipped")
                continue
            commit = resolve_commit(g, src["commit"])
            files = ls_tree(g, commit, src["prefixes"])
            excl = [re.compile(x) for x in src.get("exclude", [])]
            files = [f for f in files if not any(x.search(f[2]) for x in excl)]
            st = {"repo": src["repo"], "commit": commit, "files": len(files), "missing": 0, "undecodable": 0,
                  "small": 0, "aspect": 0, "gray": 0, "shared_dup": 0, "dup": 0, "near_val": 0, "kept": 0}
            present = [f for f in files if f[1] is not None]
            st["missing"] = len(files) - len(present)

            for path, info in _inspect_all(ex, g, present, st):
                if "error" in info:
                    st["undecodable"] += 1
                    continue
                w, h = info["w"], info["h"]
                if min(w, h) < MIN_SHORT:
                    st["small"] += 1
                    continue
                if max(w, h) / min(w, h) > MAX_ASPECT:
                    st["aspect"] += 1
                    continue
                if info["colour"] < GRAY_THRESH:
                    st["gray"] += 1
                    continue
                if info["sha256"] in ex_sha:
                    st["shared_dup"] += 1
                    continue
                if info["sha256"] in seen:
                    st["dup"] += 1
                    continue
                if ex_near.near(info["dhash"]):
                    st["near_val"] += 1
                    continue
                seen.add(info["sha256"])
                rows.append({"repo": src["repo"], "commit": commit, "path": path, "sha256": info["sha256"],
                             "licence": src["licence"], "source_set": name,
                             "label": label_of(path, src.get("label", "none")), "width": w, "height": h})
                st["kept"] += 1
            stats[name] = st
            log(f"{name}: {json.dumps(st)} ({time.time() - t0:.0f}s)")
    write_manifest(manifest, rows)
    return {"rows": len(rows), "sources": stats, "validation_photos_hashed": n_val,
            "shared_sha256": len(ex_sha)}


def write_manifest(path: str, rows: list[dict]):
    os.makedirs(os.path.dirname(os.path.abspath(path)) or ".", exist_ok=True)
    # mtime=0: the same rows give the same bytes
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz, \
            io.TextIOWrapper(gz, encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, COLUMNS, delimiter="\t", lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow(r)


def read_manifest(path: str) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


# ------------------------------------------------------------------------------ rebuild
def encode(args) -> bytes:
    data, size, quality = args
    with Image.open(io.BytesIO(data)) as im:
        im = square_resize(im, size)
    b = io.BytesIO()
    im.save(b, "WEBP", quality=quality, method=6)
    return b.getvalue()


def rebuild(manifest: str, mirrors: str, out: str, size: int = 128, quality: int = 75,
            shard_size: int = 10000, seed: int = 0, workers: int = 2,
            log=partial(print, flush=True)) -> dict:
    rows = read_manifest(manifest)
    classes = sorted({r["source_set"] for r in rows})
    cidx = {c: i for i, c in enumerate(classes)}
    git_dirs, readers = {}, {}
    for repo in sorted({r["repo"] for r in rows}):
        git_dirs[repo] = find_git_dir(mirrors, repo)
        if git_dirs[repo] is None:
            log(f"{repo}: no git dir under {mirrors}; its rows are skipped")
    order = np.random.default_rng(seed).permutation(len(rows))
    os.makedirs(out, exist_ok=True)
    for f in os.listdir(out):
        if re.fullmatch(r"broad_\d{3}\.npz", f):
            os.remove(os.path.join(out, f))
    problems = {"sha256_mismatch": [], "missing": [], "no_repo": 0, "encode_error": []}
    shards, t0 = [], time.time()

    def fetch(r):
        g = git_dirs[r["repo"]]
        if g is None:
            problems["no_repo"] += 1
            return None
        rd = readers.get(g) or readers.setdefault(g, BlobReader(g))
        data = rd.read(f"{r['commit']}:{r['path']}")
        if data is None:
            problems["missing"].append(f"{r['repo']}:{r['path']}")
            return None
        if hashlib.sha256(data).hexdigest() != r["sha256"]:
            problems["sha256_mismatch"].append(f"{r['repo']}:{r['path']}")
            return None
        return data

    with ProcessPoolExecutor(workers) as ex:
        for s, start in enumerate(range(0, len(rows), shard_size)):
            part = [rows[i] for i in order[start:start + shard_size]]
            got = [(r, d) for r in part if (d := fetch(r)) is not None]
            blobs = list(ex.map(encode, [(d, size, quality) for _, d in got], chunksize=32))
            lens = np.array([len(b) for b in blobs], dtype=np.int64)
            offsets = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
            data = np.frombuffer(b"".join(blobs), dtype=np.uint8)
            labels = np.array([cidx[r["source_set"]] for r, _ in got], dtype=np.int16)
            path = os.path.join(out, f"broad_{s:03d}.npz")
            meta = {"src": "training/data/broad_manifest.tsv.gz", "shard": s, "seed": seed, "size": size,
                    "quality": quality, "format": "webp",
                    "rows": [f"{r['repo']}:{r['path']}" for r, _ in got]}
            np.savez(path, data=data, offsets=offsets, labels=labels, classes=np.array(classes),
                     meta=np.array(json.dumps(meta)))
            counts = {c: int((labels == i).sum()) for i, c in enumerate(classes)}
            shards.append({"file": os.path.basename(path), "images": len(got), "bytes": os.path.getsize(path),
                           "per_source": counts})
            log(f"{path}: {len(got)} photos, {os.path.getsize(path) / 1e6:.1f} MB ({time.time() - t0:.0f}s)")
    for rd in readers.values():
        rd.close()
    per_source = {c: sum(sh["per_source"][c] for sh in shards) for c in classes}
    index = {"manifest": os.path.abspath(manifest), "manifest_rows": len(rows),
             "images": sum(sh["images"] for sh in shards), "classes": classes, "per_source": per_source,
             "size": size, "quality": quality, "shard_size": shard_size, "seed": seed, "shards": shards,
             "sha256_mismatch": len(problems["sha256_mismatch"]), "missing": len(problems["missing"]),
             "no_repo": problems["no_repo"], "problems": {k: v[:50] for k, v in problems.items() if isinstance(v, list)},
             "seconds": round(time.time() - t0, 1)}
    with open(os.path.join(out, "index.json"), "w") as f:
        json.dump(index, f, indent=1)
    return index


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("select", help="filter + dedupe the source repositories into a manifest")
    s.add_argument("--mirror", action="append", required=True, help="git dir of one source repository")
    s.add_argument("--source-config", help="JSON file {source_set: {...}} replacing the built-in SOURCES")
    s.add_argument("--only", action="append", help="only these source sets")
    s.add_argument("--manifest", required=True)
    s.add_argument("--exclude-shared", help="PHOTOS folder of the project's own general/ and intel/ sets: its hashes and validation photos are excluded")
    s.add_argument("--workers", type=int, default=2)
    r = sub.add_parser("rebuild", help="manifest + local git copies -> WebP shards")
    r.add_argument("--manifest", required=True)
    r.add_argument("--mirrors", required=True, help="folder that holds the repositories' git dirs")
    r.add_argument("--out", required=True)
    r.add_argument("--size", type=int, default=128)
    r.add_argument("--quality", type=int, default=75)
    r.add_argument("--shard-size", type=int, default=10000)
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--workers", type=int, default=2)
    a = ap.parse_args(argv)
    if a.cmd == "select":
        sources = SOURCES
        if a.source_config:
            with open(a.source_config) as f:
                sources = json.load(f)
        if a.only:
            sources = {k: v for k, v in sources.items() if k in a.only}
        info = select(a.mirror, sources, a.manifest, a.exclude_shared, a.workers)
        print(json.dumps(info, indent=1))
    else:
        info = rebuild(a.manifest, a.mirrors, a.out, a.size, a.quality, a.shard_size, a.seed, a.workers)
        print(json.dumps({k: v for k, v in info.items() if k != "shards"}, indent=1))
        if info["sha256_mismatch"] or info["missing"] or info["no_repo"]:
            print(f"WARNING: {info['sha256_mismatch']} sha256 mismatches, {info['missing']} missing, "
                  f"{info['no_repo']} without a repository (skipped)", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
