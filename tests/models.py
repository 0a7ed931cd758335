"""Test-model helpers: a synthetic ResNet, randomized ONNX "light" models, ORT runner."""

from __future__ import annotations

import copy
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

_LIGHT_DIR = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")


# --------------------------------------------------------------------------- ResNet


def make_resnet(
    opset: int = 17,
    seed: int = 0,
    batch: int = 1,
    image: int = 64,
    widths=(16, 32, 64, 128),
    blocks=(1, 1, 1, 1),
    num_classes: int = 10,
) -> onnx.ModelProto:
    """Torchvision-style basic-block ResNet, shaped like torch.onnx.export's eval-mode output.

    Weights are seeded random initializers; input ``input`` [batch,3,image,image] float32,
    output ``logits`` [batch,num_classes].
    """
    rng = np.random.default_rng(seed)
    nodes, inits = [], []

    def init(name, arr):
        inits.append(numpy_helper.from_array(np.asarray(arr, np.float32), name))
        return name

    def node(op, scope, inputs, **attrs):
        out = f"{scope}/{op}_output_0"
        nodes.append(helper.make_node(op, inputs, [out], name=f"{scope}/{op}", **attrs))
        return out

    def conv(x, cin, cout, k, stride, pad, scope, pname):
        w = rng.normal(0, np.sqrt(2.0 / (cin * k * k)), (cout, cin, k, k))
        return node(
            "Conv",
            scope,
            [x, init(f"{pname}.weight", w)],
            dilations=[1, 1],
            group=1,
            kernel_shape=[k, k],
            pads=[pad] * 4,
            strides=[stride] * 2,
        )

    def bn(x, c, scope, pname):
        params = [rng.uniform(0.5, 1.5, c), rng.normal(0, 0.1, c), rng.normal(0, 0.1, c), rng.uniform(0.5, 1.5, c)]
        names = [init(f"{pname}.{s}", p) for s, p in zip(("weight", "bias", "running_mean", "running_var"), params)]
        return node("BatchNormalization", scope, [x, *names], epsilon=1e-5, momentum=0.9)

    x = conv("input", 3, widths[0], 7, 2, 3, "/conv1", "conv1")
    x = bn(x, widths[0], "/bn1", "bn1")
    x = node("Relu", "/relu", [x])
    x = node("MaxPool", "/maxpool", [x], kernel_shape=[3, 3], pads=[1] * 4, strides=[2, 2])
    cin = widths[0]
    for li, (cout, nblk) in enumerate(zip(widths, blocks), start=1):
        for bi in range(nblk):
            stride = 2 if li > 1 and bi == 0 else 1
            s, p = f"/layer{li}/{bi}", f"layer{li}.{bi}"
            y = conv(x, cin, cout, 3, stride, 1, f"{s}/conv1", f"{p}.conv1")
            y = bn(y, cout, f"{s}/bn1", f"{p}.bn1")
            y = node("Relu", f"{s}/relu", [y])
            y = conv(y, cout, cout, 3, 1, 1, f"{s}/conv2", f"{p}.conv2")
            y = bn(y, cout, f"{s}/bn2", f"{p}.bn2")
            if stride != 1 or cin != cout:
                x = conv(x, cin, cout, 1, stride, 0, f"{s}/downsample/0", f"{p}.downsample.0")
                x = bn(x, cout, f"{s}/downsample/1", f"{p}.downsample.1")
            x = node("Add", s, [y, x])
            x = node("Relu", f"{s}/relu_1", [x])
            cin = cout
    x = node("GlobalAveragePool", "/avgpool", [x])
    x = node("Flatten", "", [x], axis=1)
    fc_w = init("fc.weight", rng.normal(0, 1 / np.sqrt(cin), (num_classes, cin)))
    fc_b = init("fc.bias", rng.normal(0, 0.1, num_classes))
    nodes.append(helper.make_node("Gemm", [x, fc_w, fc_b], ["logits"], name="/fc/Gemm", alpha=1.0, beta=1.0, transB=1))

    graph = helper.make_graph(
        nodes,
        "resnet",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch, 3, image, image])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, num_classes])],
        initializer=inits,
    )
    opsets = [helper.make_opsetid("", opset)]
    model = helper.make_model(
        graph, opset_imports=opsets, producer_name="pytorch", ir_version=helper.find_min_ir_version_for(opsets)
    )
    return onnx.shape_inference.infer_shapes(model, strict_mode=True)


# --------------------------------------------------------------------------- light models


def light_model_path(name: str) -> str:
    """Path of ``light_<name>.onnx`` shipped in the onnx package."""
    return os.path.join(_LIGHT_DIR, f"light_{name}.onnx")


def light_expected_output(name: str) -> np.ndarray:
    """Reference output ``light_<name>_output_0.pb`` shipped beside the light model."""
    tensor = onnx.TensorProto()
    with open(os.path.join(_LIGHT_DIR, f"light_{name}_output_0.pb"), "rb") as f:
        tensor.ParseFromString(f.read())
    return numpy_helper.to_array(tensor)


# Input slots holding parameters, per consuming op (caffe2 scale layers are Mul/Add of an
# Unsqueeze'd parameter).
_PARAM_SLOTS = {"Conv": (1, 2), "Gemm": (1, 2), "BatchNormalization": (1, 2, 3, 4), "Mul": (1,), "Add": (1,)}
# Conv/Gemm init gains, by what the output reaches past BN / scale layers: He gain before a
# ReLU; before BN+ReLU ~sqrt(2 / 1.19 / 1.08), compensating the variance gain of random BN
# (E[scale^2] * E[1/var] ~ 1.19) and of a scale layer (~1.08); damped on residual branches
# (cf. zero-init-residual) so sums do not grow with depth; 1 elsewhere (e.g. classifier).
_GAINS = {"relu": np.sqrt(2.0), "bn_relu": 1.25, "residual": 0.6, "other": 1.0}


def _weight_role(name, consumers):
    """(op_type, input index, node) of the node using weight ``name``, looking through
    Unsqueeze/Reshape (caffe2 scale layers, reshaped FC weights); None if unused."""
    while name in consumers:
        op = consumers[name][0]
        idx = list(op.input).index(name)
        if op.op_type not in ("Unsqueeze", "Reshape") or idx != 0:
            return op.op_type, idx, op
        name = op.output[0]
    return None


def _gain(node, consumers, params):
    """Init gain for the weight of Conv/Gemm ``node`` (see _GAINS)."""
    normalized = False
    while node.output[0] in consumers:
        node = consumers[node.output[0]][0]
        activations = [i for i in node.input if i not in params]
        if node.op_type == "BatchNormalization" or (node.op_type in ("Mul", "Add") and len(activations) == 1):
            normalized = True
        elif node.op_type == "Relu":
            return _GAINS["bn_relu" if normalized else "relu"]
        elif node.op_type in ("Add", "Sum"):
            return _GAINS["residual"]
        else:
            break
    return _GAINS["other"]


def _random_weight(rng, shape, role, consumers, params):
    op, idx, node = role
    if op in ("Conv", "Gemm") and idx == 1:
        fan_in = int(np.prod(shape[1:]))  # Conv, Gemm(transB=1)
        if op == "Gemm" and not next((a.i for a in node.attribute if a.name == "transB"), 0):
            fan_in = int(np.prod(shape[:-1]))
        elif op == "Gemm":
            fan_in = shape[-1]  # also right for FC weights reshaped from [1,1,N,K]
        return rng.normal(0, _gain(node, consumers, params) / np.sqrt(fan_in), shape)
    if (op == "BatchNormalization" and idx in (1, 4)) or op == "Mul":  # scale / variance
        return rng.uniform(0.5, 1.5, shape)
    return rng.normal(0, 0.1, shape)  # biases, means


def randomize_light_model(model: onnx.ModelProto, seed: int = 0) -> onnx.ModelProto:
    """Copy of a light model with seeded random weights.

    Each ConstantOfShape(0.02) weight becomes a random initializer of the same shape (the
    ConstantOfShape node, its ``__SHAPE`` initializer and dangling graph inputs are removed);
    the few real float parameters the light models keep (pretrained BN statistics, biases)
    are redrawn too, since they do not match random weights (e.g. BN variances ~1e-14).
    Magnitudes follow the consuming node and input slot so activations stay O(1).
    """
    model = copy.deepcopy(model)
    g = model.graph
    rng = np.random.default_rng(seed)
    inits = {t.name: t for t in g.initializer}
    consumers = {}
    for n in g.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)

    params = set(inits)
    for n in g.node:
        if n.op_type == "ConstantOfShape" or (n.op_type in ("Unsqueeze", "Reshape") and n.input[0] in params):
            params.add(n.output[0])

    def draw(name, shape):
        role = _weight_role(name, consumers)
        arr = _random_weight(rng, shape, role, consumers, params) if role else np.full(shape, 0.02)
        return numpy_helper.from_array(arr.astype(np.float32), name)

    new_inits = []
    for n in [n for n in g.node if n.op_type == "ConstantOfShape" and n.input[0] in inits]:
        shape = tuple(int(d) for d in numpy_helper.to_array(inits[n.input[0]]))
        new_inits.append(draw(n.output[0], shape))
        g.node.remove(n)
    for t in g.initializer:
        role = _weight_role(t.name, consumers)
        if t.data_type == TensorProto.FLOAT and role and role[1] in _PARAM_SLOTS.get(role[0], ()):
            t.CopyFrom(draw(t.name, tuple(t.dims)))

    used = {i for n in g.node for i in n.input} | {o.name for o in g.output}
    kept = [t for t in g.initializer if t.name in used]
    del g.initializer[:]
    g.initializer.extend(kept + new_inits)
    kept_inputs = [i for i in g.input if i.name in used]
    del g.input[:]
    g.input.extend(kept_inputs)
    if model.ir_version < 4:  # old IR: every initializer must also be a graph input
        g.input.extend(helper.make_tensor_value_info(t.name, t.data_type, t.dims) for t in new_inits)
    return model


# --------------------------------------------------------------------------- onnxruntime


def ort_run(model: onnx.ModelProto | str, feeds: dict) -> list[np.ndarray]:
    """Run ``model`` (proto or path) with onnxruntime on CPU; returns all outputs."""
    import onnxruntime as ort

    src = model.SerializeToString() if isinstance(model, onnx.ModelProto) else model
    opts = ort.SessionOptions()
    opts.log_severity_level = 3  # errors only
    sess = ort.InferenceSession(src, opts, providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)
