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
