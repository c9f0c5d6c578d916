"""training.interpolate: two checkpoints of one network mixed in weight space."""
import numpy as np
import pytest
import torch

from training.export import load_checkpoint_model
from training.interpolate import interpolate, main
from training.model import build_model

CONFIG = {"encoder": "lite0", "hints": True, "hint_depth": 4, "freeze_groups": 5}


def checkpoint(seed, prior):
    torch.manual_seed(seed)
    m = build_model(CONFIG)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.normal_(0, 0.3)
                mod.num_batches_tracked.fill_(seed + 1)
    return {"model": m.state_dict(), "config": m.config, "prior": prior, "opt": {"x": 1},
            "state": {"step": 7, "epoch": 1}, "args": {"name": "t"}}


@pytest.fixture
def pair():
    prior = np.full(313, 1 / 313)
    return checkpoint(0, prior), checkpoint(1, prior.copy())


def test_endpoints_and_midpoint(pair):
    a, b = pair
    for alpha, want in ((0.0, a["model"]), (1.0, b["model"])):
        got = interpolate(a, b, alpha)["model"]
        for k, v in got.items():
            if v.is_floating_point():
                assert torch.allclose(v, want[k], atol=1e-7), k
    mid = interpolate(a, b, 0.5)
    w = "head.weight"
    assert torch.allclose(mid["model"][w], (a["model"][w] + b["model"][w]) / 2, atol=1e-7)
    assert not torch.allclose(mid["model"][w], a["model"][w])
    # integer buffers come from b; no optimizer state; a fresh schedule
    counters = [k for k in mid["model"] if k.endswith("num_batches_tracked")]
    assert counters and all(int(mid["model"][k]) == 2 for k in counters)
    assert "opt" not in mid and mid["state"] == {"step": 0, "epoch": 0}


def test_the_result_loads_and_runs(pair, tmp_path):
    a, b = pair
    torch.save(a, tmp_path / "a.pt")
    torch.save(b, tmp_path / "b.pt")
    main(["--a", str(tmp_path / "a.pt"), "--b", str(tmp_path / "b.pt"), "--alpha", "0.3",
          "--out", str(tmp_path / "m.pt")])
    model, ck = load_checkpoint_model(str(tmp_path / "m.pt"))
    assert ck["interpolated_from"]["alpha"] == 0.3
    with torch.no_grad():
        out = model(torch.rand(1, 1, 64, 64) * 100, torch.zeros(1, 3, 64, 64))
    assert out.shape == (1, 313, 16, 16) and torch.isfinite(out).all()


def test_refuses_what_does_not_mix(pair):
    a, b = pair
    with pytest.raises(ValueError, match="alpha"):
        interpolate(a, b, 1.5)
    other = dict(b, prior=np.linspace(1, 2, 313) / np.linspace(1, 2, 313).sum())
    with pytest.raises(ValueError, match="priors"):
        interpolate(a, other, 0.5)
    with pytest.raises(ValueError, match="different networks"):
        interpolate(a, dict(b, config={**b["config"], "d1": 64}), 0.5)
    short = dict(b, model={k: v for k, v in b["model"].items() if k != "head.bias"})
    with pytest.raises(ValueError, match="different tensors"):
        interpolate(a, short, 0.5)


def grown_pair():
    """A: a 1/4-grid network; B: A grown to a 1/2 grid (`--arch '{"out_stride": 2}'`) and trained."""
    prior = np.full(313, 1 / 313)
    a = checkpoint(0, prior)
    torch.manual_seed(5)
    m = build_model({**CONFIG, "out_stride": 2})
    m.load_state_dict(a["model"], strict=False)
    with torch.no_grad():
        for name, p in m.named_parameters():
            p.add_(torch.randn_like(p) * 0.02)   # "trained": every tensor moved, the zero head too
    b = {"model": m.state_dict(), "config": m.config, "prior": prior.copy(), "state": {"step": 9, "epoch": 2},
         "args": {"name": "t"}}
    return a, b


def run(ck, size=64):
    model = build_model(ck["config"])
    model.load_state_dict(ck["model"])
    model.eval()
    torch.manual_seed(11)
    L = torch.rand(1, 1, size, size) * 100
    with torch.no_grad():
        return model(L, torch.zeros(1, 3, size, size))


def test_a_stage_grown_by_b_starts_at_zero_where_b_started_there():
    a, b = grown_pair()
    start, end, mid = (interpolate(a, b, x) for x in (0.0, 1.0, 0.5))
    # alpha 0 is A's output on the finer grid; alpha 1 is B
    up = torch.nn.functional.interpolate(run(a), scale_factor=2, mode="bilinear", align_corners=False)
    assert torch.allclose(run(start), up, atol=1e-4)
    assert torch.allclose(run(end), run(b), atol=1e-5)
    # the grown stage: its zero-started head scaled by alpha, its other layers B's own
    assert torch.allclose(mid["model"]["fine_head.weight"], b["model"]["fine_head.weight"] * 0.5, atol=1e-7)
    assert torch.equal(mid["model"]["fine_proj.weight"], b["model"]["fine_proj.weight"])
    w = "head.weight"
    assert torch.allclose(mid["model"][w], (a["model"][w] + b["model"][w]) / 2, atol=1e-7)
    # A's config must be a part of B's, with the same values
    with pytest.raises(ValueError, match="different networks"):
        interpolate(dict(a, config={**a["config"], "d1": 64}), b, 0.5)
    with pytest.raises(ValueError, match="different networks"):
        interpolate(b, a, 0.5)
    # a grown B that lost one of A's tensors does not mix either
    short = dict(b, model={k: v for k, v in b["model"].items() if k != "head.bias"})
    with pytest.raises(ValueError, match="different tensors"):
        interpolate(a, short, 0.5)
