"""End to end: real networks compiled through the CLI, run on the CPU interpreter, checked
against the expected outputs shipped with onnx and against onnxruntime."""

import json

import numpy as np
import onnx
import pytest

import tritonnx
from models import light_expected_output, light_model_path, make_resnet, ort_run, randomize_light_model
from tritonnx.compiler import cli


def _rel(a, b):
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))


def _input(model):
    rng = np.random.default_rng(0)
    return rng.standard_normal(model.plan["inputs"][0]["shape"]).astype(np.float32)


@pytest.mark.parametrize("name", ["resnet50", "squeezenet"])  # vgg19: test_light_model_random_weights
def test_light_model_cli(name, tmp_path):
    out = tmp_path / "art"
    assert cli.main(["compile", light_model_path(name), "-o", str(out)]) == 0
    model = tritonnx.CompiledModel(out)
    x = _input(model)
    y = model(x)
    expected = light_expected_output(name)
    assert _rel(y, expected) < 1e-4
    assert _rel(y, ort_run(light_model_path(name), {model.input_names[0]: x})[0]) < 1e-4
    np.savez(tmp_path / "in.npz", **{model.input_names[0]: x})
    assert cli.main(["run", str(out), "--inputs", str(tmp_path / "in.npz"), "--check"]) == 0


@pytest.mark.parametrize("name", ["resnet50", "squeezenet", pytest.param("vgg19", marks=pytest.mark.slow)])
def test_light_model_random_weights(name, tmp_path):
    """The shipped weights are all 0.02, which hides channel mix-ups: use seeded random ones."""
    proto = randomize_light_model(onnx.load(light_model_path(name)), seed=0)
    model = tritonnx.compile(proto, tmp_path / "art")
    x = _input(model)
    ref = ort_run(proto, {model.input_names[0]: x})[0]
    assert ref.max() > 2.0 / ref.size  # not a uniform softmax
    assert _rel(model(x), ref) < 1e-4


def test_resnet_opset17(tmp_path):
    proto = make_resnet(opset=17, seed=0, batch=2)
    model = tritonnx.compile(proto, tmp_path / "art")
    x = _input(model)
    assert _rel(model(x), ort_run(proto, {"input": x})[0]) < 1e-4
    # every Conv carries its BatchNormalization, Relu and residual Add: one launch per Conv
    # plus MaxPool, GlobalAveragePool and Gemm
    convs = sum(n.op_type == "Conv" for n in proto.graph.node)
    assert len(model.launches) == convs + 3


def test_resnet50_fusion_count(tmp_path):
    out = tmp_path / "art"
    tritonnx.compile(light_model_path("resnet50"), out)
    plan = json.loads((out / "plan.json").read_text())
    assert len(plan["launches"]) <= 60
    kinds = [launch["kind"] for launch in plan["launches"]]
    assert kinds.count("conv") == 53 and "pointwise" not in kinds


def test_dump_ir(tmp_path):
    dumps = tmp_path / "ir"
    tritonnx.compile(light_model_path("squeezenet"), tmp_path / "art", dump_ir=dumps)
    names = sorted(p.name for p in dumps.glob("*.mlir"))
    assert names[0] == "00-import.mlir" and names[-1].endswith("lower-to-triton.mlir")
    from tritonnx.compiler.pipeline import stages

    assert names == [f"{i:02d}-{n.replace(',', '-')}.mlir" for i, n in enumerate(["import"] + [n for n, _ in stages()])]
    text = next(dumps.glob("*-tnx-canonicalize.mlir")).read_text()
    assert "dense_resource<" in text and '"0x' not in text  # weights elided: no hex blobs
    assert list(dumps.glob("*.py"))


def test_run_api_checks_inputs(tmp_path):
    model = tritonnx.compile(make_resnet(), tmp_path / "art")
    with pytest.raises(ValueError, match="input 'input' has shape \\[1, 3, 32, 32\\]"):
        model.run({"input": np.zeros((1, 3, 32, 32), np.float32)})
    with pytest.raises(ValueError, match="unknown \\['x'\\]"):
        model.run({"x": np.zeros((1, 3, 64, 64), np.float32)})
