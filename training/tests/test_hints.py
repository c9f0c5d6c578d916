"""User colour hints: simulation from the true colour, the hint-taking ColorUNet (starts as the
automatic model it extends), its export contract (second input `hints`), training with --init
and --hints, and the evaluation's true-colour hints."""
import numpy as np
import onnxruntime as ort
import torch

from training import hints, train
from training.evaluate import true_colour_hints
from training.export import export_model, load_checkpoint_model
from training.model import build_model


def test_simulated_hints_hold_the_mean_true_colour_of_their_patch():
    ab = torch.zeros(2, 2, 20, 30)
    ab[0, 0, :, 15:] = 40.0     # a = 40 on the right half of image 0
    ab[0, 1] = -10.0
    rng = np.random.default_rng(0)
    h = hints.simulate(ab, [6, 0], rng)
    assert h.shape == (2, 3, 20, 30)
    assert h[1].abs().sum() == 0, "no hints: an all-zero map"
    mask = h[0, 2] == 1
    assert 6 <= int(mask.sum()) <= 6 * 25
    # every hinted pixel holds ab from the image's range, zero elsewhere
    assert torch.all(h[0, :2][:, ~mask] == 0)
    assert torch.all((h[0, 0][mask] >= 0) & (h[0, 0][mask] <= 40)) and torch.all(h[0, 1][mask] == -10)
    # a 1x1 hint is exactly the pixel's colour
    one = hints.fixed_points(ab, 1, np.random.default_rng(5), half_width=0)
    (y, x) = [int(v[0]) for v in torch.nonzero(one[0, 2], as_tuple=True)]
    assert one[0, 0, y, x] == ab[0, 0, y, x] and one[0, 1, y, x] == -10


def test_hint_counts_have_zeros_and_a_geometric_tail():
    c = hints.draw_counts(20000, np.random.default_rng(1), p=1 / 8, p_none=0.25)
    assert abs((c == 0).mean() - 0.25) < 0.02
    assert 5.0 < c[c > 0].mean() < 9.0 and c.max() <= 40


def test_a_hint_model_starts_as_the_automatic_model_it_extends():
    torch.manual_seed(0)
    auto = build_model({"encoder": "lite0"}, pretrained=False).eval()
    with torch.no_grad():
        auto.head.bias.normal_(0, 1)
    hinted = build_model({"encoder": "lite0", "hints": True}, pretrained=False).eval()
    missing, unexpected = hinted.load_state_dict(auto.state_dict(), strict=False)
    assert not unexpected and missing and all(k.startswith("hint") for k in missing)
    L = torch.rand(2, 1, 64, 72) * 100
    h = hints.fixed_points(torch.randn(2, 2, 64, 72) * 30, 5, np.random.default_rng(2))
    with torch.no_grad():
        ref = auto(L)
        assert torch.equal(hinted(L), ref)
        assert torch.equal(hinted(L, h), ref), "zero-started hint layers change nothing"
        # once the hint layers have weights, hints move the output and no hints still equals zeros
        for p in (hinted.hint_to16, hinted.hint_to8, hinted.hint_to4):
            p.weight.normal_(0, 0.1)
        assert not torch.allclose(hinted(L, h), ref)
        assert torch.equal(hinted(L), hinted(L, torch.zeros_like(h)))


def test_hint_model_export_contract(tmp_path):
    torch.manual_seed(1)
    m = build_model({"encoder": "lite0", "hints": True}, pretrained=False).eval()
    with torch.no_grad():
        m.head.bias.normal_(0, 1)
        for p in (m.hint_to16, m.hint_to8, m.hint_to4):
            p.weight.normal_(0, 0.1)
    p = tmp_path / "h.onnx"
    export_model(m, str(p), name="h", description="d", input_size=128, trained=False)
    sess = ort.InferenceSession(str(p), providers=["CPUExecutionProvider"])
    ins = sess.get_inputs()
    assert [i.name for i in ins] == ["L", "hints"] and ins[1].shape[1] == 3
    assert sess.get_modelmeta().custom_metadata_map["colorizer.hints"] == "true"
    rng = np.random.default_rng(3)
    for hw in ((128, 128), (96, 168), (64, 40)):
        x = (rng.random((1, 1, *hw)) * 100).astype(np.float32)
        h = hints.fixed_points(torch.randn(1, 2, *hw) * 30, 4, rng).numpy()
        y = sess.run(None, {"L": x, "hints": h})[0]
        assert y.shape == (1, 313, hw[0] // 4, hw[1] // 4)
        with torch.no_grad():
            ref = m(torch.from_numpy(x), torch.from_numpy(h)).numpy()
        assert np.abs(ref - y).max() < 2e-2 * np.abs(ref).max() + 1e-3


def test_train_with_init_and_hints(photo_folder, tmp_path):
    base = tmp_path / "auto"
    common = ["--data", photo_folder, "--size", "48", "--crop", "32", "--batch", "4", "--threads", "2"]
    train.main(common + ["--encoder", "lite0", "--out", str(base), "--max-steps", "2"])
    out = tmp_path / "hints"
    onnx_path = tmp_path / "h.onnx"
    s = train.main(common + ["--init", str(base / "last.pt"), "--hints", "--out", str(out), "--max-steps", "3",
                             "--export", str(onnx_path)])
    assert s["step"] == 3
    m, ck = load_checkpoint_model(str(out / "last.pt"))
    auto, auto_ck = load_checkpoint_model(str(base / "last.pt"))
    assert ck["config"]["hints"] is True and ck["config"]["encoder"] == "lite0"
    assert np.array_equal(ck["prior"], auto_ck["prior"]), "--init keeps the prior of the model it extends"
    # the frozen encoder is the initial model's
    assert torch.equal(m.enc.stem[1].weight, auto.enc.stem[1].weight)
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    assert len(sess.get_inputs()) == 2
    # the same command resumes (it names no --encoder: the architecture is the checkpoint's)
    s2 = train.main(common + ["--init", str(base / "last.pt"), "--hints", "--out", str(out), "--max-steps", "5",
                              "--resume"])
    assert s2["step"] == 5
    _, ck2 = load_checkpoint_model(str(out / "last.pt"))
    assert ck2["config"] == ck["config"]


def test_evaluation_hints_are_the_same_for_every_model():
    ab = torch.randn(3, 2, 50, 70) * 20
    a = true_colour_hints(ab, (24, 32), 5, 0, 7)
    b = true_colour_hints(ab, (24, 32), 5, 0, 7)
    assert a.shape == (3, 3, 24, 32) and np.array_equal(a, b)
    assert ((a[:, 2] == 1).reshape(3, -1).sum(1) >= 5).all()
    assert not np.array_equal(a, true_colour_hints(ab, (24, 32), 5, 1, 7))


def test_vectorised_simulation_equals_painting_hints_one_by_one():
    torch.manual_seed(3)
    ab = torch.randn(5, 2, 17, 23) * 40
    counts = [0, 1, 12, 40, 7]      # 40 points on a small image: many overlaps and border clips
    for seed in range(4):
        fast = hints.simulate(ab, counts, np.random.default_rng(seed))
        ref = hints.simulate_sequential(ab, counts, np.random.default_rng(seed))
        assert torch.equal(fast[:, 2], ref[:, 2])
        assert torch.allclose(fast, ref, atol=1e-4)
