import os
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from training import DEFAULT_PTS, DEFAULT_PRIOR_IMAGENET  # noqa: E402


@pytest.fixture(scope="session")
def pts():
    from training.bins import load_pts
    return load_pts(DEFAULT_PTS)


@pytest.fixture(scope="session")
def imagenet_prior():
    if not os.path.exists(DEFAULT_PRIOR_IMAGENET):
        pytest.skip("prior_probs.npy not available")
    return np.load(DEFAULT_PRIOR_IMAGENET)


def synthetic_photo(rng, h=40, w=48):
    """A smooth colourful synthetic image (uint8 RGB): gradients plus a few blobs."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([x / w, y / h, 1 - (x + y) / (w + h)], -1)
    for _ in range(3):
        cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(4, 12)
        col = rng.uniform(0, 1, 3)
        m = ((y - cy) ** 2 + (x - cx) ** 2 < r * r)[..., None]
        img = np.where(m, col, img)
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


@pytest.fixture
def photo_folder(tmp_path):
    """tmp folder with two classes of small synthetic PNG photos + one gray photo."""
    from PIL import Image
    rng = np.random.default_rng(0)
    root = tmp_path / "photos"
    for cls, n in (("alpha", 5), ("beta", 4)):
        (root / cls).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(synthetic_photo(rng, 40 + 8 * (i % 2), 48)).save(root / cls / f"{i}.png")
    g = synthetic_photo(rng).mean(-1).astype(np.uint8)
    Image.fromarray(np.stack([g] * 3, -1)).save(root / "beta" / "gray.png")
    return str(root)
