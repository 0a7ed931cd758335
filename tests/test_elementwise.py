"""Elementwise ops against onnxruntime: one model per op, float, integer and bool inputs."""

import numpy as np
import pytest
from onnx import TensorProto, helper

import tritonnx
from models import ort_run

F, I, B = TensorProto.FLOAT, TensorProto.INT32, TensorProto.BOOL  # noqa: E741 - ONNX's type letters
RNG = np.random.default_rng(1)
SHAPE = [3, 4, 5]


def _data(dtype, domain):
    if dtype == F:
        lo, hi = domain
        x = RNG.uniform(lo, hi, SHAPE).astype(np.float32)
        x.flat[:4] = [lo, hi, 0.5 * (lo + hi), 2.5 if hi > 2.5 else hi]  # include ties for Round
        return x
    if dtype == I:
        return RNG.integers(-9, 10, SHAPE).astype(np.int32)
    return RNG.integers(0, 2, SHAPE).astype(bool)


UNARY = {  # op: (domain, attributes)
    "Abs": ((-3, 3), {}),
    "Neg": ((-3, 3), {}),
    "Exp": ((-5, 5), {}),
    "Log": ((0.01, 9), {}),
    "Sqrt": ((0, 9), {}),
    "Reciprocal": ((0.5, 4), {}),
    "Erf": ((-3, 3), {}),
    "Tanh": ((-6, 6), {}),
    "Sin": ((-4, 4), {}),
    "Cos": ((-4, 4), {}),
    "Tan": ((-1.2, 1.2), {}),
    "Floor": ((-3, 3), {}),
    "Ceil": ((-3, 3), {}),
    "Round": ((-3.5, 3.5), {}),
    "Sign": ((-3, 3), {}),
    "Sigmoid": ((-9, 9), {}),
    "Softplus": ((-30, 30), {}),
    "Softsign": ((-3, 3), {}),
    "Mish": ((-5, 5), {}),
    "HardSwish": ((-5, 5), {}),
    "HardSigmoid": ((-5, 5), {"alpha": 0.3, "beta": 0.4}),
    "LeakyRelu": ((-3, 3), {"alpha": 0.1}),
    "Elu": ((-3, 3), {"alpha": 0.7}),
    "Celu": ((-3, 3), {"alpha": 1.5}),
    "Selu": ((-3, 3), {}),
    "ThresholdedRelu": ((-3, 3), {"alpha": 0.5}),
    "Shrink": ((-3, 3), {"lambd": 1.0, "bias": 0.5}),
    "Sinh": ((-3, 3), {}),
    "Cosh": ((-3, 3), {}),
    "Asinh": ((-3, 3), {}),
    "Acosh": ((1, 5), {}),
    "Atanh": ((-0.9, 0.9), {}),
    "Relu": ((-3, 3), {}),
}


def _run(tmp_path, node, inputs, out_type, opset=21):
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info(n, t, SHAPE) for n, t, _ in inputs],
        [helper.make_tensor_value_info("y", out_type, SHAPE)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=10)
    feeds = {n: v for n, _, v in inputs}
    got = tritonnx.compile(model, tmp_path / "art").run(feeds)["y"]
    want = ort_run(model, feeds)[0]
    assert got.dtype == want.dtype
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("op", sorted(UNARY))
def test_unary(op, tmp_path):
    domain, attrs = UNARY[op]
    _run(tmp_path, helper.make_node(op, ["x"], ["y"], **attrs), [("x", F, _data(F, domain))], F)


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu(approximate, tmp_path):
    _run(tmp_path, helper.make_node("Gelu", ["x"], ["y"], approximate=approximate), [("x", F, _data(F, (-4, 4)))], F)


@pytest.mark.parametrize(
    "op,dtype,out",
    [
        ("Add", I, I),
        ("Sub", I, I),
        ("Mul", I, I),
        ("Max", F, F),
        ("Min", I, I),
        ("Equal", I, B),
        ("Less", F, B),
        ("Greater", F, B),
        ("LessOrEqual", I, B),
        ("GreaterOrEqual", F, B),
        ("And", B, B),
        ("Or", B, B),
        ("Xor", B, B),
        ("BitwiseAnd", I, I),
        ("BitwiseXor", I, I),
        ("Pow", F, F),
        ("PRelu", F, F),
    ],
)
def test_binary(op, dtype, out, tmp_path):
    a = _data(dtype, (-3, 3))
    b = _data(dtype, (-3, 3))
    if op == "Pow":
        b = np.round(b)  # negative bases need integer exponents
    _run(tmp_path, helper.make_node(op, ["a", "b"], ["y"]), [("a", dtype, a), ("b", dtype, b)], out)


@pytest.mark.parametrize("fmod,dtype", [(0, I), (1, I), (1, F)])
def test_mod(fmod, dtype, tmp_path):
    a = _data(dtype, (-7, 7))
    b = _data(dtype, (1, 3))
    if dtype == I:
        b = np.where(b == 0, 3, b).astype(np.int32)
    _run(tmp_path, helper.make_node("Mod", ["a", "b"], ["y"], fmod=fmod), [("a", dtype, a), ("b", dtype, b)], dtype)


def test_where_not_isnan(tmp_path):
    x = _data(F, (-3, 3))
    x.flat[5] = np.nan
    nodes = [
        helper.make_node("IsNaN", ["x"], ["n"]),
        helper.make_node("Not", ["n"], ["k"]),
        helper.make_node("Where", ["k", "x", "z"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", F, SHAPE), helper.make_tensor_value_info("z", F, SHAPE)],
        [helper.make_tensor_value_info("y", F, SHAPE)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)], ir_version=10)
    feeds = {"x": x, "z": np.full(SHAPE, 7.0, np.float32)}
    compiled = tritonnx.compile(model, tmp_path / "art")
    np.testing.assert_array_equal(compiled.run(feeds)["y"], ort_run(model, feeds)[0])
    assert len(compiled.launches) == 1


@pytest.mark.parametrize("to", [TensorProto.INT32, TensorProto.BOOL, TensorProto.FLOAT16, TensorProto.INT64])
def test_cast_from_float(to, tmp_path):
    _run(tmp_path, helper.make_node("Cast", ["x"], ["y"], to=to), [("x", F, _data(F, (-5, 5)))], to)


def test_mean_of_three(tmp_path):
    graph = helper.make_graph(
        [helper.make_node("Mean", ["a", "b", "c"], ["y"])],
        "g",
        [helper.make_tensor_value_info(n, F, SHAPE) for n in "abc"],
        [helper.make_tensor_value_info("y", F, SHAPE)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    feeds = {n: _data(F, (-3, 3)) for n in "abc"}
    np.testing.assert_allclose(
        tritonnx.compile(model, tmp_path / "art").run(feeds)["y"], ort_run(model, feeds)[0], rtol=1e-6
    )
