"""Constant folding in tnx-canonicalize against onnxruntime: one op of constant inputs per
model, whose result tritonnx computes at compile time (`onnx.reference` with tritonnx's
fixes) and must give as onnxruntime does."""

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

import tritonnx
from models import ort_run

RNG = np.random.default_rng(0)


def _w(*shape, scale=1.0):
    return (RNG.standard_normal(shape) * scale).astype(np.float32)


def check_fold(tmp_path, node, consts, opset=21, inputs=None, folded=True):
    """Compiles `node` of initializers `consts` (and graph `inputs`, when given), checks
    every output against onnxruntime and, where `folded`, that no kernel runs."""
    inputs = inputs or {}
    graph = helper.make_graph(
        [node],
        "fold",
        [
            helper.make_tensor_value_info(k, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)
            for k, v in inputs.items()
        ],
        [helper.make_tensor_value_info(o, 0, None) for o in node.output],
        [numpy_helper.from_array(v, k) for k, v in consts.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)
    model = onnx.shape_inference.infer_shapes(model)  # the outputs' types
    compiled = tritonnx.compile(model, tmp_path / "art")
    got = compiled.run(dict(inputs))
    for name, want in zip(node.output, ort_run(model, inputs)):
        assert got[name].shape == want.shape, name
        np.testing.assert_allclose(got[name], want, rtol=1e-5, atol=1e-5, err_msg=name)
    if folded:
        assert compiled.launches == [], "the op should have folded"


def test_topk_of_constant(tmp_path):
    """Seeds 45, 183, 207: TopK's `output` attribute (which of its outputs a tnx.top_k is)
    reached the reference evaluator, whose TopK class has a read-only `output`."""
    node = helper.make_node("TopK", ["x", "k"], ["values", "indices"], axis=0, largest=0)
    check_fold(tmp_path, node, {"x": _w(6, 3), "k": np.array([2], np.int64)})


@pytest.mark.parametrize(
    "op, shape, attrs",
    [
        ("GlobalMaxPool", (1, 5, 3), {}),  # seed 687: onnx's reduces axes (1, 2) of 3-D input
        ("GlobalMaxPool", (1, 2, 3, 2, 4), {}),
        ("MaxPool", (8, 1, 4, 4), {"kernel_shape": [3, 3], "pads": [0, 2, 0, 1]}),  # seed 690: pads order
    ],
)
def test_pool_of_constant(tmp_path, op, shape, attrs):
    """Seeds 687, 721, 1246, 690: onnx's GlobalMaxPool is right only for 4-D input and its
    pooling reads 2-D pads as (top, bottom, left, right)."""
    check_fold(tmp_path, helper.make_node(op, ["x"], ["y"], **attrs), {"x": _w(*shape)})


def test_einsum_of_one_constant(tmp_path):
    """Seeds 5371, 5893, 6321: the absent optional second operand was passed to np.einsum
    as an empty input name."""
    check_fold(tmp_path, helper.make_node("Einsum", ["x"], ["y"], equation="bij->bji"), {"x": _w(2, 3, 4)}, opset=20)


def test_softsign_of_scalar(tmp_path):
    """Seeds 2261, 2493, 4754, 9018: onnx's Softsign writes into a NumPy scalar for 0-d X."""
    check_fold(tmp_path, helper.make_node("Softsign", ["x"], ["y"]), {"x": np.array(-0.7, np.float32)}, opset=20)


def test_maxpool_1d_asymmetric_pads(tmp_path):
    """Seed 8170: onnx's pooling does not pad 1-D input (an index out of bounds for pads [1, 0])."""
    node = helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[2], pads=[1, 0])
    check_fold(tmp_path, node, {"x": _w(5, 1, 4)})


@pytest.mark.parametrize("opset", [17, 18, 21])
def test_layer_norm_of_constant_keeps_epsilon(tmp_path, opset):
    """Seed 283: with B an input, LayerNormalization decomposes into MeanVarianceNormalization,
    whose ONNX op has no epsilon, so the folded normalization used the spec's 1e-9 for
    tritonnx's epsilon=1e-3. Rows of small variance show it."""
    node = helper.make_node("LayerNormalization", ["x", "scale", "b"], ["y"], axis=-1, epsilon=1e-3)
    check_fold(
        tmp_path, node, {"x": _w(9, 2, scale=0.03), "scale": _w(2)}, opset=opset, inputs={"b": _w(2)}, folded=False
    )


@pytest.mark.parametrize(
    "node, consts, opset",
    [
        (
            helper.make_node("ArgMax", ["x"], ["y"], axis=1, keepdims=0, select_last_index=1),
            {"x": np.array([[1, 3, 3], [2, 0, 2]], np.float32)},
            21,
        ),
        (helper.make_node("ReduceMax", ["x"], ["y"], axes=[1], keepdims=0), {"x": _w(3, 4, 5)}, 13),
        (
            helper.make_node(
                "AveragePool", ["x"], ["y"], kernel_shape=[2, 3], pads=[1, 1, 0, 0], strides=[2, 1], count_include_pad=1
            ),
            {"x": _w(1, 2, 5, 5)},
            19,
        ),
        (
            helper.make_node("LpPool", ["x"], ["y"], kernel_shape=[2, 2], pads=[1, 0, 1, 1], p=3),
            {"x": _w(1, 2, 4, 4)},
            21,
        ),
        (
            helper.make_node("InstanceNormalization", ["x", "s", "b"], ["y"], epsilon=0.5),
            {"x": _w(2, 3, 5), "s": _w(3), "b": _w(3)},
            21,
        ),
    ],
)
def test_fold_passes_attributes(tmp_path, node, consts, opset):
    """Every attribute of a folded op reaches the evaluator (a dropped one gives its default
    silently: the worst outcome)."""
    check_fold(tmp_path, node, consts, opset=opset)


@pytest.mark.parametrize("p", [1, 2])
def test_lp_normalization_of_constant_keeps_signs(tmp_path, p):
    """onnx's reference sums x**p, not |x|**p: with p=1 it divided by the plain sum (fuzz seed 7834)."""
    check_fold(tmp_path, helper.make_node("LpNormalization", ["x"], ["y"], axis=1, p=p), {"x": _w(7, 4, 7)})


@pytest.mark.parametrize(
    "onnx_op, attrs, inputs",
    [
        ("Concat", {"axis": 0}, [np.array([1, 2], np.int64), np.array([3], np.int64)]),
        ("Concat", {"axis": -1}, [np.ones((2, 1), np.int64), np.zeros((2, 3), np.int64)]),
        ("Add", {}, [np.array([1, 2], np.int64), np.array(3, np.int64)]),
        ("Mul", {}, [np.array([[1], [2]], np.int32), np.array([3, 4], np.int32)]),
        ("Sub", {}, [np.array([1, 2], np.int64), np.array([5, 1], np.int64)]),
        ("Equal", {}, [np.array([1, -1], np.int64), np.array([-1], np.int64)]),
        ("Where", {}, [np.array([True, False]), np.array([1, 2], np.int64), np.array([7], np.int64)]),
        ("Expand", {}, [np.array([[1], [2]], np.int64), np.array([1, 3], np.int64)]),
        ("Expand", {}, [np.array([True]), np.array([2, 1, 3], np.int64)]),
        ("Cast", {"to": 7}, [np.array([True, False])]),
        ("Cast", {"to": 9}, [np.array([0, 3, -1], np.int64)]),
        ("Cast", {"to": 6}, [np.array([2**40, -3], np.int64)]),  # wraps, as onnx.reference does
    ],
)
def test_numpy_folding_matches_the_reference(onnx_op, attrs, inputs):
    """The numpy fast path of constant folding (shape computations) gives onnx.reference's
    values, dtypes and shapes."""
    from onnx import helper
    from onnx.reference import ReferenceEvaluator

    from tritonnx.dialects.ops import snake
    from tritonnx.passes.canonicalize import _numpy

    names = [f"i{k}" for k in range(len(inputs))]
    graph = helper.make_graph(
        [helper.make_node(onnx_op, names, ["o"], **attrs)],
        "g",
        [
            helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(x.dtype), x.shape)
            for n, x in zip(names, inputs)
        ],
        [helper.make_tensor_value_info("o", 0, None)],
    )
    ref = ReferenceEvaluator(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])).run(
        None, dict(zip(names, inputs))
    )[0]
    got = _numpy(f"tnx.{snake(onnx_op)}", attrs, inputs)
    assert got is not None and got.dtype == ref.dtype and got.shape == ref.shape and np.array_equal(got, ref)
