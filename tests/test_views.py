"""View ops (index maps on loads) against onnxruntime: each as a graph between two Relus,
so the view sits inside a kernel, and alone, so it is a kernel's output."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import tritonnx
from models import ort_run

F = TensorProto.FLOAT
RNG = np.random.default_rng(2)


def _model(node, in_shape, out_shapes, inits, wrap):
    nodes, x, outs = [node], "x", list(node.output)
    if wrap:
        nodes = [helper.make_node("Relu", ["x"], ["xr"])] + nodes
        node.input[0] = "xr"
        nodes += [helper.make_node("Relu", [o], [o + "_r"]) for o in outs]
        outs = [o + "_r" for o in outs]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info(x, F, in_shape)],
        [helper.make_tensor_value_info(o, F, s) for o, s in zip(outs, out_shapes)],
        [numpy_helper.from_array(v, k) for k, v in inits.items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)], ir_version=10)


def _i64(*v):
    return np.array(v, np.int64)


CASES = {
    "slice_steps": (
        helper.make_node("Slice", ["x", "s", "e", "a", "t"], ["y"]),
        [4, 10],
        [[2, 4]],
        {"s": _i64(1, 8), "e": _i64(4, 0), "a": _i64(0, 1), "t": _i64(2, -2)},
    ),
    "slice_clamped": (
        helper.make_node("Slice", ["x", "s", "e"], ["y"]),
        [4, 6],
        [[3, 6]],
        {"s": _i64(-3, -100), "e": _i64(100, 100)},
    ),
    "pad_constant": (
        helper.make_node("Pad", ["x", "p", "v"], ["y"], mode="constant"),
        [2, 3],
        [[3, 7]],
        {"p": _i64(1, 2, 0, 2), "v": np.array(1.5, np.float32)},
    ),
    "pad_reflect": (
        helper.make_node("Pad", ["x", "p"], ["y"], mode="reflect"),
        [1, 3, 4],
        [[1, 5, 8]],
        {"p": _i64(0, 1, 2, 0, 1, 2)},
    ),
    "pad_edge_axes": (
        helper.make_node("Pad", ["x", "p", "", "a"], ["y"], mode="edge"),
        [2, 3, 4],
        [[2, 3, 7]],
        {"p": _i64(2, 1), "a": _i64(-1)},
    ),
    "pad_wrap": (helper.make_node("Pad", ["x", "p"], ["y"], mode="wrap"), [3, 4], [[5, 6]], {"p": _i64(1, 1, 1, 1)}),
    "expand": (helper.make_node("Expand", ["x", "s"], ["y"]), [3, 1], [[2, 3, 4]], {"s": _i64(2, 1, 4)}),
    "tile": (helper.make_node("Tile", ["x", "r"], ["y"]), [2, 3], [[4, 9]], {"r": _i64(2, 3)}),
    "gather_axis1": (
        helper.make_node("Gather", ["x", "i"], ["y"], axis=1),
        [3, 5],
        [[3, 2, 2]],
        {"i": _i64(0, -1, 4, 2).reshape(2, 2)},
    ),
    "gather_scalar": (
        helper.make_node("Gather", ["x", "i"], ["y"], axis=0),
        [4, 3],
        [[3]],
        {"i": np.array(2, np.int64)},
    ),
    "gather_elements": (
        helper.make_node("GatherElements", ["x", "i"], ["y"], axis=1),
        [3, 4],
        [[3, 2]],
        {"i": _i64(0, 3, 1, 1, -1, 2).reshape(3, 2)},
    ),
    "split": (helper.make_node("Split", ["x", "s"], ["y0", "y1"], axis=1), [2, 5], [[2, 2], [2, 3]], {"s": _i64(2, 3)}),
    "depth_to_space_dcr": (
        helper.make_node("DepthToSpace", ["x"], ["y"], blocksize=2),
        [1, 8, 2, 3],
        [[1, 2, 4, 6]],
        {},
    ),
    "depth_to_space_crd": (
        helper.make_node("DepthToSpace", ["x"], ["y"], blocksize=2, mode="CRD"),
        [1, 8, 2, 3],
        [[1, 2, 4, 6]],
        {},
    ),
    "space_to_depth": (helper.make_node("SpaceToDepth", ["x"], ["y"], blocksize=2), [1, 2, 4, 6], [[1, 8, 2, 3]], {}),
    "trilu_lower": (
        helper.make_node("Trilu", ["x", "k"], ["y"], upper=0),
        [2, 4, 5],
        [[2, 4, 5]],
        {"k": np.array(1, np.int64)},
    ),
    "resize_nearest_half_pixel": (
        helper.make_node("Resize", ["x", "", "s"], ["y"], mode="nearest"),
        [1, 2, 3, 4],
        [[1, 2, 6, 6]],
        {"s": np.array([1, 1, 2, 1.5], np.float32)},
    ),
    "resize_linear_align_corners": (
        helper.make_node(
            "Resize", ["x", "", "", "z"], ["y"], mode="linear", coordinate_transformation_mode="align_corners"
        ),
        [1, 2, 3, 4],
        [[1, 2, 5, 7]],
        {"z": _i64(1, 2, 5, 7)},
    ),
    "trilu_upper": (helper.make_node("Trilu", ["x"], ["y"]), [4, 5], [[4, 5]], {}),
}


@pytest.mark.parametrize("wrap", [False, True], ids=["alone", "fused"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_view(case, wrap, tmp_path):
    node, in_shape, out_shapes, inits = CASES[case]
    node = onnx.NodeProto.FromString(node.SerializeToString())
    model = _model(node, in_shape, out_shapes, inits, wrap)
    x = RNG.standard_normal(in_shape).astype(np.float32)
    got = tritonnx.compile(model, tmp_path / "art").run({"x": x})
    for name, want in zip([o.name for o in model.graph.output], ort_run(model, {"x": x})):
        np.testing.assert_allclose(got[name], want, rtol=1e-6, atol=1e-6)
