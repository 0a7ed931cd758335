"""The memory planner on small plans, and the arena at run time."""

import numpy as np
from onnx import TensorProto, helper

import tritonnx
from models import ort_run
from tritonnx.runtime.memory_plan import ALIGNMENT, plan_memory


def _plan(sizes: dict, launches: list, outputs=()):
    """A plan of float32 buffers `sizes` {name: elements}; launches [(inputs, output, roles)]."""
    bufs = [{"name": "x", "kind": "input", "shape": [1], "dtype": "float32"}]
    bufs += [
        {"name": n, "kind": "output" if n in outputs else "intermediate", "shape": [s], "dtype": "float32"}
        for n, s in sizes.items()
    ]
    return {
        "buffers": bufs,
        "launches": [{"buffers": list(ins) + [out], "roles": list(roles) + ["out"]} for ins, out, roles in launches],
    }


def _overlap(a, b):
    return a[0] < b[1] and b[0] < a[1]


def _check_no_conflicts(plan, memory):
    sizes = {b["name"]: b["shape"][0] * 4 for b in plan["buffers"]}
    live = {}
    for i, launch in enumerate(plan["launches"]):
        for n in launch["buffers"]:
            if n in memory["offsets"]:
                live.setdefault(n, [i, i])[1] = i
    shared = {tuple(p) for p in memory["in_place"]}
    names = list(memory["offsets"])
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            if (a, b) in shared or (b, a) in shared:
                continue
            if live[a][0] <= live[b][1] and live[b][0] <= live[a][1]:
                ra = (memory["offsets"][a], memory["offsets"][a] + sizes[a])
                rb = (memory["offsets"][b], memory["offsets"][b] + sizes[b])
                assert not _overlap(ra, rb), (a, b)


def test_chain_reuses_two_slots():
    """x -> t1 -> t2 -> t3 -> t4 (out): at most two intermediates are alive at once."""
    n = 1024
    plan = _plan(
        {"t1": n, "t2": n, "t3": n, "y": n},
        [(["x"], "t1", [""]), (["t1"], "t2", [""]), (["t2"], "t3", [""]), (["t3"], "y", [""])],
        outputs=["y"],
    )
    mem = plan_memory(plan)
    assert mem["liveness_bytes"] == 2 * 4 * n
    assert mem["arena_bytes"] == 2 * 4 * n
    assert mem["no_reuse_bytes"] == 3 * 4 * n
    assert "y" not in mem["offsets"]  # graph outputs are the caller's
    _check_no_conflicts(plan, mem)


def test_in_place_elementwise():
    """A pointwise launch whose input dies there and is read at the output's index writes
    over it: the chain then needs one slot."""
    n = 1000
    plan = _plan(
        {"t1": n, "t2": n, "t3": n, "y": n},
        [(["x"], "t1", [""]), (["t1"], "t2", ["e"]), (["t2"], "t3", ["e"]), (["t3"], "y", [""])],
        outputs=["y"],
    )
    mem = plan_memory(plan)
    assert mem["in_place"] == [["t2", "t1"], ["t3", "t2"]]
    assert mem["offsets"]["t1"] == mem["offsets"]["t2"] == mem["offsets"]["t3"]
    assert mem["arena_bytes"] == -(-4 * n // ALIGNMENT) * ALIGNMENT
    # not in place when the input lives on, or is read through an index map (role "")
    plan2 = _plan(
        {"t1": n, "t2": n, "t3": n, "y": n},
        [(["x"], "t1", [""]), (["t1"], "t2", ["e"]), (["t1", "t2"], "t3", ["", "e"]), (["t3"], "y", [""])],
        outputs=["y"],
    )
    mem2 = plan_memory(plan2)
    assert ["t2", "t1"] not in mem2["in_place"]
    _check_no_conflicts(plan2, mem2)


def test_greedy_by_size_fills_gaps():
    """A big buffer that dies early leaves a gap that two later small ones share."""
    plan = _plan(
        {"big": 4096, "a": 1024, "b": 1024, "c": 2048, "y": 8},
        [
            (["x"], "big", [""]),
            (["big"], "c", [""]),
            (["c"], "a", [""]),
            (["a", "c"], "b", ["", ""]),
            (["b", "c"], "y", ["", ""]),
        ],
        outputs=["y"],
    )
    mem = plan_memory(plan)
    _check_no_conflicts(plan, mem)
    assert mem["arena_bytes"] == mem["liveness_bytes"] == 4 * (4096 + 2048)


def test_arena_reused_across_runs(tmp_path):
    """A residual chain runs twice from one arena with the right numbers each time."""
    nodes = [
        helper.make_node("Relu", ["x"], ["a"]),
        helper.make_node("Softmax", ["a"], ["s"]),
        helper.make_node("Sigmoid", ["s"], ["t"]),
        helper.make_node("Softmax", ["t"], ["u"]),
        helper.make_node("Add", ["u", "s"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [8, 32])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [8, 32])],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=10)
    model = tritonnx.compile(proto, tmp_path / "art")
    assert model.plan["memory"]["arena_bytes"] > 0
    rng = np.random.default_rng(0)
    for _ in range(2):
        x = rng.standard_normal((8, 32)).astype(np.float32)
        np.testing.assert_allclose(model(x), ort_run(proto, {"x": x})[0], rtol=1e-5, atol=1e-6)
