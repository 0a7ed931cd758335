"""Infinities, NaN and signed zeros against onnxruntime: where a NaN lands and which zero
comes out are part of the answer. Each graph also compiles to sm_90 cubin."""

import json

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper, shape_inference

import tritonnx
from models import ort_run

INF, NAN = np.float32(np.inf), np.float32(np.nan)


def _model(nodes, x, inits=None, opset=21):
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, x.shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(v, k) for k, v in (inits or {}).items()],
    )
    return shape_inference.infer_shapes(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=10)
    )


def _check(tmp_path, nodes, x, inits=None, want=None):
    """tritonnx equals onnxruntime (or `want`, where onnxruntime's answer depends on where
    the NaN is) bit for bit in NaN positions and in the sign of zeros."""
    model = _model(nodes, x, inits)
    got = tritonnx.compile(model, tmp_path / "art").run({"x": x})["y"]
    want = ort_run(model, {"x": x})[0] if want is None else want
    assert got.shape == want.shape
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    live = ~np.isnan(want)  # a NaN's sign bit means nothing
    np.testing.assert_array_equal(np.signbit(got[live]), np.signbit(want[live]))
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    out = tmp_path / "aot"
    tritonnx.compile(model, out, targets=("sm_90",))
    for launch in json.loads((out / "plan.json").read_text())["launches"]:
        assert (out / "kernels" / f"{launch['kernel']}.sm_90.cubin").read_bytes()[:4] == b"\x7fELF"


def test_reduce_log_sum_exp_of_infinities(tmp_path):
    """log(sum(exp(x))) over a row holding +inf is +inf, not inf - inf = NaN; a row of -inf
    is -inf; a NaN is NaN."""
    x = np.array([[1, INF, 2, 3], [-np.inf, -np.inf, -np.inf, -np.inf], [0, NAN, 1, 2], [INF, INF, 0, 1]], np.float32)
    _check(
        tmp_path,
        [helper.make_node("ReduceLogSumExp", ["x", "axes"], ["y"], keepdims=0)],
        x,
        {"axes": np.array([1], np.int64)},
    )


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
def test_softmax_of_infinities(op, tmp_path):
    x = np.array([[1, INF, 2, 3], [-np.inf] * 4, [0, -np.inf, 1, 2]], np.float32)
    _check(tmp_path, [helper.make_node(op, ["x"], ["y"], axis=-1)], x)


def test_round_keeps_the_sign_of_zero(tmp_path):
    """Round(-0.3) is -0.0, so Reciprocal gives -inf; halves go to even; large and special
    values pass through."""
    x = np.array(
        [
            -0.3,
            -0.5,
            -0.0,
            0.0,
            0.3,
            0.5,
            1.5,
            2.5,
            -1.5,
            -2.5,
            0.49999997,
            -0.49999997,
            8388609.0,
            -8388609.0,
            INF,
            -np.inf,
            NAN,
            3.7,
            -3.7,
        ],
        np.float32,
    )
    _check(tmp_path, [helper.make_node("Round", ["x"], ["y"])], x)
    _check(tmp_path, [helper.make_node("Round", ["x"], ["r"]), helper.make_node("Reciprocal", ["r"], ["y"])], x)


@pytest.mark.parametrize(
    "shape,sizes",
    [
        ((1, 1, 1, 3), [1, 1, 1, 5]),
        ((1, 1, 2, 2), [1, 1, 2, 4]),
        ((2, 3, 4, 1), [2, 3, 6, 3]),
        ((1, 2, 1, 2), [1, 2, 4, 6]),
    ],
)
def test_resize_linear_next_to_an_infinity(shape, sizes, tmp_path):
    """The coordinate is clamped to the input before blending, so an edge output weighs
    its infinite neighbour by 0 (NaN) and a blend of x[n - 1] with itself stays infinite, as
    onnxruntime and the spec's weighted sum give."""
    x = np.arange(1, np.prod(shape) + 1, dtype=np.float32).reshape(shape)
    x.reshape(-1)[1] = INF
    x.reshape(-1)[-1] = -INF
    _check(
        tmp_path,
        [
            helper.make_node(
                "Resize", ["x", "", "", "sizes"], ["y"], mode="linear", coordinate_transformation_mode="half_pixel"
            )
        ],
        x,
        {"sizes": np.array(sizes, np.int64)},
    )


@pytest.mark.parametrize("mode", ["linear", "cubic"])
def test_resize_of_scale_one_compiles(mode, tmp_path):
    """Scales of 1 everywhere (no axis resized) and no roi: no weight to multiply by."""
    x = np.random.default_rng(0).standard_normal((2, 4, 2, 5)).astype(np.float32)
    _check(
        tmp_path,
        [
            helper.make_node(
                "Resize", ["x", "", "scales"], ["y"], mode=mode, coordinate_transformation_mode="half_pixel_symmetric"
            )
        ],
        x,
        {"scales": np.ones(4, np.float32)},
    )


def _with_nans():
    x = np.arange(2 * 3 * 4 * 4, dtype=np.float32).reshape(2, 3, 4, 4) % 7 - 3
    x[0, 0, 1, 2] = NAN  # a NaN in the middle of a row, window or channel
    x[1, 2, 3, 3] = NAN  # and in the last place
    return x


@pytest.mark.parametrize("op", ["ReduceMax", "ReduceMin"])
def test_reduce_max_min_propagate_nan(op, tmp_path):
    """A NaN among the reduced values gives NaN (the ONNX reference, torch and numpy;
    onnxruntime's answer depends on the NaN's place), over one chunk and several."""
    x = _with_nans()
    fn = np.max if op == "ReduceMax" else np.min
    _check(
        tmp_path,
        [helper.make_node(op, ["x", "axes"], ["y"], keepdims=0)],
        x,
        {"axes": np.array([3], np.int64)},
        want=fn(x, axis=3),
    )
    long = np.random.default_rng(1).standard_normal((3, 3000)).astype(np.float32)
    long[1, 2500] = NAN
    _check(
        tmp_path,
        [helper.make_node(op, ["x", "axes"], ["y"], keepdims=0)],
        long,
        {"axes": np.array([1], np.int64)},
        want=fn(long, axis=1),
    )


def test_max_pools_propagate_nan(tmp_path):
    x = _with_nans()
    _check(tmp_path, [helper.make_node("GlobalMaxPool", ["x"], ["y"])], x, want=np.max(x, axis=(2, 3), keepdims=True))
    windows = x.reshape(2, 3, 2, 2, 2, 2).max(axis=(3, 5))  # 2x2 windows, stride 2
    _check(tmp_path, [helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[2, 2], strides=[2, 2])], x, want=windows)
