"""`tritonnx run ART --check-layers`: every launch's output against onnxruntime's value of
the ONNX tensor it holds, and the first diverging node (`tritonnx.compiler.layerwise`)."""

import re
import types

import numpy as np
import pytest
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper as nh

import tritonnx
from tritonnx.compiler import cli
from tritonnx.compiler.layerwise import compare_layers, format_layers
from tritonnx.runtime import CompiledModel


def _model():
    """Conv -> Relu -> Conv -> Add -> Relu (unnamed) -> GlobalAveragePool -> Flatten -> Gemm."""
    rng = np.random.default_rng(0)

    def w(*shape):
        return (rng.standard_normal(shape) * 0.3).astype(np.float32)

    inits = {"w1": w(8, 3, 3, 3), "b1": w(8), "w2": w(8, 8, 3, 3), "b2": w(8), "wg": w(5, 8), "bg": w(5)}
    nodes = [
        h.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        h.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        h.make_node("Conv", ["r1", "w2", "b2"], ["c2"], name="conv2", pads=[1, 1, 1, 1]),
        h.make_node("Add", ["c2", "r1"], ["a"], name="add"),
        h.make_node("Relu", ["a"], ["r2"]),  # unnamed: the importer calls it Relu_4
        h.make_node("GlobalAveragePool", ["r2"], ["g"], name="gap"),
        h.make_node("Flatten", ["g"], ["fl"], name="flatten"),
        h.make_node("Gemm", ["fl", "wg", "bg"], ["y"], name="fc", transB=1),
    ]
    graph = h.make_graph(
        nodes,
        "g",
        [h.make_tensor_value_info("x", T.FLOAT, [2, 3, 8, 8])],
        [h.make_tensor_value_info("y", T.FLOAT, [2, 5])],
        [nh.from_array(v, k) for k, v in inits.items()],
    )
    return h.make_model(graph, opset_imports=[h.make_opsetid("", 17)])


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    out = tmp_path_factory.mktemp("layers") / "art"
    tritonnx.compile(_model(), out)
    return out


def _feeds():
    return {"x": np.random.default_rng(1).standard_normal((2, 3, 8, 8)).astype(np.float32)}


def test_all_layers_match(artifact, capsys):
    assert cli.main(["run", str(artifact), "--check-layers"]) == 0
    out = capsys.readouterr().out
    assert "check y against onnxruntime" in out  # implies --check
    assert "all 4 compared layers match onnxruntime" in out
    flat = " ".join(out.split())  # entries longer than 80 columns wrap
    for launch, entry in [
        (0, "r1 <- conv1 (Conv), relu1 (Relu)"),
        (1, "r2 <- conv2 (Conv), add (Add), Relu_4 (Relu)"),
        (2, "g <- gap (GlobalAveragePool)"),
        (3, "y <- fc (Gemm)"),
    ]:
        assert re.search(rf"#{launch} ok abs \S+ rel \S+ {re.escape(entry)} \[", flat), (entry, out)
    assert max(len(line) for line in out.splitlines()) <= 80, out


def test_first_diverging_layer(artifact, monkeypatch, capsys):
    """Launch 1 (conv2 + add + Relu_4) is made to write a wrong value: it is the first
    mismatching layer, launch 0 matches and is what it reads."""
    original = CompiledModel.run_layerwise

    def corrupted(self, feeds):
        outputs, steps = original(self, feeds)
        for b in steps[1]["outputs"]:
            steps[1]["outputs"][b] = steps[1]["outputs"][b] + 1
        return outputs, steps

    model = CompiledModel(artifact)
    monkeypatch.setattr(model, "run_layerwise", types.MethodType(corrupted, model))
    result = compare_layers(model, _feeds(), rtol=1e-4)
    assert [la.launch for la in result.layers] == [0, 1, 2, 3]
    first, earlier = result.first, result.layers[0]
    assert first is not None and first.launch == 1
    assert first.tensor == "r2" and first.node == ("Relu_4", "Relu")
    assert [n for n, _ in first.nodes] == ["conv2", "add", "Relu_4"]
    assert earlier.tensor == "r1" and earlier.rel_error is not None and earlier.rel_error <= 1e-4
    assert result.unverified_inputs == []
    verdict = " ".join(" ".join(format_layers(result)).split())  # wrapped at 80
    assert "first mismatching layer: launch #1" in verdict and "tensor r2 from node Relu_4 (Relu)" in verdict
    assert "fused with conv2 (Conv), add (Add)" in verdict and "its inputs matched" in verdict
    assert all(len(line) <= 80 for line in format_layers(result))

    # the CLI: the same verdict, and exit 1
    monkeypatch.setattr(CompiledModel, "run_layerwise", corrupted)
    assert cli.main(["run", str(artifact), "--check-layers"]) == 1
    captured = capsys.readouterr()
    assert "first mismatching layer: launch #1" in " ".join(captured.out.split())
    assert [line for line in captured.err.splitlines() if line.startswith("error:")] != []


def test_different_shape_is_not_compared(artifact):
    """A buffer whose shape differs from every tensor leaving its nodes is reported, never
    compared against a tensor of another meaning."""
    model = CompiledModel(artifact)
    run_layerwise = model.run_layerwise

    def reshaped(feeds):
        outputs, steps = run_layerwise(feeds)
        b = next(iter(steps[2]["outputs"]))
        steps[2]["outputs"][b] = steps[2]["outputs"][b].reshape(2, 8)
        return outputs, steps

    model.run_layerwise = reshaped
    result = compare_layers(model, _feeds())
    gap = result.layers[2]
    assert not gap.compared and "shape" in (gap.reason or "")
    assert result.first is None
    assert "all 3 compared layers match onnxruntime (1 not compared)" in " ".join(
        " ".join(format_layers(result)).split()
    )
