"""Nearest Resize picks the source index onnxruntime picks, in every
coordinate_transformation_mode and nearest_mode, with scales and with sizes: the coordinate
in float32 operation by operation (division exact also where Triton's f32 division is not),
a coordinate within 1e-6 of a half rounded as the half. The repros and one graph per mode also compile to sm_90."""

import json

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper, shape_inference

import tritonnx
from models import ort_run
from tritonnx.importers.onnx import parameter_inputs

CTMS = ["half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners", "asymmetric", "tf_crop_and_resize"]
NEAREST = ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"]


def _check(tmp_path, n_in, ctm, nm, sizes=None, scales=None, roi=(0.0, 1.0), want=None, aot=True):
    """x = arange(n_in) as [1, 1, n_in, 1] resized along axis 2: equal to onnxruntime (and to
    `want`, the source indices, where given)."""
    x = np.arange(n_in, dtype=np.float32).reshape(1, 1, n_in, 1)
    inits = {"roi": np.array([0, 0, roi[0], 0, 1, 1, roi[1], 1], np.float32)}
    if sizes is not None:
        inits["sizes"] = np.array([1, 1, sizes, 1], np.int64)
    else:
        inits["scales"] = np.array([1, 1, scales, 1], np.float32)
    ins = ["x", "roi", "scales" if scales is not None else "", "sizes" if sizes is not None else ""]
    node = helper.make_node(
        "Resize",
        ins,
        ["y"],
        mode="nearest",
        coordinate_transformation_mode=ctm,
        nearest_mode=nm,
        extrapolation_value=-1.0,
    )
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, x.shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(v, k) for k, v in inits.items()],
    )
    model = shape_inference.infer_shapes(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)], ir_version=9)
    )
    got = tritonnx.compile(model, tmp_path / "art").run({"x": x})["y"]
    expected = ort_run(model, {"x": x})[0]
    np.testing.assert_array_equal(got, expected)
    if want is not None:
        np.testing.assert_array_equal(got.reshape(-1), np.array(want, np.float32))
    if not aot:
        return
    out = tmp_path / "aot"
    tritonnx.compile(model, out, targets=("sm_90",))
    for launch in json.loads((out / "plan.json").read_text())["launches"]:
        assert (out / "kernels" / f"{launch['kernel']}.sm_90.cubin").read_bytes()[:4] == b"\x7fELF"


def test_asymmetric_round_prefer_ceil_tie_from_sizes(tmp_path):
    """fuzz seed 1614: 7 -> 4 by sizes: 2 / f32(4/7) = 3.4999998 stands for 3.5, which rounds up."""
    _check(tmp_path, 7, "asymmetric", "round_prefer_ceil", sizes=4, want=[0, 2, 4, 5])


def test_align_corners_floor_integer_coordinate(tmp_path):
    """fuzz seed 6839: 8 -> 24 by scale 3: 23 * 7 / 23 is 7 (not 23 * f32(7/23) = 6.9999995)."""
    _check(tmp_path, 8, "align_corners", "floor", scales=3.0, want=[i * 7 // 23 for i in range(24)])


@pytest.mark.parametrize("nm", NEAREST)
@pytest.mark.parametrize("ctm", CTMS)
@pytest.mark.parametrize(
    "n_in,kind,value", [(7, "sizes", 4), (20, "sizes", 6), (28, "scales", 2 / 7), (19, "scales", 1.2), (5, "sizes", 12)]
)
def test_nearest_matches_onnxruntime(tmp_path, ctm, nm, n_in, kind, value):
    roi = (-0.1, 0.9) if ctm == "tf_crop_and_resize" else (0.0, 1.0)
    # the sm_90 build once per mode (the kernels differ only in their constants otherwise)
    _check(tmp_path, n_in, ctm, nm, roi=roi, aot=nm == "round_prefer_ceil" and n_in == 7, **{kind: value})


@pytest.mark.parametrize("mode", ["nearest", "linear"])
@pytest.mark.parametrize("opset", [7, 9])
def test_upsample(opset, mode, tmp_path):
    """Upsample-7 (scales as an attribute) and -9 (as an input) run as Resize with Upsample's
    coordinates (asymmetric, nearest by floor), as onnxruntime runs them; Upsample-9's scales
    may be a graph input given at compile time (`constants=`)."""
    x = np.arange(24, dtype=np.float32).reshape(1, 2, 3, 4)
    scales = np.array([1.0, 1.0, 2.0, 1.5], np.float32)
    if opset == 7:
        node = helper.make_node("Upsample", ["x"], ["y"], mode=mode, scales=scales.tolist())
        inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, x.shape)]
    else:
        node = helper.make_node("Upsample", ["x", "scales"], ["y"], mode=mode)
        inputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, v.shape) for n, v in (("x", x), ("s", scales))]
        inputs[1].name = "scales"
    graph = helper.make_graph(
        [node], "g", inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 6, 6])]
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=7)
    feeds = {"x": x} if opset == 7 else {"x": x, "scales": scales}
    constants = {} if opset == 7 else {"scales": scales}
    assert parameter_inputs(model) == set(constants)
    got = tritonnx.compile(model, tmp_path / "art", constants=constants).run({"x": x})["y"]
    np.testing.assert_allclose(got, ort_run(model, feeds)[0], rtol=1e-6, atol=1e-6)
