"""Two-step training smoke test, checkpoint/resume, and the ONNX export round trip."""
import json
import os

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from training import train
from training.export import (export_model, fold_batchnorm, read_metadata, rewrite_metadata,
                             untrained_model)
from training.model import ColorNet

META = ("colorizer.name", "colorizer.description", "colorizer.temperature", "colorizer.input_size",
        "colorizer.trained")


@pytest.mark.parametrize("head", ["ce", "l2"])
def test_two_step_training_smoke_and_export(photo_folder, tmp_path, head):
    out = tmp_path / "run"
    onnx_path = tmp_path / f"{head}.onnx"
    args = ["--data", photo_folder, "--head", head, "--out", str(out), "--size", "48", "--crop", "32",
            "--batch", "4", "--max-steps", "2", "--log-every", "1", "--threads", "2",
            "--arch", json.dumps({"c1": 8, "c2": 16, "c3": 32, "c4": 16}),
            "--export", str(onnx_path), "--name", f"smoke-{head}", "--description", "smoke test"]
    summary = train.main(args)
    assert summary["step"] == 2
    assert all(np.isfinite(s["loss"]) for s in summary["steps"])
    assert (out / "last.pt").exists() and (out / "log.json").exists() and (out / "prior.npy").exists()
    prior = np.load(out / "prior.npy")
    assert abs(prior.sum() - 1) < 1e-6 and prior.shape == (313,)
    # round trip through onnxruntime
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    y = sess.run(None, {"L": np.full((1, 1, 64, 80), 60, np.float32)})[0]
    assert y.shape == (1, 313 if head == "ce" else 2, 16, 20)
    meta = read_metadata(str(onnx_path))
    assert meta["colorizer.name"] == f"smoke-{head}" and meta["colorizer.trained"] == "true"
    # resume: continues from the checkpoint and counts steps on
    summary2 = train.main(args[:args.index("--max-steps")] + ["--max-steps", "3", "--resume"] +
                          args[args.index("--max-steps") + 2:])
    assert summary2["step"] == 3


def test_time_budget_stops_cleanly(photo_folder, tmp_path):
    out = tmp_path / "run"
    s = train.main(["--data", photo_folder, "--out", str(out), "--size", "48", "--crop", "32", "--batch", "4",
                    "--arch", json.dumps({"c1": 8, "c2": 16, "c3": 32, "c4": 16}), "--epochs", "1000",
                    "--time-budget-s", "26", "--threads", "2"])
    assert s["epoch"] < 1000 and (out / "last.pt").exists()


def test_export_contract(tmp_path):
    m = untrained_model("ce", seed=1)
    p = tmp_path / "m.onnx"
    export_model(m, str(p), name="x", description="d", temperature=0.42, input_size=128, trained=False)
    model = onnx.load(str(p))
    assert model.opset_import[0].version == 17
    assert not any(n.op_type == "BatchNormalization" for n in model.graph.node)
    assert not any(init.data_location == onnx.TensorProto.EXTERNAL for init in model.graph.initializer)
    assert len(model.graph.input) == 1 and len(model.graph.output) == 1
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert dims[1].dim_value == 1 and dims[0].dim_param and dims[2].dim_param and dims[3].dim_param
    meta = read_metadata(str(p))
    for k in META:
        assert k in meta
    assert meta["colorizer.temperature"] == "0.42" and meta["colorizer.input_size"] == "128"
    assert meta["colorizer.trained"] == "false"
    sess = ort.InferenceSession(str(p), providers=["CPUExecutionProvider"])
    for hw in ((256, 256), (64, 96), (120, 200)):
        y = sess.run(None, {"L": np.random.rand(2, 1, *hw).astype(np.float32) * 100})[0]
        assert y.shape == (2, 313, hw[0] // 4, hw[1] // 4)
    # logits are not all equal (untrained model still has chroma)
    assert y.std(axis=1).mean() > 0.1
    # torch (unfolded BN, fp32) vs onnx (folded, fp16 weights)
    x = np.random.default_rng(0).random((1, 1, 64, 64)).astype(np.float32) * 100
    with torch.no_grad():
        ref = m.eval()(torch.from_numpy(x)).numpy()
    got = sess.run(None, {"L": x})[0]
    assert np.abs(ref - got).max() < 0.05 * np.abs(ref).max()


def test_fold_batchnorm_exact_after_training_stats():
    torch.manual_seed(0)
    m = ColorNet(c1=8, c2=16, c3=32, c4=16)
    m.train()
    with torch.no_grad():
        for _ in range(3):
            m(torch.rand(4, 1, 32, 32) * 100)   # populate running stats
    m.eval()
    f = fold_batchnorm(m)
    x = torch.rand(2, 1, 40, 48) * 100
    with torch.no_grad():
        assert torch.allclose(m(x), f(x), atol=1e-3, rtol=1e-3)


def test_rewrite_metadata_keeps_weights(tmp_path):
    p = tmp_path / "m.onnx"
    export_model(untrained_model("l2"), str(p), name="a", description="d", temperature=0.38, input_size=112)
    before = [i.raw_data for i in onnx.load(str(p)).graph.initializer]
    rewrite_metadata(str(p), {"temperature": 0.5, "name": "b"})
    after = onnx.load(str(p))
    assert [i.raw_data for i in after.graph.initializer] == before
    meta = read_metadata(str(p))
    assert meta["colorizer.temperature"] == "0.5" and meta["colorizer.name"] == "b"
    assert meta["colorizer.description"] == "d"


def test_fixtures_follow_contract():
    from training import REPO_ROOT
    for fname, c in (("untrained-colorizer.onnx", 313), ("untrained-l2.onnx", 2)):
        p = os.path.join(REPO_ROOT, "tests", "fixtures", fname)
        meta = read_metadata(p)
        assert meta["colorizer.trained"] == "false"
        sess = ort.InferenceSession(p, providers=["CPUExecutionProvider"])
        y = sess.run(None, {"L": np.random.rand(1, 1, 256, 256).astype(np.float32) * 100})[0]
        assert y.shape == (1, c, 64, 64)
    assert read_metadata(os.path.join(REPO_ROOT, "tests", "fixtures", "untrained-colorizer.onnx"))["colorizer.name"] == "untrained-fixture"


def test_latency_runs_hint_models():
    """`training.latency` feeds a hint model's second input (an all-zero map, as the service does)."""
    from training.latency import measure
    from training import REPO_ROOT
    out = measure(os.path.join(REPO_ROOT, "tests", "fixtures", "hint-fixture.onnx"), threads=1, size=32, runs=2)
    assert out["median_ms"] >= 0 and out["size"] == 32


def test_shipped_models_have_their_pads_folded():
    """Every model the service ships runs its convolutions' padding inside them: no Pad node is
    left for `fuse_same_pads` to fold (a Pad per encoder conv cost a fifth of the model's time)."""
    from training import REPO_ROOT
    from training.export import fuse_same_pads
    models = os.path.join(REPO_ROOT, "models")
    names = sorted(f for f in os.listdir(models) if f.endswith(".onnx"))
    assert "colorizer.onnx" in names
    for f in names:
        m = onnx.load(os.path.join(models, f))
        assert fuse_same_pads(m)[1] == 0, f"{f}: Pad nodes in front of convolutions (python -m training.export --fuse-pads)"
