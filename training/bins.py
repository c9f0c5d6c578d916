"""The 313 ab bins of Zhang et al.: soft encoding, prior, class rebalancing, decoding.

All functions take/return numpy or torch; the heavy per-pixel work (soft encoding,
rebalancing weights) is torch so it runs on the GPU during training.
"""
from __future__ import annotations

import numpy as np
import torch

from . import DEFAULT_PTS

GRID_MIN = -128.0  # ab lookup grid: cells of GRID_STEP over [-128, 128)
GRID_STEP = 0.5
GRID_N = 512


def load_pts(path: str = DEFAULT_PTS) -> np.ndarray:
    pts = np.load(path).astype(np.float32)
    if pts.shape != (313, 2):
        raise ValueError(f"{path}: expected (313, 2) bin centres, got {pts.shape}")
    return pts


def knn_bins_np(ab: np.ndarray, pts: np.ndarray, k: int) -> np.ndarray:
    """Brute force: indices [..., k] of the k nearest bin centres of ab [..., 2] (nearest first)."""
    d2 = ((ab[..., None, :] - pts) ** 2).sum(-1)
    return np.argsort(d2, axis=-1, kind="stable")[..., :k]


def soft_encode_np(ab: np.ndarray, pts: np.ndarray, k: int = 5, sigma: float = 5.0) -> np.ndarray:
    """Reference (slow, exact) soft encoding: ab [..., 2] -> dense [..., 313] distribution."""
    idx = knn_bins_np(ab, pts, k)
    d2 = ((ab[..., None, :] - pts[idx]) ** 2).sum(-1)
    z = -d2 / (2 * sigma ** 2)
    w = np.exp(z - z.max(-1, keepdims=True))
    w /= w.sum(-1, keepdims=True)
    out = np.zeros(ab.shape[:-1] + (len(pts),), dtype=np.float64)
    np.put_along_axis(out, idx, w, axis=-1)
    return out


class SoftEncoder:
    """Fast soft encoding through a precomputed lookup over the ab plane.

    The plane [-128, 128)^2 is cut into cells of 0.5 x 0.5; for every cell the table stores
    the k bins nearest to the cell's centre. A target colour picks its cell (floor), and the
    Gaussian weights are computed from the EXACT distances to those k bin centres. Because
    cell edges fall on the bin grid's half-way lines (x5.0), the nearest bin is exact for
    interior colours; the k-set can differ from brute force only within ~0.35 units of a
    k-th/(k+1)-th neighbour tie, where the two candidates carry nearly equal weight (tested).
    """

    def __init__(self, pts: np.ndarray, k: int = 5, sigma: float = 5.0, device="cpu"):
        self.k = int(k)
        self.sigma = float(sigma)
        self.device = torch.device(device)
        g = (np.arange(GRID_N, dtype=np.float64) + 0.5) * GRID_STEP + GRID_MIN   # cell centres
        grid = np.stack(np.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)  # [a, b]
        gt, pt = torch.from_numpy(grid.astype(np.float32)), torch.from_numpy(np.asarray(pts, np.float32))
        idx = torch.empty((grid.shape[0], self.k), dtype=torch.int16)
        for s in range(0, grid.shape[0], 32768):
            d2 = ((gt[s:s + 32768, None, :] - pt[None]) ** 2).sum(-1)
            idx[s:s + 32768] = torch.topk(d2, self.k, dim=1, largest=False, sorted=True).indices.to(torch.int16)
        self.lut = idx.to(self.device)                                   # [GRID_N^2, k] int16
        self.pts = torch.from_numpy(np.asarray(pts, np.float32)).to(self.device)  # [313, 2]

    def to(self, device):
        self.device = torch.device(device)
        self.lut = self.lut.to(device)
        self.pts = self.pts.to(device)
        return self

    def encode(self, ab: torch.Tensor):
        """ab [N,2,h,w] -> (idx [N,k,h,w] int64, weights [N,k,h,w] float32), nearest bin first."""
        cell = ((ab.float() - GRID_MIN) / GRID_STEP).floor().long().clamp_(0, GRID_N - 1)
        idx = self.lut[cell[:, 0] * GRID_N + cell[:, 1]].long()         # [N,h,w,k]
        c = self.pts[idx]                                                # [N,h,w,k,2]
        d2 = ((ab.permute(0, 2, 3, 1).float().unsqueeze(-2) - c) ** 2).sum(-1)
        w = torch.softmax(-d2 / (2 * self.sigma ** 2), dim=-1)           # normalised Gaussian
        return idx.permute(0, 3, 1, 2).contiguous(), w.permute(0, 3, 1, 2).contiguous()

    def dense(self, ab: torch.Tensor) -> torch.Tensor:
        """ab [N,2,h,w] -> dense target [N,313,h,w] (for tests and small batches)."""
        idx, w = self.encode(ab)
        out = torch.zeros(ab.shape[0], self.pts.shape[0], *ab.shape[2:], device=ab.device)
        return out.scatter_(1, idx, w)

    def nearest(self, ab: torch.Tensor) -> torch.Tensor:
        """ab [N,2,h,w] -> index of the nearest bin [N,h,w]."""
        return self.encode(ab)[0][:, 0]


def smooth_prior(counts: np.ndarray, pts: np.ndarray, sigma: float = 5.0) -> np.ndarray:
    """Normalise bin counts to a distribution and smooth it with a Gaussian (sigma, ab units)
    over the bin centres: p_s(q) = sum_r p(r) exp(-|c_q - c_r|^2 / 2 sigma^2), renormalised."""
    p = np.asarray(counts, np.float64)
    p = p / max(p.sum(), 1e-12)
    d2 = ((pts[:, None, :].astype(np.float64) - pts[None, :, :]) ** 2).sum(-1)
    g = np.exp(-d2 / (2 * sigma ** 2))
    ps = g @ p
    return ps / ps.sum()


def rebalance_weights(prior: np.ndarray, lam: float = 0.5) -> np.ndarray:
    """Zhang et al. class rebalancing: w = 1 / ((1-lam) p + lam / Q), Q = #bins with p > 0,
    normalised so that sum_q p_q w_q = 1."""
    p = np.asarray(prior, np.float64)
    p = p / p.sum()
    q = int((p > 0).sum())
    w = 1.0 / ((1.0 - lam) * p + lam / q)
    return w / (p * w).sum()


def empirical_counts(images_uint8: torch.Tensor, encoder: SoftEncoder, batch: int = 256,
                     downsample: int = 4, exclude_gray: bool = True) -> np.ndarray:
    """Nearest-bin histogram of the training images ([N,H,W,3] uint8, any device), computed on
    ab average-pooled by `downsample` (the resolution the loss sees). Gray images are skipped."""
    from .lab import rgb_to_lab_torch
    counts = torch.zeros(encoder.pts.shape[0], dtype=torch.float64, device=encoder.device)
    for s in range(0, images_uint8.shape[0], batch):
        x = images_uint8[s:s + batch].to(encoder.device).permute(0, 3, 1, 2).float() / 255.0
        lab = rgb_to_lab_torch(x)
        ab = lab[:, 1:]
        if exclude_gray:
            keep = ~is_gray(ab)
            ab = ab[keep]
            if ab.shape[0] == 0:
                continue
        if downsample > 1:
            ab = torch.nn.functional.avg_pool2d(ab, downsample)
        nn_idx = encoder.nearest(ab).reshape(-1)
        counts += torch.bincount(nn_idx, minlength=counts.shape[0]).double()
    return counts.cpu().numpy()


def is_gray(ab: torch.Tensor, thresh: float = 5.0) -> torch.Tensor:
    """[N,2,H,W] -> bool [N]: True where |ab| <= thresh at every pixel."""
    return (ab.float() ** 2).sum(1).flatten(1).amax(1) <= thresh ** 2


def decode_annealed_np(logits: np.ndarray, pts: np.ndarray, T: float = 0.38, axis: int = 0) -> np.ndarray:
    """Annealed mean: softmax(logits / T) . centres along `axis` (float64, stable).
    logits [313, h, w] (axis 0) -> ab [2, h, w]."""
    z = np.moveaxis(np.asarray(logits, np.float64), axis, -1) / T
    z = z - z.max(-1, keepdims=True)
    e = np.exp(z)
    p = e / e.sum(-1, keepdims=True)
    ab = p @ np.asarray(pts, np.float64)
    return np.moveaxis(ab, -1, axis)


def decode_annealed_torch(logits: torch.Tensor, pts: torch.Tensor, T: float = 0.38) -> torch.Tensor:
    """logits [N,313,h,w] -> ab [N,2,h,w]."""
    p = torch.softmax(logits.float() / T, dim=1)
    return torch.einsum("nqhw,qc->nchw", p, pts.to(p))
