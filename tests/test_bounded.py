"""Data-dependent sizes as kernels (tritonnx.importers.bounded): NonZero, Compress and a TopK
with a run-time K write a buffer of their static upper bound and a count; a `bind` step reads
the count (a sync point) and the steps after it take it as a dynamic size. Against
onnxruntime."""

import numpy as np
import pytest
from onnx import TensorProto, helper

import tritonnx
from models import ort_run
from tritonnx.errors import InputError
from tritonnx.importers import bounded

F, I64, B = TensorProto.FLOAT, TensorProto.INT64, TensorProto.BOOL


def _model(nodes, inputs, outputs, inits=()):
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _check(compiled, model, feeds):
    got = compiled.run(feeds)
    for (name, value), want in zip(got.items(), ort_run(model, feeds)):
        assert value.shape == want.shape, name
        np.testing.assert_allclose(value, want, rtol=1e-6, atol=1e-6, err_msg=name)
    return got


def _threshold_head():
    """NonZero of a 3-D score threshold, the kept scores gathered and doubled; a Relu that
    does not need the count."""
    nodes = [
        helper.make_node("Greater", ["x", "t"], ["m"]),
        helper.make_node("NonZero", ["m"], ["nz"], name="keep"),
        helper.make_node("Relu", ["x"], ["r"]),
        helper.make_node("Transpose", ["nz"], ["nzt"]),
        helper.make_node("GatherND", ["r", "nzt"], ["vals"]),
        helper.make_node("Mul", ["vals", "two"], ["y"]),
    ]
    return _model(
        nodes,
        [helper.make_tensor_value_info("x", F, [2, 5, 7])],
        [helper.make_tensor_value_info("y", F, None), helper.make_tensor_value_info("nz", I64, None)],
        [helper.make_tensor("t", F, [], [0.4]), helper.make_tensor("two", F, [], [2.0])],
    )


def test_nonzero_as_kernels_then_a_bind(tmp_path):
    model = _threshold_head()
    compiled = tritonnx.compile(model, tmp_path / "art", cache=False)
    plan = compiled.plan
    assert [s["step"] for s in plan["steps"]] == ["graph", "bind", "graph"]
    assert plan["host_reads"] == ["keep: reads its count of nonzero elements, the size of its output"]
    first = compiled.subartifacts()[0]
    kernels = [la["kernel"] for la in first.launches]
    assert any(k.startswith("cum_sum") for k in kernels) and any(k.startswith("relu") for k in kernels)
    bind = plan["steps"][1]
    assert bind["bound"] == 70 and bind["axis"] == 1
    rng = np.random.default_rng(0)
    counts = set()
    for _ in range(3):
        got = _check(compiled, model, {"x": rng.standard_normal((2, 5, 7)).astype(np.float32)})
        counts.add(got["nz"].shape[1])
    assert len(counts) > 1


def test_report_shows_the_bind_sync_point(tmp_path):
    from tritonnx.compiler.report import report

    tritonnx.compile(_threshold_head(), tmp_path / "art", cache=False)
    text = report(tmp_path / "art", "json")
    import json

    data = json.loads(text)
    assert [s["step"] for s in data["steps"]] == ["graph", "bind", "graph"]
    assert len(data["sync_points"]) == 1


def test_compress_with_and_without_axis(tmp_path):
    model = _model(
        [
            helper.make_node("Compress", ["x", "c"], ["y"], axis=1),
            helper.make_node("Compress", ["x", "c2"], ["z"]),
            helper.make_node("Abs", ["y"], ["ya"]),
            helper.make_node("Neg", ["z"], ["zn"]),
        ],
        [
            helper.make_tensor_value_info("x", F, [3, 5]),
            helper.make_tensor_value_info("c", B, [4]),
            helper.make_tensor_value_info("c2", B, [20]),
        ],
        [helper.make_tensor_value_info("ya", F, None), helper.make_tensor_value_info("zn", F, None)],
    )
    compiled = tritonnx.compile(model, tmp_path / "art", cache=False)
    assert [s["step"] for s in compiled.plan["steps"]].count("bind") == 2
    rng = np.random.default_rng(1)
    for _ in range(2):
        feeds = {
            "x": rng.standard_normal((3, 5)).astype(np.float32),
            "c": rng.random(4) > 0.4,
            "c2": rng.random(20) > 0.5,
        }
        feeds["c"][0] = False  # the first slice dropped
        _check(compiled, model, feeds)


def test_top_k_with_a_run_time_k(tmp_path):
    model = _model(
        [helper.make_node("TopK", ["x", "k"], ["v", "i"], axis=1), helper.make_node("Neg", ["v"], ["nv"])],
        [helper.make_tensor_value_info("x", F, [3, 10]), helper.make_tensor_value_info("k", I64, [1])],
        [helper.make_tensor_value_info("nv", F, None), helper.make_tensor_value_info("i", I64, None)],
    )
    compiled = tritonnx.compile(model, tmp_path / "art", cache=False)
    assert compiled.plan["host_reads"] == ["TopK_0: reads K from 'k', the size of its output"]
    x = np.random.default_rng(2).standard_normal((3, 10)).astype(np.float32)
    for k in (1, 4, 10):
        got = _check(compiled, model, {"x": x, "k": np.array([k])})
        assert got["i"].shape == (3, k)
    with pytest.raises(InputError, match=r"TopK_0.*size 11 \(from 'k'\) is outside \[0, 10\]"):
        compiled.run({"x": x, "k": np.array([11])})


@pytest.mark.parametrize("sort", [1, 0])
@pytest.mark.parametrize("dtype", [np.float32, np.int64])
def test_unique_as_kernels(tmp_path, sort, dtype):
    """Unique-11 without an axis, sorted and in first-occurrence order: values, first
    indices, inverse indices and counts, int64 values beyond float32's precision included."""
    t = F if dtype == np.float32 else I64
    model = _model(
        [
            helper.make_node("Unique", ["x"], ["y", "idx", "inv", "cnt"], sorted=sort),
            helper.make_node("Neg", ["y"], ["ny"]),
        ],
        [helper.make_tensor_value_info("x", t, [3, 4])],
        [helper.make_tensor_value_info(n, e, None) for n, e in (("ny", t), ("idx", I64), ("inv", I64), ("cnt", I64))],
    )
    compiled = tritonnx.compile(model, tmp_path / "art", cache=False)
    assert [s["step"] for s in compiled.plan["steps"]] == ["graph", "bind", "graph"]
    rng = np.random.default_rng(sort)
    sizes = set()
    for _ in range(3):
        x = rng.integers(-3, 4, (3, 4)).astype(dtype)
        if dtype == np.int64:
            x = x * (1 << 40) + 7  # neighbours a float32 could not tell apart
        sizes.add(_check(compiled, model, {"x": x})["ny"].shape[0])
    assert len(sizes) > 1


def test_nothing_kept_gives_empty_results(tmp_path):
    """No score over the threshold: the steps after the bind run at a size of 0 and give
    empty results of the shapes onnxruntime gives."""
    model = _threshold_head()
    compiled = tritonnx.compile(model, tmp_path / "art", cache=False)
    got = _check(compiled, model, {"x": -np.ones((2, 5, 7), np.float32)})
    assert got["y"].shape == (0,) and got["nz"].shape == (3, 0)


def test_a_reduction_over_nothing_kept_is_the_identity(tmp_path):
    """Sums and a max over an empty selection (a size of 0 bound at run time): the identity
    of the reduction, as onnxruntime gives."""
    nodes = [
        helper.make_node("NonZero", ["x"], ["nz"]),
        helper.make_node("ReduceSum", ["nz"], ["total"], keepdims=0),
        helper.make_node("Cast", ["nz"], ["nzf"], to=F),
        helper.make_node("ReduceSum", ["nzf", "one"], ["per_axis"], keepdims=0),
    ]
    model = _model(
        nodes,
        [helper.make_tensor_value_info("x", F, [6])],
        [helper.make_tensor_value_info("total", I64, None), helper.make_tensor_value_info("per_axis", F, None)],
        [helper.make_tensor("one", I64, [1], [1])],
    )
    compiled = tritonnx.compile(model, tmp_path / "art", cache=False)
    _check(compiled, model, {"x": np.array([0, 1, 0, 2, 3, 0], np.float32)})
    got = _check(compiled, model, {"x": np.zeros(6, np.float32)})
    assert got["total"] == 0 and got["per_axis"].tolist() == [0.0]


def test_a_large_nonzero_stays_a_host_step(tmp_path, monkeypatch):
    monkeypatch.setattr(bounded, "MAX_BOUND", 32)
    model = _threshold_head()
    compiled = tritonnx.compile(model, tmp_path / "art", cache=False)
    assert [s["step"] for s in compiled.plan["steps"]] == ["graph", "host", "graph"]
    _check(compiled, model, {"x": np.random.default_rng(4).standard_normal((2, 5, 7)).astype(np.float32)})


def test_bounded_kernels_compile_to_sm90_cubins(tmp_path):
    """Every kernel of the bounded NonZero, Compress and TopK (the steps before and after
    each bind) compiles to sm_90 cubin (no GPU needed)."""
    model = _model(
        [
            helper.make_node("Greater", ["x", "t"], ["m"]),
            helper.make_node("NonZero", ["m"], ["nz"]),
            helper.make_node("Compress", ["x", "c"], ["y"], axis=0),
            helper.make_node("TopK", ["x", "k"], ["v", "i"], axis=1),
        ],
        [
            helper.make_tensor_value_info("x", F, [6, 8]),
            helper.make_tensor_value_info("c", B, [6]),
            helper.make_tensor_value_info("k", I64, [1]),
        ],
        [helper.make_tensor_value_info(n, t, None) for n, t in (("nz", I64), ("y", F), ("v", F), ("i", I64))],
        [helper.make_tensor("t", F, [], [0.0])],
    )
    compiled = tritonnx.compile(model, tmp_path / "art", targets=("sm_90",), cache=False)
    assert [s["step"] for s in compiled.plan["steps"]].count("bind") == 3
    launches = compiled.launches
    assert launches
    for sub in compiled.subartifacts():
        for launch in sub.launches:
            assert (sub.path / "kernels" / f"{launch['kernel']}.sm_90.cubin").read_bytes()[:4] == b"\x7fELF"


def test_top_k_with_a_constant_node_k_is_no_program(tmp_path):
    """K from a Constant node is known at compile time: an ordinary TopK kernel, no bind."""
    k = helper.make_node("Constant", [], ["k"], value=helper.make_tensor("kv", I64, [1], [3]))
    model = _model(
        [k, helper.make_node("TopK", ["x", "k"], ["v", "i"], axis=1)],
        [helper.make_tensor_value_info("x", F, [2, 8])],
        [helper.make_tensor_value_info("v", F, None), helper.make_tensor_value_info("i", I64, None)],
    )
    compiled = tritonnx.compile(model, tmp_path / "art", cache=False)
    assert not compiled.plan.get("program")
    _check(compiled, model, {"x": np.random.default_rng(5).standard_normal((2, 8)).astype(np.float32)})


def test_top_k_of_a_run_time_k_over_a_dynamic_axis_is_refused(tmp_path):
    from tritonnx.errors import UnsupportedModelError

    model = _model(
        [helper.make_node("TopK", ["x", "k"], ["v", "i"], axis=1)],
        [helper.make_tensor_value_info("x", F, [2, "n"]), helper.make_tensor_value_info("k", I64, [1])],
        [helper.make_tensor_value_info("v", F, None), helper.make_tensor_value_info("i", I64, None)],
    )
    with pytest.raises(UnsupportedModelError, match="TopK"):
        tritonnx.compile(model, tmp_path / "art", cache=False)
