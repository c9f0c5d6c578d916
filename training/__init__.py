"""colorizer training pipeline: Zhang et al. (ECCV 2016) 313-bin colorization.

Modules
- lab:       sRGB <-> CIE LAB (scikit-image rgb2lab semantics), numpy and torch
- bins:      the 313 ab bins, soft encoding, prior, class rebalancing, annealed-mean decoding
- model:     ColorNet (from scratch) and ColorUNet (pretrained encoder, optional hint input)
- hints:     user colour hints: the hint map, simulated hints for training and evaluation
- data:      packed datasets and folder datasets, GPU-side augmentation
- train:     `python -m training.train`
- export:    `python -m training.export` (ONNX, model contract)
- evaluate:  `python -m training.evaluate`
- pack:      `python -m training.pack` (compact shards for the GPU machine)
"""
import os

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The 313 ab bin centres of Zhang et al. (their resources/pts_in_hull.npy, bundled)
DEFAULT_PTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "resources", "pts_in_hull.npy")
# Zhang et al.'s ImageNet prior over the 313 bins (bundled copy of their resources/prior_probs.npy)
DEFAULT_PRIOR_IMAGENET = os.path.join(os.path.dirname(os.path.abspath(__file__)), "resources", "prior_probs.npy")
