"""Evaluate ONNX colorizers on a folder of colour photos (recursive; class = parent folder).

Each photo's GRAY version (L only) goes through the ONNX model with onnxruntime, exactly as
shipped: L is resized so its short side is the model's colorizer.input_size, or kept where it
lies between colorizer.min_input_size and that (both sides rounded to a multiple of 16), the
predicted ab (1/4 resolution) is upsampled bilinearly to the full size and joined with the
full-resolution L, then converted to RGB (skimage lab2rgb formula, clipped) and rounded to 8 bits.

Metrics per image, averaged per class and over all: PSNR (RGB 0..255), SSIM (skimage, RGB,
data_range 255, 7x7 window), colourfulness CF (Hasler & Suesstrunk) of prediction and truth,
dCF = |mean CF(pred) - mean CF(true)| over the set, mean |CF(pred) - CF(true)| per image, and
AuC of the per-pixel ab error CDF over thresholds 0..150 (step 1, Zhang et al.).
Rows: gray (ab = 0), every model (CE models at their default T, plus a T sweep); with --ceiling
also "NAME ceiling" per model: the true ab averaged to that model's output grid and upsampled as
its output is, i.e. the best any model run at that size could do. With --true-detail also "NAME +
true detail" per CE model: its own colours (default T) on its grid, upsampled to a grid twice as
fine, plus the TRUE colour's detail between the two grids (the true ab at the fine grid less the
true ab at the model's grid upsampled): what a perfect 1/2-resolution refinement of that model's
colours could add, with the colours themselves left as the model paints them.

Semantic test (Zhang et al. ECCV16 Table 1, "semantic interpretability"): an ImageNet classifier
(--classifier, EfficientNet-Lite2 from its PyPI wheel by default; use one that is not the
encoder the model was trained on) classifies the true colour photo, the gray photo and each
colorization. Reported: top-1 against ImageNet labels where --labels gives them (a TSV with
columns path, imagenet_index; path relative to --data), agreement with the classifier's own top-1
on the true colour photo for every photo, and for both the share of the gray -> truth gap closed:
(row - gray) / (truth - gray). Only gray, L2 models and CE models at --semantic-temperatures (plus
their default T) are classified (the classifier costs ~0.1 s a photo on 2 cores).

  python -m training.evaluate --data PHOTOS/general/val \
      --model general=models/colorizer-general.onnx --model l2=models/colorizer-l2.onnx \
      --labels training/resources/general_val_imagenette_labels.tsv --out-md report.md --out-json report.json
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from . import DEFAULT_PTS
from .bins import decode_annealed_torch, load_pts
from .data import list_images
from .lab import lab_to_rgb_torch, rgb2lab_np

SWEEP = [0.1, 0.2, 0.3, 0.38, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]


# ---------------------------------------------------------------- metrics
def psnr(pred: np.ndarray, true: np.ndarray) -> float:
    mse = np.mean((pred.astype(np.float64) - true.astype(np.float64)) ** 2)
    return 100.0 if mse == 0 else float(10 * np.log10(255.0 ** 2 / mse))


def ssim(pred: np.ndarray, true: np.ndarray) -> float:
    from skimage.metrics import structural_similarity
    return float(structural_similarity(true, pred, channel_axis=-1, data_range=255))


def colourfulness(rgb: np.ndarray) -> float:
    """Hasler & Suesstrunk (2003) on RGB 0..255."""
    r, g, b = [rgb[..., i].astype(np.float64) for i in range(3)]
    rg = r - g
    yb = 0.5 * (r + g) - b
    return float(np.sqrt(rg.std() ** 2 + yb.std() ** 2) + 0.3 * np.sqrt(rg.mean() ** 2 + yb.mean() ** 2))


def ab_auc(pred_ab: np.ndarray, true_ab: np.ndarray, max_t: int = 150) -> float:
    """Area under the CDF of per-pixel ab L2 error, thresholds 0..max_t step 1, in [0,1]."""
    err = np.sqrt(((pred_ab - true_ab) ** 2).sum(-1)).reshape(-1)
    hist = np.bincount(np.minimum(np.ceil(err).astype(np.int64), max_t + 1), minlength=max_t + 2)
    cdf = np.cumsum(hist)[: max_t + 1] / err.size     # fraction with err <= t, t = 0..max_t
    return float(cdf.mean())


# ---------------------------------------------------------------- model
# each side of the model input is a multiple of this, as in the service (src/engine/mod.rs)
SIZE_MULTIPLE = int(os.environ.get("COLORIZER_EVAL_SIZE_MULTIPLE", "16"))


class OnnxColorizer:
    def __init__(self, path: str, threads: int = 2, input_size: int | None = None):
        import onnxruntime as ort
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        self.sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        self.path = path
        self.input = self.sess.get_inputs()[0].name
        self.takes_hints = len(self.sess.get_inputs()) == 2
        meta = self.sess.get_modelmeta().custom_metadata_map
        self.meta = dict(meta)
        self.temperature = float(meta.get("colorizer.temperature", 0.38))
        self.input_size = int(input_size or meta.get("colorizer.input_size", 256))
        # as the service: a photo whose short side lies between colorizer.min_input_size and the
        # input size runs at its own size; smaller ones are enlarged to the minimum
        self.min_input_size = min(int(meta.get("colorizer.min_input_size", self.input_size)), self.input_size)
        self.kind = None  # 'ce' or 'l2', known after the first run

    def model_hw(self, h: int, w: int) -> tuple[int, int]:
        short = min(h, w)
        s = min(max(short, self.min_input_size), self.input_size) / short
        m = SIZE_MULTIPLE   # halves round up, as Rust's f64::round (Python's round() goes to even)
        return max(m, int(np.floor(h * s / m + 0.5)) * m), max(m, int(np.floor(w * s / m + 0.5)) * m)

    def raw(self, L_batch: np.ndarray, hints: np.ndarray | None = None) -> np.ndarray:
        """L [N,H,W] (all the same size) -> raw output [N,C,h,w] at the model size. Hint models
        get `hints` [N,3,mh,mw] at the model size (all-zero, i.e. no hints, when None)."""
        n, h, w = L_batch.shape
        mh, mw = self.model_hw(h, w)
        if (mh, mw) != (h, w):
            L_batch = np.stack([np.asarray(Image.fromarray(l.astype(np.float32), mode="F").resize((mw, mh), Image.BILINEAR))
                                for l in L_batch])
        x = np.clip(L_batch, 0, 100).astype(np.float32)[:, None]
        feed = {self.input: x}
        if self.takes_hints:
            feed["hints"] = (np.zeros((n, 3, mh, mw), np.float32) if hints is None else hints.astype(np.float32))
        (y,) = self.sess.run(None, feed)
        self.kind = "ce" if y.shape[1] == 313 else "l2"
        return y


def decode_to_ab(raw: np.ndarray, pts: torch.Tensor, T: float | None, out_hw) -> torch.Tensor:
    """raw [N,313|2,h,w] -> ab [N,2,H,W] (annealed mean for 313 logits), bilinear upsampling."""
    y = torch.from_numpy(raw).float()
    ab = decode_annealed_torch(y, pts, T) if y.shape[1] == 313 else y
    return F.interpolate(ab, size=out_hw, mode="bilinear", align_corners=False)


def to_rgb8(L: np.ndarray, ab: torch.Tensor) -> np.ndarray:
    """L [N,H,W], ab [N,2,H,W] -> uint8 RGB [N,H,W,3]."""
    lab = torch.cat([torch.from_numpy(L).float()[:, None], ab], 1)
    rgb = lab_to_rgb_torch(lab).permute(0, 2, 3, 1).numpy()
    return np.round(rgb * 255.0).astype(np.uint8)


# ---------------------------------------------------------------- evaluation
def load_photos(root: str, limit: int | None = None):
    items = list_images(root)
    if limit and limit < len(items):
        idx = np.linspace(0, len(items) - 1, limit).round().astype(int)
        items = [items[i] for i in idx]
    photos = []
    for p, c in items:
        with Image.open(p) as im:
            rgb = np.asarray(im.convert("RGB"), dtype=np.uint8)
        photos.append({"path": os.path.relpath(p, root), "class": c or "all", "rgb": rgb})
    return photos


def image_metrics(pred: np.ndarray, true: np.ndarray, pred_ab: np.ndarray, true_ab: np.ndarray,
                  cf_true: float) -> dict:
    cf_p = colourfulness(pred)
    return {"psnr": psnr(pred, true), "ssim": ssim(pred, true), "cf_pred": cf_p, "cf_true": cf_true,
            "dcf_img": abs(cf_p - cf_true), "auc": ab_auc(pred_ab, true_ab)}


def aggregate(recs: list[dict]) -> dict:
    if not recs:
        return {}
    m = {k: float(np.mean([r[k] for r in recs])) for k in ("psnr", "ssim", "cf_pred", "cf_true", "dcf_img", "auc")}
    m["dcf"] = abs(m["cf_pred"] - m["cf_true"])
    m["n"] = len(recs)
    return m


def evaluate(data: str, models: dict[str, str], temperatures=SWEEP, threads: int = 2, limit=None,
             pts_path=DEFAULT_PTS, batch: int = 32, input_size: int | None = None, keep_outputs=False,
             log=print, classifier: str | None = None, labels: dict | None = None,
             semantic_temperatures=(0.38, 0.6, 1.0), hint_counts=(), hint_seed: int = 0, ceiling: bool = False,
             ceiling_sizes=(), true_detail: bool = False):
    pts = torch.from_numpy(load_pts(pts_path))
    photos = load_photos(data, limit)
    if not photos:
        raise SystemExit(f"no photos (.jpg, .png, ...) found under {data}")
    log(f"{len(photos)} photos from {data}")
    for ph in photos:
        lab = rgb2lab_np(ph["rgb"])
        ph["L"], ph["ab"] = lab[..., 0], lab[..., 1:]
        ph["cf_true"] = colourfulness(ph["rgb"])
    groups: dict[tuple, list[int]] = {}
    for i, ph in enumerate(photos):
        groups.setdefault(ph["L"].shape, []).append(i)

    rows: dict[str, dict] = {}
    per_image: dict[str, list] = {}
    outputs: dict[str, dict] = {}
    semantic_in: dict[str, dict] = {}

    def add(row, i, pred, pred_ab, info):
        ph = photos[i]
        r = image_metrics(pred, ph["rgb"], pred_ab, ph["ab"], ph["cf_true"])
        r.update(path=ph["path"], **{"class": ph["class"]})
        per_image.setdefault(row, []).append(r)
        rows.setdefault(row, info)
        if keep_outputs:
            outputs.setdefault(row, {})[i] = pred
        if classifier and (info["kind"] != "ce" or info.get("default_T")
                           or any(abs(info["T"] - t) < 1e-9 for t in semantic_temperatures)):
            semantic_in.setdefault(row, {})[i] = pred

    # gray floor
    for shape, idx in groups.items():
        L = np.stack([photos[i]["L"] for i in idx])
        rgb = to_rgb8(L, torch.zeros(len(idx), 2, *shape))
        for j, i in enumerate(idx):
            add("gray", i, rgb[j], np.zeros_like(photos[i]["ab"]), {"model": None, "T": None, "kind": "gray"})
    # ceilings at given inference sizes: the photo's short side taken to S (up or down, sides to a
    # multiple of SIZE_MULTIPLE), output grid = 1/4 of that, whatever any model's own size rule says
    for S in ceiling_sizes:
        for shape, idx in groups.items():
            sc = S / min(shape)
            grid = tuple(max(SIZE_MULTIPLE, int(np.floor(v * sc / SIZE_MULTIPLE + 0.5)) * SIZE_MULTIPLE) // 4
                         for v in shape)
            ab_true = torch.from_numpy(np.stack([photos[i]["ab"] for i in idx])).permute(0, 3, 1, 2).float()
            ab = ceiling_ab(ab_true, grid)
            rgb, abn = to_rgb8(np.stack([photos[i]["L"] for i in idx]), ab), ab.permute(0, 2, 3, 1).numpy()
            for j, i in enumerate(idx):
                add(f"ceiling@{S}", i, rgb[j], abn[j], {"model": None, "T": None, "kind": "ceiling"})
    meta = {}
    for name, path in models.items():
        t0 = time.time()
        path, size = split_size(path)
        col = OnnxColorizer(path, threads, size or input_size)
        meta[name] = {"path": path, "input_size": col.input_size, "metadata": col.meta}
        infer_s = 0.0
        for shape, idx in groups.items():
            for s in range(0, len(idx), batch):
                sub = idx[s:s + batch]
                L = np.stack([photos[i]["L"] for i in sub])

                def add_batch(row, ab, info):
                    rgb = to_rgb8(L, ab)
                    abn = ab.permute(0, 2, 3, 1).numpy()
                    for j, i in enumerate(sub):
                        add(row, i, rgb[j], abn[j], info)
                ti = time.time()
                raw = col.raw(L)
                infer_s += time.time() - ti
                if col.kind == "ce":
                    ts = sorted(set(list(temperatures) + [col.temperature]))
                    for T in ts:
                        add_batch(f"{name} T={T:g}", decode_to_ab(raw, pts, T, shape),
                                  {"model": name, "T": T, "kind": "ce", "default_T": T == col.temperature})
                else:
                    add_batch(name, decode_to_ab(raw, pts, None, shape), {"model": name, "T": None, "kind": "l2"})
                # the batch's true ab [N,2,H,W], for the ceiling, true-detail and hint rows
                ab_true = torch.from_numpy(np.stack([photos[i]["ab"] for i in sub])).permute(0, 3, 1, 2).float()
                if ceiling:
                    add_batch(f"{name} ceiling", ceiling_ab(ab_true, raw.shape[2:]),
                              {"model": name, "T": None, "kind": "ceiling"})
                if true_detail and col.kind == "ce":
                    add_batch(f"{name} + true detail",
                              with_true_detail(decode_annealed_torch(torch.from_numpy(raw).float(), pts,
                                                                     col.temperature), ab_true),
                              {"model": name, "T": col.temperature, "kind": "oracle"})
                if col.takes_hints and hint_counts:
                    for n_hints in hint_counts:
                        hint_maps = true_colour_hints(ab_true, col.model_hw(*shape), n_hints, hint_seed, sub[0])
                        # no hints is an all-zero map: the output computed above
                        hint_raw = raw if n_hints == 0 else col.raw(L, hint_maps)
                        if keep_outputs:
                            for j, i in enumerate(sub):
                                outputs.setdefault(f"{name} hints={n_hints} maps", {})[i] = hint_maps[j]
                        add_batch(f"{name} hints={n_hints}", decode_to_ab(hint_raw, pts, col.temperature, shape),
                                  {"model": f"{name}+hints", "T": col.temperature, "kind": "hints", "hints": n_hints})
        meta[name]["kind"] = col.kind
        meta[name]["hints"] = col.takes_hints
        meta[name]["infer_ms_per_image"] = 1000 * infer_s / len(photos)
        log(f"{name}: {col.kind}, {time.time()-t0:.0f}s ({meta[name]['infer_ms_per_image']:.1f} ms/image inference)")

    classes = sorted({ph["class"] for ph in photos})
    result = {"data": os.path.abspath(data), "n": len(photos), "classes": classes, "models": meta, "rows": []}
    for row, info in rows.items():
        recs = per_image[row]
        agg = {"all": aggregate(recs)}
        for c in classes:
            agg[c] = aggregate([r for r in recs if r["class"] == c])
        result["rows"].append({"row": row, **info, "metrics": agg})
    result["picked_T"] = {name: pick_temperature(result, name) for name in models if meta[name]["kind"] == "ce"}
    if classifier:
        result["semantic"] = semantic_test(photos, semantic_in, classifier, labels or {}, threads, log)
    result["per_image"] = per_image
    if keep_outputs:
        result["_outputs"] = outputs
        result["_photos"] = photos
    return result


def ceiling_ab(ab_true: torch.Tensor, out_hw) -> torch.Tensor:
    """What a perfect model of this output grid would give: the true ab [N,2,H,W] averaged over
    each cell of the model's output grid `out_hw` (area), then upsampled bilinearly to H x W as the
    model's own output is (decode_to_ab). The colour a model of that resolution can show at best."""
    small = F.interpolate(ab_true, size=tuple(out_hw), mode="area")
    return F.interpolate(small, size=tuple(ab_true.shape[2:]), mode="bilinear", align_corners=False)


def with_true_detail(ab_grid: torch.Tensor, ab_true: torch.Tensor) -> torch.Tensor:
    """A model's ab [N,2,h,w] on its grid, refined to a grid twice as fine with the true colour's
    detail: up(model) + (true at 2h x 2w - up(true at h x w)), then upsampled bilinearly to the
    photo's H x W. The model's colour of each cell is kept (the detail term averages to about zero
    over a cell); only how colour varies inside the cell is the truth's."""
    h, w = ab_grid.shape[2:]
    fine = (2 * h, 2 * w)

    def up(x, size):
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False)
    detail = F.interpolate(ab_true, size=fine, mode="area") - up(F.interpolate(ab_true, size=(h, w), mode="area"), fine)
    return up(up(ab_grid, fine) + detail, tuple(ab_true.shape[2:]))


def true_colour_hints(ab_true: torch.Tensor, model_hw, n_points: int, seed: int, batch_key: int) -> np.ndarray:
    """n_points random hints per photo drawn from the true ab [N,2,H,W] at the model size
    (area-resized): 3x3 patches holding the mean true ab there (training.hints.fixed_points).
    The draw depends only on (seed, n_points, batch_key), so every model gets the same points."""
    from .hints import fixed_points
    small = F.interpolate(ab_true, size=tuple(model_hw), mode="area")
    rng = np.random.default_rng([seed, n_points, batch_key])
    return fixed_points(small, n_points, rng).numpy()


def split_size(spec: str) -> tuple[str, int | None]:
    """'model.onnx@160' -> ('model.onnx', 160); 'model.onnx' -> ('model.onnx', None)."""
    path, at, size = spec.rpartition("@")
    if at and size.isdigit() and path.endswith(".onnx"):
        return path, int(size)
    return spec, None


def semantic_test(photos, preds: dict[str, dict], classifier: str, labels: dict, threads: int, log) -> dict:
    """Top-1 of an ImageNet classifier on truth / gray / each colorization (see the module doc)."""
    from .encoders import ImageNetClassifier
    t0 = time.time()
    clf = ImageNetClassifier(classifier, threads)
    truth = clf.predict([ph["rgb"] for ph in photos])
    lab = torch.tensor([labels.get(ph["path"], -1) for ph in photos])
    has = lab >= 0
    classes = np.array([ph["class"] for ph in photos])
    out = {"classifier": f"efficientnet-{classifier}", "n": len(photos), "n_labelled": int(has.sum()), "rows": {},
           "classes": sorted(set(classes.tolist()))}

    def score(pred):
        r = {"agree": float((pred == truth).float().mean())}
        if has.any():
            r["top1"] = float((pred[has] == lab[has]).float().mean())
        return r
    out["truth"] = score(truth)
    agrees = {}
    for row, by_idx in preds.items():
        pred = clf.predict([by_idx[i] for i in range(len(photos))])
        out["rows"][row] = score(pred)
        agrees[row] = (pred == truth).numpy()
    gray = out["rows"].get("gray")
    if gray:
        for r in out["rows"].values():
            for k in ("agree", "top1"):
                if k in r and out["truth"][k] != gray[k]:
                    r[f"gap_{k}"] = (r[k] - gray[k]) / (out["truth"][k] - gray[k])
        # where the gap is won and lost: photos the gray one gets wrong and this row right (won),
        # and the reverse (lost), overall and per class (folder)
        g = agrees["gray"]
        for row, a in agrees.items():
            r = out["rows"][row]
            r["won"], r["lost"] = int((a & ~g).sum()), int((~a & g).sum())
            r["by_class"] = {}
            for c in out["classes"]:
                s = classes == c
                gap = int((~g[s]).sum())
                r["by_class"][c] = {"n": int(s.sum()), "agree": float(a[s].mean()), "won": int((a & ~g)[s].sum()),
                                    "lost": int((~a & g)[s].sum()), "gap": gap}
                if gap:
                    r["by_class"][c]["gap_agree"] = float((a[s].sum() - g[s].sum()) / gap)
    log(f"semantic test ({out['classifier']}, {len(photos)} photos, {out['n_labelled']} labelled): "
        f"{time.time()-t0:.0f}s")
    return out


def load_labels(path: str) -> dict:
    """TSV with a header holding columns `path` (relative to --data) and `imagenet_index`."""
    import csv
    with open(path, newline="") as f:
        return {r["path"]: int(r["imagenet_index"]) for r in csv.DictReader(f, delimiter="\t")}


def pick_temperature(result: dict, model: str, max_dcf: float = 3.0) -> dict:
    """Highest-PSNR sweep T whose set dCF <= max_dcf; if none, the T with the smallest dCF."""
    cands = [r for r in result["rows"] if r["model"] == model and r["kind"] == "ce"]
    ok = [r for r in cands if r["metrics"]["all"]["dcf"] <= max_dcf]
    best = max(ok, key=lambda r: r["metrics"]["all"]["psnr"]) if ok else min(cands, key=lambda r: r["metrics"]["all"]["dcf"])
    return {"T": best["T"], "rule": f"max PSNR s.t. dCF <= {max_dcf}" if ok else "min dCF (no T had dCF <= 3)",
            **{k: best["metrics"]["all"][k] for k in ("psnr", "ssim", "dcf", "cf_pred")}}


# ---------------------------------------------------------------- report
COLS = [("psnr", "PSNR", "{:.2f}"), ("ssim", "SSIM", "{:.4f}"), ("cf_pred", "CF pred", "{:.1f}"),
        ("cf_true", "CF true", "{:.1f}"), ("dcf", "dCF", "{:.2f}"), ("dcf_img", "mean abs dCF/img", "{:.2f}"),
        ("auc", "AuC", "{:.3f}")]


def table(rows, key="all", label="row"):
    out = [f"| {label} | n | " + " | ".join(c[1] for c in COLS) + " |",
           "|---|---:|" + "---:|" * len(COLS)]
    for name, m in rows:
        if not m:
            continue
        out.append(f"| {name} | {m['n']} | " + " | ".join(f.format(m[k]) for k, _, f in COLS) + " |")
    return "\n".join(out)


def main_rows(result):
    """gray, L2 rows, each CE model at its default T (and at the picked T if different)."""
    out = [r for r in result["rows"] if r["kind"] in ("gray", "l2", "ceiling", "oracle")]
    for name, pick in result["picked_T"].items():
        for r in result["rows"]:
            if r["model"] == name and r["kind"] == "ce" and (r.get("default_T") or r["T"] == pick["T"] or abs(r["T"] - 0.38) < 1e-9):
                if r not in out:
                    out.append(r)
    return out


def markdown(result, title=None) -> str:
    lines = [f"## {title or 'Evaluation'}: `{result['data']}` ({result['n']} photos)", ""]
    mr = main_rows(result)
    lines += [table([(r["row"], r["metrics"]["all"]) for r in mr]), ""]
    for name, pick in result["picked_T"].items():
        lines.append(f"- `{name}`: picked T = {pick['T']:g} ({pick['rule']}): PSNR {pick['psnr']:.2f}, "
                     f"SSIM {pick['ssim']:.4f}, dCF {pick['dcf']:.2f}")
    lines.append("")
    if len(result["classes"]) > 1:
        lines += ["### Per class", ""]
        for c in result["classes"]:
            lines += [f"**{c}**", "", table([(r["row"], r["metrics"].get(c, {})) for r in mr]), ""]
    for name in result["picked_T"]:
        sweep = [r for r in result["rows"] if r["model"] == name and r["kind"] == "ce"]
        sweep.sort(key=lambda r: r["T"])
        lines += [f"### T sweep: {name}", "", table([(f"T={r['T']:g}", r["metrics"]["all"]) for r in sweep], label="T"), ""]
    hint_rows = [r for r in result["rows"] if r["kind"] == "hints"]
    if hint_rows:
        lines += ["### True-colour hints", "",
                  "Random points drawn from the truth at the model size (3x3 patches, mean true ab), "
                  "the same points for every model; each model at its default T.", "",
                  table([(r["row"], r["metrics"]["all"]) for r in sorted(hint_rows, key=lambda r: (r["model"], r["hints"]))]), ""]
    sem = result.get("semantic")
    if sem:
        lines += [f"### Semantic test: {sem['classifier']} top-1", "",
                  f"{sem['n']} photos; agreement = same top-1 as on the true colour photo (truth = 100%)"
                  + (f"; top-1 against ImageNet labels on the {sem['n_labelled']} labelled photos" if sem["n_labelled"] else ""),
                  "", "| input | agreement | gap closed | " + ("top-1 (labels) | gap closed |" if sem["n_labelled"] else ""),
                  "|---|---:|---:|" + ("---:|---:|" if sem["n_labelled"] else "")]

        def fmt(name, r):
            cells = [f"{100*r['agree']:.1f}%", f"{100*r['gap_agree']:+.0f}%" if "gap_agree" in r else ""]
            if sem["n_labelled"]:
                cells += [f"{100*r['top1']:.1f}%", f"{100*r['gap_top1']:+.0f}%" if "gap_top1" in r else ""]
            return f"| {name} | " + " | ".join(cells) + " |"
        lines.append(fmt("true colour", sem["truth"]))
        for name, r in sem["rows"].items():
            lines.append(fmt(name, r))
        lines.append("")
        rows = [(name, r) for name, r in sem["rows"].items() if name != "gray" and "by_class" in r]
        if rows:
            lines += ["Agreement gained and lost against the gray photo (won: the gray photo's top-1 differs from "
                      "the truth's and this one's matches it; lost: the reverse), per class:", "",
                      "| input | " + " | ".join(f"{c} (gap)" for c in sem["classes"]) + " | all |",
                      "|---|" + "---:|" * (len(sem["classes"]) + 1)]
            for name, r in rows:
                cells = [f"+{b['won']}/-{b['lost']} ({b['gap']})" for b in (r["by_class"][c] for c in sem["classes"])]
                lines.append(f"| {name} | " + " | ".join(cells) + f" | +{r['won']}/-{r['lost']} |")
            lines.append("")
    lines += ["Models: " + ", ".join(f"`{k}` = {v['path']} (input {v['input_size']}, "
                                      f"{v['infer_ms_per_image']:.1f} ms/photo)" for k, v in result["models"].items()), ""]
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="folder of colour photos (recursive; class = parent folder)")
    ap.add_argument("--model", action="append", default=[],
                    help="NAME=PATH.onnx or NAME=PATH.onnx@SIZE (run at that short side; repeatable)")
    ap.add_argument("--temperatures", default=",".join(str(t) for t in SWEEP))
    ap.add_argument("--input-size", type=int, help="override colorizer.input_size")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--limit", type=int)
    ap.add_argument("--pts", default=DEFAULT_PTS)
    ap.add_argument("--classifier", default="lite2", choices=["lite0", "lite1", "lite2", "none"],
                    help="ImageNet classifier of the semantic test ('none' skips it)")
    ap.add_argument("--labels", help="TSV path -> imagenet_index for the photos that have ImageNet labels")
    ap.add_argument("--semantic-temperatures", default="0.38,0.6,1.0",
                    help="CE rows classified in the semantic test (besides each model's default T)")
    ap.add_argument("--hint-counts", default="",
                    help="comma list, e.g. 0,1,2,5,10,20: hint models also run with this many true-colour hints")
    ap.add_argument("--hint-seed", type=int, default=0)
    ap.add_argument("--ceiling", action="store_true",
                    help="add a row per model: the TRUE ab at the model's output resolution (what a perfect "
                         "model of that size could show), measured like the models, semantic test included")
    ap.add_argument("--ceiling-sizes", default="",
                    help="comma list of inference sizes: a row 'ceiling@S' each, the true ab at the output grid "
                         "of a model run with the photo's short side at S (enlarged or shrunk)")
    ap.add_argument("--true-detail", action="store_true",
                    help="add a row per CE model: its colours refined to a grid twice as fine with the TRUE "
                         "colour's detail (what a perfect 1/2-resolution refinement of it could add)")
    ap.add_argument("--title")
    ap.add_argument("--out-md")
    ap.add_argument("--out-json")
    a = ap.parse_args(argv)
    models = dict(m.split("=", 1) for m in a.model)
    temps = [float(t) for t in a.temperatures.split(",") if t]
    res = evaluate(a.data, models, temps, a.threads, a.limit, a.pts, input_size=a.input_size,
                   classifier=None if a.classifier == "none" else a.classifier,
                   labels=load_labels(a.labels) if a.labels else None,
                   semantic_temperatures=[float(t) for t in a.semantic_temperatures.split(",") if t],
                   hint_counts=[int(n) for n in a.hint_counts.split(",") if n], hint_seed=a.hint_seed,
                   ceiling=a.ceiling, ceiling_sizes=[int(v) for v in a.ceiling_sizes.split(",") if v],
                   true_detail=a.true_detail)
    md = markdown(res, a.title)
    print(md)
    if a.out_md:
        os.makedirs(os.path.dirname(os.path.abspath(a.out_md)), exist_ok=True)
        with open(a.out_md, "w") as f:
            f.write(md)
    if a.out_json:
        os.makedirs(os.path.dirname(os.path.abspath(a.out_json)), exist_ok=True)
        with open(a.out_json, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
