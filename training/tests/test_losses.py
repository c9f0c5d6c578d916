import numpy as np
import torch

from training.bins import SoftEncoder, rebalance_weights
from training.losses import l2_loss, rebalanced_ce


def test_rebalanced_ce_matches_manual(pts):
    torch.manual_seed(0)
    enc = SoftEncoder(pts, k=5)
    logits = torch.randn(2, 313, 3, 4)
    ab = torch.rand(2, 2, 3, 4) * 60 - 30
    idx, w = enc.encode(ab)
    prior = np.full(313, 1 / 313)
    prior[120] = 0.3
    prior /= prior.sum()
    wb = torch.tensor(rebalance_weights(prior), dtype=torch.float32)
    pixw = wb[idx[:, 0]]
    loss = rebalanced_ce(logits, idx, w, pixw)
    z = enc.dense(ab)
    logp = torch.log_softmax(logits, 1)
    manual = (-(z * logp).sum(1) * pixw).mean()
    assert torch.allclose(loss, manual, atol=1e-5)


def test_gray_images_weight_zero(pts):
    enc = SoftEncoder(pts, k=5)
    logits = torch.randn(2, 313, 2, 2, requires_grad=True)
    ab = torch.zeros(2, 2, 2, 2)
    ab[1] = 40.0
    idx, w = enc.encode(ab)
    valid = torch.tensor([0.0, 1.0])
    pixw = torch.ones(2, 2, 2) * valid[:, None, None]
    loss = rebalanced_ce(logits, idx, w, pixw)
    loss.backward()
    assert logits.grad[0].abs().sum() == 0 and logits.grad[1].abs().sum() > 0
    # all gray -> zero loss, no NaN
    assert rebalanced_ce(logits, idx, w, torch.zeros(2, 2, 2)).item() == 0.0


def test_l2_loss():
    pred = torch.zeros(2, 2, 3, 3)
    ab = torch.full((2, 2, 3, 3), 10.0)
    assert abs(l2_loss(pred, ab, torch.tensor([True, True])).item() - 0.02) < 1e-6
    assert l2_loss(pred, ab, torch.tensor([False, False])).item() == 0.0


def test_annealed_mean_decode_and_semantic_kl(pts):
    from training.losses import annealed_mean_ab, semantic_kl
    pts_t = torch.tensor(pts, dtype=torch.float32)
    logits = torch.full((1, 313, 2, 2), -30.0)
    logits[0, 40] = 30.0                             # all mass on one bin
    ab = annealed_mean_ab(logits, pts_t, 0.38)
    assert torch.allclose(ab[0, :, 0, 0], pts_t[40], atol=1e-4)
    bias = torch.zeros(313)
    bias[40] = -100.0                                # a bias (the prior correction) moves the decode
    bias[41] = 100.0
    assert torch.allclose(annealed_mean_ab(logits, pts_t, 0.38, bias)[0, :, 1, 1], pts_t[41], atol=1e-4)
    z = torch.randn(3, 1000)
    assert float(semantic_kl(z, z)) < 1e-5
    moved = z.clone().requires_grad_(True)
    kl = semantic_kl(moved + torch.randn(3, 1000), z)
    kl.backward()
    assert float(kl) > 0 and moved.grad.abs().sum() > 0


def test_colourfulness_torch_matches_the_evaluation_metric():
    from training.evaluate import colourfulness
    from training.losses import colourfulness_gap, colourfulness_torch
    from .conftest import synthetic_photo
    rng = np.random.default_rng(3)
    photos = np.stack([synthetic_photo(rng, 40, 48) for _ in range(3)] + [np.full((40, 48, 3), 128, np.uint8)])
    x = torch.from_numpy(photos).permute(0, 3, 1, 2).double() / 255.0
    got = colourfulness_torch(x).numpy()
    want = np.array([colourfulness(p) for p in photos])
    assert np.allclose(got, want, atol=1e-2) and want[-1] == 0.0 and want[:3].min() > 10
    # the gap: squared difference of the batch means over 10, gradient only on the prediction
    pred = x.clone().requires_grad_(True)
    gap = colourfulness_gap(colourfulness_torch(pred * 0.5 + 0.25), colourfulness_torch(x))
    assert abs(float(gap) - ((got.mean() * 0.5 - got.mean()) / 10) ** 2) < 1e-3
    gap.backward()
    assert torch.isfinite(pred.grad).all() and float(pred.grad.abs().sum()) > 0
