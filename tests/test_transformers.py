"""Transformers (BERT, DistilBERT, GPT-2, ViT from transformers' own classes, small configs,
random weights) exported by torch.onnx at opsets 17 and 18: compiled, run on the CPU
interpreter and checked against onnxruntime; attention is one flash-attention kernel per
layer and a layer takes at most 8 kernels."""
import numpy as np
import pytest

pytest.importorskip("transformers")

import transformer_models as tm  # noqa: E402
import tritonnx  # noqa: E402
from models import ort_run  # noqa: E402


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    return tmp_path_factory.mktemp("transformers")


@pytest.mark.parametrize("opset", [17, 18])
@pytest.mark.parametrize("name", tm.NAMES)
def test_transformer_matches_onnxruntime(name, opset, exports, tmp_path):
    path = tm.export(name, str(exports), opset=opset)
    feeds = tm.inputs(name, batch=2, seq=16)
    model = tritonnx.compile(path, tmp_path / "art")
    got = model.run(feeds)[model.output_names[0]]
    ref = ort_run(path, feeds)[0]
    assert float(np.abs(got - ref).max() / np.abs(ref).max()) < 1e-4
    kinds = [launch["kind"] for launch in model.launches]
    assert kinds.count("attention") == tm.LAYERS  # one flash-attention kernel per layer
    assert "softmax" not in kinds  # no score matrix materialized
    first_layer = kinds.index("attention")
    per_layer = (len(kinds) - first_layer + 1) / tm.LAYERS  # the QKV projection precedes attention
    assert per_layer <= 8, kinds
