"""Single-op and small-group models against onnxruntime, one behaviour each."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import tritonnx
from models import ort_run

RNG = np.random.default_rng(0)


def _w(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def check(tmp_path, nodes, inputs, output_shape, inits=None, opset=17):
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, output_shape)],
        [numpy_helper.from_array(v, k) for k, v in (inits or {}).items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)
    compiled = tritonnx.compile(model, tmp_path / "art")
    feeds = {n: _w(*s) for n, s in inputs}
    got = compiled.run(feeds)["y"]
    want = ort_run(model, feeds)[0]
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    return compiled


def conv(**attrs):
    return helper.make_node("Conv", ["x", "W", "B"], ["y"], **attrs)


CASES = {
    "conv_strided_padded": (
        [conv(strides=[2, 2], pads=[1, 1, 1, 1])],
        [("x", [1, 3, 9, 9])],
        [1, 8, 5, 5],
        {"W": _w(8, 3, 3, 3), "B": _w(8)},
    ),
    "conv_grouped": ([conv(group=2)], [("x", [2, 4, 6, 6])], [2, 6, 4, 4], {"W": _w(6, 2, 3, 3), "B": _w(6)}),
    "conv_depthwise_dilated": (
        [conv(group=4, dilations=[2, 2], pads=[2, 2, 2, 2])],
        [("x", [1, 4, 7, 7])],
        [1, 4, 7, 7],
        {"W": _w(4, 1, 3, 3), "B": _w(4)},
    ),
    "conv_same_upper": (
        [conv(auto_pad="SAME_UPPER", strides=[2, 2])],
        [("x", [1, 3, 8, 8])],
        [1, 8, 4, 4],
        {"W": _w(8, 3, 3, 3), "B": _w(8)},
    ),
    "conv_big_k": (
        [helper.make_node("Conv", ["x", "W"], ["y"], pads=[1, 1, 1, 1])],
        [("x", [1, 300, 6, 6])],
        [1, 20, 6, 6],
        {"W": _w(20, 300, 3, 3)},
    ),
    "maxpool_ceil": (
        [helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)],
        [("x", [1, 4, 10, 10])],
        [1, 4, 5, 5],
        None,
    ),
    "maxpool_padded": (
        [helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])],
        [("x", [1, 4, 9, 9])],
        [1, 4, 5, 5],
        None,
    ),
    "avgpool_exclude_pad": (
        [helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1])],
        [("x", [1, 2, 5, 5])],
        [1, 2, 5, 5],
        None,
    ),
    "avgpool_include_pad": (
        [helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], count_include_pad=1)],
        [("x", [1, 2, 5, 5])],
        [1, 2, 5, 5],
        None,
    ),
    "global_average_pool_large": (
        [helper.make_node("GlobalAveragePool", ["x"], ["y"])],
        [("x", [2, 3, 20, 20])],
        [2, 3, 1, 1],
        None,
    ),
    "softmax_middle_axis": ([helper.make_node("Softmax", ["x"], ["y"], axis=1)], [("x", [2, 5, 3])], [2, 5, 3], None),
    "gemm_trans_alpha_beta": (
        [helper.make_node("Gemm", ["x", "W", "C"], ["y"], transA=1, transB=1, alpha=0.5, beta=2.0)],
        [("x", [7, 3])],
        [3, 6],
        {"W": _w(6, 7), "C": _w(1, 6)},
    ),
    "matmul": ([helper.make_node("MatMul", ["x", "W"], ["y"])], [("x", [5, 40])], [5, 9], {"W": _w(40, 9)}),
    "flatten_gemm": (
        [helper.make_node("Flatten", ["x"], ["f"]), helper.make_node("Gemm", ["f", "W"], ["y"])],
        [("x", [2, 3, 2, 2])],
        [2, 4],
        {"W": _w(12, 4)},
    ),
    "transpose_add": (
        [helper.make_node("Transpose", ["x"], ["t"], perm=[0, 2, 1]), helper.make_node("Add", ["t", "b"], ["y"])],
        [("x", [2, 3, 4]), ("b", [4, 1])],
        [2, 4, 3],
        None,
    ),
    "broadcast_sub_div": (
        [helper.make_node("Sub", ["x", "m"], ["s"]), helper.make_node("Div", ["s", "d"], ["y"])],
        [("x", [2, 3, 4, 4])],
        [2, 3, 4, 4],
        {"m": _w(3, 1, 1), "d": np.abs(_w(3, 1, 1)) + 0.5},
    ),
    "clip_sigmoid_mul": (
        [
            helper.make_node("Clip", ["x", "lo", "hi"], ["c"]),
            helper.make_node("Sigmoid", ["c"], ["s"]),
            helper.make_node("Mul", ["s", "x"], ["y"]),
        ],
        [("x", [3, 50])],
        [3, 50],
        {"lo": np.array(-0.5, np.float32), "hi": np.array(0.7, np.float32)},
    ),
    "sum_three": (
        [helper.make_node("Sum", ["x", "a", "b"], ["y"])],
        [("x", [4, 5]), ("a", [4, 5]), ("b", [5])],
        [4, 5],
        None,
    ),
    "concat_three_into_maxpool": (
        [
            helper.make_node("Concat", ["x", "a", "b"], ["c"], axis=1),
            helper.make_node("MaxPool", ["c"], ["y"], kernel_shape=[2, 2], strides=[2, 2]),
        ],
        [("x", [1, 2, 4, 4]), ("a", [1, 1, 4, 4]), ("b", [1, 3, 4, 4])],
        [1, 6, 2, 2],
        None,
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_op(case, tmp_path):
    nodes, inputs, out, inits = CASES[case]
    check(tmp_path, nodes, inputs, out, inits)


def test_bn_relu_epilogue_is_one_kernel(tmp_path):
    nodes = [
        helper.make_node("Conv", ["x", "W"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c", "s", "b", "m", "v"], ["n"]),
        helper.make_node("Add", ["n", "x"], ["a"]),
        helper.make_node("Relu", ["a"], ["y"]),
    ]
    inits = {"W": _w(4, 4, 3, 3), "s": _w(4), "b": _w(4), "m": _w(4), "v": np.abs(_w(4)) + 0.5}
    compiled = check(tmp_path, nodes, [("x", [1, 4, 5, 5])], [1, 4, 5, 5], inits)
    assert [launch["kind"] for launch in compiled.launches] == ["conv"]
    assert compiled.launches[0]["nodes"] == ["Conv_0", "Add_2", "Relu_3"]


def test_opset9_model(tmp_path):
    """Older opsets convert to opset 17 on import (Clip's min/max attributes become inputs)."""
    check(tmp_path, [helper.make_node("Clip", ["x"], ["y"], min=-0.25, max=0.5)], [("x", [2, 8])], [2, 8], opset=9)


def test_graph_input_with_initializer_is_a_weight_unless_overridden(tmp_path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])
    b = helper.make_tensor_value_info("b", TensorProto.FLOAT, [3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "b"], ["y"])],
        "g",
        [x, b],
        [y],
        [numpy_helper.from_array(np.ones(3, np.float32), "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    fixed = tritonnx.compile(model, tmp_path / "a")
    assert fixed.input_names == ["x"]
    np.testing.assert_allclose(fixed(np.zeros((2, 3), np.float32)), np.ones((2, 3)))
    free = tritonnx.compile(model, tmp_path / "b", override_initializers=("b",))
    assert free.input_names == ["x", "b"]
    np.testing.assert_allclose(free(np.zeros((2, 3), np.float32), np.full(3, 2.0, np.float32)), np.full((2, 3), 2.0))


@pytest.mark.parametrize(
    "a_shape,b_shape,out",
    [
        ([2, 3, 5, 7], [2, 3, 7, 4], [2, 3, 5, 4]),
        ([2, 1, 5, 7], [3, 7, 4], [2, 3, 5, 4]),
        ([7], [2, 7, 4], [2, 4]),
        ([3, 5, 7], [7], [3, 5]),
    ],
)
def test_matmul_batched(a_shape, b_shape, out, tmp_path):
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["a", "b"], ["y"])],
        "g",
        [
            helper.make_tensor_value_info("a", TensorProto.FLOAT, a_shape),
            helper.make_tensor_value_info("b", TensorProto.FLOAT, b_shape),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, out)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    feeds = {"a": _w(*a_shape), "b": _w(*b_shape)}
    got = tritonnx.compile(model, tmp_path / "art").run(feeds)["y"]
    np.testing.assert_allclose(got, ort_run(model, feeds)[0], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "attrs,x_shape,w_shape,out",
    [
        ({}, [1, 3, 4, 4], [3, 2, 3, 3], [1, 2, 6, 6]),
        ({"strides": [2, 2], "pads": [1, 1, 1, 1]}, [2, 3, 4, 5], [3, 4, 3, 3], [2, 4, 7, 9]),
        ({"strides": [3, 2], "output_padding": [1, 1], "group": 2}, [1, 4, 3, 3], [4, 3, 3, 3], [1, 6, 10, 8]),
        ({"strides": [2, 2], "output_shape": [10, 8]}, [1, 2, 4, 3], [2, 2, 3, 3], [1, 2, 10, 8]),
        ({"strides": [2, 2], "auto_pad": "SAME_UPPER"}, [1, 2, 3, 3], [2, 2, 3, 3], [1, 2, 6, 6]),
        ({"dilations": [2, 2]}, [1, 2, 3, 3], [2, 2, 3, 3], [1, 2, 7, 7]),
    ],
)
def test_conv_transpose(attrs, x_shape, w_shape, out, tmp_path):
    nodes = [helper.make_node("ConvTranspose", ["x", "W", "B"], ["y"], **attrs)]
    check(tmp_path, nodes, [("x", x_shape)], out, {"W": _w(*w_shape), "B": _w(out[1])})


@pytest.mark.parametrize(
    "equation,shapes",
    [
        ("bhid,bhjd->bhij", [[2, 3, 4, 5], [2, 3, 6, 5]]),
        ("ij,jk->ki", [[3, 4], [4, 5]]),
        ("bij->bj", [[2, 3, 4]]),
        ("i,i->", [[7], [7]]),
    ],
)
def test_einsum(equation, shapes, tmp_path):
    names = ["a", "b"][: len(shapes)]
    graph = helper.make_graph(
        [helper.make_node("Einsum", names, ["y"], equation=equation)],
        "g",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in zip(names, shapes)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    model = onnx.shape_inference.infer_shapes(model)
    model.graph.output[0].CopyFrom(model.graph.value_info[0] if model.graph.value_info else model.graph.output[0])
    feeds = {n: _w(*s) for n, s in zip(names, shapes)}
    got = tritonnx.compile(model, tmp_path / "art").run(feeds)["y"]
    np.testing.assert_allclose(got, ort_run(model, feeds)[0], rtol=1e-4, atol=1e-5)


def _reference(model: onnx.ModelProto, feeds: dict) -> list:
    from onnx.reference import ReferenceEvaluator

    return ReferenceEvaluator(model).run(None, feeds)


@pytest.mark.parametrize("weights", [True, False])
@pytest.mark.parametrize("rank", [2, 3, 4])
def test_batch_norm_training_mode(rank, weights, tmp_path):
    """BatchNormalization-15 with training_mode=1: Y from the batch's statistics, and the
    running mean and variance, as onnx's reference computes them (onnxruntime's CPU build
    has no training mode); scale, bias and the running statistics as weights or as inputs."""
    x_shape = [3, 4, 5, 2][:rank]
    c = x_shape[1]
    params = {
        "s": _w(c),
        "b": _w(c),
        "m": _w(c),
        "v": np.abs(_w(c)) + 0.5,
    }
    node = helper.make_node(
        "BatchNormalization",
        ["x", "s", "b", "m", "v"],
        ["y", "rm", "rv"],
        training_mode=1,
        epsilon=1e-3,
        momentum=0.8,
    )
    f = TensorProto.FLOAT
    inputs = [helper.make_tensor_value_info("x", f, x_shape)]
    if not weights:
        inputs += [helper.make_tensor_value_info(n, f, [c]) for n in params]
    graph = helper.make_graph(
        [node],
        "g",
        inputs,
        [helper.make_tensor_value_info("y", f, x_shape)]
        + [helper.make_tensor_value_info(n, f, [c]) for n in ("rm", "rv")],
        [numpy_helper.from_array(v, k) for k, v in params.items()] if weights else [],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15)], ir_version=8)
    x = _w(*x_shape) * 2 + 1
    feeds = {"x": x} if weights else {"x": x, **params}
    got = tritonnx.compile(model, tmp_path / "art").run(feeds)
    for name, want in zip(("y", "rm", "rv"), _reference(model, {"x": x, **params})):
        np.testing.assert_allclose(got[name], want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("ratio", [None, 0.3])
def test_dropout_mask_in_inference(ratio, tmp_path):
    """Dropout-22 whose mask is used, in inference mode: the output is the input, the mask
    all true (onnxruntime); training mode is still refused, naming the node."""
    ins = ["x"] + (["r"] if ratio is not None else [])
    inits = [numpy_helper.from_array(np.array(ratio, np.float32), "r")] if ratio is not None else []
    f = TensorProto.FLOAT

    def model(nodes, extra_inits=()):
        graph = helper.make_graph(
            nodes,
            "g",
            [helper.make_tensor_value_info("x", f, [2, 3, 4])],
            [
                helper.make_tensor_value_info("y", f, [2, 3, 4]),
                helper.make_tensor_value_info("z", TensorProto.BOOL, [2, 3, 4]),
            ],
            inits + list(extra_inits),
        )
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 22)], ir_version=10)

    m = model([helper.make_node("Dropout", ins, ["y", "z"], name="drop")])
    x = _w(2, 3, 4)
    got = tritonnx.compile(m, tmp_path / "art").run({"x": x})
    want = ort_run(m, {"x": x})
    np.testing.assert_array_equal(got["y"], want[0])
    assert got["z"].dtype == np.bool_
    np.testing.assert_array_equal(got["z"], want[1])
    assert got["z"].all()
    training = [numpy_helper.from_array(np.array(True), "t")]
    ins = ["x", "r" if ratio is not None else "", "t"]
    m = model([helper.make_node("Dropout", ins, ["y", "z"], name="drop")], training)
    with pytest.raises(tritonnx.CompileError, match=r"node drop \(Dropout\): training mode"):
        tritonnx.compile(m, tmp_path / "training")
