"""tritonnx.InferenceSession against onnxruntime.InferenceSession: one onnxruntime-style
script, run unchanged with either module, gives the same metadata and the same numbers."""

import numpy as np
import onnx
import onnxruntime
import pytest

import tritonnx
from models import light_model_path, randomize_light_model


def ort_style_script(ort, model, feeds_for):
    """What an onnxruntime user writes; `ort` is onnxruntime or tritonnx."""
    sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    inputs = [(i.name, i.shape, i.type) for i in sess.get_inputs()]
    outputs = [(o.name, o.shape, o.type) for o in sess.get_outputs()]
    feeds = feeds_for(sess.get_inputs())
    first = sess.run(None, feeds)[0]
    named = sess.run([sess.get_outputs()[0].name], feeds)
    return inputs, outputs, first, named[0]


def _compare(model_bytes, feeds_for, tol):
    want = ort_style_script(onnxruntime, model_bytes, feeds_for)
    got = ort_style_script(tritonnx, model_bytes, feeds_for)
    assert got[0] == want[0] and got[1] == want[1]  # names, shapes (symbols as str), "tensor(float)"
    for g, w in zip(got[2:], want[2:]):
        assert isinstance(g, np.ndarray) and g.shape == w.shape and g.dtype == w.dtype
        assert float(np.abs(g - w).max() / np.abs(w).max()) < tol


def test_squeezenet_through_the_onnxruntime_interface():
    model = randomize_light_model(onnx.load(light_model_path("squeezenet")), seed=0).SerializeToString()

    def feeds(args):  # the same values for both sessions
        assert args[0].type == "tensor(float)"
        rng = np.random.default_rng(0)
        return {args[0].name: rng.standard_normal(args[0].shape).astype(np.float32)}

    _compare(model, feeds, 1e-4)


def test_bert_through_the_onnxruntime_interface(tmp_path):
    pytest.importorskip("transformers")
    import transformer_models as tm

    path = tm.export("bert", str(tmp_path), opset=17, dynamic=True)

    def feeds(args):
        assert args[0].shape == ["batch", "seq"] and args[0].type == "tensor(int64)"
        full = tm.inputs("bert", batch=2, seq=16)
        return {a.name: full[a.name] for a in args}

    _compare(open(path, "rb").read(), feeds, 1e-4)


def test_session_of_an_artifact_output_selection_and_torch(tmp_path):
    import torch

    model = randomize_light_model(onnx.load(light_model_path("squeezenet")), seed=1)
    compiled = tritonnx.compile(model, tmp_path / "art")
    sess = tritonnx.InferenceSession(tmp_path / "art")  # loaded, not compiled again
    assert sess.compiled_model.path == compiled.path and tritonnx.load(tmp_path / "art").plan == compiled.plan
    assert sess.get_providers() == ["CPUExecutionProvider"]
    assert sess.get_modelmeta().graph_name == model.graph.name
    x = torch.randn(sess.get_inputs()[0].shape)
    (out,) = sess.run_with_torch(None, {sess.get_inputs()[0].name: x})
    assert isinstance(out, torch.Tensor)
    ref = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-6, atol=1e-6)
    with pytest.raises(tritonnx.TritonnxError, match="unknown output names"):
        sess.run(["nope"], {sess.get_inputs()[0].name: x.numpy()})
    with pytest.raises(tritonnx.TritonnxError, match="unknown execution provider"):
        tritonnx.InferenceSession(tmp_path / "art", providers=["OpenVINOExecutionProvider"])
