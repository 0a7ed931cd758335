"""The cost model and the bounds on kernels and graphs whose FLOPs and bytes are counted by
hand, and the `tritonnx report` command."""

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import tritonnx
from tritonnx.compiler import cli
from tritonnx.compiler.cost import bounds, launch_cost, summarize
from tritonnx.importers.onnx import prepare
from tritonnx.target import TARGETS

F32 = TensorProto.FLOAT


def _model(nodes, inputs, outputs, inits=()):
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info(n, F32, s) for n, s in inputs],
        [helper.make_tensor_value_info(n, F32, s) for n, s in outputs],
        [numpy_helper.from_array(a, n) for n, a in inits],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=10)


def test_gemm_flops_and_bytes(tmp_path):
    """Y = Relu(A @ B + C) with A [64, 32], B [32, 48]: 2*64*48*32 FLOPs for the dot plus one
    per output for the bias add and one for the Relu; bytes: A, B, C read once, Y written
    once (all fit in L2)."""
    rng = np.random.default_rng(0)
    b, c = rng.standard_normal((32, 48)).astype(np.float32), rng.standard_normal(48).astype(np.float32)
    model = _model(
        [
            helper.make_node("MatMul", ["a", "b"], ["m"]),
            helper.make_node("Add", ["m", "c"], ["s"]),
            helper.make_node("Relu", ["s"], ["y"]),
        ],
        [("a", [64, 32])],
        [("y", [64, 48])],
        [("b", b), ("c", c)],
    )
    m = tritonnx.compile(model, tmp_path / "art")
    (launch,) = m.launches
    assert launch["flops"] == 2 * 64 * 48 * 32 + 2 * 64 * 48
    cost = launch_cost(launch, {x["name"]: x for x in m.plan["buffers"]})
    assert cost["bytes"] == 4 * (64 * 32 + 32 * 48 + 48 + 64 * 48)
    roles = dict(zip(launch["buffers"], launch["roles"]))
    assert sorted(roles.values()) == sorted(["a", "b", "", "out"])
    h100 = TARGETS["sm_90"]
    assert cost["time_s"] == pytest.approx(max(cost["flops"] / h100.fp32, cost["bytes"] / h100.dram_bytes_s))
    assert cost["bound"] == "memory"  # 2*64*48*32 FLOPs on 29 kB is far below the ridge point


def test_operands_bigger_than_l2_are_reread():
    """A GEMM reads A once per column of output blocks and B once per row, when they miss L2."""
    big = {"name": "a", "shape": [8192, 4096], "dtype": "float32"}  # 128 MiB
    buffers = {
        "a": big,
        "b": {"name": "b", "shape": [4096, 256], "dtype": "float32"},
        "y": {"name": "y", "shape": [8192, 256], "dtype": "float32"},
    }
    launch = {
        "grid": [64, 4, 1],
        "buffers": ["a", "b", "y"],
        "roles": ["a", "b", "out"],
        "flops": 2 * 8192 * 256 * 4096,
    }
    cost = launch_cost(launch, buffers)
    assert cost["bytes"] == 4 * (8192 * 4096 * 4 + 4096 * 256 + 8192 * 256)  # B (4 MiB) fits L2: read once
    assert launch_cost({**launch, "grid": [64, 1, 1]}, buffers)["bytes"] == 4 * (8192 * 4096 + 4096 * 256 + 8192 * 256)
    assert cost["bound"] == "compute"


def test_bounds_by_hand():
    """Conv -> Relu -> MaxPool, and a residual Add: the bounds counted by hand."""
    w = np.ones((8, 4, 3, 3), np.float32)
    model = _model(
        [
            helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
            helper.make_node("Relu", ["c"], ["r"]),
            helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
            helper.make_node("Add", ["p", "p"], ["y"]),
        ],
        [("x", [1, 4, 8, 8])],
        [("y", [1, 8, 4, 4])],
        [("w", w)],
    )
    b = bounds(prepare(model))
    x, wb, y = 4 * 256, 4 * w.size, 4 * 128
    assert b["lower_bytes"] == x + wb + y
    # the Conv's value leaves through Relu (8*8*8 floats), written once, read by MaxPool;
    # MaxPool's value flows into the Add, which is the graph output
    assert b["materialization_bytes"] == x + wb + y + 2 * 4 * 512
    # one kernel per node: Conv reads x, w, writes c; Relu; MaxPool; Add reads p (once)
    assert b["unfused_bytes"] == (x + wb + 2048) + (2048 + 2048) + (2048 + 512) + (512 + 512)
    assert b["unfused_kernels"] == 4


def test_report_cli(tmp_path, capsys):
    model = _model(
        [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Softmax", ["r"], ["y"])],
        [("x", [4, 16])],
        [("y", [4, 16])],
    )
    onnx.save(model, tmp_path / "m.onnx")
    assert cli.main(["compile", str(tmp_path / "m.onnx"), "-o", str(tmp_path / "art")]) == 0
    capsys.readouterr()
    assert cli.main(["report", str(tmp_path / "art"), "--format", "json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    totals = summary["totals"]
    assert totals["launches"] == 1  # the Relu is a prologue of the Softmax row
    assert totals["bytes"] == 2 * 4 * 64 == totals["lower_bytes"]
    assert summary["launches"][0]["nodes"] == ["n0", "n1"] or len(summary["launches"][0]["nodes"]) == 2
    assert cli.main(["report", str(tmp_path / "art"), "--gpu", "A100"]) == 0
    out = capsys.readouterr().out
    assert "A100" in out and "materialization bound" in out and "liveness lower bound" in out
    assert cli.main(["report", str(tmp_path / "nothing")]) == 1


def test_summary_of_resnet(tmp_path):
    """ResNet-50 (light, batch 1): within the bounds the issue sets."""
    from models import light_model_path

    m = tritonnx.compile(light_model_path("resnet50"), tmp_path / "art")
    t = summarize(m.plan)["totals"]
    assert t["lower_bytes"] <= t["materialization_bytes"] < t["unfused_bytes"]
    assert t["bytes"] <= 1.2 * t["materialization_bytes"]
    assert t["peak_bytes"] <= 1.1 * t["liveness_bytes"]
    assert t["peak_bytes"] < t["no_reuse_bytes"]


def test_report_says_why_attention_did_not_fuse(tmp_path, capsys):
    """Softmax(Q K^T) V whose probabilities are also a graph output cannot be one flash
    kernel: it compiles unfused and the report says why."""
    rng = np.random.default_rng(0)
    model = _model(
        [
            helper.make_node("MatMul", ["q", "kt"], ["s"]),
            helper.make_node("Softmax", ["s"], ["p"], axis=-1),
            helper.make_node("MatMul", ["p", "v"], ["y"]),
        ],
        [("q", [8, 16]), ("kt", [16, 8]), ("v", [8, 16])],
        [("y", [8, 16]), ("p", [8, 8])],
    )
    onnx.save(model, tmp_path / "m.onnx")
    assert cli.main(["compile", str(tmp_path / "m.onnx"), "-o", str(tmp_path / "art")]) == 0
    m = tritonnx.CompiledModel(tmp_path / "art")
    feeds = {n: rng.standard_normal(s).astype(np.float32) for n, s in (("q", [8, 16]), ("kt", [16, 8]), ("v", [8, 16]))}
    from models import ort_run

    np.testing.assert_allclose(m.run(feeds)["y"], ort_run(model, feeds)[0], rtol=1e-5, atol=1e-5)
    assert [launch["kind"] for launch in m.launches] == ["mat_mul", "softmax", "mat_mul"]
    capsys.readouterr()
    assert cli.main(["report", str(tmp_path / "art")]) == 0
    assert (
        "not fused as attention: the Softmax's result is not only the left operand of a MatMul"
        in capsys.readouterr().out
    )
