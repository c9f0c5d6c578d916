"""Figures for the model card: loss curves and result grids (truth | gray | ours | L2).

  python -m training.figures loss --log landscape=training/runs/gpu1/landscape-seed/log.json \
      --log general=... --out models/loss_curve.png
  python -m training.figures grid --data PHOTOS/intel/val --model models/colorizer-landscape.onnx \
      --l2 models/colorizer-l2.onnx --n 3 --out models/grid_landscape.png [--classes faces] \
      [--extra landscape=models/colorizer-landscape.onnx]
  python -m training.figures hints --result general/val=eval_general.json --result intel/val=eval_intel.json \
      --auto broad --model hints --out models/hints_psnr.png
  python -m training.figures hints-grid --data PHOTOS/general/val --model models/colorizer-guided.onnx \
      --auto models/colorizer-broad.onnx --out models/grid_hints.png
"""
from __future__ import annotations

import argparse
import json

import numpy as np
from PIL import Image, ImageDraw

from . import evaluate as ev


def loss_curve(logs: dict[str, str], out: str):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    ce = {k: v for k, v in logs.items()}
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    for name, path in ce.items():
        d = json.load(open(path))
        head = d["args"]["head"]
        ax = axes[0] if head == "ce" else axes[1]
        # training loss: the mean over each epoch (the step log of the first GPU runs divided
        # the first window of every epoch by the full window length, so it is not plotted)
        ep = [(e["epoch"], e["loss"]) for e in d["epochs"]]
        line, = ax.plot(*zip(*ep), "-", lw=1.2, label=f"{name} train (epoch mean)")
        col = line.get_color()
        ve = [(e["epoch"], e["val_loss"]) for e in d["epochs"] if "val_loss" in e]
        if ve:
            ax.plot(*zip(*ve), "o--", ms=2.5, lw=0.9, color=col, label=f"{name} val")
        for e in d["epochs"]:
            if "lr_drop" in e and not e["lr_drop"].endswith(e["lr_drop"].split(" -> ")[0]):
                ax.axvline(e["epoch"], color=col, lw=0.5, ls=":")
    axes[0].set_title("rebalanced cross-entropy (313 bins)")
    axes[1].set_title("L2 baseline: mean squared ab error / 100^2")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.set_xscale("symlog", linthresh=30)
        ax.set_ylabel("loss")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def hints_curve(results: dict[str, str], model: str, auto: str | None, out: str):
    """PSNR and dCF against the number of true-colour hints (training.evaluate --hint-counts JSON),
    one line per data set, the automatic model (and gray) as dashed levels."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for name, path in results.items():
        res = json.load(open(path))
        rows = sorted((r for r in res["rows"] if r["kind"] == "hints" and r["model"] == f"{model}+hints"),
                      key=lambda r: r["hints"])
        xs = [r["hints"] for r in rows]
        for ax, key in zip(axes, ("psnr", "dcf")):
            line, = ax.plot(xs, [r["metrics"]["all"][key] for r in rows], "o-", label=f"{model}: {name}")
            levels = [("gray", [r for r in res["rows"] if r["kind"] == "gray"])] if key == "psnr" else []
            if auto:
                levels.append((auto, [r for r in res["rows"] if r["model"] == auto and r.get("default_T")]))
            for label, found in levels:
                if found:
                    ax.axhline(found[0]["metrics"]["all"][key], color=line.get_color(),
                               ls="--" if label != "gray" else ":", lw=0.9, label=f"{label}: {name}")
    axes[0].set_ylabel("PSNR (dB)")
    axes[1].set_ylabel("dCF (|colourfulness(pred) - colourfulness(truth)|; gray: 37)")
    for ax in axes:
        ax.set_xlabel("true-colour hints per photo")
        ax.set_xscale("symlog", linthresh=1)
        ax.set_xticks([0, 1, 2, 5, 10, 20])
        ax.set_xticklabels(["0", "1", "2", "5", "10", "20"])
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def hints_grid(data: str, model: str, auto: str, out: str, n: int = 6, counts=(0, 3, 10), tile: int = 160,
               limit=None, threads=2, seed: int = 0):
    """Rows of photos (evenly spaced over the set): truth | gray | automatic model | hint model
    with each number of true-colour hints, the hinted points marked (white ring, true colour)."""
    res = ev.evaluate(data, {"auto": auto, "hints": model}, temperatures=[], threads=threads, limit=limit,
                      keep_outputs=True, log=lambda *_: None, hint_counts=counts, hint_seed=seed)
    photos, outs = res["_photos"], res["_outputs"]
    T_auto = res["models"]["auto"]["metadata"].get("colorizer.temperature", "0.38")
    auto_row = next(r["row"] for r in res["rows"] if r["model"] == "auto" and r.get("default_T"))
    psnr = {row: {r["path"]: r["psnr"] for r in recs} for row, recs in res["per_image"].items()}
    picks = np.linspace(0, len(photos) - 1, n).round().astype(int)
    cols = [("truth", None), ("gray", "gray"), (f"automatic T={T_auto}", auto_row)] + \
        [(f"{k} hints", f"hints hints={k}") for k in counts]
    canvas = Image.new("RGB", (tile * len(cols), tile * n), (255, 255, 255))
    for r, i in enumerate(picks):
        ph = photos[i]
        for c, (title, row) in enumerate(cols):
            im = ph["rgb"] if row is None else outs[row][i]
            t = Image.fromarray(im).resize((tile, tile), Image.BICUBIC)
            maps = outs.get(f"{row} maps", {}).get(i) if row else None
            if maps is not None:
                d = ImageDraw.Draw(t)
                ys, xs = np.nonzero(maps[2])
                mh, mw = maps.shape[1:]
                seen = set()
                for y, x in zip(ys, xs):   # one ring per hinted 3x3 square (its centre pixel)
                    if (y, x) in seen:
                        continue
                    seen.update((y + dy, x + dx) for dy in (-1, 0, 1, 2) for dx in (-1, 0, 1, 2))
                    cx, cy = (x + 1.5) * tile / mw, (y + 1.5) * tile / mh
                    truth = ph["rgb"][min(int(cy / tile * im.shape[0]), im.shape[0] - 1),
                                      min(int(cx / tile * im.shape[1]), im.shape[1] - 1)]
                    d.ellipse([cx - 4, cy - 4, cx + 4, cy + 4], fill=tuple(int(v) for v in truth), outline=(255, 255, 255), width=2)
            txt = title if row is None else f"{title} {psnr[row][ph['path']]:.1f}dB"
            canvas.paste(_label(t, txt), (c * tile, r * tile))
    canvas.save(out, optimize=True)


def _label(img: Image.Image, text: str) -> Image.Image:
    d = ImageDraw.Draw(img)
    d.rectangle([0, 0, 7 * len(text) + 6, 14], fill=(0, 0, 0))
    d.text((3, 1), text, fill=(255, 255, 255))
    return img


def grid(data: str, model: str, l2: str | None, out: str, n: int = 4, classes=None, T=None,
         tile: int = 160, limit=None, threads=2, extra: dict | None = None):
    models = {"ours": model}
    if l2:
        models["l2"] = l2
    extra = extra or {}
    extra_T = {}
    for k, p in extra.items():
        models[k] = p
        extra_T[k] = ev.OnnxColorizer(p, threads).temperature
    col = ev.OnnxColorizer(model, threads)
    T = T or col.temperature
    res = ev.evaluate(data, models, temperatures=sorted({T, *extra_T.values()}), threads=threads, limit=limit,
                      keep_outputs=True, log=lambda *_: None)
    photos = res["_photos"]
    outs = res["_outputs"]
    ours_row = f"ours T={T:g}"
    per = {r["path"]: r for r in res["per_image"][ours_row]}
    gray = {r["path"]: r for r in res["per_image"]["gray"]}
    idx = [i for i, p in enumerate(photos) if not classes or p["class"] in classes]
    gain = {i: per[photos[i]["path"]]["psnr"] - gray[photos[i]["path"]]["psnr"] for i in idx}
    order = sorted(idx, key=lambda i: -gain[i])
    picks = [("good", i) for i in order[:n]] + [("bad", i) for i in order[::-1][:n]]
    cols = ["truth", "gray", f"ours T={T:g}"] + (["L2 (intel)"] if l2 else []) + \
        [f"{k} T={extra_T[k]:g}" for k in extra]
    W = tile * len(cols)
    canvas = Image.new("RGB", (W, tile * len(picks)), (255, 255, 255))
    for r, (kind, i) in enumerate(picks):
        ph = photos[i]
        ims = [ph["rgb"], outs["gray"][i], outs[ours_row][i]] + ([outs["l2"][i]] if l2 else []) + \
            [outs[f"{k} T={extra_T[k]:g}"][i] for k in extra]
        for c, im in enumerate(ims):
            t = Image.fromarray(im).resize((tile, tile), Image.BICUBIC)
            txt = cols[c] if c else f"{kind}: {ph['class']} {ph['path'].split('/')[-1][:10]}"
            if c == 2:
                txt += f" {per[ph['path']]['psnr']:.1f}dB"
            if c == 1:
                txt += f" {gray[ph['path']]['psnr']:.1f}dB"
            canvas.paste(_label(t, txt), (c * tile, r * tile))
    canvas.save(out, optimize=True)
    return [(k, photos[i]["path"], round(gain[i], 2)) for k, i in picks]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    a1 = sub.add_parser("loss")
    a1.add_argument("--log", action="append", required=True, help="NAME=log.json")
    a1.add_argument("--out", required=True)
    a2 = sub.add_parser("grid")
    a2.add_argument("--data", required=True)
    a2.add_argument("--model", required=True)
    a2.add_argument("--l2")
    a2.add_argument("--out", required=True)
    a2.add_argument("--n", type=int, default=4, help="good and bad rows each (ranked by PSNR gain over gray)")
    a2.add_argument("--classes", help="comma list of classes to draw from")
    a2.add_argument("--temperature", type=float)
    a2.add_argument("--tile", type=int, default=128)
    a2.add_argument("--extra", action="append", default=[], help="NAME=PATH: another model's column (its metadata T)")
    a4 = sub.add_parser("hints-grid")
    a4.add_argument("--data", required=True)
    a4.add_argument("--model", required=True, help="the hint model (.onnx)")
    a4.add_argument("--auto", required=True, help="the automatic model to compare with (.onnx)")
    a4.add_argument("--n", type=int, default=6)
    a4.add_argument("--counts", default="0,3,10")
    a4.add_argument("--limit", type=int)
    a4.add_argument("--out", required=True)
    a3 = sub.add_parser("hints")
    a3.add_argument("--result", action="append", required=True, help="NAME=evaluate.json (run with --hint-counts)")
    a3.add_argument("--model", required=True, help="the hint model's name in those results")
    a3.add_argument("--auto", help="an automatic model's name in those results (dashed level)")
    a3.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    if a.cmd == "loss":
        loss_curve(dict(x.split("=", 1) for x in a.log), a.out)
    elif a.cmd == "hints-grid":
        hints_grid(a.data, a.model, a.auto, a.out, a.n, [int(c) for c in a.counts.split(",")], limit=a.limit)
    elif a.cmd == "hints":
        hints_curve(dict(x.split("=", 1) for x in a.result), a.model, a.auto, a.out)
    else:
        picks = grid(a.data, a.model, a.l2, a.out, a.n, a.classes.split(",") if a.classes else None,
                     a.temperature, a.tile, extra=dict(x.split("=", 1) for x in a.extra))
        print(json.dumps(picks))


if __name__ == "__main__":
    main()
