"""Real models against onnxruntime: torchvision's SqueezeNet 1.1 and Inception v3 (exported
by tests/export_torchvision.py in their own environment, see tests/torchvision_models.py)
and the PP-OCR text detector, recognizer and direction classifier that ship in the
`rapidocr-onnxruntime` wheel (Paddle2ONNX exports, opsets 11 and 12, Apache-2.0).

Each model is compiled with default options (its dynamic dimensions stay dynamic) and one
artifact runs at several sizes; SqueezeNet and the detector are also compiled static
(`shapes=`). The static runs of the slow models would repeat the dynamic ones' sizes. Inputs are seeded random images: uniform in [0, 1), normalized as the
models' preprocessing does, (x - 0.5) / 0.5.
"""

import importlib.util
import os

import numpy as np
import onnx
import pytest

import torchvision_models
import tritonnx
from models import ort_run

RAPIDOCR = "rapidocr-onnxruntime==1.4.4"


def _image(shape, seed):
    """float32 array of `shape`, uniform in [0, 1) from `seed`, normalized to [-1, 1)."""
    x = np.random.default_rng(seed).random(shape, dtype=np.float32)
    return (x - 0.5) / 0.5


def _rel(a, b):
    """max|a - b| / max|b|: the error relative to the output's scale."""
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))


def _check(model, proto, x, atol=0.0):
    """Runs `model` and onnxruntime on {'x': x} and compares every output: |a - b| at most
    1e-4 * max|b| + atol per element."""
    got = model.run({"x": x})
    names = [o.name for o in proto.graph.output]
    for name, ref in zip(names, ort_run(proto, {"x": x})):
        err = np.abs(got[name] - ref)
        bound = 1e-4 * np.abs(ref).max() + atol
        assert err.max() <= bound, (name, x.shape, _rel(got[name], ref), float(err.max()), float(bound))


# --------------------------------------------------------------------------- torchvision

# (name, input height and width): tests/export_torchvision.py exports at these sizes
TORCHVISION = [("squeezenet1_1", 224), pytest.param("inception_v3", 299, marks=pytest.mark.slow)]


@pytest.mark.parametrize("name, size", TORCHVISION[:1])  # static SqueezeNet; the rest run dynamic at the same sizes
def test_torchvision_static(name, size, tmp_path):
    proto = onnx.load(torchvision_models.exported(name))
    model = tritonnx.compile(proto, tmp_path / "art", shapes={"x": [2, 3, size, size]})
    assert not model.dynamic
    _check(model, proto, _image([2, 3, size, size], seed=0))


@pytest.mark.slow
@pytest.mark.parametrize("name, size", TORCHVISION)
def test_torchvision_dynamic_batch(name, size, tmp_path):
    proto = onnx.load(torchvision_models.exported(name))
    model = tritonnx.compile(proto, tmp_path / "art")  # default options: the batch stays dynamic
    assert model.dynamic
    # Inception v3 through the interpreter is the suite's largest cost: two batch sizes show
    # one artifact serving both; SqueezeNet, cheap, runs three
    for batch in (1, 2, 5) if name == "squeezenet1_1" else (1, 2):
        _check(model, proto, _image([batch, 3, size, size], seed=batch))


# --------------------------------------------------------------------------- PP-OCR


def ppocr(name: str) -> onnx.ModelProto:
    """The PP-OCR model `name` (a file of rapidocr_onnxruntime/models), found without
    importing the package (that imports cv2). Fails the test when it is not installed."""
    spec = importlib.util.find_spec("rapidocr_onnxruntime")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail(f"{RAPIDOCR} is not installed: `pip install --no-deps {RAPIDOCR}` (.ci/run does)", pytrace=False)
    path = os.path.join(spec.submodule_search_locations[0], "models", name)
    if not os.path.exists(path):
        pytest.fail(f"{path} is missing: reinstall `pip install --no-deps {RAPIDOCR}`", pytrace=False)
    return onnx.load(path)


DET = "ch_PP-OCRv4_det_infer.onnx"  # x [N, 3, H, W] -> probability map [N, 1, H, W]
REC = "ch_PP-OCRv4_rec_infer.onnx"  # x [N, 3, 48, W] -> per-column softmax [N, W/8, 6625]
CLS = "ch_ppocr_mobile_v2.0_cls_infer.onnx"  # x [N, 3, 48, 192] -> [N, 2] (0 or 180 degrees)

# the detector ends in a Sigmoid; onnxruntime's has an absolute error of about 1.2e-7 near 0
# (measured: 2.38e-7 where the exact value is 1.14e-7), and random inputs leave every
# probability below 1e-3, so the map is compared with an absolute tolerance and the logits
# before the Sigmoid (a second output) are compared relative to their scale
DET_ATOL = 1e-6


def _with_logits(proto):
    """A copy of `proto` whose final Sigmoid's input is a second graph output (of the
    Sigmoid's type and shape)."""
    out = onnx.ModelProto()
    out.CopyFrom(proto)
    last = out.graph.node[-1]
    assert last.op_type == "Sigmoid" and last.output[0] == out.graph.output[0].name, last
    logits = out.graph.output.add()
    logits.CopyFrom(out.graph.output[0])
    logits.name = last.input[0]
    return out


@pytest.mark.slow
def test_ppocr_det_static(tmp_path):
    proto = _with_logits(ppocr(DET))
    shape = [1, 3, 320, 320]
    model = tritonnx.compile(proto, tmp_path / "art", shapes={"x": shape})
    _check(model, proto, _image(shape, seed=0), atol=DET_ATOL)


@pytest.mark.slow
def test_ppocr_det_dynamic(tmp_path):
    proto = _with_logits(ppocr(DET))
    model = tritonnx.compile(proto, tmp_path / "art")  # default options: N, H and W stay dynamic
    assert model.dynamic
    # H and W differ, bound at run time; test_ppocr_det_static runs 320 x 320 (one size here: suite time)
    _check(model, proto, _image([1, 3, 64, 96], seed=96), atol=DET_ATOL)


@pytest.mark.slow
def test_ppocr_cls_dynamic(tmp_path):
    # the model as shipped: batch -1, height and width dim_param '?' (three symbols, x_0,
    # x_2 and x_3); its Reshape target is a Concat of shape data along axis -1, which
    # the shape inference follows once the axis is made positive
    proto = ppocr(CLS)
    model = tritonnx.compile(proto, tmp_path / "art")
    assert set(model.plan["symbols"]) == {"x_0", "x_2", "x_3"}
    for shape in ([1, 3, 48, 192], [2, 3, 48, 96]):
        _check(model, proto, _image(shape, seed=shape[3]))
