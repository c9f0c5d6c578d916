"""training.broad on a tiny generated git repository: select filters and dedupes, rebuild writes
shards that training.data.load_pack reads, a second rebuild reproduces them, and a source file
whose bytes no longer match the manifest is reported and skipped."""
import gzip
import io
import json
import os
import subprocess

import numpy as np
import pytest
from PIL import Image

from training import broad


def _git(cwd, *args):
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def _photo(seed, h=140, w=180):
    """A smooth colourful image with some structure (so difference hashes differ)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([x / w, y / h, 1 - (x + y) / (w + h)], -1)
    for _ in range(6):
        cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(8, 40)
        img = np.where(((y - cy) ** 2 + (x - cx) ** 2 < r * r)[..., None], rng.uniform(0, 1, 3), img)
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


def _save(path, arr, fmt="JPEG"):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(arr).save(path, fmt, **({"quality": 92} if fmt == "JPEG" else {}))


@pytest.fixture
def world(tmp_path):
    """ROOT/owner+name/repo (a git work tree) + a fake PHOTOS folder (general/ and intel/ with manifests) with one val photo."""
    root = tmp_path / "mirrors"
    repo = root / "acme+photos" / "repo"
    repo.mkdir(parents=True)
    _git(repo, "init", "-q")
    _git(repo, "config", "user.email", "t@t")
    _git(repo, "config", "user.name", "t")
    good = [_photo(i) for i in range(5)]
    _save(repo / "imgs/cat/a.jpg", good[0])
    _save(repo / "imgs/cat/b.png", good[1], "PNG")
    _save(repo / "imgs/dog/c.jpg", good[2])
    _save(repo / "imgs/dog/d.jpg", good[3])
    (repo / "imgs/dog/d_copy.jpg").write_bytes((repo / "imgs/dog/d.jpg").read_bytes())   # exact duplicate
    gray = np.repeat(_photo(10).mean(-1, keepdims=True), 3, -1).astype(np.uint8)
    _save(repo / "imgs/dog/gray.jpg", gray)                                               # gray
    _save(repo / "imgs/cat/small.jpg", _photo(11, 90, 120))                               # short side 90
    (repo / "imgs/cat/broken.jpg").write_bytes(b"not a jpeg")                             # undecodable
    _save(repo / "imgs/cat/shared.jpg", good[4])                                          # sha256 in shared
    # near-duplicate of a validation photo: same picture, re-encoded and slightly brightened
    val = _photo(20)
    _save(repo / "imgs/dog/near_val.jpg", np.clip(val.astype(int) + 4, 0, 255).astype(np.uint8))
    _save(repo / "other/ignored.jpg", _photo(30))                                         # outside prefixes
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "photos")
    commit = _git(repo, "rev-parse", "HEAD")

    shared = tmp_path / "shared"
    _save(shared / "general/val/misc/v.jpg", np.asarray(Image.fromarray(val).resize((128, 128))))
    import hashlib
    sha_shared = hashlib.sha256((repo / "imgs/cat/shared.jpg").read_bytes()).hexdigest()
    (shared / "general/MANIFEST.tsv").write_text(f"file\tsource_set\tsource_sha256\ntrain/x.jpg\tx\t{sha_shared}\n")
    (shared / "SHA256SUMS").write_text("0" * 64 + "  intel/train/x/1.jpg\n")
    sources = {"toy": {"repo": "acme/photos", "commit": commit[:10], "prefixes": ["imgs/"], "label": "parent",
                       "licence": "CC0 (test)", "exclude": [r"/nothing/"]}}
    return {"root": root, "repo": repo, "git_dir": str(repo / ".git"), "shared": str(shared),
            "sources": sources, "commit": commit}


def _select(world, tmp_path):
    man = str(tmp_path / "m.tsv.gz")
    info = broad.select([world["git_dir"]], world["sources"], man, world["shared"], workers=1, log=lambda *a: None)
    return man, info


def test_select_filters_and_dedupes(world, tmp_path):
    man, info = _select(world, tmp_path)
    st = info["sources"]["toy"]
    assert st["files"] == 10 and st["commit"] == world["commit"]
    assert (st["undecodable"], st["small"], st["gray"], st["shared_dup"], st["dup"], st["near_val"]) == (1, 1, 1, 1, 1, 1)
    rows = broad.read_manifest(man)
    assert list(rows[0]) == broad.COLUMNS
    assert sorted(r["path"] for r in rows) == ["imgs/cat/a.jpg", "imgs/cat/b.png", "imgs/dog/c.jpg", "imgs/dog/d.jpg"]
    r = {r["path"]: r for r in rows}["imgs/cat/b.png"]
    assert (r["repo"], r["label"], r["source_set"], r["licence"]) == ("acme/photos", "cat", "toy", "CC0 (test)")
    assert (int(r["width"]), int(r["height"])) == (180, 140)
    # same input -> same manifest bytes
    (tmp_path / "again").mkdir()
    man2, _ = _select(world, tmp_path / "again")
    assert open(man, "rb").read() == open(man2, "rb").read()


def test_rebuild_writes_loadable_reproducible_shards(world, tmp_path):
    from training.data import load_pack
    man, _ = _select(world, tmp_path)
    out1, out2 = str(tmp_path / "o1"), str(tmp_path / "o2")
    idx = broad.rebuild(man, str(world["root"]), out1, size=32, quality=75, shard_size=3, workers=1, log=lambda *a: None)
    assert idx["images"] == 4 and idx["sha256_mismatch"] == 0 and idx["missing"] == 0
    assert [s["file"] for s in idx["shards"]] == ["broad_000.npz", "broad_001.npz"]
    assert idx["per_source"] == {"toy": 4}
    x, y, classes = load_pack(os.path.join(out1, "broad_000.npz"), workers=1)
    assert x.shape == (3, 32, 32, 3) and x.dtype == np.uint8 and classes == ["toy"] and (y == 0).all()
    z = np.load(os.path.join(out1, "broad_001.npz"))
    assert z["offsets"].dtype == np.int64 and z["labels"].dtype == np.int16 and z["data"].dtype == np.uint8
    assert json.loads(str(z["meta"]))["format"] == "webp"
    with open(os.path.join(out1, "index.json")) as f:
        assert json.load(f)["images"] == 4
    broad.rebuild(man, str(world["root"]), out2, size=32, quality=75, shard_size=3, workers=1, log=lambda *a: None)
    for name in ("broad_000.npz", "broad_001.npz"):
        a, b = np.load(os.path.join(out1, name)), np.load(os.path.join(out2, name))
        for k in ("data", "offsets", "labels", "classes", "meta"):
            assert np.array_equal(a[k], b[k]), (name, k)


def test_rebuild_finds_plain_clone_layouts(world, tmp_path):
    man, _ = _select(world, tmp_path)
    plain = tmp_path / "clones" / "acme"
    plain.mkdir(parents=True)
    subprocess.run(["git", "clone", "-q", str(world["repo"]), str(plain / "photos")], check=True)
    assert broad.find_git_dir(str(tmp_path / "clones"), "acme/photos") == str(plain / "photos" / ".git")
    idx = broad.rebuild(man, str(tmp_path / "clones"), str(tmp_path / "o"), size=32, workers=1, log=lambda *a: None)
    assert idx["images"] == 4


def test_rebuild_reports_sha256_mismatch(world, tmp_path):
    man, _ = _select(world, tmp_path)
    rows = broad.read_manifest(man)
    rows[0]["sha256"] = "f" * 64
    bad = str(tmp_path / "bad.tsv.gz")
    broad.write_manifest(bad, rows)
    out = str(tmp_path / "o")
    idx = broad.rebuild(bad, str(world["root"]), out, size=32, workers=1, log=lambda *a: None)
    assert idx["sha256_mismatch"] == 1 and idx["images"] == 3
    assert idx["problems"]["sha256_mismatch"] == [f"acme/photos:{rows[0]['path']}"]
    assert broad.main(["rebuild", "--manifest", bad, "--mirrors", str(world["root"]), "--out", out,
                       "--size", "32", "--workers", "1"]) == 1


def test_manifest_is_gzip_tsv(world, tmp_path):
    man, _ = _select(world, tmp_path)
    with gzip.open(man, "rt") as f:
        header = f.readline().rstrip("\n").split("\t")
    assert header == broad.COLUMNS
    assert io.BytesIO(open(man, "rb").read()).read(2) == b"\x1f\x8b"
