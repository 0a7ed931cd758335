"""Indices from data are checked (issue 11, memory safety): a Gather or GatherElements
index out of range raises IndexError naming the node, the index and the valid range, as
onnxruntime refuses it ("indices element out of data bounds"); loads are masked, so no
value reads outside a buffer; `check_indices=False` drops the check but not the masking."""

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import tritonnx
from models import ort_run
from tritonnx.compiler import cli

TABLE = np.arange(32, dtype=np.float32).reshape(4, 8)


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TRITONNX_CACHE_DIR", str(tmp_path / "cache"))


def _model(nodes, inputs, outputs, inits=()) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _embedding(n_ids=3, then="Relu", dtype=TensorProto.INT64) -> onnx.ModelProto:
    """Token ids [n_ids] -> Gather of a [4, 8] table (node "embed") -> Relu."""
    nodes = [helper.make_node("Gather", ["table", "ids"], ["y"], name="embed", axis=0)]
    if then:
        nodes.append(helper.make_node(then, ["y"], ["z"], name="act"))
    return _model(
        nodes,
        [helper.make_tensor_value_info("ids", dtype, [n_ids])],
        [helper.make_tensor_value_info("z" if then else "y", TensorProto.FLOAT, [n_ids, 8])],
        [numpy_helper.from_array(TABLE, "table")],
    )


def _raises(model, feeds, node, index, low, high, op="Gather"):
    with pytest.raises(IndexError) as info:
        model.run(feeds)
    text = str(info.value)
    assert f"'{node}' ({op})" in text and f"index {index} " in text and f"[{low}, {high}]" in text, text


def test_embedding_in_range_matches_onnxruntime():
    proto = _embedding()
    model = tritonnx.compile(proto)
    ids = np.array([0, 3, -4], np.int64)
    np.testing.assert_array_equal(model.run({"ids": ids})["z"], ort_run(proto, {"ids": ids})[0])
    assert model.plan["checks"] == [{"buffer": "c0", "node": "embed", "op_type": "Gather", "axis": 0, "size": 4}]
    kinds = {b["name"]: b["kind"] for b in model.plan["buffers"]}
    assert kinds["c0"] == "check" and "c0" not in model.plan["memory"]["offsets"]
    assert model.launches[0]["roles"][-2:] == ["check", "out"]


def test_embedding_out_of_range_raises():
    model = tritonnx.compile(_embedding())
    _raises(model, {"ids": np.array([0, 5, 1], np.int64)}, "embed", 5, -4, 3)
    _raises(model, {"ids": np.array([1_000_000, 0, 0], np.int64)}, "embed", 1000000, -4, 3)  # no segfault
    _raises(model, {"ids": np.array([0, 0, -5], np.int64)}, "embed", -5, -4, 3)
    _raises(model, {"ids": np.array([2**40, 0, 0], np.int64)}, "embed", 2**40, -4, 3)  # not wrapped to 0
    # the check buffer is zeroed per run: a good run after a bad one gives the right rows
    np.testing.assert_array_equal(model.run({"ids": np.array([1, 2, 3], np.int64)})["z"], TABLE[[1, 2, 3]])


def test_int32_ids_and_a_gather_that_is_a_graph_output():
    model = tritonnx.compile(_embedding(then=None, dtype=TensorProto.INT32))
    np.testing.assert_array_equal(model.run({"ids": np.array([3, -1, 0], np.int32)})["y"], TABLE[[3, -1, 0]])
    _raises(model, {"ids": np.array([0, 4, 0], np.int32)}, "embed", 4, -4, 3)
    _raises(model, {"ids": np.array([0, 2**31 - 1, 0], np.int32)}, "embed", 2**31 - 1, -4, 3)


def test_gather_elements_checked():
    f, i64 = TensorProto.FLOAT, TensorProto.INT64
    data = np.arange(12, dtype=np.float32).reshape(3, 4)
    proto = _model(
        [
            helper.make_node("GatherElements", ["data", "idx"], ["y"], name="pick", axis=1),
            helper.make_node("Neg", ["y"], ["z"], name="neg"),
        ],
        [helper.make_tensor_value_info("idx", i64, [3, 2])],
        [helper.make_tensor_value_info("z", f, [3, 2])],
        [numpy_helper.from_array(data, "data")],
    )
    model = tritonnx.compile(proto)
    idx = np.array([[0, 3], [-1, 2], [-4, 1]], np.int64)
    np.testing.assert_array_equal(model.run({"idx": idx})["z"], ort_run(proto, {"idx": idx})[0])
    _raises(model, {"idx": np.array([[0, 3], [4, 2], [0, 1]], np.int64)}, "pick", 4, -4, 3, "GatherElements")
    _raises(
        model, {"idx": np.array([[0, 3], [0, 2], [0, -1_000_000]], np.int64)}, "pick", -1000000, -4, 3, "GatherElements"
    )


def test_gather_feeding_a_matmul_and_two_call_sites():
    """A Gather read by a MatMul (the index map inside the dot loop) and two Gathers of the
    same shape (one kernel, two call sites): each reports its own node."""
    f, i64 = TensorProto.FLOAT, TensorProto.INT64
    rng = np.random.default_rng(0)
    w = rng.standard_normal((8, 5)).astype(np.float32)
    t2 = (TABLE + 100).astype(np.float32)
    proto = _model(
        [
            helper.make_node("Gather", ["table", "ids"], ["e"], name="word", axis=0),
            helper.make_node("Gather", ["table2", "pos"], ["p"], name="position", axis=0),
            helper.make_node("Relu", ["e"], ["re"], name="r1"),
            helper.make_node("Relu", ["p"], ["rp"], name="r2"),
            helper.make_node("MatMul", ["e", "w"], ["m"], name="proj"),
        ],
        [helper.make_tensor_value_info("ids", i64, [3]), helper.make_tensor_value_info("pos", i64, [3])],
        [helper.make_tensor_value_info(n, f, s) for n, s in (("re", [3, 8]), ("rp", [3, 8]), ("m", [3, 5]))],
        [
            numpy_helper.from_array(TABLE, "table"),
            numpy_helper.from_array(t2, "table2"),
            numpy_helper.from_array(w, "w"),
        ],
    )
    model = tritonnx.compile(proto)
    feeds = {"ids": np.array([2, 0, -1], np.int64), "pos": np.array([0, 1, 2], np.int64)}
    for got, want in zip(model(feeds["ids"], feeds["pos"]), ort_run(proto, feeds)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    assert {c["node"] for c in model.plan["checks"]} == {"word", "position"}
    _raises(model, {"ids": np.array([0, 0, 0], np.int64), "pos": np.array([0, 7, 0], np.int64)}, "position", 7, -4, 3)
    _raises(model, {"ids": np.array([0, -9, 0], np.int64), "pos": np.array([0, 1, 0], np.int64)}, "word", -9, -4, 3)


def test_cli_run_reports_a_bad_index_as_a_user_error(tmp_path, capsys):
    path, art, feeds = tmp_path / "m.onnx", tmp_path / "art", tmp_path / "bad.npz"
    onnx.save(_embedding(), str(path))
    np.savez(feeds, ids=np.array([0, 9, 1], np.int64))
    assert cli.main(["compile", str(path), "-o", str(art)]) == 0
    assert cli.main(["run", str(art), "--inputs", str(feeds)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: node 'embed' (Gather): index 9 is out of range [-4, 3]"), err


def test_check_off_masks_loads_and_does_not_raise(tmp_path):
    model = tritonnx.compile(_embedding(), check_indices=False)
    assert "checks" not in model.plan
    assert all(b["kind"] != "check" for b in model.plan["buffers"])
    out = model.run({"ids": np.array([1, 1_000_000, -4], np.int64)})["z"]  # no error, no crash
    np.testing.assert_array_equal(out[[0, 2]], TABLE[[1, 0]])  # the bad row's values are unspecified
    source = (model.path / "kernels" / f"{model.launches[0]['kernel']}.py").read_text()
    assert "check" not in source and "mask=" in source
    # the CLI flag
    path = tmp_path / "m.onnx"
    onnx.save(_embedding(), str(path))
    assert cli.main(["compile", str(path), "-o", str(tmp_path / "art"), "--no-index-check"]) == 0
    assert "checks" not in json.loads((tmp_path / "art" / "plan.json").read_text())


def test_constant_indices_have_no_check_buffer():
    f = TensorProto.FLOAT
    proto = _model(
        [helper.make_node("Gather", ["x", "i"], ["y"], name="take", axis=1), helper.make_node("Relu", ["y"], ["z"])],
        [helper.make_tensor_value_info("x", f, [2, 4])],
        [helper.make_tensor_value_info("z", f, [2, 2])],
        [numpy_helper.from_array(np.array([3, -4], np.int64), "i")],
    )
    model = tritonnx.compile(proto)
    assert "checks" not in model.plan and all(b["kind"] != "check" for b in model.plan["buffers"])
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    np.testing.assert_array_equal(model.run({"x": x})["z"], x[:, [3, 0]])


def test_checked_kernel_compiles_for_sm_90(tmp_path):
    out = tmp_path / "art"
    model = tritonnx.compile(_embedding(), out, targets=("sm_90",))
    launch = model.launches[0]
    assert "check" in launch["roles"] and launch["signature"][launch["roles"].index("check")] == "*i64"
    assert (out / "kernels" / f"{launch['kernel']}.sm_90.cubin").read_bytes()[:4] == b"\x7fELF"


def test_dynamic_sizes_are_checked_at_the_run_size():
    f, i64 = TensorProto.FLOAT, TensorProto.INT64
    proto = _model(
        [helper.make_node("Gather", ["x", "ids"], ["y"], name="pick", axis=1)],
        [helper.make_tensor_value_info("x", f, [2, "n"]), helper.make_tensor_value_info("ids", i64, [3])],
        [helper.make_tensor_value_info("y", f, [2, 3])],
    )
    model = tritonnx.compile(proto)
    assert model.plan["checks"][0]["size"] == "n"
    for n in (5, 11):
        x = np.arange(2 * n, dtype=np.float32).reshape(2, n)
        ids = np.array([n - 1, -n, 0], np.int64)
        np.testing.assert_array_equal(model.run({"x": x, "ids": ids})["y"], x[:, ids])
        _raises(model, {"x": x, "ids": np.array([0, n, 0], np.int64)}, "pick", n, -n, n - 1)


def test_reverse_sequence_lengths_past_the_axis_stay_in_bounds():
    """sequence_lens from data beyond the time axis are clamped to it: no read outside x."""
    f, i64 = TensorProto.FLOAT, TensorProto.INT64
    proto = _model(
        [helper.make_node("ReverseSequence", ["x", "lens"], ["y"], batch_axis=0, time_axis=1)],
        [helper.make_tensor_value_info("x", f, [2, 4]), helper.make_tensor_value_info("lens", i64, [2])],
        [helper.make_tensor_value_info("y", f, [2, 4])],
    )
    model = tritonnx.compile(proto)
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    y = model.run({"x": x, "lens": np.array([1_000_000, 2], np.int64)})["y"]
    np.testing.assert_array_equal(y[1], [5, 4, 6, 7])
    assert set(y[0]) <= set(x.ravel())
