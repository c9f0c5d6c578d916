"""Experiment (reverted): the detail error of a detail checkpoint against no detail, on 200 photos per folder.
  python training/detail_check.py FOLDER1,FOLDER2 CKPT..."""
import sys, torch, numpy as np, torch.nn.functional as F

from training.model import build_model
from training.data import load_sources
from training.lab import rgb_to_lab_torch
from training.bins import is_gray
from training.losses import detail_target, detail_loss
torch.set_num_threads(1)
for ckp in sys.argv[2:]:
    ck = torch.load(ckp, map_location='cpu', weights_only=False)
    cfg = dict(ck['config']); cfg['detail'] = cfg.get('detail', 16)
    m = build_model(cfg); miss = m.load_state_dict(ck['model'], strict=False); m.eval()
    for d in sys.argv[1].split(','):
        x, _, _ = load_sources([d], 128, 200)
        tot = zero = n = 0
        with torch.no_grad():
            for s in range(0, len(x), 50):
                rgb = torch.from_numpy(x[s:s+50]).permute(0,3,1,2).float()/255
                lab = rgb_to_lab_torch(rgb); L, ab = lab[:, :1], lab[:, 1:]
                out, det = m(L)
                tgt = detail_target(ab, out.shape[-2:]); v = ~is_gray(ab)
                tot += float(detail_loss(det, tgt, v)) * len(L); zero += float(detail_loss(torch.zeros_like(det), tgt, v)) * len(L); n += len(L)
        print(ckp.split('/')[-2], d.split('/')[-2], f"detail L2 (ab/10)^2 {tot/n:.3f} vs zero {zero/n:.3f}")
