"""Losses: class-rebalanced multinomial cross-entropy (Zhang et al. eq. 1-2) and the L2 baseline."""
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
