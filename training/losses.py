"""Losses: class-rebalanced multinomial cross-entropy (Zhang et al. eq. 1-2), the L2 baseline, and
the semantic loss (an ImageNet classifier should see the same thing in the colorization as in the
true colour photo)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def rebalanced_ce(logits: torch.Tensor, idx: torch.Tensor, w: torch.Tensor,
                  pixel_weight: torch.Tensor) -> torch.Tensor:
    """logits [N,313,h,w]; soft target as (idx, w) [N,k,h,w]; pixel_weight [N,h,w]
    (= weight of the pixel's nearest bin, 0 for gray images).
    L = - sum_{h,w} v(Z_hw) sum_q Z_hwq log softmax(logits)_hwq, averaged over the pixels
    of non-gray images."""
    logp = F.log_softmax(logits.float(), dim=1)
    ce = -(torch.gather(logp, 1, idx) * w).sum(1)              # [N,h,w]
    denom = (pixel_weight.flatten(1).amax(1) > 0).float().sum() * ce[0].numel()
    return (ce * pixel_weight).sum() / denom.clamp_min(1.0)


def l2_loss(pred_ab: torch.Tensor, ab: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean (over pixels of non-gray images) of the squared ab error, in units of (ab/100)^2."""
    err = ((pred_ab.float() - ab.float()) / 100.0).pow(2).sum(1)   # [N,h,w]
    v = valid.float().view(-1, 1, 1)
    return (err * v).sum() / (v.sum() * err[0].numel()).clamp_min(1.0)


def annealed_mean_ab(logits: torch.Tensor, pts: torch.Tensor, temperature: float,
                     bias: torch.Tensor | None = None) -> torch.Tensor:
    """Differentiable annealed-mean decode (Zhang et al. eq. 5) of logits [N,313,h,w] plus an
    optional bias [313] (e.g. the export's prior correction -alpha log w) -> ab [N,2,h,w]."""
    from .bins import decode_annealed_torch
    z = logits.float() if bias is None else logits.float() + bias.view(1, -1, 1, 1)
    return decode_annealed_torch(z, pts, temperature)


def semantic_kl(critic_logits_pred: torch.Tensor, critic_logits_true: torch.Tensor) -> torch.Tensor:
    """KL(p_true || p_pred) of a classifier's class distributions on the true colour photo and on
    the colorization, averaged over the batch (the true side carries no gradient)."""
    p_true = F.softmax(critic_logits_true.float().detach(), dim=1)
    return (p_true * (torch.log(p_true.clamp_min(1e-8)) - F.log_softmax(critic_logits_pred.float(), dim=1))).sum(1).mean()


def colourfulness_torch(rgb01: torch.Tensor) -> torch.Tensor:
    """Hasler & Suesstrunk (2003) colourfulness per image of sRGB [N,3,H,W] in 0..1 (computed on
    0..255, the formula of training.evaluate.colourfulness) -> [N]; differentiable."""
    x = rgb01.float() * 255.0
    rg = x[:, 0] - x[:, 1]
    yb = 0.5 * (x[:, 0] + x[:, 1]) - x[:, 2]
    std = torch.sqrt(rg.var((1, 2), unbiased=False) + yb.var((1, 2), unbiased=False) + 1e-6)
    mean = torch.sqrt(rg.mean((1, 2)) ** 2 + yb.mean((1, 2)) ** 2 + 1e-6)
    return std + 0.3 * mean


def colourfulness_gap(cf_pred: torch.Tensor, cf_true: torch.Tensor, scale: float = 10.0) -> torch.Tensor:
    """((mean CF of the colorizations - mean CF of the truths) / scale)^2 over a batch: holds the
    batch's average vividness to the truth's (the set-level dCF of training.evaluate) and leaves
    each photo free to put its colour where the other losses find it plausible."""
    return ((cf_pred.float().mean() - cf_true.float().detach().mean()) / scale) ** 2
