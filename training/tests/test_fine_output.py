"""The 1/2-resolution output of ColorUNet (`out_stride` 2): a network extended from a 1/4-resolution
one starts at that one's output upsampled, it exports to the service's contract at 1/2 resolution,
and training can extend a checkpoint and train only the new stage."""
import numpy as np
import onnxruntime as ort
import torch
import torch.nn.functional as F

from training import train
from training.export import export_model, load_checkpoint_model
from training.model import build_model


def quarter_and_half(hints=False):
    cfg = {"encoder": "lite0", "hints": hints}
    torch.manual_seed(0)
    m4 = build_model(cfg, pretrained=False)
    with torch.no_grad():
        m4.head.bias.normal_(0, 1)
    m2 = build_model({**cfg, "out_stride": 2}, pretrained=False)
    res = m2.load_state_dict(m4.state_dict(), strict=False)
    assert not res.unexpected_keys and res.missing_keys and all(k.startswith("fine") for k in res.missing_keys)
    return m4.eval(), m2.eval()


def test_extended_network_starts_at_the_upsampled_quarter_output():
    m4, m2 = quarter_and_half(hints=True)
    L = torch.rand(2, 1, 96, 128) * 100
    hints = torch.zeros(2, 3, 96, 128)
    hints[:, 0, 40:43, 60:63], hints[:, 2, 40:43, 60:63] = 30.0, 1.0
    with torch.no_grad():
        y4, y2 = m4(L, hints), m2(L, hints)
    assert y4.shape == (2, 313, 24, 32) and y2.shape == (2, 313, 48, 64)
    up = F.interpolate(y4, size=(48, 64), mode="bilinear", align_corners=False)
    assert torch.allclose(y2, up, atol=1e-5)
    assert m2.config["out_stride"] == 2 and "out_stride" not in m4.config


def test_half_resolution_export_contract(tmp_path):
    _, m2 = quarter_and_half()
    with torch.no_grad():   # a correction that is not zero, so the fine stage is in the graph's numbers
        m2.fine_head.weight.normal_(0, 0.05)
    p = tmp_path / "half.onnx"
    export_model(m2, str(p), name="half", description="d", input_size=160, trained=False)
    sess = ort.InferenceSession(str(p), providers=["CPUExecutionProvider"])
    for hw in ((112, 112), (96, 160), (64, 48)):
        x = (np.random.default_rng(1).random((1, 1, *hw)) * 100).astype(np.float32)
        y = sess.run(None, {"L": x})[0]
        assert y.shape == (1, 313, hw[0] // 2, hw[1] // 2)
        with torch.no_grad():
            ref = m2(torch.from_numpy(x)).numpy()
        assert np.abs(ref - y).max() < 2e-2 * np.abs(ref).max() + 1e-3


def test_training_extends_a_checkpoint_and_trains_only_the_fine_stage(photo_folder, tmp_path):
    base = ["--data", photo_folder, "--size", "48", "--crop", "32", "--batch", "4", "--threads", "2"]
    train.main(base + ["--encoder", "lite0", "--out", str(tmp_path / "a"), "--max-steps", "1"])
    a = torch.load(tmp_path / "a" / "last.pt", map_location="cpu", weights_only=False)
    onnx_path = tmp_path / "fine.onnx"
    s = train.main(base + ["--out", str(tmp_path / "b"), "--max-steps", "3", "--lr", "1e-2", "--init",
                           str(tmp_path / "a" / "last.pt"), "--arch", '{"out_stride": 2}', "--train-only", "^fine",
                           "--export", str(onnx_path)])
    assert all(np.isfinite(r["loss"]) for r in s["steps"] or [{"loss": 0.0}])
    b = torch.load(tmp_path / "b" / "last.pt", map_location="cpu", weights_only=False)
    assert b["config"]["out_stride"] == 2
    assert all(torch.equal(v, b["model"][k]) for k, v in a["model"].items())   # the old network is untouched
    new = {k for k in b["model"] if k not in a["model"]}
    assert new and all(k.startswith("fine") for k in new)
    assert any(b["model"][k].abs().sum() > 0 for k in ("fine_head.weight", "fine_head.bias"))   # it trained
    m, _ = load_checkpoint_model(str(tmp_path / "b" / "last.pt"))
    assert m.out_stride == 2
    y = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"]).run(
        None, {"L": np.full((1, 1, 64, 80), 60, np.float32)})[0]
    assert y.shape == (1, 313, 32, 40)


def test_detail_only_correction_leaves_each_quarter_cell_its_mean():
    """fine_detail: the correction's mean over each 2x2 block (one cell of the 1/4 grid) is taken
    out, so averaged back to the 1/4 grid the output is the upsampled 1/4 head's output."""
    torch.manual_seed(0)
    m = build_model({"encoder": "lite0", "out_stride": 2, "fine_detail": True}, pretrained=False).eval()
    with torch.no_grad():
        m.fine_head.weight.normal_(0, 0.05)
        m.fine_head.bias.normal_(0, 1.0)
    assert m.config["fine_detail"] is True
    L = torch.rand(1, 1, 64, 96) * 100
    captured = {}
    m.head.register_forward_hook(lambda mod, inp, out: captured.setdefault("y4", out))
    with torch.no_grad():
        y2 = m(L)
    up = F.interpolate(captured["y4"], size=y2.shape[-2:], mode="bilinear", align_corners=False)
    corr = y2 - up
    assert corr.abs().max() > 1e-2   # there is a correction ...
    assert F.avg_pool2d(corr, 2).abs().max() < 1e-4   # ... and it is zero on average in every cell
