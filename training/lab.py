"""sRGB (D65, 2 degree) <-> CIE LAB with the exact formula of scikit-image ``rgb2lab``.

The torch versions exist so the GPU can convert whole batches; tests check them against
``skimage.color.rgb2lab`` / ``lab2rgb`` to 1e-3.
"""
from __future__ import annotations

import numpy as np
import torch

M_RGB2XYZ = np.array(
    [[0.412453, 0.357580, 0.180423],
     [0.212671, 0.715160, 0.072169],
     [0.019334, 0.119193, 0.950227]], dtype=np.float64)
M_XYZ2RGB = np.linalg.inv(M_RGB2XYZ)
WHITE = np.array([0.95047, 1.0, 1.08883], dtype=np.float64)


def rgb2lab_np(rgb: np.ndarray) -> np.ndarray:
    """rgb float in [0,1] (or uint8), [..., 3] -> LAB float32 [..., 3] (skimage rgb2lab)."""
    from skimage.color import rgb2lab
    if rgb.dtype == np.uint8:
        rgb = rgb.astype(np.float64) / 255.0
    return rgb2lab(rgb).astype(np.float32)


def lab2rgb_np(lab: np.ndarray) -> np.ndarray:
    """LAB [..., 3] -> rgb float in [0,1] (skimage lab2rgb, clipped)."""
    from skimage.color import lab2rgb
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.clip(lab2rgb(lab.astype(np.float64)), 0.0, 1.0)


def rgb_to_lab_torch(rgb: torch.Tensor) -> torch.Tensor:
    """rgb float in [0,1], shape [N,3,H,W] -> LAB [N,3,H,W] (float32 math)."""
    rgb = rgb.float()
    lin = torch.where(rgb > 0.04045, ((rgb + 0.055) / 1.055).clamp_min(0) ** 2.4, rgb / 12.92)
    m = torch.tensor(M_RGB2XYZ / WHITE[:, None], dtype=torch.float32, device=rgb.device)
    xyz = torch.einsum("ij,njhw->nihw", m, lin)
    f = torch.where(xyz > 0.008856, xyz.clamp_min(1e-12) ** (1.0 / 3.0), 7.787 * xyz + 16.0 / 116.0)
    fx, fy, fz = f[:, 0], f[:, 1], f[:, 2]
    L = 116.0 * fy - 16.0
    a = 500.0 * (fx - fy)
    b = 200.0 * (fy - fz)
    return torch.stack([L, a, b], dim=1)


def lab_to_rgb_torch(lab: torch.Tensor) -> torch.Tensor:
    """LAB [N,3,H,W] -> rgb in [0,1] (clipped), skimage lab2rgb formula."""
    L, a, b = lab[:, 0].float(), lab[:, 1].float(), lab[:, 2].float()
    fy = (L + 16.0) / 116.0
    fx = a / 500.0 + fy
    fz = (fy - b / 200.0).clamp_min(0.0)
    f = torch.stack([fx, fy, fz], dim=1)
    xyz = torch.where(f > 0.2068966, f ** 3, (f - 16.0 / 116.0) / 7.787)
    xyz = xyz * torch.tensor(WHITE, dtype=torch.float32, device=lab.device).view(1, 3, 1, 1)
    m = torch.tensor(M_XYZ2RGB, dtype=torch.float32, device=lab.device)
    lin = torch.einsum("ij,njhw->nihw", m, xyz)
    rgb = torch.where(lin > 0.0031308, 1.055 * lin.clamp_min(0.0031308) ** (1 / 2.4) - 0.055, 12.92 * lin)  # no inf gradient in the branch not taken
    return rgb.clamp(0.0, 1.0)
