"""Pretrained EfficientNet-Lite encoders, the ColorUNet export contract, shard streaming with
resume across calls, and the semantic test of training.evaluate. No network, no photos outside the repo:
the ImageNet weights come from the PyPI wheels installed by training/setup.sh."""
import json
import os

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from training import train
from training.encoders import (SamePad, VARIANTS, l_to_srgb01, load_pretrained, map_wheel_state,
                               wheel_weights_path)
from training.export import export_model, load_checkpoint_model
from training.lab import rgb_to_lab_torch
from training.model import build_model
from training.pack import pack

from .conftest import synthetic_photo


def tf_same_pad(i, k, s):
    """TensorFlow's SAME padding (reference formula)."""
    out = -(-i // s)
    total = max((out - 1) * s + k - i, 0)
    return total // 2, total - total // 2


@pytest.mark.parametrize("k,s", [(3, 1), (5, 1), (3, 2), (5, 2)])
@pytest.mark.parametrize("i", [7, 8, 14, 15, 28, 56, 112, 113])
def test_same_pad_matches_tensorflow(i, k, s):
    x = torch.zeros(1, 1, i, i + 1)
    y = SamePad(k, s)(x)
    (t, b), (l, r) = tf_same_pad(i, k, s), tf_same_pad(i + 1, k, s)
    assert y.shape[-2:] == (i + t + b, i + 1 + l + r)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_wheel_weights_load_strictly(variant):
    sd = torch.load(wheel_weights_path(variant), map_location="cpu", weights_only=True)
    mapped = map_wheel_state(sd, classifier=True)
    assert len(mapped) == len(sd)                       # every key of the wheel is used
    m = load_pretrained(variant, 3, classifier=True)    # strict=True inside
    assert torch.equal(m.fc.weight, sd["_fc.weight"])


def test_gray_stem_equals_rgb_stem_on_gray_input():
    """The 1-channel stem (RGB weights summed) on L gives the RGB network's features of the
    neutral-gray photo with that L, which is what the pretrained encoder knows."""
    rgb = load_pretrained("lite0", 3).eval()
    gray = load_pretrained("lite0", 1).eval()
    L = torch.rand(2, 1, 64, 72) * 100
    v = l_to_srgb01(L) * 255.0
    with torch.no_grad():
        a = rgb.features((v.expand(-1, 3, -1, -1) - 127) / 128)
        b = gray.features((v - 127) / 128)
    for x, y in zip(a, b):
        assert torch.allclose(x, y, atol=1e-4)
    assert [t.shape[-1] for t in b] == [36, 18, 9, 5, 3]   # SAME padding: ceil(72 / stride)


def test_l_to_srgb_is_the_inverse_of_lab_for_neutral_grays():
    v = torch.linspace(0, 1, 256)
    lab = rgb_to_lab_torch(v.view(1, 1, 1, -1).expand(1, 3, 1, -1).contiguous())
    back = l_to_srgb01(lab[:, :1])
    assert torch.allclose(back.flatten(), v, atol=1e-4)


def test_frozen_groups_get_no_gradient_and_keep_bn_stats():
    m = build_model({"encoder": "lite0", "freeze_groups": 5}, pretrained=False).train()
    frozen = m.frozen_modules()
    assert all(not mod.training for mod in frozen)
    assert all(not p.requires_grad for mod in frozen for p in mod.parameters())
    before = m.enc.stem[2].running_mean.clone()
    y = m(torch.rand(2, 1, 64, 64) * 100)
    y.mean().backward()
    assert torch.equal(before, m.enc.stem[2].running_mean)
    assert m.head.weight.grad is not None
    trainable = [p for p in m.enc.blocks[-1].parameters()]
    assert all(p.requires_grad and p.grad is not None for p in trainable)


def test_colorunet_export_contract(tmp_path):
    m = build_model({"encoder": "lite0"}, pretrained=False)
    with torch.no_grad():
        m.head.bias.normal_(0, 1)
    p = tmp_path / "u.onnx"
    info = export_model(m, str(p), name="u", description="d", input_size=160, trained=False)
    g = onnx.load(str(p))
    assert not any(n.op_type == "BatchNormalization" for n in g.graph.node)
    # the encoder's 17 SAME pads live in its convs (auto_pad), not in Pad nodes
    assert info["pads_folded"] == 17 and not any(n.op_type == "Pad" for n in g.graph.node)
    sess = ort.InferenceSession(str(p), providers=["CPUExecutionProvider"])
    for hw in ((112, 112), (120, 168), (224, 224), (64, 40)):
        x = (np.random.default_rng(1).random((1, 1, *hw)) * 100).astype(np.float32)
        y = sess.run(None, {"L": x})[0]
        assert y.shape == (1, 313, hw[0] // 4, hw[1] // 4)
        with torch.no_grad():
            ref = m.eval()(torch.from_numpy(x)).numpy()
        assert np.abs(ref - y).max() < 2e-2 * np.abs(ref).max() + 1e-3
    assert info["bytes"] < 12e6


def test_fuse_pads_file_rewrites_an_older_export(tmp_path):
    """An export with the Pad nodes (as the models before 2026-12-08 were) gets them folded in
    place: same outputs at odd and even sizes, fewer nodes, weights and metadata unchanged."""
    from training.export import fold_batchnorm, fuse_pads_file, set_metadata, torch_to_onnx_bytes
    m = build_model({"encoder": "lite0"}, pretrained=False)
    old = onnx.load_from_string(torch_to_onnx_bytes(fold_batchnorm(m), "logits"))
    set_metadata(old, {"name": "old"})
    p = tmp_path / "old.onnx"
    onnx.save(old, str(p))
    assert sum(n.op_type == "Pad" for n in old.graph.node) == 17
    info = fuse_pads_file(str(p))
    new = onnx.load(str(p))
    assert info["pads_folded"] == 17 and info["nodes"][1] < info["nodes"][0] // 2
    assert not any(n.op_type == "Pad" for n in new.graph.node)
    assert {i.name: i.raw_data for i in new.graph.initializer}.items() <= {i.name: i.raw_data for i in old.graph.initializer}.items()
    assert {e.key: e.value for e in new.metadata_props} == {"colorizer.name": "old"}
    a = ort.InferenceSession(old.SerializeToString(), providers=["CPUExecutionProvider"])
    b = ort.InferenceSession(str(p), providers=["CPUExecutionProvider"])
    for hw in ((64, 96), (72, 88), (50, 70)):
        x = (np.random.default_rng(2).random((1, 1, *hw)) * 100).astype(np.float32)
        ya, yb = a.run(None, {"L": x})[0], b.run(None, {"L": x})[0]
        assert ya.shape == yb.shape and np.abs(ya - yb).max() < 1e-4 * (np.abs(ya).max() + 1)
    # a second pass finds nothing to fold and leaves the file as it is
    before = p.read_bytes()
    assert fuse_pads_file(str(p))["pads_folded"] == 0 and p.read_bytes() == before


def test_fuse_same_pads_keeps_pads_that_are_not_same():
    """A constant pad that is not SAME_UPPER's (here 0 before and 2 after a 3x3 conv), a pad with
    a non-zero value, and a pad before a strided conv with constant pads all stay Pad nodes."""
    from onnx import helper, TensorProto
    from training.export import fuse_same_pads

    def graph(pads, value, stride):
        w = onnx.numpy_helper.from_array(np.ones((1, 1, 3, 3), np.float32), "w")
        p = onnx.numpy_helper.from_array(np.array(pads, np.int64), "p")
        v = onnx.numpy_helper.from_array(np.array(value, np.float32), "v")
        nodes = [helper.make_node("Pad", ["x", "p", "v"], ["xp"], mode="constant"),
                 helper.make_node("Conv", ["xp", "w"], ["y"], kernel_shape=[3, 3], strides=[stride, stride])]
        g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [w, p, v])
        return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])

    assert fuse_same_pads(graph([0, 0, 1, 1, 0, 0, 1, 1], 0.0, 1))[1] == 1
    assert fuse_same_pads(graph([0, 0, 0, 0, 0, 0, 2, 2], 0.0, 1))[1] == 0
    assert fuse_same_pads(graph([0, 0, 1, 1, 0, 0, 1, 1], 5.0, 1))[1] == 0
    assert fuse_same_pads(graph([0, 0, 0, 0, 0, 0, 1, 1], 0.0, 2))[1] == 0


def test_pretrained_training_smoke_resume_and_export(photo_folder, tmp_path):
    out = tmp_path / "run"
    onnx_path = tmp_path / "m.onnx"
    args = ["--data", photo_folder, "--encoder", "lite0", "--freeze-groups", "5", "--out", str(out),
            "--size", "48", "--crop", "32", "--batch", "4", "--max-steps", "2", "--threads", "2",
            "--export", str(onnx_path), "--name", "smoke-lite0"]
    s = train.main(args)
    assert s["step"] == 2 and all(np.isfinite(r["loss"]) for r in s["steps"] or [{"loss": 0.0}])
    m, ck = load_checkpoint_model(str(out / "last.pt"))
    wheel = load_pretrained("lite0", 1)
    # the frozen stem still holds the ImageNet weights; the trained head moved
    assert torch.equal(m.enc.stem[1].weight, wheel.stem[1].weight)
    assert ck["config"]["encoder"] == "lite0" and ck["config"]["freeze_groups"] == 5
    y = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"]).run(
        None, {"L": np.full((1, 1, 64, 80), 60, np.float32)})[0]
    assert y.shape == (1, 313, 16, 20)
    s2 = train.main(args[:args.index("--max-steps")] + ["--max-steps", "3", "--resume"]
                    + args[args.index("--max-steps") + 2:])
    assert s2["step"] == 3



def test_semantic_loss_training_smoke(photo_folder, tmp_path):
    """A run with the semantic loss (two critics, Lite0 and Lite1, at --semantic-size, with the
    colourfulness gap) trains and logs the critics, their input size, the KL and the CF gap; a bad
    critic list and a head without bins are refused."""
    out = tmp_path / "sem"
    s = train.main(["--data", photo_folder, "--encoder", "lite0", "--freeze-groups", "5", "--out", str(out),
                    "--size", "48", "--crop", "32", "--batch", "4", "--max-steps", "2", "--threads", "2",
                    "--print-every", "1", "--semantic-weight", "5", "--semantic-size", "64",
                    "--semantic-critic", "lite0,lite1", "--cf-weight", "1"])
    assert s["step"] == 2 and all(np.isfinite(r["loss"]) for r in s["steps"] or [{"loss": 0.0}])
    log = (out / "train.log").read_text()
    assert "critic efficientnet-lite0+lite1 (frozen)" in log and "critic input 64 px" in log
    assert log.count("CF gap") == 2
    kls = [float(line.rsplit("semantic KL", 1)[1].split()[0]) for line in log.splitlines() if "semantic KL" in line]
    assert len(kls) == 2 and all(np.isfinite(k) and k >= 0 for k in kls)
    with pytest.raises(SystemExit):
        train.main(["--data", photo_folder, "--head", "l2", "--out", str(tmp_path / "l2"), "--size", "48",
                    "--crop", "32", "--batch", "4", "--max-steps", "1", "--semantic-weight", "1"])
    for bad in ("lite3", "lite0,lite0", ","):
        with pytest.raises(SystemExit):
            train.parse_args(["--data", photo_folder, "--out", str(tmp_path / "x"), "--semantic-critic", bad])

@pytest.fixture
def shards(tmp_path):
    """Three small packed shards of synthetic photos (training.pack format)."""
    rng = np.random.default_rng(3)
    paths = []
    for k in range(3):
        src = tmp_path / f"src{k}" / "set"
        src.mkdir(parents=True)
        for i in range(6):
            Image.fromarray(synthetic_photo(rng, 40, 40)).save(src / f"{i}.png")
        p = tmp_path / f"shard_{k}.npz"
        pack(str(src.parent), str(p), 40, 90, workers=1)
        paths.append(str(p))
    return paths


def stream_args(out, data, steps, extra=()):
    args = ["--out", str(out), "--stream-shards", "--size", "40", "--crop", "32", "--batch", "4",
            "--arch", json.dumps({"c1": 8, "c2": 16, "c3": 32, "c4": 16}), "--threads", "1",
            "--epochs", "1000", "--max-steps", str(steps), "--log-every", "1", *extra]
    for d in data:
        args += ["--data", d]
    return args


def test_stream_shards_resume_across_calls_equals_one_run(shards, tmp_path):
    # 3 shards x 6 photos, batch 4 -> 2 steps a shard, 6 steps a round
    one = train.main(stream_args(tmp_path / "one", shards, 8))
    assert one["step"] == 8 and one["epoch"] == 1 and one["stream"]["round"] == 1
    # the same run in three calls: shard 0 only (round incomplete), then stop mid-shard, then the rest
    a = tmp_path / "split"
    s1 = train.main(stream_args(a, shards[:1], 8, ["--shard-total", "3"]))
    assert s1["step"] == 2 and s1["stream"]["done"] == ["shard_0.npz"] and s1["epoch"] == 0
    s2 = train.main(stream_args(a, shards[1:], 3, ["--shard-total", "3", "--resume"]))
    assert s2["step"] == 3 and s2["stream"]["pos"] == 1
    s3 = train.main(stream_args(a, shards, 8, ["--shard-total", "3", "--resume"]))
    assert s3["step"] == 8 and s3["epoch"] == 1
    w1 = torch.load(tmp_path / "one" / "last.pt", weights_only=False)["model"]
    w2 = torch.load(a / "last.pt", weights_only=False)["model"]
    for k in w1:
        assert torch.allclose(w1[k].float(), w2[k].float(), atol=1e-5), k


def test_stream_shards_needs_npz(photo_folder, tmp_path):
    with pytest.raises(SystemExit):
        train.main(stream_args(tmp_path / "x", [photo_folder], 1))


def test_semantic_test_rows(tmp_path):
    from training.evaluate import evaluate, markdown
    rng = np.random.default_rng(0)
    root = tmp_path / "val" / "set"
    root.mkdir(parents=True)
    for i in range(4):
        Image.fromarray(synthetic_photo(rng, 64, 64)).save(root / f"{i}.png")
    m = build_model({"encoder": "lite0"}, pretrained=False)
    onnx_path = tmp_path / "u.onnx"
    export_model(m, str(onnx_path), name="u", description="d", input_size=64, trained=False)
    labels = {"set/0.png": 1, "set/1.png": 2}
    res = evaluate(str(tmp_path / "val"), {"u": f"{onnx_path}@48"}, temperatures=[0.38, 1.0], threads=2,
                   classifier="lite0", labels=labels, log=lambda *_: None)
    assert res["models"]["u"]["input_size"] == 48          # NAME=PATH@SIZE runs at that size
    sem = res["semantic"]
    assert sem["n"] == 4 and sem["n_labelled"] == 2
    assert sem["truth"]["agree"] == 1.0
    assert set(sem["rows"]) == {"gray", "u T=0.38", "u T=1"}
    for r in sem["rows"].values():
        assert 0.0 <= r["agree"] <= 1.0 and 0.0 <= r["top1"] <= 1.0
    # won and lost photos account for the whole change in agreement, overall and per class
    assert sem["classes"] == ["set"]
    gray = sem["rows"]["gray"]
    assert gray["won"] == gray["lost"] == 0
    for r in sem["rows"].values():
        assert round(4 * (r["agree"] - gray["agree"])) == r["won"] - r["lost"]
        b = r["by_class"]["set"]
        assert (b["n"], b["won"], b["lost"], b["agree"]) == (4, r["won"], r["lost"], r["agree"])
        assert b["gap"] == round(4 * (1 - gray["agree"]))
    md = markdown(res)
    assert "Semantic test" in md and "| u T=0.38 | +" in md


def test_prior_correction_moves_only_the_head_bias(tmp_path):
    from training.bins import rebalance_weights
    from training.export import apply_prior_correction, read_metadata
    m = build_model({"encoder": "lite0"}, pretrained=False).eval()
    prior = np.random.default_rng(0).dirichlet(np.ones(313))
    c = apply_prior_correction(m, prior, 0.5, 0.25)
    w = rebalance_weights(prior, 0.5)
    assert torch.allclose(c.head.bias - m.head.bias, torch.tensor(-0.25 * np.log(w), dtype=torch.float32), atol=1e-6)
    assert torch.equal(c.head.weight, m.head.weight) and torch.equal(c.up4[0][1].weight, m.up4[0][1].weight)
    export_model(c, str(tmp_path / "c.onnx"), name="c", description="d", prior_correction=0.25, trained=False)
    assert read_metadata(str(tmp_path / "c.onnx"))["colorizer.prior_correction"] == "0.25"
    x = torch.rand(1, 1, 64, 64) * 100
    with torch.no_grad():
        d = c(x) - m(x)
    assert torch.allclose(d, torch.tensor(-0.25 * np.log(w), dtype=torch.float32).view(1, -1, 1, 1).expand_as(d), atol=1e-4)


def test_train_only_trains_the_named_parameters(photo_folder, tmp_path):
    """--train-only '^head\\.bias$' changes the head's 313 biases and nothing else (BatchNorm
    statistics included: the network runs in eval mode); a regex that names nothing is refused."""
    base = ["--data", photo_folder, "--encoder", "lite0", "--size", "48", "--crop", "32", "--batch", "4",
            "--threads", "2", "--lr", "1e-2"]
    train.main(base + ["--out", str(tmp_path / "a"), "--max-steps", "1"])
    a = torch.load(tmp_path / "a" / "last.pt", map_location="cpu", weights_only=False)
    train.main(base + ["--out", str(tmp_path / "b"), "--max-steps", "2", "--init", str(tmp_path / "a" / "last.pt"),
                       "--train-only", r"^head\.bias$"])
    b = torch.load(tmp_path / "b" / "last.pt", map_location="cpu", weights_only=False)
    changed = sorted(k for k in a["model"] if not torch.equal(a["model"][k], b["model"][k]))
    assert changed == ["head.bias"]
    with pytest.raises(SystemExit):
        train.main(base + ["--out", str(tmp_path / "c"), "--max-steps", "1", "--train-only", "^nothing$"])
