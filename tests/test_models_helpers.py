"""Fast checks of the test-model helpers in tests/models.py."""

import numpy as np
import onnx
import pytest

from models import light_expected_output, light_model_path, make_resnet, ort_run, randomize_light_model


@pytest.mark.parametrize("opset", [17, 13])
def test_make_resnet(opset):
    m = make_resnet(opset=opset, batch=2, image=32, num_classes=7)
    onnx.checker.check_model(m, full_check=True)
    assert m.opset_import[0].version == opset
    assert [i.name for i in m.graph.input] == ["input"]
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 32), dtype=np.float32)
    (y,) = ort_run(m, {"input": x})
    assert y.shape == (2, 7) and np.isfinite(y).all()


def _data_input(m):
    inits = {t.name for t in m.graph.initializer}
    (inp,) = [i for i in m.graph.input if i.name not in inits]
    return inp.name, [d.dim_value for d in inp.type.tensor_type.shape.dim]


def test_randomize_light_squeezenet():
    orig = onnx.load(light_model_path("squeezenet"))
    m = randomize_light_model(orig, seed=0)
    onnx.checker.check_model(m, full_check=True)
    assert not any(n.op_type == "ConstantOfShape" for n in m.graph.node)
    assert not any(t.name.endswith("__SHAPE") for t in m.graph.initializer)
    assert not any(i.name.endswith("__SHAPE") for i in m.graph.input)

    name, shape = _data_input(m)
    x = np.random.default_rng(0).standard_normal(shape, dtype=np.float32)
    (y_orig,) = ort_run(orig, {name: x})
    (y,) = ort_run(m, {name: x})
    assert y.shape == y_orig.shape == light_expected_output("squeezenet").shape
    assert np.isfinite(y).all() and not np.allclose(y, y_orig)
    assert y.max() > 10 / y.size  # softmax far from uniform
