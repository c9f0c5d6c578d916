"""User colour hints (Zhang et al., "Real-Time User-Guided Image Colorization with Learned Deep
Priors", SIGGRAPH 2017), as the hint-taking models of this project use them.

A hint map is a float32 tensor [N, 3, H, W] at the model's input size (the same H, W as L):
channels 0 and 1 hold the hinted a and b (raw Lab units, -110..110) where the mask is 1 and 0
elsewhere; channel 2 is the mask (1 on hinted pixels, 0 elsewhere). No hint at all is an
all-zero map, and then the model is an automatic colorizer.

Training simulates hints from the true colour as in the paper: a random number of points
(none with probability `p_none`, else geometric with mean 1/p), each a square patch of side
1, 3 or 5 pixels (at 128 px, the paper's 1..9 at 256) at a uniformly drawn place, holding the
mean true ab of that patch. Evaluation draws exactly n points the same way (`fixed_points`).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

HINT_CHANNELS = 3
PATCH_HALF_WIDTHS = (0, 1, 2)   # square patches of side 1, 3, 5


def draw_counts(n: int, rng: np.random.Generator, p: float = 1 / 8, p_none: float = 0.25,
                max_points: int = 40) -> np.ndarray:
    """How many hints each of n training images gets."""
    counts = np.minimum(rng.geometric(p, n), max_points)
    counts[rng.random(n) < p_none] = 0
    return counts


def paint(hints: torch.Tensor, i: int, y: int, x: int, k: int, a: float, b: float) -> None:
    """Writes one square hint of half-width k centred at (y, x) (clipped to the image) into the
    hint map `hints` [N,3,H,W] of image i. A later hint overwrites an earlier one where they meet."""
    H, W = hints.shape[-2:]
    y0, y1, x0, x1 = max(0, y - k), min(H, y + k + 1), max(0, x - k), min(W, x + k + 1)
    hints[i, 0, y0:y1, x0:x1] = a
    hints[i, 1, y0:y1, x0:x1] = b
    hints[i, 2, y0:y1, x0:x1] = 1.0


def _empty_map_and_draws(ab: torch.Tensor, counts, rng: np.random.Generator, half_widths):
    """An all-zero hint map for ab [N,2,H,W] and the random centres (y, x) and half-widths of
    sum(counts) patches, in image order (None, None, None when there are none)."""
    N, _, H, W = ab.shape
    hints = torch.zeros(N, HINT_CHANNELS, H, W, dtype=ab.dtype, device=ab.device)
    total = int(np.sum(counts))
    if total == 0:
        return hints, (None, None, None)
    ys, xs = rng.integers(0, H, total), rng.integers(0, W, total)
    return hints, (ys, xs, rng.choice(np.asarray(half_widths), total))


def simulate(ab: torch.Tensor, counts, rng: np.random.Generator,
             half_widths=PATCH_HALF_WIDTHS) -> torch.Tensor:
    """Hint maps [N,3,H,W] for true ab [N,2,H,W]: counts[i] patches in image i, each holding the
    mean true ab of its patch. Vectorised (no per-hint host round trip, so it keeps a GPU busy):
    patch means come from a box filter over the clipped window, and where patches meet the later
    one wins, exactly as painting them one after another (`simulate_sequential`) would."""
    hints, (ys, xs, ks) = _empty_map_and_draws(ab, counts, rng, half_widths)
    if ys is None:
        return hints
    N, _, H, W = ab.shape
    total = len(ys)
    img = np.repeat(np.arange(N), np.asarray(counts, dtype=np.int64))
    dev = ab.device
    img_t, ys_t, xs_t, ks_t = (torch.from_numpy(np.ascontiguousarray(v).astype(np.int64)).to(dev)
                               for v in (img, ys, xs, ks))
    means = torch.zeros(total, 2, dtype=ab.dtype, device=dev)
    for k in sorted({int(k) for k in ks}):
        sel = ks_t == k
        box = F.avg_pool2d(ab, 2 * k + 1, stride=1, padding=k, count_include_pad=False) if k else ab
        means[sel] = box[img_t[sel], :, ys_t[sel], xs_t[sel]]
    # the last hint (highest index) covering a pixel owns it
    owner = torch.full((N * H * W,), -1, dtype=torch.int64, device=dev)
    order = torch.arange(total, device=dev)
    kmax = int(ks.max())
    for dy in range(-kmax, kmax + 1):
        for dx in range(-kmax, kmax + 1):
            y, x = ys_t + dy, xs_t + dx
            ok = (ks_t >= max(abs(dy), abs(dx))) & (y >= 0) & (y < H) & (x >= 0) & (x < W)
            flat = (img_t * H + y) * W + x
            owner.scatter_reduce_(0, flat[ok], order[ok], reduce="amax")
    hit = owner >= 0
    hw = hints.permute(0, 2, 3, 1).reshape(-1, HINT_CHANNELS)
    hw[hit, :2] = means[owner[hit]]
    hw[hit, 2] = 1.0
    return hw.reshape(N, H, W, HINT_CHANNELS).permute(0, 3, 1, 2).contiguous()


def simulate_sequential(ab: torch.Tensor, counts, rng: np.random.Generator,
                        half_widths=PATCH_HALF_WIDTHS) -> torch.Tensor:
    """The reference for `simulate`: the same draws, each patch painted in turn with `paint`."""
    hints, (ys, xs, ks) = _empty_map_and_draws(ab, counts, rng, half_widths)
    if ys is None:
        return hints
    N, _, H, W = ab.shape
    total = len(ys)
    j = 0
    for i, c in enumerate(counts):
        for _ in range(int(c)):
            y, x, k = int(ys[j]), int(xs[j]), int(ks[j])
            patch = ab[i, :, max(0, y - k):y + k + 1, max(0, x - k):x + k + 1]
            a, b = patch.mean(dim=(1, 2)).tolist()
            paint(hints, i, y, x, k, a, b)
            j += 1
    return hints


def training_hints(ab: torch.Tensor, rng: np.random.Generator, p: float = 1 / 8,
                   p_none: float = 0.25) -> torch.Tensor:
    """Simulated hints for a training batch of true ab [N,2,H,W]."""
    return simulate(ab, draw_counts(ab.shape[0], rng, p, p_none), rng)


def fixed_points(ab: torch.Tensor, n_points: int, rng: np.random.Generator, half_width: int = 1) -> torch.Tensor:
    """Exactly n_points true-colour hints per image, patches of side 2*half_width+1 (evaluation)."""
    return simulate(ab, [n_points] * ab.shape[0], rng, half_widths=(half_width,))
