"""Reductions against onnxruntime: every ReduceX, over inner, outer and several axes."""

import numpy as np
import pytest
from onnx import helper, numpy_helper, shape_inference

import tritonnx
from models import ort_run

RNG = np.random.default_rng(3)
OPS = [
    "ReduceSum",
    "ReduceMean",
    "ReduceMax",
    "ReduceMin",
    "ReduceProd",
    "ReduceL1",
    "ReduceL2",
    "ReduceLogSum",
    "ReduceLogSumExp",
    "ReduceSumSquare",
]


def _run(tmp_path, node, x, inits=None, opset=21):
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", helper.np_dtype_to_tensor_dtype(x.dtype), x.shape)],
        [helper.make_empty_tensor_value_info("y")],
        [numpy_helper.from_array(v, k) for k, v in (inits or {}).items()],
    )
    model = shape_inference.infer_shapes(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=10)
    )
    del model.graph.output[:]
    model.graph.output.append(next(v for v in model.graph.value_info if v.name == "y"))
    got = tritonnx.compile(model, tmp_path / "art").run({"x": x})["y"]
    want = ort_run(model, {"x": x})[0]
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=1e-5)


@pytest.mark.parametrize("axes,keepdims", [([1], 1), ([0, 2], 0), ([-1], 0), (None, 1)])
@pytest.mark.parametrize("op", OPS)
def test_reduce(op, axes, keepdims, tmp_path):
    x = RNG.uniform(0.5, 1.5, (3, 40, 5)).astype(np.float32)
    if op in ("ReduceSum", "ReduceMax", "ReduceMin", "ReduceL1"):
        x = x - 1.0
    inputs = ["x"] if axes is None else ["x", "axes"]
    inits = {} if axes is None else {"axes": np.array(axes, np.int64)}
    _run(tmp_path, helper.make_node(op, inputs, ["y"], keepdims=keepdims), x, inits)


def test_reduce_sum_long_axis_int(tmp_path):
    """A reduced extent longer than one block loops; integers stay integers."""
    x = RNG.integers(-50, 50, (2, 3000)).astype(np.int64)
    _run(
        tmp_path, helper.make_node("ReduceSum", ["x", "axes"], ["y"], keepdims=0), x, {"axes": np.array([1], np.int64)}
    )


def test_reduce_mean_opset13_axes_attribute(tmp_path):
    x = RNG.standard_normal((4, 6, 7)).astype(np.float32)
    _run(tmp_path, helper.make_node("ReduceMean", ["x"], ["y"], axes=[1, 2]), x, opset=13)


@pytest.mark.parametrize("op", ["ArgMax", "ArgMin"])
@pytest.mark.parametrize("last", [0, 1])
def test_arg(op, last, tmp_path):
    x = RNG.integers(0, 4, (5, 1500)).astype(np.float32)  # many ties, several chunks
    _run(tmp_path, helper.make_node(op, ["x"], ["y"], axis=1, keepdims=1, select_last_index=last), x)


def _run_nodes(tmp_path, nodes, x, inits, out_shape):
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", 1, x.shape)],
        [helper.make_tensor_value_info("y", 1, out_shape)],
        [numpy_helper.from_array(v, k) for k, v in inits.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)], ir_version=10)
    compiled = tritonnx.compile(model, tmp_path / "art")
    np.testing.assert_allclose(compiled.run({"x": x})["y"], ort_run(model, {"x": x})[0], rtol=1e-4, atol=1e-5)
    return compiled


@pytest.mark.parametrize("axis", [-1, 1])
def test_layer_normalization_is_one_kernel(axis, tmp_path):
    x = RNG.standard_normal((2, 5, 300)).astype(np.float32) * 3 + 1
    shape = x.shape[axis:] if axis > 0 else x.shape[-1:]
    inits = {"s": RNG.standard_normal(shape).astype(np.float32), "b": RNG.standard_normal(shape).astype(np.float32)}
    nodes = [
        helper.make_node("LayerNormalization", ["x", "s", "b"], ["n"], axis=axis, epsilon=1e-3),
        helper.make_node("Relu", ["n"], ["y"]),
    ]
    compiled = _run_nodes(tmp_path, nodes, x, inits, list(x.shape))
    assert len(compiled.launches) == 1


def test_instance_and_group_normalization(tmp_path):
    x = RNG.standard_normal((2, 6, 7, 9)).astype(np.float32)
    c = {k: RNG.standard_normal(6).astype(np.float32) for k in ("s", "b", "gs", "gb")}
    nodes = [
        helper.make_node("InstanceNormalization", ["x", "s", "b"], ["i"], epsilon=1e-4),
        helper.make_node("GroupNormalization", ["i", "gs", "gb"], ["y"], num_groups=3, epsilon=1e-4),
    ]
    compiled = _run_nodes(tmp_path, nodes, x, c, list(x.shape))
    assert len(compiled.launches) == 2


@pytest.mark.parametrize("p", [1, 2])
def test_lp_normalization(p, tmp_path):
    x = RNG.standard_normal((3, 4, 5)).astype(np.float32)
    _run_nodes(tmp_path, [helper.make_node("LpNormalization", ["x"], ["y"], axis=1, p=p)], x, {}, [3, 4, 5])


@pytest.mark.parametrize("exclusive,reverse", [(0, 0), (1, 0), (0, 1), (1, 1)])
def test_cumsum(exclusive, reverse, tmp_path):
    x = RNG.standard_normal((3, 7, 4)).astype(np.float32)
    nodes = [helper.make_node("CumSum", ["x", "axis"], ["y"], exclusive=exclusive, reverse=reverse)]
    _run_nodes(tmp_path, nodes, x, {"axis": np.array(-2, np.int64)}, [3, 7, 4])


def test_hardmax(tmp_path):
    x = RNG.integers(0, 3, (4, 6, 5)).astype(np.float32)  # ties: the first maximum wins
    _run_nodes(tmp_path, [helper.make_node("Hardmax", ["x"], ["y"], axis=1)], x, {}, [4, 6, 5])


def test_lrn_after_conv(tmp_path):
    x = RNG.standard_normal((1, 3, 6, 6)).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("LRN", ["c"], ["l"], size=5, alpha=0.01, beta=0.75, bias=2.0),
        helper.make_node("Relu", ["l"], ["y"]),
    ]
    compiled = _run_nodes(tmp_path, nodes, x, {"w": RNG.standard_normal((7, 3, 3, 3)).astype(np.float32)}, [1, 7, 6, 6])
    assert [launch["kind"] for launch in compiled.launches] == ["conv", "pointwise"]
