"""Pack round trip, GPU batcher (on CPU), evaluation metrics and the evaluate CLI."""
import json
import os

import numpy as np
import torch
import torch.nn.functional as F

from training import evaluate as ev
from training.data import GpuBatcher, load_folder, load_pack
from training.export import export_model, untrained_model
from training.pack import pack


def test_pack_roundtrip(photo_folder, tmp_path):
    info = pack(photo_folder, str(tmp_path / "p.npz"), size=32, quality=90, workers=1)
    assert info["images"] == 10 and info["classes"] == {"alpha": 5, "beta": 5}
    x, y, classes = load_pack(str(tmp_path / "p.npz"), workers=2)
    ref, ry, _ = load_folder(photo_folder, 32)
    assert x.shape == (10, 32, 32, 3) and classes == ["alpha", "beta"] and (y == ry).all()
    assert np.abs(x.astype(float) - ref).mean() < 6  # lossy WebP, small error
    x3, y3, _ = load_pack(str(tmp_path / "p.npz"), limit=3)
    assert len(x3) == 3


def test_batcher_crops_flips_and_lab(photo_folder):
    x, _, _ = load_folder(photo_folder, 40)
    b = GpuBatcher(x, "cpu", crop=32, batch=4, seed=0)
    batches = list(b.epoch())
    assert len(batches) == b.steps_per_epoch() == 3
    L, ab = batches[0]
    assert L.shape == (4, 1, 32, 32) and ab.shape == (4, 2, 32, 32)
    assert 0 <= L.min() and L.max() <= 100.01
    # a crop with no flip equals the source region
    b.crop = 40
    b.ar = torch.arange(40)
    L2, _ = b.make_batch(torch.tensor([0]))
    from training.lab import rgb_to_lab_torch
    full = rgb_to_lab_torch(torch.from_numpy(x[:1]).permute(0, 3, 1, 2).float() / 255)[:, :1]
    assert torch.allclose(L2, full, atol=1e-4) or torch.allclose(L2, full.flip(-1), atol=1e-4)


def test_metrics():
    rng = np.random.default_rng(0)
    img = (rng.random((32, 32, 3)) * 255).astype(np.uint8)
    assert ev.psnr(img, img) == 100.0
    assert abs(ev.ssim(img, img) - 1) < 1e-9
    gray = np.repeat(img[..., :1], 3, -1)
    assert ev.colourfulness(gray) == 0.0
    assert ev.colourfulness(img) > 10
    ab = rng.random((32, 32, 2)) * 50
    assert ev.ab_auc(ab, ab) == 1.0
    assert ev.ab_auc(ab, ab + 200) == 0.0
    # error of exactly 75 everywhere -> CDF is 0 below 75 and 1 from 75: AuC = 76/151
    assert abs(ev.ab_auc(np.zeros((4, 4, 2)), np.stack([np.full((4, 4), 75.0), np.zeros((4, 4))], -1)) - 76 / 151) < 1e-9


def test_evaluate_cli(photo_folder, tmp_path):
    ce = tmp_path / "ce.onnx"
    l2 = tmp_path / "l2.onnx"
    export_model(untrained_model("ce"), str(ce), name="ce", description="", input_size=32)
    export_model(untrained_model("l2"), str(l2), name="l2", description="", input_size=32)
    md, js = tmp_path / "r.md", tmp_path / "r.json"
    ev.main(["--data", photo_folder, "--model", f"ce={ce}", "--model", f"l2={l2}", "--temperatures", "0.2,1.0",
             "--out-md", str(md), "--out-json", str(js)])
    res = json.loads(js.read_text())
    rows = {r["row"]: r for r in res["rows"]}
    assert {"gray", "l2", "ce T=0.2", "ce T=0.38", "ce T=1"} <= set(rows)
    g = rows["gray"]["metrics"]
    assert g["all"]["n"] == 10 and g["alpha"]["n"] == 5 and g["beta"]["n"] == 5
    assert g["all"]["cf_pred"] < 0.5            # the gray row has (almost) no colour
    assert 0 <= rows["ce T=0.38"]["metrics"]["all"]["auc"] <= 1
    assert res["picked_T"]["ce"]["T"] in (0.2, 0.38, 1.0)
    text = md.read_text()
    assert "PSNR" in text and "alpha" in text and "T sweep" in text


def test_pack_shards_splits_by_size_and_caps_classes(photo_folder, tmp_path):
    from training.pack import pack_shards
    one = pack(photo_folder, str(tmp_path / "one.npz"), size=32, quality=90, workers=1)
    info = pack_shards([photo_folder], str(tmp_path / "gp"), 32, 90, shard_mb=one["bytes"] / 3e6,
                       class_limits=["alpha=2"], workers=1)
    tag = os.path.basename(photo_folder.rstrip("/"))
    assert info["images"] == 7 and info["classes"] == {f"{tag}/alpha": 2, f"{tag}/beta": 5}
    assert len(info["shards"]) >= 3 and sum(s["images"] for s in info["shards"]) == 7
    assert all(s["bytes"] <= one["bytes"] / 3 + 4096 for s in info["shards"])   # one photo a shard here
    x, y, classes = load_pack(info["shards"][0]["out"], workers=1)
    assert x.shape[1:] == (32, 32, 3) and classes == [f"{tag}/alpha", f"{tag}/beta"]
    # shards of several photos stay within --shard-mb, the offsets, labels and headers included
    mb = (4096 + one["bytes"] / 7 * 3) / 1e6
    info = pack_shards([photo_folder], str(tmp_path / "gp3"), 32, 90, shard_mb=mb, class_limits=[], workers=1)
    assert max(s["images"] for s in info["shards"]) >= 2
    assert all(s["bytes"] <= mb * 1e6 for s in info["shards"])


def test_pack_shards_of_many_small_photos_stay_within_the_size(tmp_path):
    """10 bytes a photo of offsets and labels add up: 1200 photos must not push a shard over."""
    from PIL import Image
    from training.pack import pack_shards
    rng = np.random.default_rng(0)
    src = tmp_path / "tiny" / "c"
    src.mkdir(parents=True)
    for i in range(1200):
        Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(src / f"{i:04d}.png")
    info = pack_shards([str(tmp_path / "tiny")], str(tmp_path / "gp"), 8, 50, shard_mb=0.1, class_limits=[], workers=1)
    assert sum(s["images"] for s in info["shards"]) == 1200 and max(s["images"] for s in info["shards"]) > 500
    assert all(s["bytes"] <= 100_000 for s in info["shards"]), info["shards"]


def test_a_set_made_of_links_to_class_folders_is_read_and_an_empty_one_is_refused(photo_folder, tmp_path):
    from training.data import list_images
    import pytest
    linked = tmp_path / "linked"
    linked.mkdir()
    src = sorted(p for p in os.listdir(photo_folder) if os.path.isdir(os.path.join(photo_folder, p)))
    for name in src:
        os.symlink(os.path.join(photo_folder, name), linked / name)
    want = [(os.path.basename(p), c) for p, c in list_images(str(photo_folder))]
    got = [(os.path.basename(p), c) for p, c in list_images(str(linked))]
    assert got == want and len(got) > 0
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SystemExit, match="no photos"):
        ev.evaluate(str(empty), {})


def test_the_model_size_follows_the_service_rule(tmp_path):
    """As src/engine/mod.rs input_size_for: short side to the input size, kept between
    colorizer.min_input_size and it, enlarged to the minimum below; sides to multiples of 16."""
    from training.export import rewrite_metadata
    path = str(tmp_path / "m.onnx")
    export_model(untrained_model("ce"), path, name="t", description="t", input_size=112, trained=False)
    assert ev.OnnxColorizer(path).model_hw(150, 150) == (112, 112)   # no minimum: always the input size
    rewrite_metadata(path, {"input_size": "160", "min_input_size": "128"})
    col = ev.OnnxColorizer(path)
    assert col.model_hw(80, 100) == (128, 160)
    assert col.model_hw(150, 150) == (144, 144)
    assert col.model_hw(150, 200) == (144, 208)
    assert col.model_hw(3000, 4000) == (160, 208)
    path2 = str(tmp_path / "m2.onnx")   # the export writes the key itself too
    export_model(untrained_model("ce"), path2, name="t", description="t", input_size=160, min_input_size=128, trained=False)
    assert ev.OnnxColorizer(path2).model_hw(150, 200) == (144, 208)


def test_the_ceiling_is_the_truth_at_the_model_output_grid():
    # a colour that is constant over each 4x4 cell of the output grid comes back exactly
    cells = torch.tensor([[10.0, -20.0], [35.0, 5.0]])
    ab = torch.stack([cells, -cells]).repeat_interleave(4, 1).repeat_interleave(4, 2)[None]
    assert ab.shape == (1, 2, 8, 8)
    flat = torch.full((1, 2, 8, 8), 12.5)
    assert torch.allclose(ev.ceiling_ab(flat, (2, 2)), flat)
    # detail finer than a cell is averaged away: a 1-px checkerboard of +-30 becomes its mean, 0
    checker = (torch.arange(8)[:, None] + torch.arange(8)[None]) % 2 * 60.0 - 30.0
    board = torch.stack([checker, checker])[None]
    assert ev.ceiling_ab(board, (2, 2)).abs().max() < 1e-5
    # and a cell pattern keeps its cell means (the bilinear upsampling blends only near the seams)
    up = ev.ceiling_ab(ab, (2, 2))
    assert torch.allclose(up[..., 0, 0], ab[..., 0, 0]) and torch.allclose(up[..., 7, 7], ab[..., 7, 7])


def test_true_detail_on_the_true_cell_colours_is_the_ceiling_of_a_grid_twice_as_fine():
    g = torch.Generator().manual_seed(3)
    ab = torch.randn(2, 2, 32, 48, generator=g) * 30
    cells = F.interpolate(ab, size=(8, 12), mode="area")       # a model that paints the true cell colours
    # up(cells) + (true at 16 x 24 - up(true at 8 x 12)) is the true colour at 16 x 24, upsampled
    assert torch.allclose(ev.with_true_detail(cells, ab), ev.ceiling_ab(ab, (16, 24)), atol=1e-4)
    # a flat photo has no detail: the model's own colours come back, upsampled (through the fine grid)
    flat = torch.full((1, 2, 32, 48), -7.0)
    model = torch.randn(1, 2, 8, 12, generator=g) * 20

    def up(x, size):
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False)
    assert torch.allclose(ev.with_true_detail(model, flat), up(up(model, (16, 24)), (32, 48)), atol=1e-4)


def test_evaluate_cli_true_detail_row(photo_folder, tmp_path):
    ce = tmp_path / "ce.onnx"
    export_model(untrained_model("ce"), str(ce), name="ce", description="", input_size=32)
    js = tmp_path / "r.json"
    ev.main(["--data", photo_folder, "--model", f"ce={ce}", "--temperatures", "0.38", "--classifier", "none",
             "--true-detail", "--out-json", str(js)])
    rows = {r["row"]: r for r in json.loads(js.read_text())["rows"]}
    row = rows["ce + true detail"]
    assert row["kind"] == "oracle" and row["metrics"]["all"]["n"] == 10
    # the truth's detail adds colour the untrained model's flat output lacks
    assert row["metrics"]["all"]["psnr"] != rows["ce T=0.38"]["metrics"]["all"]["psnr"]


def test_evaluate_cli_ceiling_rows(photo_folder, tmp_path):
    ce = tmp_path / "ce.onnx"
    export_model(untrained_model("ce"), str(ce), name="ce", description="", input_size=32)
    js, md = tmp_path / "r.json", tmp_path / "r.md"
    ev.main(["--data", photo_folder, "--model", f"ce={ce}", "--temperatures", "0.38", "--classifier", "none",
             "--ceiling", "--ceiling-sizes", "8,64", "--out-json", str(js), "--out-md", str(md)])
    rows = {r["row"]: r for r in json.loads(js.read_text())["rows"]}
    ceil = rows["ce ceiling"]["metrics"]["all"]
    assert rows["ce ceiling"]["kind"] == "ceiling" and ceil["n"] == 10
    # the truth's colours at 1/4 resolution: far closer to the photo than gray or an untrained model
    assert ceil["psnr"] > rows["gray"]["metrics"]["all"]["psnr"] + 3
    assert ceil["psnr"] > rows["ce T=0.38"]["metrics"]["all"]["psnr"]
    assert ceil["cf_pred"] > 5
    assert "ce ceiling" in md.read_text()
    # the same at given sizes: a finer grid keeps more of the truth's colour than a coarser one
    coarse, fine = rows["ceiling@8"]["metrics"]["all"], rows["ceiling@64"]["metrics"]["all"]
    assert fine["psnr"] > coarse["psnr"] and fine["auc"] >= coarse["auc"]
