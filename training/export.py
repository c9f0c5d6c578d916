"""Export a trained (or untrained) ColorNet to the service's ONNX model contract.

Contract: input `L` float32 [N,1,H,W] raw L 0..100 (dynamic N/H/W) and, for hint models, a
second input `hints` float32 [N,3,H,W] (a, b, mask; training/hints.py), one output
`logits` [N,313,H/4,W/4] in pts_in_hull order (CE) or `ab` [N,2,H/4,W/4] (L2); opset 17;
weights inline; metadata_props colorizer.{name,description,temperature,input_size,trained}.
BatchNorm is folded into the convolutions, and so are the encoder's SAME pads (`fuse_same_pads`:
auto_pad SAME_UPPER instead of a Pad node; a fifth of the default model's time). With --weights-dtype fp16 (default) the weights
are stored as float16 initializers followed by a Cast to float32 (the graph computes in
float32; ONNX Runtime folds the casts at load), which halves the file size.

  python -m training.export --checkpoint runs/landscape/last.pt --out models/x.onnx \
      --name colorizer-landscape --description "..." --temperature 0.38 --input-size 112
  python -m training.export --untrained --head ce --out tests/fixtures/untrained-colorizer.onnx
  python -m training.export --set-metadata models/x.onnx --temperature 0.42   (weights untouched)
  python -m training.export --fuse-pads models/x.onnx   (an older export's SAME pads into its convs)
  python -m training.export --checkpoint runs/broad/last.pt --out models/x.onnx --prior-correction 0.25

Prior correction (--prior-correction ALPHA, 0..1): the rebalanced cross-entropy trains the
network towards p_model(q) ~ p(q) * w(q), the true posterior tilted by the rebalancing weights
w (that is what makes rare, saturated colours win). Subtracting ALPHA * log w(q) from the head's
bias undoes that tilt by the fraction ALPHA before the annealed mean: 0 is the paper's decoding
(vivid, and on gray regions often a wrong tint), 1 the calibrated posterior (safe, dull). The
weights come from the checkpoint's own prior and lambda; the graph and contract are unchanged
(only the bias of the 1x1 head moves), and `colorizer.prior_correction` records ALPHA.
"""
from __future__ import annotations

import argparse
import copy
import io
import json
import os
import sys
import warnings

import numpy as np
import onnx
import torch
import torch.nn as nn
from onnx import helper, numpy_helper, TensorProto

from .model import ColorNet, build_model, NUM_BINS

OPSET = 17
META_KEYS = ("name", "description", "temperature", "input_size", "min_input_size", "trained")


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """Return an eval-mode copy with every Conv2d -> BatchNorm2d pair fused into one Conv2d."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval
    model = copy.deepcopy(model).eval()

    def fuse_seq(seq: nn.Sequential) -> nn.Sequential:
        layers = [fuse_seq(l) if isinstance(l, nn.Sequential) else visit(l) for l in seq]
        out, i = [], 0
        while i < len(layers):
            if (i + 1 < len(layers) and isinstance(layers[i], nn.Conv2d)
                    and isinstance(layers[i + 1], nn.BatchNorm2d)):
                out.append(fuse_conv_bn_eval(layers[i], layers[i + 1]))
                i += 2
            else:
                out.append(layers[i])
                i += 1
        return nn.Sequential(*out)

    def visit(mod: nn.Module) -> nn.Module:
        for name, child in list(mod.named_children()):
            setattr(mod, name, fuse_seq(child) if isinstance(child, nn.Sequential) else visit(child))
        return mod

    model = visit(model)
    n_bn = sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    if n_bn:
        raise RuntimeError(f"{n_bn} BatchNorm layers left unfolded")
    return model


def takes_hints(model: nn.Module) -> bool:
    return bool(getattr(model, "takes_hints", False))


def torch_to_onnx_bytes(model: nn.Module, output_name: str, sample_hw=(64, 64)) -> bytes:
    """Inputs `L` [N,1,H,W] and, for hint models, `hints` [N,3,H,W] (same N, H, W)."""
    buf = io.BytesIO()
    args = (torch.full((1, 1, *sample_hw), 50.0),)
    names = ["L"]
    axes = {"L": {0: "N", 2: "H", 3: "W"}, output_name: {0: "N", 2: "h", 3: "w"}}
    if takes_hints(model):
        args += (torch.zeros(1, 3, *sample_hw),)
        names.append("hints")
        axes["hints"] = {0: "N", 2: "H", 3: "W"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, args, buf, input_names=names, output_names=[output_name], opset_version=OPSET,
            dynamic_axes=axes, do_constant_folding=True, dynamo=False)
    return buf.getvalue()


def weights_to_fp16(m: onnx.ModelProto) -> onnx.ModelProto:
    """Store every float32 initializer with >= 16 elements as float16 + Cast(to=float)."""
    g = m.graph
    new_inits, casts = [], []
    for init in g.initializer:
        arr = numpy_helper.to_array(init)
        if arr.dtype == np.float32 and arr.size >= 16:
            h = numpy_helper.from_array(arr.astype(np.float16), init.name + "__fp16")
            new_inits.append(h)
            casts.append(helper.make_node("Cast", [h.name], [init.name], to=TensorProto.FLOAT,
                                          name=init.name + "__cast"))
        else:
            new_inits.append(init)
    del g.initializer[:]
    g.initializer.extend(new_inits)
    nodes = list(g.node)
    del g.node[:]
    g.node.extend(casts + nodes)
    return m


def _same_upper_pads(k: list[int], d: list[int]) -> list[int]:
    """ONNX pads ([begin..., end...]) of a stride-1 conv under auto_pad SAME_UPPER."""
    total = [(kk - 1) * dd for kk, dd in zip(k, d)]
    return [t // 2 for t in total] + [t - t // 2 for t in total]


def fuse_same_pads(m: onnx.ModelProto) -> tuple[onnx.ModelProto, int]:
    """Fold each zero `Pad` in front of a `Conv` (the encoder's TensorFlow "SAME" padding,
    `encoders.SamePad`) into the conv as `auto_pad = SAME_UPPER`, which is the same rule: out =
    ceil(in / stride), the odd pixel of padding at the end. Then drop the nodes that only computed
    the pads. Returns the model and the number of pads folded.

    Why: torch exports `F.pad` as `Pad(x, pads, "")`, and ONNX Runtime's own pad fusion skips a
    Pad whose optional third input is present but empty; the stride-2 pads are computed from the
    input's shape, which no optimiser folds. Left in, the 17 Pads of an EfficientNet-Lite encoder
    each cost a copy of their tensor and a layout change on each side of it (NCHWc convs around
    an NCHW Pad): a fifth of the default model's time on one thread. A Pad is folded only where
    it is certain to be SAME: constant pads must equal SAME_UPPER's at stride 1; pads computed from
    the shape are folded too (SamePad is the only thing that makes them), and `fuse_pads_file`
    checks the result against the original model at sizes of every parity."""
    g = m.graph
    consumers: dict[str, list] = {}
    for n in g.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    # Constant tensors by name (initializers and Constant nodes), read only where a Pad asks: the
    # weights are not converted.
    tensors = {i.name: i for i in g.initializer}
    tensors.update({n.output[0]: a.t for n in g.node if n.op_type == "Constant" for a in n.attribute if a.name == "value"})

    def const(name: str):
        return numpy_helper.to_array(tensors[name]) if name in tensors else None

    graph_outputs = {o.name for o in g.output}
    folded = set()
    for pad in g.node:
        if pad.op_type != "Pad" or pad.output[0] in graph_outputs:
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in pad.attribute}
        if attrs.get("mode", b"constant") != b"constant":
            continue
        if len(pad.input) > 2 and pad.input[2]:
            value = const(pad.input[2])
            if value is None or np.any(value != 0):
                continue
        if len(pad.input) > 3 and pad.input[3]:   # the axes input (opset 18+): not handled
            continue
        users = consumers.get(pad.output[0], [])
        if len(users) != 1 or users[0].op_type != "Conv" or users[0].input[0] != pad.output[0]:
            continue
        conv = users[0]
        cattrs = {a.name: helper.get_attribute_value(a) for a in conv.attribute}
        if cattrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", b"") or any(cattrs.get("pads", [])):
            continue
        kernel = list(cattrs.get("kernel_shape", []))
        if not kernel:
            continue
        strides = list(cattrs.get("strides", [1] * len(kernel)))
        dilations = list(cattrs.get("dilations", [1] * len(kernel)))
        pads = const(pad.input[1])
        if pads is not None:
            # constant pads: [N, C, spatial... begin, N, C, spatial... end]; SAME only at stride 1
            pads = [int(v) for v in pads]
            r = len(pads) // 2
            if r != len(kernel) + 2 or any(pads[i] for i in (0, 1, r, r + 1)) or any(s != 1 for s in strides):
                continue
            if pads[2:r] + pads[r + 2:] != _same_upper_pads(kernel, dilations):
                continue
        elif any(d != 1 for d in dilations):
            continue
        conv.input[0] = pad.input[0]
        keep = [a for a in conv.attribute if a.name not in ("pads", "auto_pad")]
        del conv.attribute[:]
        conv.attribute.extend(keep + [helper.make_attribute("auto_pad", "SAME_UPPER")])
        folded.add(id(pad))
    nodes = [n for n in g.node if id(n) not in folded]
    while True:   # drop what only fed the folded pads
        read = {i for n in nodes for i in n.input} | graph_outputs
        live = [n for n in nodes if any(o in read for o in n.output)]
        if len(live) == len(nodes):
            break
        nodes = live
    del g.node[:]
    g.node.extend(nodes)
    read = {i for n in nodes for i in n.input}
    inits = [i for i in g.initializer if i.name in read]
    del g.initializer[:]
    g.initializer.extend(inits)
    return m, len(folded)


# Input sizes (H, W) at which `fuse_pads_file` compares a model with its original: between them,
# odd and even sides at every stride level down to 1/32.
PAD_CHECK_SIZES = ((96, 128), (80, 112), (176, 240), (72, 88), (50, 70), (160, 160))


def fuse_pads_checked(original: onnx.ModelProto) -> tuple[onnx.ModelProto, dict]:
    """`fuse_same_pads` on a copy of `original`, checked with ONNX Runtime against it at
    `PAD_CHECK_SIZES` (outputs equal up to float rounding); raises where they differ."""
    import onnxruntime as ort
    fused, n = fuse_same_pads(copy.deepcopy(original))
    info = {"pads_folded": n, "nodes": [len(original.graph.node), len(fused.graph.node)]}
    if n == 0:
        return fused, info
    onnx.checker.check_model(fused)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    before = ort.InferenceSession(original.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    after = ort.InferenceSession(fused.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    worst = 0.0
    for h, w in PAD_CHECK_SIZES:
        feed = {"L": (rng.random((1, 1, h, w)) * 100).astype(np.float32)}
        if len(before.get_inputs()) == 2:
            feed["hints"] = np.zeros((1, 3, h, w), np.float32)
            feed["hints"][0, :, h // 3, w // 2] = (30.0, -20.0, 1.0)
        (y0,), (y1,) = before.run(None, feed), after.run(None, feed)
        if y0.shape != y1.shape:
            raise RuntimeError(f"{h}x{w}: output shape {y1.shape} after folding the pads, {y0.shape} before")
        err = float(np.abs(y0 - y1).max())
        if err > 1e-4 * (float(np.abs(y0).max()) + 1.0):
            raise RuntimeError(f"{h}x{w}: folding the pads changed the output by {err}")
        worst = max(worst, err)
    info["max_abs_diff"] = worst
    return fused, info


def fuse_pads_file(path: str, out_path: str | None = None) -> dict:
    """`fuse_pads_checked` on a saved model (weights and metadata untouched)."""
    fused, info = fuse_pads_checked(onnx.load(path))
    if info["pads_folded"]:
        onnx.save_model(fused, out_path or path, save_as_external_data=False)
    return {"path": out_path or path, **info}


def set_metadata(m: onnx.ModelProto, meta: dict) -> onnx.ModelProto:
    cur = {p.key: p.value for p in m.metadata_props}
    for k, v in meta.items():
        if v is None:
            continue
        cur[k if k.startswith("colorizer.") else f"colorizer.{k}"] = str(v)
    del m.metadata_props[:]
    for k in sorted(cur):
        m.metadata_props.append(onnx.StringStringEntryProto(key=k, value=cur[k]))
    return m


def format_temperature(t: float) -> str:
    return f"{float(t):.2f}".rstrip("0").rstrip(".") if float(t) != 1.0 else "1.0"


def apply_prior_correction(model: nn.Module, prior: np.ndarray, lam: float, alpha: float) -> nn.Module:
    """A copy of a CE model whose head bias is lowered by alpha * log w (w: rebalancing weights)."""
    from .bins import rebalance_weights
    model = copy.deepcopy(model)
    w = rebalance_weights(np.asarray(prior, np.float64), lam)
    with torch.no_grad():
        model.head.bias -= float(alpha) * torch.tensor(np.log(w), dtype=model.head.bias.dtype)
    return model


def export_model(model: ColorNet, out_path: str, *, name: str, description: str,
                 temperature: float = 0.38, input_size: int = 112, trained: bool = True,
                 weights_dtype: str = "fp16", verify: bool = True, prior_correction: float = 0.0,
                 min_input_size: int | None = None) -> dict:
    """Fold BN, export, store weights, write metadata, check with onnxruntime. Returns info.
    `prior_correction` is only recorded here: apply it with apply_prior_correction first."""
    head = model.head_kind
    output_name = "logits" if head == "ce" else "ab"
    folded = fold_batchnorm(model.cpu().float())
    m = onnx.load_from_string(torch_to_onnx_bytes(folded, output_name))
    m, pads = fuse_pads_checked(m)
    if weights_dtype == "fp16":
        m = weights_to_fp16(m)
    m.producer_name = "colorizer-training"
    m.doc_string = description
    m = set_metadata(m, {
        "name": name, "description": description, "temperature": format_temperature(temperature),
        "input_size": str(int(input_size)), "trained": "true" if trained else "false",
        "min_input_size": str(int(min_input_size)) if min_input_size else None,
        "output": "logits313" if head == "ce" else "ab", "arch": json.dumps(model.config),
        "prior_correction": f"{prior_correction:g}" if head == "ce" else None,
        "hints": "true" if takes_hints(model) else None})
    onnx.checker.check_model(m)
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    onnx.save_model(m, out_path, save_as_external_data=False)
    info = {"path": out_path, "bytes": os.path.getsize(out_path), "head": head, "pads_folded": pads["pads_folded"]}
    if verify:
        info.update(verify_onnx(out_path, folded))
    return info


def verify_onnx(path: str, torch_model: nn.Module | None = None, hw=(96, 128)) -> dict:
    import onnxruntime as ort
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    x = (rng.random((2, 1, *hw)) * 100).astype(np.float32)
    feed = {"L": x}
    if len(sess.get_inputs()) == 2:   # a hint model: three hints in the first image, none in the second
        from .hints import paint
        h = torch.zeros(2, 3, *hw)
        for y0, x0, a, b in ((10, 20, 40.0, -30.0), (50, 90, -20.0, 60.0), (80, 5, 0.0, 0.0)):
            paint(h, 0, y0, x0, 1, a, b)
        feed["hints"] = h.numpy()
    (y,) = sess.run(None, feed)
    C = y.shape[1]
    stride = getattr(torch_model, "out_stride", 4)   # the output grid: 1/4 of the input, or 1/2
    assert y.shape == (2, C, hw[0] // stride, hw[1] // stride) and C in (NUM_BINS, 2), y.shape
    out = {"onnx_out_shape": list(y.shape)}
    if torch_model is not None:
        with torch.no_grad():
            ref = torch_model.eval()(*[torch.from_numpy(v) for v in feed.values()]).numpy()
        err = float(np.abs(ref - y).max())
        scale = float(np.abs(ref).max()) + 1e-6
        out["max_abs_err_vs_torch"] = err
        if err > 2e-2 * scale + 1e-3:
            raise RuntimeError(f"ONNX output differs from torch: max err {err} (scale {scale})")
    return out


def rewrite_metadata(path: str, meta: dict, out_path: str | None = None) -> None:
    """Change metadata_props only; initializers and graph are untouched."""
    m = onnx.load(path)
    if "temperature" in meta and meta["temperature"] is not None:
        meta = dict(meta, temperature=format_temperature(float(meta["temperature"])))
    set_metadata(m, meta)
    onnx.save_model(m, out_path or path, save_as_external_data=False)


def read_metadata(path: str) -> dict:
    m = onnx.load(path, load_external_data=False)
    return {p.key: p.value for p in m.metadata_props}


def untrained_model(head: str = "ce", seed: int = 0, config: dict | None = None) -> ColorNet:
    """Random-init model from the real architecture; the CE head gets a random bias (std 1)
    so that logits differ across bins and the decoded output has some chroma."""
    torch.manual_seed(seed)
    model = build_model(config, head=head)
    with torch.no_grad():
        if head == "ce":
            model.head.bias.normal_(0.0, 1.0)
        else:
            model.head.bias.normal_(0.0, 0.2)  # x100 in the graph: ab offset of ~20
    # one forward in train mode is NOT run: BN running stats stay at init (identity-ish)
    return model.eval()


def load_checkpoint_model(path: str) -> tuple[ColorNet, dict]:
    ck = torch.load(path, map_location="cpu", weights_only=False)
    model = build_model(ck["config"])
    state = ck.get("ema") or ck["model"]
    model.load_state_dict(state)
    return model.eval(), ck


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", help="training checkpoint (.pt) to export")
    ap.add_argument("--untrained", action="store_true", help="export a random-init model")
    ap.add_argument("--head", choices=["ce", "l2"], default="ce", help="with --untrained")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--set-metadata", metavar="ONNX", help="rewrite metadata of this file only")
    ap.add_argument("--fuse-pads", metavar="ONNX",
                    help="fold the encoder's SAME pads of this file into its convs (checked against the original; "
                         "weights and metadata untouched; in place unless --out)")
    ap.add_argument("--out", help="output .onnx path")
    ap.add_argument("--name")
    ap.add_argument("--description")
    ap.add_argument("--temperature", type=float)
    ap.add_argument("--input-size", type=int)
    ap.add_argument("--min-input-size", type=int,
                    help="colorizer.min_input_size: photos whose short side lies between this and the input "
                         "size run at their own size (the service never enlarges them past it)")
    ap.add_argument("--trained", choices=["true", "false"])
    ap.add_argument("--weights-dtype", choices=["fp16", "fp32"], default="fp16")
    ap.add_argument("--prior-correction", type=float, default=0.0,
                    help="undo this fraction (0..1) of the rebalancing tilt in the head bias (CE checkpoints)")
    a = ap.parse_args(argv)

    if a.fuse_pads:
        print(json.dumps(fuse_pads_file(a.fuse_pads, a.out), indent=1))
        return
    if a.set_metadata:
        meta = {"name": a.name, "description": a.description, "temperature": a.temperature,
                "input_size": a.input_size, "min_input_size": a.min_input_size, "trained": a.trained}
        rewrite_metadata(a.set_metadata, meta, a.out)
        print(json.dumps(read_metadata(a.out or a.set_metadata), indent=1))
        return
    if not a.out:
        ap.error("--out is required")
    if a.untrained:
        model = untrained_model(a.head, a.seed)
        info = export_model(model, a.out, name=a.name or "untrained-fixture",
                            description=a.description or f"UNTRAINED random-init ColorNet ({a.head} head), seed {a.seed}: test fixture only",
                            temperature=a.temperature or 0.38, input_size=a.input_size or 112,
                            trained=False, weights_dtype=a.weights_dtype, min_input_size=a.min_input_size)
    elif a.checkpoint:
        model, ck = load_checkpoint_model(a.checkpoint)
        args = ck.get("args", {})
        if a.prior_correction:
            if model.head_kind != "ce" or ck.get("prior") is None:
                ap.error("--prior-correction needs a CE checkpoint with its prior")
            model = apply_prior_correction(model, ck["prior"], args.get("lam", 0.5), a.prior_correction)
        info = export_model(model, a.out, name=a.name or args.get("name", "colorizer"),
                            description=a.description or args.get("description", ""),
                            temperature=a.temperature or 0.38,
                            input_size=a.input_size or args.get("input_size", 112),
                            trained=(a.trained or "true") == "true", weights_dtype=a.weights_dtype,
                            prior_correction=a.prior_correction, min_input_size=a.min_input_size)
    else:
        ap.error("one of --checkpoint, --untrained, --set-metadata")
    print(json.dumps(info, indent=1))
    print(json.dumps(read_metadata(a.out), indent=1))


if __name__ == "__main__":
    main()
