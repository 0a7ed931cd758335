"""Axes of any length: Softmax, LogSoftmax, Hardmax and the scans over a row longer than one
block (an LLM's 50,257-token vocabulary, 100,003 elements) or of a dynamic length loop over it
in chunks (an online softmax: a running maximum and a rescaled sum); reductions and
normalizations loop over a reduced extent of any length. Checked against onnxruntime on the
CPU interpreter, at the interpreter's tiling and at sm_90's (whose kernels compile to cubin)."""

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import tritonnx
from models import ort_run

RNG = np.random.default_rng(13)


def _model(nodes, x_shape, y_shape, inits=None, opset=17, x_type=TensorProto.FLOAT, y_type=TensorProto.FLOAT):
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", x_type, x_shape)],
        [helper.make_tensor_value_info("y", y_type, y_shape)],
        [numpy_helper.from_array(v, k) for k, v in (inits or {}).items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=10)


def _compile(model, path, gpu):
    """The compiled model, tiled for sm_90 (every kernel compiled to cubin) or for the interpreter."""
    compiled = tritonnx.compile(model, path, cache=False, **({"targets": ("sm_90",)} if gpu else {}))
    if gpu:
        for launch in compiled.launches:
            assert (compiled.path / "kernels" / f"{launch['kernel']}.sm_90.cubin").read_bytes()[:4] == b"\x7fELF"
    return compiled


def _looped(compiled) -> bool:
    """Whether some kernel of `compiled` loops over its row (a `for` in its Triton source)."""
    return any("for " in p.read_text() for p in (compiled.path / "kernels").glob("*.py"))


def _check_probabilities(got, want, log=False):
    """Probabilities of a 50k-100k row are ~1e-5: absolute 1e-7 and relative 1e-4, and their
    logarithms (the log-probabilities) to 1e-4 absolute; log-probabilities (`log`) to 1e-4,
    -inf where onnxruntime's are, and their exponentials sum to 1 per row."""
    assert got.shape == want.shape and got.dtype == want.dtype
    if log:
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(np.exp(got).sum(-1), 1.0, rtol=1e-4)
        return
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-7)
    with np.errstate(divide="ignore"):  # log(0) = -inf where x is -inf
        np.testing.assert_allclose(np.log(got), np.log(want), rtol=0, atol=1e-4)


@pytest.mark.parametrize("gpu", [False, True], ids=["interpreter", "sm_90"])
@pytest.mark.parametrize("n", [50257, 100003])
@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
def test_softmax_long_axis(op, n, gpu, tmp_path):
    shape = [3, n]
    x = (RNG.standard_normal(shape) * 4).astype(np.float32)
    x[1, :20000] = -np.inf  # a row whose first chunks are all -inf: the running sum starts late
    x[2, n - 1] = 30.0  # the row maximum in the last, partial chunk: the sum is rescaled
    model = _model([helper.make_node(op, ["x"], ["y"], axis=-1)], shape, shape)
    compiled = _compile(model, tmp_path / "art", gpu)
    assert _looped(compiled)
    got, want = compiled.run({"x": x})["y"], ort_run(model, {"x": x})[0]
    _check_probabilities(got, want, log=op == "LogSoftmax")  # LogSoftmax: -inf where x is -inf


def test_softmax_long_middle_axis(tmp_path):
    """Axis 1 of [2, 20011, 3]: the row's elements are 3 apart in memory."""
    shape = [2, 20011, 3]
    x = (RNG.standard_normal(shape) * 3).astype(np.float32)
    model = _model([helper.make_node("Softmax", ["x"], ["y"], axis=1)], shape, shape)
    compiled = _compile(model, tmp_path / "art", False)
    assert _looped(compiled)
    got, want = compiled.run({"x": x})["y"], ort_run(model, {"x": x})[0]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-7)


def test_softmax_all_minus_inf_long_row_is_nan(tmp_path):
    """A row that is all -inf gives NaN over every element, as onnxruntime does; the other
    rows are unaffected."""
    shape = [2, 40009]
    x = RNG.standard_normal(shape).astype(np.float32)
    x[0] = -np.inf
    model = _model([helper.make_node("Softmax", ["x"], ["y"], axis=-1)], shape, shape)
    got, want = _compile(model, tmp_path / "art", False).run({"x": x})["y"], ort_run(model, {"x": x})[0]
    assert np.isnan(want[0]).all() and np.isnan(got[0]).all()
    np.testing.assert_allclose(got[1], want[1], rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("gpu", [False, True], ids=["interpreter", "sm_90"])
def test_hardmax_long_axis(gpu, tmp_path):
    """The first maximum wins, also when it repeats in a later chunk."""
    shape = [3, 50257]
    x = RNG.integers(0, 50, shape).astype(np.float32)
    x[0, [7, 40000]] = 99.0
    x[1, [30000, 50256]] = 99.0
    model = _model([helper.make_node("Hardmax", ["x"], ["y"], axis=-1)], shape, shape)
    compiled = _compile(model, tmp_path / "art", gpu)
    assert _looped(compiled)
    np.testing.assert_array_equal(compiled.run({"x": x})["y"], ort_run(model, {"x": x})[0])


@pytest.mark.parametrize("exclusive,reverse", [(0, 0), (1, 0), (0, 1), (1, 1)])
def test_cum_sum_long_axis(exclusive, reverse, tmp_path):
    """CumSum over 40,009 integers: the running total carries from chunk to chunk."""
    shape = [2, 40009]
    x = RNG.integers(-9, 10, shape).astype(np.int64)
    node = helper.make_node("CumSum", ["x", "axis"], ["y"], exclusive=exclusive, reverse=reverse)
    model = _model(
        [node], shape, shape, {"axis": np.array(1, np.int64)}, x_type=TensorProto.INT64, y_type=TensorProto.INT64
    )
    compiled = _compile(model, tmp_path / "art", False)
    assert _looped(compiled)
    np.testing.assert_array_equal(compiled.run({"x": x})["y"], ort_run(model, {"x": x})[0])


def test_top_k_long_axis_names_top_k(tmp_path):
    """TopK holds its row in one block: a longer row is refused, naming TopK and the node."""
    from tritonnx.errors import CompileError

    shape = [2, 20000]
    node = helper.make_node("TopK", ["x", "k"], ["y", "i"], name="topk_vocab")
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 5])],
        [numpy_helper.from_array(np.array([5], np.int64), "k")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=10)
    with pytest.raises(CompileError, match="TopK node 'topk_vocab' over an axis of 20000 elements"):
        tritonnx.compile(model, tmp_path / "art", cache=False)


# ------------------------------------------------------------------------------ dynamic


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax", "Hardmax"])
def test_softmax_dynamic_axis_any_length(op, tmp_path):
    """A Softmax over a dynamic axis compiles once, with no run-time guard on its length,
    and runs at lengths shorter than one block and much longer than one."""
    model = _model([helper.make_node(op, ["x"], ["y"], axis=-1)], [2, "vocab"], [2, "vocab"])
    compiled = tritonnx.compile(model, tmp_path / "art", cache=False)
    assert not [g for g in compiled.plan.get("guards", []) if "block" in g[1]]
    assert _looped(compiled)
    for n in (5, 1000, 50257):
        x = (RNG.standard_normal((2, n)) * 3).astype(np.float32)
        got, want = compiled.run({"x": x})["y"], ort_run(model, {"x": x})[0]
        assert got.shape == (2, n)
        if op == "Softmax":
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-7)
        elif op == "LogSoftmax":
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
        else:
            np.testing.assert_array_equal(got, want)


def test_cum_sum_dynamic_axis(tmp_path):
    node = helper.make_node("CumSum", ["x", "axis"], ["y"], reverse=1)
    model = _model([node], [3, "n"], [3, "n"], {"axis": np.array(1, np.int64)})
    compiled = tritonnx.compile(model, tmp_path / "art", cache=False)
    assert not [g for g in compiled.plan.get("guards", []) if "block" in g[1]]
    for n in (7, 30011):
        x = RNG.standard_normal((3, n)).astype(np.float32)
        np.testing.assert_allclose(
            compiled.run({"x": x})["y"], ort_run(model, {"x": x})[0], rtol=1e-4, atol=1e-3 * np.sqrt(n)
        )


# ------------------------------------------------------------------------------ reductions and normalizations


@pytest.mark.parametrize(
    "op,gpu",
    [("ReduceMax", False), ("ReduceSum", False), ("ReduceLogSumExp", False), ("ArgMax", False)]
    + [("ReduceSum", True), ("ArgMax", True)],  # sm_90's 64-lane chunks: 1,563 steps in the interpreter
)
def test_reduce_long_axis(op, gpu, tmp_path):
    shape = [3, 100003]
    x = RNG.standard_normal(shape).astype(np.float32)
    x[2, 99999] = 9.0
    if op == "ArgMax":
        node, inits, y_shape, y_type = helper.make_node(op, ["x"], ["y"], axis=1), {}, [3, 1], TensorProto.INT64
    else:
        node = helper.make_node(op, ["x", "axes"], ["y"], keepdims=0)
        inits, y_shape, y_type = {"axes": np.array([1], np.int64)}, [3], TensorProto.FLOAT
    model = _model([node], shape, y_shape, inits, opset=18, y_type=y_type)
    compiled = _compile(model, tmp_path / "art", gpu)
    got, want = compiled.run({"x": x})["y"], ort_run(model, {"x": x})[0]
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("op", ["ReduceSum", "ReduceMax", "ArgMax"])
def test_reduce_dynamic_axis(op, tmp_path):
    if op == "ArgMax":
        node, inits, y_shape, y_type = helper.make_node(op, ["x"], ["y"], axis=1), {}, [2, 1], TensorProto.INT64
    else:
        node = helper.make_node(op, ["x", "axes"], ["y"], keepdims=0)
        inits, y_shape, y_type = {"axes": np.array([1], np.int64)}, [2], TensorProto.FLOAT
    model = _model([node], [2, "n"], y_shape, inits, opset=18, y_type=y_type)
    compiled = tritonnx.compile(model, tmp_path / "art", cache=False)
    assert not [g for g in compiled.plan.get("guards", []) if "block" in g[1]]
    for n in (3, 100003):
        x = RNG.standard_normal((2, n)).astype(np.float32)
        got, want = compiled.run({"x": x})["y"], ort_run(model, {"x": x})[0]
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("gpu", [False, True], ids=["interpreter", "sm_90"])
def test_layer_norm_long_axis(gpu, tmp_path):
    n = 70001
    x = (RNG.standard_normal((2, n)) * 2 + 5).astype(np.float32)
    inits = {"scale": RNG.uniform(0.5, 1.5, n).astype(np.float32), "bias": RNG.standard_normal(n).astype(np.float32)}
    node = helper.make_node("LayerNormalization", ["x", "scale", "bias"], ["y"], axis=-1, epsilon=1e-5)
    model = _model([node], [2, n], [2, n], inits)
    compiled = _compile(model, tmp_path / "art", gpu)
    got, want = compiled.run({"x": x})["y"], ort_run(model, {"x": x})[0]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_group_norm_long_axis(tmp_path):
    """GroupNormalization-21 of [1, 4, 35003] in 2 groups: 70,006 elements a group."""
    c, n = 4, 35003
    inits = {"scale": RNG.uniform(0.5, 1.5, c).astype(np.float32), "bias": RNG.standard_normal(c).astype(np.float32)}
    node = helper.make_node("GroupNormalization", ["x", "scale", "bias"], ["y"], epsilon=1e-5, num_groups=2)
    model = _model([node], [1, c, n], [1, c, n], inits, opset=21)
    x = (RNG.standard_normal((1, c, n)) + 3).astype(np.float32)
    got, want = _compile(model, tmp_path / "art", False).run({"x": x})["y"], ort_run(model, {"x": x})[0]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_instance_norm_dynamic_axis(tmp_path):
    """InstanceNormalization over a dynamic extent: no guard, any length (the mean divides
    by the kernel's size argument, not by the sample size it was compiled at)."""
    c = 4
    inits = {"scale": RNG.uniform(0.5, 1.5, c).astype(np.float32), "bias": RNG.standard_normal(c).astype(np.float32)}
    node = helper.make_node("InstanceNormalization", ["x", "scale", "bias"], ["y"], epsilon=1e-5)
    model = _model([node], [1, c, "n"], [1, c, "n"], inits)
    compiled = tritonnx.compile(model, tmp_path / "art", cache=False)
    assert not [g for g in compiled.plan.get("guards", []) if "block" in g[1]]
    for n in (5, 70001):
        x = (RNG.standard_normal((1, c, n)) + 3).astype(np.float32)
        got, want = compiled.run({"x": x})["y"], ort_run(model, {"x": x})[0]
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


# ------------------------------------------------------------------------------ GPT-2 language model


@pytest.fixture(scope="module")
def gpt2_lm(tmp_path_factory):
    """GPT2LMHeadModel (transformers; 2 layers, 64 wide, 2 heads, random weights seeded by
    torch.manual_seed(0)) returning softmax(logits, -1) over its 50,257-token vocabulary,
    exported by torch.onnx (TorchScript exporter, opset 17) for input_ids [1, 8]."""
    pytest.importorskip("transformers")
    import warnings

    import torch
    import transformers as tf

    cfg = tf.GPT2Config(vocab_size=50257, n_embd=64, n_layer=2, n_head=2, n_positions=64, use_cache=False)
    cfg._attn_implementation = "eager"
    torch.manual_seed(0)
    lm = tf.GPT2LMHeadModel(cfg).eval()

    class Probabilities(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lm = lm

        def forward(self, input_ids):
            mask = torch.ones_like(input_ids)  # with no mask transformers looks for packed sequences (aten::diff)
            return torch.softmax(self.lm(input_ids=input_ids, attention_mask=mask, use_cache=False).logits, -1)

    ids = torch.from_numpy(np.random.default_rng(0).integers(0, 50257, (1, 8)))
    path = str(tmp_path_factory.mktemp("gpt2_lm") / "gpt2_lm.onnx")
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            Probabilities().eval(),
            (ids,),
            path,
            dynamo=False,
            opset_version=17,
            input_names=["input_ids"],
            output_names=["probs"],
            do_constant_folding=True,
        )
    return path, {"input_ids": ids.numpy()}


def test_gpt2_lm_softmax_over_vocabulary(gpt2_lm, tmp_path):
    path, feeds = gpt2_lm
    compiled = _compile(path, tmp_path / "art", True)
    softmax = [launch for launch in compiled.launches if launch["kind"] == "softmax"]
    assert softmax and any("50257" in (compiled.path / "kernels" / f"{s['kernel']}.py").read_text() for s in softmax)
    got, want = compiled.run(feeds)["probs"], ort_run(path, feeds)[0]
    assert got.shape == want.shape == (1, 8, 50257)
    _check_probabilities(got, want)
