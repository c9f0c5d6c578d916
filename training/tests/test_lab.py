import numpy as np
import torch
from skimage.color import rgb2lab, lab2rgb

from training.lab import rgb_to_lab_torch, lab_to_rgb_torch, rgb2lab_np


def test_torch_rgb2lab_matches_skimage():
    rng = np.random.default_rng(0)
    rgb = rng.random((7, 9, 3))
    rgb[0, :5] = [[0, 0, 0], [1, 1, 1], [1, 0, 0], [0, 1, 0], [0, 0, 1]]
    rgb[1, :3] = [[0.01, 0.02, 0.03], [0.04, 0.04, 0.04], [0.0031, 0.5, 0.9]]  # linear branches
    ref = rgb2lab(rgb)
    got = rgb_to_lab_torch(torch.from_numpy(rgb).permute(2, 0, 1)[None].float())[0].permute(1, 2, 0).numpy()
    assert np.abs(got - ref).max() < 1e-3


def test_readme_check_values():
    lab = rgb2lab_np(np.array([[[255, 255, 255], [255, 0, 0], [0, 255, 0], [0, 0, 255]]], np.uint8))[0]
    want = [[100, 0, 0], [53.24, 80.09, 67.20], [87.74, -86.18, 83.18], [32.30, 79.19, -107.86]]
    assert np.abs(lab - np.array(want)).max() < 0.01
    t = rgb_to_lab_torch(torch.tensor([[255, 255, 255], [255, 0, 0], [0, 255, 0], [0, 0, 255]]).float().T[None, :, :, None] / 255)
    assert np.abs(t[0, :, :, 0].T.numpy() - np.array(want)).max() < 0.01


def test_torch_lab2rgb_matches_skimage_and_roundtrips():
    rng = np.random.default_rng(1)
    rgb = rng.random((6, 5, 3))
    lab = rgb2lab(rgb)
    back = lab_to_rgb_torch(torch.from_numpy(lab).permute(2, 0, 1)[None].float())[0].permute(1, 2, 0).numpy()
    assert np.abs(back - rgb).max() < 1e-3
    lab2 = lab.copy()
    lab2[..., 1:] *= 1.8  # out of gamut: skimage clips
    ref = np.clip(lab2rgb(lab2), 0, 1)
    got = lab_to_rgb_torch(torch.from_numpy(lab2).permute(2, 0, 1)[None].float())[0].permute(1, 2, 0).numpy()
    assert np.abs(got - ref).max() < 1e-3


def test_lab_to_rgb_has_finite_gradients_at_black_and_out_of_gamut():
    """The semantic loss backpropagates through this conversion: the sRGB gamma branch not taken
    must not turn a zero gradient into NaN (0 x inf) at black or where the linear value is <= 0."""
    import torch
    from training.lab import lab_to_rgb_torch
    lab = torch.tensor([[0.0, 0.0, 0.0], [50.0, 90.0, -100.0], [5.0, -60.0, 70.0], [100.0, 0.0, 0.0]])
    lab = lab.T.reshape(1, 3, 2, 2).clone().requires_grad_(True)
    lab_to_rgb_torch(lab).sum().backward()
    assert torch.isfinite(lab.grad).all()
