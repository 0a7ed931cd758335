"""Multi-output kernels (the fuse pass's second outputs) end to end against onnxruntime,
and the memory planner's rule for them."""

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

import tritonnx
from models import light_model_path, ort_run
from tritonnx.runtime.memory_plan import plan_memory


def _branches_model(seed: int = 0) -> onnx.ModelProto:
    """Inception-like: three 1x1 Convs of one input (merged into one by horizontal fusion),
    two of them followed by a per-channel Mul, Add and Relu that are graph outputs, the
    third by a MaxPool; and a 3x3 Conv read by a GlobalAveragePool and by a Sigmoid gate
    (times a per-channel constant) that is a graph output."""
    rng = np.random.default_rng(seed)
    inits, nodes = [], []

    def const(name, shape, scale=1.0):
        inits.append(numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name))
        return name

    def conv(name, cout, k):
        w, b = const(f"{name}_w", (cout, 8, k, k), 0.3), const(f"{name}_b", (cout,))
        nodes.append(helper.make_node("Conv", ["x", w, b], [name], name=name, kernel_shape=[k, k], pads=[k // 2] * 4))
        return name

    outputs = []
    for name, cout in (("b1", 4), ("b2", 6)):
        conv(name, cout, 1)
        nodes.append(helper.make_node("Mul", [name, const(f"{name}_s", (1, cout, 1, 1))], [f"{name}_m"]))
        nodes.append(helper.make_node("Add", [f"{name}_m", const(f"{name}_t", (1, cout, 1, 1))], [f"{name}_a"]))
        nodes.append(helper.make_node("Relu", [f"{name}_a"], [f"{name}_out"]))
        outputs.append((f"{name}_out", [1, cout, 10, 10]))
    conv("b3", 5, 1)
    nodes.append(helper.make_node("MaxPool", ["b3"], ["pooled"], kernel_shape=[2, 2], strides=[2, 2]))
    outputs.append(("pooled", [1, 5, 5, 5]))
    conv("d", 3, 3)
    nodes.append(helper.make_node("GlobalAveragePool", ["d"], ["gap"]))
    nodes.append(helper.make_node("Sigmoid", ["d"], ["d_sig"]))
    nodes.append(helper.make_node("Mul", ["d_sig", const("g", (1, 3, 1, 1))], ["gate"]))
    outputs += [("gap", [1, 3, 1, 1]), ("gate", [1, 3, 10, 10])]
    graph = helper.make_graph(
        nodes,
        "branches",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 10, 10])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in outputs],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=10)


def test_second_outputs_match_onnxruntime(tmp_path):
    proto = _branches_model()
    model = tritonnx.compile(proto, tmp_path / "art")
    x = np.random.default_rng(1).standard_normal((1, 8, 10, 10)).astype(np.float32)
    got = model.run({"x": x})
    for name, ref in zip([o.name for o in proto.graph.output], ort_run(proto, {"x": x})):
        np.testing.assert_allclose(got[name], ref, rtol=1e-5, atol=1e-5, err_msg=name)
    # the merged 1x1 Conv stores its result and both branches' (over their channel windows),
    # the 3x3 Conv its result and the gate: 4 launches, not 7
    outs = [launch["roles"].count("out") for launch in model.launches]
    assert len(model.launches) == 4
    assert sorted(outs) == [1, 1, 2, 3]


def test_memory_plan_multi_output_in_place_only_last():
    """A multi-output launch may store its last output over an input that dies with it
    (every load precedes that store), never an earlier one; and only over an input of the
    same shape."""
    f32 = "float32"
    plan = {
        "buffers": [
            {"name": "x", "kind": "input", "shape": [8], "dtype": f32},
            {"name": "t", "kind": "intermediate", "shape": [8], "dtype": f32},
            {"name": "u", "kind": "intermediate", "shape": [8], "dtype": f32},
            {"name": "v", "kind": "intermediate", "shape": [8], "dtype": f32},
            {"name": "w", "kind": "intermediate", "shape": [2, 4], "dtype": f32},
            {"name": "y", "kind": "output", "shape": [8], "dtype": f32},
        ],
        "launches": [
            {"buffers": ["x", "t"], "roles": ["", "out"]},
            {"buffers": ["t", "u", "v"], "roles": ["e", "out", "out"]},
            {"buffers": ["u", "v", "w"], "roles": ["e", "e", "out"]},
            {"buffers": ["w", "y"], "roles": ["", "out"]},
        ],
    }
    mem = plan_memory(plan)
    assert ["v", "t"] in mem["in_place"]  # the last output over the dying input
    assert not any(out in ("u", "w") for out, _ in mem["in_place"])  # not first; not another shape


def test_inception_v2_branches_are_second_outputs(tmp_path):
    """Inception v2's seven branches that scale, shift and Relu a Slice of a merged 1x1 Conv
    and feed a Concat are second outputs of that Conv's kernel: 66 launches, not 73 (the
    arithmetic of such kernels is test_second_outputs_match_onnxruntime's)."""
    model = tritonnx.compile(light_model_path("inception_v2"), tmp_path / "art")
    multi = [launch for launch in model.launches if launch["roles"].count("out") > 1]
    assert len(model.launches) == 66
    assert len(multi) == 7 and all(launch["kind"] == "conv" for launch in multi)


def _window_model() -> onnx.ModelProto:
    """Relu(x) [4, 6], Sigmoid of its Slice rows 1..3, columns 2..5, and Neg of that: all
    three graph outputs."""
    nodes = [
        helper.make_node("Relu", ["x"], ["a"]),
        helper.make_node("Slice", ["a", "s", "e"], ["sl"]),
        helper.make_node("Sigmoid", ["sl"], ["b"]),
        helper.make_node("Neg", ["b"], ["c"]),
    ]
    inits = [numpy_helper.from_array(np.array(v, np.int64), n) for n, v in (("s", [1, 2]), ("e", [4, 6]))]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 6])],
        [
            helper.make_tensor_value_info("a", TensorProto.FLOAT, [4, 6]),
            helper.make_tensor_value_info("b", TensorProto.FLOAT, [3, 4]),
            helper.make_tensor_value_info("c", TensorProto.FLOAT, [3, 4]),
        ],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=10)


def test_pointwise_kernel_with_a_window_output(tmp_path):
    """A pointwise kernel's second output over a window: the kernel walks the first
    output's index space and stores the second where lanes fall inside; a third output
    that reads the second lies in the same window."""
    proto = _window_model()
    model = tritonnx.compile(proto, tmp_path / "art")
    x = np.random.default_rng(2).standard_normal((4, 6)).astype(np.float32)
    got = model.run({"x": x})
    for name, ref in zip(("a", "b", "c"), ort_run(proto, {"x": x})):
        np.testing.assert_allclose(got[name], ref, rtol=1e-6, atol=1e-6, err_msg=name)
    assert [launch["roles"].count("out") for launch in model.launches] == [3]


def test_second_output_of_several_ops_keeps_block_order(tmp_path):
    """Fuzz seed 1178: Split's second result is a graph output and is read by a Shrink and
    a Round whose product is a graph output. The Mul joins the Round as its epilogue and
    the Shrink merges in after them; the three move up to the Split's kernel as its second
    output in block order (the Shrink first), not in the order they joined the group, which
    put the Mul before the Shrink it reads ("operand #1 does not dominate this use")."""
    nodes = [
        helper.make_node("Split", ["x", "sizes"], ["a", "b"], axis=0),
        helper.make_node("Shrink", ["b"], ["s"], bias=0.5, lambd=0.5),
        helper.make_node("Round", ["b"], ["r"]),
        helper.make_node("Mul", ["r", "s"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 7])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 7]) for n in "aby"],
        [numpy_helper.from_array(np.array([1, 1], np.int64), "sizes")],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)
    model = tritonnx.compile(proto, tmp_path / "art")
    x = (np.random.default_rng(3).standard_normal((2, 7)) * 3).astype(np.float32)
    got = model.run({"x": x})
    for name, ref in zip("aby", ort_run(proto, {"x": x})):
        np.testing.assert_allclose(got[name], ref, rtol=1e-6, atol=1e-6, err_msg=name)
    assert any(launch["roles"].count("out") > 1 for launch in model.launches)


def test_multi_output_kernels_compile_to_cubin(tmp_path):
    """The multi-output kernels (a Conv with two window outputs, a pointwise kernel with
    three outputs) compile ahead of time to sm_90 cubin."""
    for i, proto in enumerate((_branches_model(), _window_model())):
        out = tmp_path / f"art{i}"
        model = tritonnx.compile(proto, out, targets=("sm_90",))
        multi = [launch for launch in model.launches if launch["roles"].count("out") > 1]
        assert multi
        for launch in multi:
            assert (out / "kernels" / f"{launch['kernel']}.sm_90.cubin").read_bytes()[:4] == b"\x7fELF"
            source = (out / "kernels" / f"{launch['kernel']}.py").read_text()
            assert source.count("tl.store(") == launch["roles"].count("out")


def test_cost_counts_each_elementwise_op_at_its_own_size(tmp_path):
    """FLOPs of a multi-output launch, by hand: the window model's kernel applies Relu to
    4 x 6 elements and Sigmoid and Neg to the 3 x 4 window: 24 + 12 + 12."""
    model = tritonnx.compile(_window_model(), tmp_path / "art")
    assert [launch["flops"] for launch in model.launches] == [24 + 12 + 12]
