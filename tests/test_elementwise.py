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
    "Atan": ((-20, 20), {}),
    "Asin": ((-1, 1), {}),
    "Acos": ((-1, 1), {}),
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


def _compile_one(tmp_path, node, inputs, out_type, opset):
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info(n, t, list(v.shape)) for n, t, v in inputs],
        [helper.make_tensor_value_info("y", out_type, list(inputs[0][2].shape))],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=10)
    return model, tritonnx.compile(model, tmp_path / "art").run({n: v for n, _, v in inputs})["y"]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op", ["Atan", "Asin", "Acos"])
def test_inverse_trig_accuracy(op, dtype, tmp_path):
    """Atan, Asin, Acos within 4 ulp (f32) and 2 ulp (f64) of NumPy's over their range and
    its ends (+-1 exactly, values next to 1), with +-inf, NaN, -0.0 and |x| > 1 (NaN)."""
    if op == "Atan":
        x = np.concatenate(
            [np.linspace(-30, 30, 4001), np.geomspace(1e-20, 1e20, 400), -np.geomspace(1e-20, 1e20, 400)]
        )
        special = [0.0, -0.0, np.inf, -np.inf, np.nan]
    else:
        x = np.concatenate(
            [np.linspace(-1, 1, 4001), 1 - np.geomspace(1e-7, 1e-1, 100), -1 + np.geomspace(1e-7, 1e-1, 100)]
        )
        special = [0.0, -0.0, 1.0, -1.0, 1.5, -1.5, np.inf, np.nan]
    x = np.concatenate([x, special]).astype(dtype)
    t = TensorProto.FLOAT if dtype == np.float32 else TensorProto.DOUBLE
    _, got = _compile_one(tmp_path, helper.make_node(op, ["x"], ["y"]), [("x", t, x)], t, 22)
    with np.errstate(invalid="ignore"):
        want = getattr(np, "arc" + op[1:].lower())(x.astype(np.float64))
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    ok = ~np.isnan(want)
    ulp = np.abs(got[ok] - want[ok]) / np.spacing(np.abs(want[ok]).astype(dtype))
    assert ulp.max() <= (4 if dtype == np.float32 else 2), (x[ok][ulp.argmax()], ulp.max())
    zero = x == 0
    np.testing.assert_array_equal(np.signbit(got[zero]), np.signbit(want[zero]))


BITS = np.random.default_rng(7).integers(0, 256, 64, dtype=np.uint8)  # every bit pattern's bytes


@pytest.mark.parametrize(
    "src,dst",
    [
        (np.float32, np.int32),
        (np.int32, np.float32),
        (np.float64, np.int64),
        (np.int64, np.float64),
        (np.uint32, np.int32),
        (np.int32, np.uint32),
        (np.uint16, np.int16),
        (np.int8, np.uint8),
        (np.uint64, np.float64),
        (np.float16, np.int16),
        (np.int16, np.float16),
        (np.bool_, np.uint8),
    ],
)
def test_bitcast(src, dst, tmp_path):
    """BitCast-26 against onnxruntime, bit for bit (NaN payloads of 32- and 64-bit floats
    too; the f16 inputs are finite: a half is computed in f32, which keeps its value), and
    against NumPy's view, the spec's reference (onnxruntime has no bool to uint8)."""
    x = BITS.view(src).copy() if src != np.bool_ else (BITS % 2).astype(bool)
    if src == np.float16:
        x = np.where(np.isfinite(x), x, np.float16(1.5))
    s, d = helper.np_dtype_to_tensor_dtype(np.dtype(src)), helper.np_dtype_to_tensor_dtype(np.dtype(dst))
    model, got = _compile_one(tmp_path, helper.make_node("BitCast", ["x"], ["y"], to=d), [("x", s, x)], d, 26)
    want = x.view(dst) if src == np.bool_ else ort_run(model, {"x": x})[0]
    assert got.dtype == want.dtype == dst
    np.testing.assert_array_equal(want.view(np.uint8), x.view(np.uint8))
    np.testing.assert_array_equal(got.view(np.uint8), want.view(np.uint8))


MOD_X = [0.0, -0.0, 0.0, -0.0, -3.0, 3.0, -1.0, 1.0, np.inf, -np.inf, 1.0, 1.0, np.nan, 1.0, 7.5, -7.5, 0.0, 5.0]
MOD_Y = [-2.0, 2.0, 2.0, -2.0, np.inf, np.inf, -np.inf, -np.inf, 2.0, 2.0, 0.0, -0.0, 2.0, np.nan, -2.0, 2.0, 3.0, 5.0]


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("fmod", [0, 1])
def test_mod_special_values(fmod, dtype, tmp_path):
    """Mod-13 on floats as the spec's reference computes it: fmod=1 is C's fmod (np.fmod),
    fmod=0 NumPy's np.mod: signed zeros, infinite divisors (mod(-3, inf) = inf, fmod(-3, inf)
    = -3), infinite dividends and zero divisors (NaN), and the exact remainder of a dividend
    far bigger than its divisor (the type's largest finite value / 4)."""
    x, y = np.array(MOD_X, dtype), np.array(MOD_Y, dtype)
    x[-2] = np.finfo(dtype).max / 4
    t = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    node = helper.make_node("Mod", ["a", "b"], ["y"], fmod=fmod)
    _, got = _compile_one(tmp_path, node, [("a", t, x), ("b", t, y)], t, 13)
    with np.errstate(invalid="ignore", divide="ignore"):
        want = np.fmod(x, y) if fmod else np.mod(x, y)
    np.testing.assert_array_equal(got, want)  # NaN where NaN
    np.testing.assert_array_equal(np.signbit(got), np.signbit(want))


def test_bits_and_inverse_trig_compile_for_sm_90(tmp_path):
    """The kernels of BitCast, Atan, Asin, Acos and float Mod compile to sm_90 cubins (the
    interpreter is lenient where Triton's GPU compiler is not)."""
    f, i = TensorProto.FLOAT, TensorProto.INT32
    nodes = [
        helper.make_node("BitCast", ["x"], ["b"], to=i),
        helper.make_node("Atan", ["x"], ["t"]),
        helper.make_node("Asin", ["x"], ["s"]),
        helper.make_node("Acos", ["x"], ["c"]),
        helper.make_node("Mod", ["x", "z"], ["m"], fmod=0),
    ]
    outs = [("b", i), ("t", f), ("s", f), ("c", f), ("m", f)]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info(n, f, SHAPE) for n in "xz"],
        [helper.make_tensor_value_info(n, t, SHAPE) for n, t in outs],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 26)], ir_version=10)
    out = tmp_path / "art"
    compiled = tritonnx.compile(model, out, targets=("sm_90",))
    for launch in compiled.launches:
        assert (out / "kernels" / f"{launch['kernel']}.sm_90.cubin").read_bytes()[:4] == b"\x7fELF"
