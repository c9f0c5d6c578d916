"""training.unfold: an exported ONNX model back to a trainable checkpoint."""
import numpy as np
import onnxruntime as ort
import torch

from training.bins import rebalance_weights
from training.export import apply_prior_correction, export_model, load_checkpoint_model
from training.model import build_model
from training.unfold import unfold

from .conftest import synthetic_photo


def trained_like_hint_model(seed=0):
    """A random hint-taking Lite0 U-Net whose BatchNorms hold non-trivial statistics and affine
    parameters (as after training), so that folding really moves weights."""
    torch.manual_seed(seed)
    m = build_model({"encoder": "lite0", "hints": True, "hint_depth": 4, "freeze_groups": 5})
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.normal_(0, 0.3)
                mod.running_var.uniform_(0.5, 2.0)
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.normal_(0, 0.2)
            if isinstance(mod, torch.nn.Conv2d) and mod.out_channels == 313:
                mod.bias.normal_(0, 1.0)
        for name in ("hint_to4", "hint_to8", "hint_to16", "hint_to32"):   # exported hint models use them
            getattr(m, name).weight.normal_(0, 0.05)
    return m.eval()


def run_onnx(path, L, h):
    s = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return s.run(None, {"L": L, "hints": h})[0]


def test_unfold_reproduces_the_file_and_exports_back_to_it(tmp_path):
    rng = np.random.default_rng(0)
    prior = rng.random(313) + 0.01
    prior /= prior.sum()
    model = trained_like_hint_model()
    shipped = apply_prior_correction(model, prior, 0.5, 0.4)
    path = str(tmp_path / "m.onnx")
    export_model(shipped, path, name="t", description="t", input_size=64, prior_correction=0.4)

    photos = np.stack([synthetic_photo(rng, 128, 128) for _ in range(16)])
    ck = unfold(path, prior, 0.5, photos)
    assert ck["unfolded_from"]["prior_correction"] == 0.4 and ck["unfolded_from"]["calibrated_bn"] > 50
    torch.save(ck, tmp_path / "u.pt")
    back, ck2 = load_checkpoint_model(str(tmp_path / "u.pt"))
    assert back.takes_hints and ck2["config"]["hint_depth"] == 4

    L = (rng.random((2, 1, 64, 96)) * 100).astype(np.float32)
    h = np.zeros((2, 3, 64, 96), np.float32)
    h[0, :, 10:13, 20:23] = np.array([30.0, -40.0, 1.0])[:, None, None]
    ref = run_onnx(path, L, h)
    # eval mode, prior correction applied as the export does: the file's function
    with torch.no_grad():
        got = apply_prior_correction(back, ck2["prior"], 0.5, 0.4)(torch.from_numpy(L), torch.from_numpy(h)).numpy()
    assert np.abs(got - ref).max() < 1e-3 * np.abs(ref).max()
    # the unfolded head is the uncorrected one: + 0.4 log w
    w = rebalance_weights(prior, 0.5)
    diff = (back.head.bias - shipped.head.bias).detach().numpy()
    assert np.allclose(diff, 0.4 * np.log(w), atol=2e-3)
    # BN statistics come from the calibration photos, not the identity
    bn = back.lat32[1]
    assert float(bn.running_var.std()) > 0 and not torch.allclose(bn.running_mean, torch.zeros_like(bn.running_mean))
    # exporting again gives back the same file's outputs
    again = str(tmp_path / "again.onnx")
    export_model(apply_prior_correction(back, ck2["prior"], 0.5, 0.4), again, name="t", description="t",
                 input_size=64, prior_correction=0.4)
    assert np.abs(run_onnx(again, L, h) - ref).max() < 1e-2 * np.abs(ref).max()
