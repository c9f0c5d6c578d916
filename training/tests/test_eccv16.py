import numpy as np
import onnxruntime as ort
import pytest


def test_eccv16_random_weights_export(tmp_path):
    from training.export_eccv16 import ECCV16, export
    # the published state_dict layout loads (names and shapes)
    sd = ECCV16().state_dict()
    assert "model1.0.weight" in sd and "model8.6.weight" in sd and "model_out.weight" in sd
    assert sd["model8.6.weight"].shape == (313, 256, 1, 1) and sd["model1.4.running_var"].shape == (64,)
    out = tmp_path / "eccv16.onnx"
    info = export(str(out))
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    meta = sess.get_modelmeta().custom_metadata_map
    assert meta["colorizer.trained"] == "false" and "colorizer.temperature" in meta
    y = sess.run(None, {"L": np.random.rand(1, 1, 256, 256).astype(np.float32) * 100})[0]
    assert y.shape == (1, 313, 64, 64)
    assert info["max_abs_err_vs_torch"] < 1e-2


def test_eccv16_loads_a_state_dict(tmp_path):
    import torch
    from training.export_eccv16 import ECCV16, load_weights
    a = ECCV16()
    p = tmp_path / "w.pth"
    torch.save(a.state_dict(), p)
    b = ECCV16()
    load_weights(b, str(p))
    assert torch.equal(a.model8[6].weight, b.model8[6].weight)
