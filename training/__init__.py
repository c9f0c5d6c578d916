"""colorizer training pipeline: Zhang et al. (ECCV 2016) 313-bin colorization.

Modules
- lab:       sRGB <-> CIE LAB (scikit-image rgb2lab semantics), numpy and torch
- bins:      the 313 ab bins, soft encoding, prior, class rebalancing, annealed-mean decoding
- model:     the small fully-convolutional encoder-decoder (CE and L2 heads)
- data:      packed datasets and folder datasets, GPU-side augmentation
- train:     `python -m training.train`
- export:    `python -m training.export` (ONNX, model contract)
- evaluate:  `python -m training.evaluate`
- pack:      `python -m training.pack` (compact shards for the GPU machine)
"""
import os

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_DATA = os.path.join(REPO_ROOT, "..", "shared", "data")
BUNDLED_PTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "resources", "pts_in_hull.npy")
_SHARED_PTS = os.path.join(DEFAULT_DATA, "zhang", "pts_in_hull.npy")
# ../shared/data/zhang/pts_in_hull.npy when present, else the bundled identical copy
DEFAULT_PTS = _SHARED_PTS if os.path.exists(_SHARED_PTS) else BUNDLED_PTS
# Zhang et al.'s ImageNet prior over the 313 bins (bundled copy of their resources/prior_probs.npy)
DEFAULT_PRIOR_IMAGENET = os.path.join(os.path.dirname(os.path.abspath(__file__)), "resources", "prior_probs.npy")
