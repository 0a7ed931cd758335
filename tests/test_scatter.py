"""The scatter family and GatherND against onnxruntime: ScatterElements-18 and ScatterND-18
with each reduction (repeated indices included), TensorScatter-24 (linear and circular),
GatherND-13 with batch_dims, negative indices, and an out-of-range index from data
raising IndexError naming the node."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import tritonnx
from models import ort_run
from tritonnx.errors import InvalidModelError

RNG = np.random.default_rng(0)
NP_TO_ONNX = {np.float32: TensorProto.FLOAT, np.int64: TensorProto.INT64, np.int32: TensorProto.INT32}


def _model(node: onnx.NodeProto, feeds: dict, out_shape, out_dtype=np.float32, opset=18) -> onnx.ModelProto:
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info(n, NP_TO_ONNX[v.dtype.type], v.shape) for n, v in feeds.items()],
        [helper.make_tensor_value_info("y", NP_TO_ONNX[np.dtype(out_dtype).type], out_shape)],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=10)


def check(tmp_path, node, feeds, out_shape, opset=18, exact=False):
    model = _model(node, feeds, out_shape, opset=opset)
    compiled = tritonnx.compile(model, tmp_path / "art")
    got = compiled.run(feeds)["y"]
    want = ort_run(model, feeds)[0]
    assert got.shape == want.shape
    if exact:
        np.testing.assert_array_equal(got, want)
    else:
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    return compiled


def _f(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize("reduction", ["none", "add", "mul", "max", "min"])
def test_scatter_elements_reductions_repeated_negative(tmp_path, reduction):
    # along axis 1 of a 3x5 table: indices repeat (1 twice in row 0) and count from the end (-1)
    indices = np.array([[1, -1, 1], [0, 2, 4], [3, 3, -5]], dtype=np.int64)
    if reduction == "none":  # onnxruntime's order for repeats is the spec's "undefined": avoid them
        indices = np.array([[1, -1, 0], [0, 2, 4], [3, 1, -5]], dtype=np.int64)
    feeds = {"data": _f(3, 5), "indices": indices, "updates": _f(3, 3)}
    node = helper.make_node(
        "ScatterElements", ["data", "indices", "updates"], ["y"], axis=1, reduction=reduction, name="scat"
    )
    check(tmp_path, node, feeds, [3, 5])


def test_scatter_elements_axis0_smaller_updates(tmp_path):
    feeds = {"data": _f(4, 3, 2), "indices": np.array([[[3], [0]]], dtype=np.int64), "updates": _f(1, 2, 1)}
    node = helper.make_node("ScatterElements", ["data", "indices", "updates"], ["y"], axis=0, reduction="add")
    check(tmp_path, node, feeds, [4, 3, 2])


@pytest.mark.parametrize("reduction", ["none", "add", "mul", "max", "min"])
def test_scatter_nd_reductions(tmp_path, reduction):
    # rows of a 4x3x2 tensor, row 1 hit twice (except for `none`), and one row counted from the end
    rows = [[1], [-1], [1]] if reduction != "none" else [[1], [-1], [0]]
    feeds = {"data": _f(4, 3, 2), "indices": np.array(rows, dtype=np.int64), "updates": _f(3, 3, 2)}
    node = helper.make_node("ScatterND", ["data", "indices", "updates"], ["y"], reduction=reduction)
    check(tmp_path, node, feeds, [4, 3, 2])


def test_scatter_nd_element_tuples(tmp_path):
    feeds = {
        "data": _f(3, 4),
        "indices": np.array([[[0, 1], [2, -1]], [[1, 0], [0, 1]]], dtype=np.int64),
        "updates": _f(2, 2),
    }
    node = helper.make_node("ScatterND", ["data", "indices", "updates"], ["y"], reduction="add")
    check(tmp_path, node, feeds, [3, 4])


@pytest.mark.parametrize("batch_dims", [0, 1])
def test_gather_nd(tmp_path, batch_dims):
    data = _f(2, 3, 4)
    if batch_dims == 0:
        indices, out = np.array([[1, -1], [0, 2], [1, 0]], dtype=np.int64), [3, 4]
    else:
        indices, out = np.array([[[2, 3], [0, -4]], [[1, 1], [-1, 0]]], dtype=np.int64), [2, 2]
    node = helper.make_node("GatherND", ["data", "indices"], ["y"], batch_dims=batch_dims)
    check(tmp_path, node, {"data": data, "indices": indices}, out, exact=True)


@pytest.mark.parametrize("mode", ["linear", "circular"])
def test_tensor_scatter(tmp_path, mode):
    # a KV cache of 2 rows, 2 heads, 5 positions, 3 features; 2 new positions per row
    write = np.array([1, 3], dtype=np.int64) if mode == "linear" else np.array([4, 2], dtype=np.int64)
    feeds = {"past_cache": _f(2, 2, 5, 3), "update": _f(2, 2, 2, 3), "write_indices": write}
    node = helper.make_node("TensorScatter", ["past_cache", "update", "write_indices"], ["y"], mode=mode)
    model = _model(node, feeds, [2, 2, 5, 3], opset=24)
    got = tritonnx.compile(model, tmp_path / "art").run(feeds)["y"]
    want = feeds["past_cache"].copy()  # the spec's pseudocode (onnxruntime may lack opset 24)
    for n in range(2):
        for s in range(2):
            p = write[n] + s
            want[n, :, p % 5 if mode == "circular" else p] = feeds["update"][n, :, s]
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize(
    "op, feeds, out",
    [
        (
            "ScatterElements",
            {
                "data": np.zeros((2, 3), np.float32),
                "indices": np.array([[0, 3]], np.int64),
                "updates": np.ones((1, 2), np.float32),
            },
            [2, 3],
        ),
        (
            "ScatterND",
            {
                "data": np.zeros((2, 3), np.float32),
                "indices": np.array([[1, -4]], np.int64),
                "updates": np.ones((1,), np.float32),
            },
            [2, 3],
        ),
        ("GatherND", {"data": np.zeros((2, 3), np.float32), "indices": np.array([[2]], np.int64)}, [1, 3]),
    ],
)
def test_out_of_range_index_names_node(tmp_path, op, feeds, out):
    attrs = {"axis": 1} if op == "ScatterElements" else {}
    node = helper.make_node(op, list(feeds), ["y"], name="bad_node", **attrs)
    compiled = tritonnx.compile(_model(node, feeds, out), tmp_path / "art")
    with pytest.raises(IndexError, match="bad_node"):
        compiled.run(feeds)


SM90_CASES = {
    "scatter_elements_mul": (
        helper.make_node("ScatterElements", ["data", "indices", "updates"], ["y"], axis=1, reduction="mul"),
        {"data": _f(4, 6), "indices": np.array([[1, 5], [0, 0]], np.int64), "updates": _f(2, 2)},
        [4, 6],
        18,
    ),
    "scatter_nd_max": (
        helper.make_node("ScatterND", ["data", "indices", "updates"], ["y"], reduction="max"),
        {"data": _f(4, 6), "indices": np.array([[1], [3]], np.int64), "updates": _f(2, 6)},
        [4, 6],
        18,
    ),
    "gather_nd_batch": (
        helper.make_node("GatherND", ["data", "indices"], ["y"], batch_dims=1),
        {"data": _f(2, 3, 4), "indices": np.array([[[2]], [[0]]], np.int64)},
        [2, 1, 4],
        18,
    ),
    "tensor_scatter_circular": (
        helper.make_node("TensorScatter", ["past_cache", "update", "write_indices"], ["y"], mode="circular"),
        {"past_cache": _f(2, 5, 3), "update": _f(2, 2, 3), "write_indices": np.array([4, 1], np.int64)},
        [2, 5, 3],
        24,
    ),
}


@pytest.mark.parametrize("case", sorted(SM90_CASES))
def test_compiles_to_sm90(tmp_path, case):
    node, feeds, out, opset = SM90_CASES[case]
    tritonnx.compile(_model(node, feeds, out, opset=opset), tmp_path / "art", targets=("sm_90",))
    assert list((tmp_path / "art" / "kernels").glob("*.sm_90.cubin"))
    (source,) = (tmp_path / "art" / "kernels").glob("*.py")
    assert ("# scatter: each output element" in source.read_text()) == case.startswith("scatter")


def test_deprecated_scatter_is_scatter_elements(tmp_path):
    feeds = {"data": _f(2, 5), "indices": np.array([[4, -2]], np.int64), "updates": _f(1, 2)}
    node = helper.make_node("Scatter", ["data", "indices", "updates"], ["y"], axis=1)
    check(tmp_path, node, feeds, [2, 5], opset=10)


def test_constant_indices_checked_at_compile_time(tmp_path):
    feeds = {"data": _f(3, 4), "updates": _f(2, 4)}
    indices = onnx.numpy_helper.from_array(np.array([[2], [-1]], np.int64), "indices")
    node = helper.make_node("ScatterND", ["data", "indices", "updates"], ["y"], reduction="add")
    model = _model(node, feeds, [3, 4])
    model.graph.initializer.append(indices)
    got = tritonnx.compile(model, tmp_path / "ok").run(feeds)["y"]
    np.testing.assert_allclose(got, ort_run(model, feeds)[0], rtol=1e-6)
    model.graph.initializer[0].CopyFrom(onnx.numpy_helper.from_array(np.array([[3], [0]], np.int64), "indices"))
    with pytest.raises(InvalidModelError, match="constant index 3 is out of range"):
        tritonnx.compile(model, tmp_path / "bad")


def test_unchecked_indices_stay_in_bounds(tmp_path):
    # check_indices=False: no IndexError; the bad update is dropped, the rest applies
    feeds = {
        "data": np.zeros((2, 3), np.float32),
        "indices": np.array([[0, 7]], np.int64),
        "updates": np.ones((1, 2), np.float32),
    }
    node = helper.make_node("ScatterElements", ["data", "indices", "updates"], ["y"], axis=1)
    compiled = tritonnx.compile(_model(node, feeds, [2, 3]), tmp_path / "art", check_indices=False)
    np.testing.assert_array_equal(compiled.run(feeds)["y"], [[1, 0, 0], [0, 0, 0]])


@pytest.mark.parametrize("op", ["ScatterElements", "GatherND"])
def test_dynamic_batch(tmp_path, op):
    # a symbolic batch ("b") outside the scattered axis and the index tuples; run at 3 rows
    if op == "ScatterElements":
        node = helper.make_node(op, ["data", "indices", "updates"], ["y"], axis=1, reduction="add")
        ins = [("data", TensorProto.FLOAT, ["b", 5]), ("indices", TensorProto.INT64, ["b", 2])]
        ins.append(("updates", TensorProto.FLOAT, ["b", 2]))
        out = ["b", 5]
        feeds = {"data": _f(3, 5), "indices": np.array([[0, 0], [1, 4], [2, -2]], np.int64), "updates": _f(3, 2)}
    else:
        node = helper.make_node(op, ["data", "indices"], ["y"], batch_dims=1)
        ins, out = [("data", TensorProto.FLOAT, ["b", 5, 2]), ("indices", TensorProto.INT64, ["b", 1])], ["b", 2]
        feeds = {"data": _f(3, 5, 2), "indices": np.array([[0], [4], [-1]], np.int64)}
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info(*i) for i in ins],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, out)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)
    got = tritonnx.compile(model, tmp_path / "art").run(feeds)["y"]
    np.testing.assert_allclose(got, ort_run(model, feeds)[0], rtol=1e-6)
