"""Control flow against onnxruntime. Decided at compile time (tritonnx.importers.control_flow):
an If with a known condition inlined, a Scan of static length and a Loop with a constant trip
count unrolled. Decided by values (tritonnx.compiler.program): If, Loop and Scan as program
steps over compiled sub-artifacts, with their sync points in the plan and the report."""

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import tritonnx
from models import ort_run
from tritonnx.errors import InputError

F = TensorProto.FLOAT


def _model(nodes, inputs, outputs, inits=(), opset=17):
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _check(model, feeds, tmp_path):
    compiled = tritonnx.compile(model, tmp_path / "art")
    got = compiled.run(feeds)
    for (name, value), want in zip(got.items(), ort_run(model, feeds)):
        np.testing.assert_allclose(value, want, rtol=1e-5, atol=1e-5, err_msg=name)
    return compiled


def test_scan_unrolled(tmp_path):
    """A running sum and product over axis 1 of x [3, 4, 2], the scan output stacked on its
    last axis and read backwards: Scan-16's axes and directions."""
    body = helper.make_graph(
        [
            helper.make_node("Add", ["s_in", "x_t"], ["s_out"]),
            helper.make_node("Mul", ["s_out", "x_t"], ["y_t"]),
        ],
        "body",
        [helper.make_tensor_value_info("s_in", F, [3, 2]), helper.make_tensor_value_info("x_t", F, [3, 2])],
        [helper.make_tensor_value_info("s_out", F, [3, 2]), helper.make_tensor_value_info("y_t", F, [3, 2])],
    )
    scan = helper.make_node(
        "Scan",
        ["s0", "x"],
        ["s", "y"],
        body=body,
        num_scan_inputs=1,
        scan_input_axes=[1],
        scan_input_directions=[1],
        scan_output_axes=[-1],
        scan_output_directions=[0],
    )
    model = _model(
        [scan, helper.make_node("Relu", ["y"], ["r"])],
        [helper.make_tensor_value_info("s0", F, [3, 2]), helper.make_tensor_value_info("x", F, [3, 4, 2])],
        [helper.make_tensor_value_info("s", F, [3, 2]), helper.make_tensor_value_info("r", F, [3, 2, 4])],
    )
    rng = np.random.default_rng(0)
    feeds = {
        "s0": rng.standard_normal((3, 2)).astype(np.float32),
        "x": rng.standard_normal((3, 4, 2)).astype(np.float32),
    }
    compiled = _check(model, feeds, tmp_path)
    nodes = [n for launch in compiled.plan["launches"] for n in launch["nodes"]]
    assert any(n.startswith("Scan_0/3/") for n in nodes)  # the unrolled copies name their iteration


def test_if_with_a_condition_from_static_shapes_is_inlined(tmp_path):
    """If(Shape(x)[0] > 2): known at compile time for x [4, 3]: only the then-branch runs."""
    then_branch = helper.make_graph(
        [helper.make_node("Mul", ["x", "two"], ["t"])],
        "then",
        [],
        [helper.make_tensor_value_info("t", F, [4, 3])],
        [numpy_helper.from_array(np.float32(2.0), "two")],
    )
    else_branch = helper.make_graph(
        [helper.make_node("Neg", ["x"], ["e"])], "else", [], [helper.make_tensor_value_info("e", F, [4, 3])]
    )
    nodes = [
        helper.make_node("Shape", ["x"], ["shape"], start=0, end=1),
        helper.make_node("Greater", ["shape", "limit"], ["big"]),
        helper.make_node("Squeeze", ["big"], ["cond"]),
        helper.make_node("If", ["cond"], ["z"], then_branch=then_branch, else_branch=else_branch),
        helper.make_node("Add", ["z", "x"], ["y"]),
    ]
    model = _model(
        nodes,
        [helper.make_tensor_value_info("x", F, [4, 3])],
        [helper.make_tensor_value_info("y", F, [4, 3])],
        [numpy_helper.from_array(np.array([2], np.int64), "limit")],
    )
    x = np.random.default_rng(1).standard_normal((4, 3)).astype(np.float32)
    compiled = _check(model, {"x": x}, tmp_path)
    assert len(compiled.plan["launches"]) == 1  # the branch fused with what follows it


def _loop(trip_input: bool):
    body = helper.make_graph(
        [
            helper.make_node("Identity", ["cond_in"], ["cond_out"]),
            helper.make_node("Cast", ["i"], ["i_f"], to=F),
            helper.make_node("Add", ["acc_in", "i_f"], ["acc_out"]),
            helper.make_node("Mul", ["acc_out", "x"], ["step"]),
        ],
        "body",
        [
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
            helper.make_tensor_value_info("acc_in", F, [2, 3]),
        ],
        [
            helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("acc_out", F, [2, 3]),
            helper.make_tensor_value_info("step", F, [2, 3]),
        ],
    )
    inputs = [helper.make_tensor_value_info("x", F, [2, 3]), helper.make_tensor_value_info("acc0", F, [2, 3])]
    inits = [numpy_helper.from_array(np.array(True), "go")]
    if trip_input:
        inputs.append(helper.make_tensor_value_info("trips", TensorProto.INT64, []))
    else:
        inits.append(numpy_helper.from_array(np.array(3, np.int64), "trips"))
    return _model(
        [helper.make_node("Loop", ["trips", "go", "acc0"], ["acc", "steps"], name="accumulate", body=body)],
        inputs,
        [helper.make_tensor_value_info("acc", F, [2, 3]), helper.make_tensor_value_info("steps", F, [3, 2, 3])],
        inits,
    )


def test_loop_with_a_constant_trip_count_is_unrolled(tmp_path):
    rng = np.random.default_rng(2)
    feeds = {
        "x": rng.standard_normal((2, 3)).astype(np.float32),
        "acc0": rng.standard_normal((2, 3)).astype(np.float32),
    }
    _check(_loop(trip_input=False), feeds, tmp_path)


def test_loop_with_a_trip_count_from_the_inputs_runs_as_a_program(tmp_path, capsys):
    """The trip count is an input: the Loop is a program step over its compiled body, run
    at two trip counts from one artifact; the plan and the report list its sync point."""
    from tritonnx.compiler import report

    model = _loop(trip_input=True)
    compiled = tritonnx.compile(model, tmp_path / "art")
    assert compiled.plan["program"] and [s["step"] for s in compiled.plan["steps"]] == ["loop"]
    assert len(compiled.plan["host_reads"]) == 1 and compiled.plan["host_reads"][0].startswith("accumulate:")
    rng = np.random.default_rng(3)
    for trips in (3, 1, 0):  # no iteration: the initial value and an empty scan output
        feeds = {
            "x": rng.standard_normal((2, 3)).astype(np.float32),
            "acc0": rng.standard_normal((2, 3)).astype(np.float32),
            "trips": np.array(trips, np.int64),
        }
        got = compiled.run(feeds)
        acc, steps = ort_run(model, feeds)
        np.testing.assert_allclose(got["acc"], acc, rtol=1e-5, atol=1e-6)
        assert got["steps"].shape == (trips, 2, 3)
        np.testing.assert_allclose(got["steps"], steps, rtol=1e-5, atol=1e-6)
    report.report(tmp_path / "art")
    out = capsys.readouterr().out
    assert "1 sync points" in out and "reads its trip count" in out


def test_if_on_a_value_runs_the_branch_it_reads(tmp_path):
    """If(ReduceSum(x) > 0): the condition is data; both branches compiled, each run."""
    then_branch = helper.make_graph(
        [helper.make_node("Mul", ["x", "x"], ["t"])], "then", [], [helper.make_tensor_value_info("t", F, [4, 3])]
    )
    else_branch = helper.make_graph(
        [helper.make_node("Neg", ["x"], ["e"])], "else", [], [helper.make_tensor_value_info("e", F, [4, 3])]
    )
    nodes = [
        helper.make_node("ReduceSum", ["x"], ["total"], keepdims=0),
        helper.make_node("Greater", ["total", "zero"], ["cond"]),
        helper.make_node("If", ["cond"], ["z"], then_branch=then_branch, else_branch=else_branch),
        helper.make_node("Add", ["z", "x"], ["y"]),
    ]
    model = _model(
        nodes,
        [helper.make_tensor_value_info("x", F, [4, 3])],
        [helper.make_tensor_value_info("y", F, [4, 3])],
        [numpy_helper.from_array(np.float32(0.0), "zero")],
    )
    compiled = tritonnx.compile(model, tmp_path / "art")
    assert [s["step"] for s in compiled.plan["steps"]] == ["graph", "if", "graph"]
    x = np.abs(np.random.default_rng(4).standard_normal((4, 3)).astype(np.float32))
    for sign in (1, -1):
        feeds = {"x": sign * x}
        np.testing.assert_allclose(compiled.run(feeds)["y"], ort_run(model, feeds)[0], rtol=1e-6)


def test_scan_of_dynamic_length_runs_as_a_program(tmp_path):
    """The scan axis is a dim_param: not unrolled, the Scan runs its body per element, at
    two lengths from one artifact."""
    body = helper.make_graph(
        [helper.make_node("Add", ["s_in", "x_t"], ["s_out"]), helper.make_node("Relu", ["s_out"], ["y_t"])],
        "body",
        [helper.make_tensor_value_info("s_in", F, [2]), helper.make_tensor_value_info("x_t", F, [2])],
        [helper.make_tensor_value_info("s_out", F, [2]), helper.make_tensor_value_info("y_t", F, [2])],
    )
    model = _model(
        [helper.make_node("Scan", ["s0", "x"], ["s", "y"], body=body, num_scan_inputs=1)],
        [helper.make_tensor_value_info("s0", F, [2]), helper.make_tensor_value_info("x", F, ["T", 2])],
        [helper.make_tensor_value_info("s", F, [2]), helper.make_tensor_value_info("y", F, ["T", 2])],
    )
    compiled = tritonnx.compile(model, tmp_path / "art")
    assert [s["step"] for s in compiled.plan["steps"]] == ["scan"] and compiled.plan["host_reads"] == []
    rng = np.random.default_rng(5)
    for length in (3, 5):
        feeds = {
            "s0": rng.standard_normal(2).astype(np.float32),
            "x": rng.standard_normal((length, 2)).astype(np.float32),
        }
        got = compiled.run(feeds)
        for name, want in zip(("s", "y"), ort_run(model, feeds)):
            np.testing.assert_allclose(got[name], want, rtol=1e-5, atol=1e-6, err_msg=name)


def test_if_whose_branches_return_sequences(tmp_path):
    """Each branch is a program of host steps; the If returns the branch's sequence."""
    then_branch = helper.make_graph(
        [helper.make_node("SequenceConstruct", ["x"], ["t"])],
        "then",
        [],
        [helper.make_tensor_sequence_value_info("t", F, [2])],
    )
    else_branch = helper.make_graph(
        [helper.make_node("SequenceConstruct", ["x", "x"], ["e"])],
        "else",
        [],
        [helper.make_tensor_sequence_value_info("e", F, [2])],
    )
    model = _model(
        [helper.make_node("If", ["c"], ["s"], name="pick", then_branch=then_branch, else_branch=else_branch)],
        [helper.make_tensor_value_info("c", TensorProto.BOOL, []), helper.make_tensor_value_info("x", F, [2])],
        [helper.make_tensor_sequence_value_info("s", F, [2])],
    )
    compiled = tritonnx.compile(model, tmp_path / "art")
    x = np.array([1.5, -2.0], np.float32)
    for c in (True, False):
        got = compiled.run({"c": np.array(c), "x": x})["s"]
        assert isinstance(got, list) and len(got) == (1 if c else 2)
        for a in got:
            np.testing.assert_array_equal(a, x)


def test_sequences_and_optionals_are_host_values(tmp_path):
    """SplitToSequence, SequenceInsert, SequenceAt at a run-time position, SequenceLength,
    ConcatFromSequence and an optional: host steps of a program, against onnxruntime; a
    sequence output comes back as a list of arrays; a position outside the sequence raises
    IndexError naming the node."""
    i64 = TensorProto.INT64
    nodes = [
        helper.make_node("SplitToSequence", ["x"], ["parts"], axis=0, keepdims=0),
        helper.make_node("Relu", ["x"], ["r"]),
        helper.make_node("Slice", ["r", "s0", "s1"], ["row"]),
        helper.make_node("Squeeze", ["row", "s0"], ["row1"]),
        helper.make_node("SequenceInsert", ["parts", "row1"], ["more"]),
        helper.make_node("SequenceAt", ["more", "pos"], ["picked"], name="pick"),
        helper.make_node("Mul", ["picked", "two"], ["y"]),
        helper.make_node("SequenceLength", ["more"], ["n"]),
        helper.make_node("ConcatFromSequence", ["more"], ["stacked"], axis=0, new_axis=1),
        helper.make_node("Optional", ["y"], ["maybe"]),
        helper.make_node("OptionalHasElement", ["maybe"], ["has"]),
    ]
    model = _model(
        nodes,
        [helper.make_tensor_value_info("x", F, [3, 4]), helper.make_tensor_value_info("pos", i64, [])],
        [
            helper.make_tensor_value_info("y", F, [4]),
            helper.make_tensor_value_info("n", i64, []),
            helper.make_tensor_value_info("stacked", F, [4, 4]),
            helper.make_tensor_value_info("has", TensorProto.BOOL, []),
            helper.make_tensor_sequence_value_info("more", F, [4]),
        ],
        [
            numpy_helper.from_array(np.float32(2.0), "two"),
            numpy_helper.from_array(np.array([0], np.int64), "s0"),
            numpy_helper.from_array(np.array([1], np.int64), "s1"),
        ],
    )
    compiled = tritonnx.compile(model, tmp_path / "art")
    assert "host" in {s["step"] for s in compiled.plan["steps"]}
    x = np.random.default_rng(6).standard_normal((3, 4)).astype(np.float32)
    for pos in (1, -1):
        feeds = {"x": x, "pos": np.array(pos, np.int64)}
        got = compiled.run(feeds)
        want = dict(zip(["y", "n", "stacked", "has", "more"], ort_run(model, feeds)))
        for name in ("y", "n", "stacked", "has"):
            np.testing.assert_allclose(got[name], want[name], rtol=1e-6, err_msg=name)
        assert isinstance(got["more"], list) and len(got["more"]) == 4
        for a, b in zip(got["more"], want["more"]):
            np.testing.assert_allclose(a, b, rtol=1e-6)
    with pytest.raises(IndexError, match=r"node 'pick' \(SequenceAt\): position 4 is out of range \[-4, 3\]"):
        compiled.run({"x": x, "pos": np.array(4, np.int64)})


def test_non_max_suppression_then_gather(tmp_path):
    """NonMaxSuppression (a host step: its output size follows the scores) and the boxes it
    keeps gathered by a kernel, against onnxruntime at two score sets."""
    i64 = TensorProto.INT64
    nodes = [
        helper.make_node("NonMaxSuppression", ["boxes", "scores", "top", "iou", "min_score"], ["sel"], name="nms"),
        helper.make_node("Gather", ["sel", "col"], ["box_index"], axis=1),
        helper.make_node("Squeeze", ["boxes", "zero"], ["flat"]),
        helper.make_node("Gather", ["flat", "box_index"], ["kept"], axis=0),
    ]
    model = _model(
        nodes,
        [helper.make_tensor_value_info("boxes", F, [1, 6, 4]), helper.make_tensor_value_info("scores", F, [1, 1, 6])],
        [helper.make_tensor_value_info("sel", i64, ["n", 3]), helper.make_tensor_value_info("kept", F, ["n", 4])],
        [
            numpy_helper.from_array(np.array([4], np.int64), "top"),
            numpy_helper.from_array(np.array([0.5], np.float32), "iou"),
            numpy_helper.from_array(np.array([0.2], np.float32), "min_score"),
            numpy_helper.from_array(np.array(2, np.int64), "col"),
            numpy_helper.from_array(np.array([0], np.int64), "zero"),
        ],
    )
    compiled = tritonnx.compile(model, tmp_path / "art")
    assert any(r.startswith("nms:") for r in compiled.plan["host_reads"])
    boxes = np.array(
        [[[0, 0, 1, 1], [0, 0.1, 1, 1.1], [0, -0.1, 1, 0.9], [0, 10, 1, 11], [0, 10.1, 1, 11.1], [0, 100, 1, 101]]],
        np.float32,
    )
    counts = set()
    for scores in ([0.9, 0.8, 0.7, 0.6, 0.95, 0.5], [0.3, 0.9, 0.1, 0.15, 0.1, 0.4]):
        feeds = {"boxes": boxes, "scores": np.array(scores, np.float32).reshape(1, 1, 6)}
        got = compiled.run(feeds)
        sel, kept = ort_run(model, feeds)
        counts.add(len(sel))
        np.testing.assert_array_equal(got["sel"], sel)
        np.testing.assert_array_equal(got["kept"], kept)
    assert counts == {3, 2}  # three clusters; one under the score threshold
    # nothing kept: the steps after it run at a size of 0 and give empty results, as onnxruntime
    feeds = {"boxes": boxes, "scores": np.full((1, 1, 6), 0.1, np.float32)}
    got = compiled.run(feeds)
    for name, want in zip(("sel", "kept"), ort_run(model, feeds)):
        assert got[name].shape == want.shape == (0, 3 if name == "sel" else 4)


def test_scan_outputs_are_written_in_place(tmp_path, monkeypatch):
    """A Scan's outputs stacked on axis 0 are written by the body's kernels into their slices
    of the result (`CompiledModel.run(into=...)`), not stacked after: every step after the
    first writes directly where its slice is aligned, and nothing calls torch.stack."""
    import torch

    from tritonnx.runtime import CompiledModel

    body = helper.make_graph(
        [helper.make_node("Add", ["s_in", "x_t"], ["s_out"]), helper.make_node("Relu", ["s_out"], ["y_t"])],
        "body",
        [helper.make_tensor_value_info("s_in", F, [4]), helper.make_tensor_value_info("x_t", F, [4])],
        [helper.make_tensor_value_info("s_out", F, [4]), helper.make_tensor_value_info("y_t", F, [4])],
    )
    model = _model(
        [helper.make_node("Scan", ["s0", "x"], ["s", "y"], body=body, num_scan_inputs=1, scan_input_directions=[1])],
        [helper.make_tensor_value_info("s0", F, [4]), helper.make_tensor_value_info("x", F, ["T", 4])],
        [helper.make_tensor_value_info("s", F, [4]), helper.make_tensor_value_info("y", F, ["T", 4])],
    )
    compiled = tritonnx.compile(model, tmp_path / "art")
    direct = []
    into = CompiledModel._into

    def spy(self, plan, wanted):
        found = into(self, plan, wanted)
        direct.append(len(found))
        return found

    monkeypatch.setattr(CompiledModel, "_into", spy)
    monkeypatch.setattr(torch, "stack", lambda *a, **k: pytest.fail("torch.stack called"))
    rng = np.random.default_rng(6)
    feeds = {"s0": rng.standard_normal(4).astype(np.float32), "x": rng.standard_normal((5, 4)).astype(np.float32)}
    got = compiled.run(feeds)
    for name, want in zip(("s", "y"), ort_run(model, feeds)):
        np.testing.assert_allclose(got[name], want, rtol=1e-6, atol=1e-6)
    assert direct == [0, 1, 1, 1, 1]  # the first step gives the shape; 16-byte slices after it


def test_run_into_a_misaligned_view_copies(tmp_path):
    """`run(into=...)` with a view whose data is not aligned for the cubins: the kernels
    write their own buffer and the result is copied into the view; a wrong shape is an
    InputError naming the output."""
    import torch

    model = _model(
        [helper.make_node("Relu", ["x"], ["y"])],
        [helper.make_tensor_value_info("x", F, [3])],
        [helper.make_tensor_value_info("y", F, [3])],
    )
    compiled = tritonnx.compile(model, tmp_path / "art")
    x = np.array([-1.0, 2.0, -3.0], np.float32)
    base = torch.zeros(8)
    view = base[1:4]  # 4 bytes past an aligned start
    out = compiled.run({"x": torch.from_numpy(x)}, into={"y": view})
    assert out["y"] is view and view.tolist() == [0.0, 2.0, 0.0] and base[0] == 0 and base[4] == 0
    with pytest.raises(InputError, match="into: output 'y' is float32\\[3\\]"):
        compiled.run({"x": x}, into={"y": torch.zeros(4)})
