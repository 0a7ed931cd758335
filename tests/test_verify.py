"""Malformed models are refused at compile time, as onnxruntime refuses them: one `error:`
line from the CLI and an InvalidModelError from `tritonnx.compile`, naming the node, its op
type and opset (the tnx verifier, `tnx-verify`, or onnx's shape inference where it sees the
fault first). Nodes that onnx's function inliner generated are reported under the user's
node."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper as nh

import tritonnx
from tritonnx.compiler import cli
from tritonnx.errors import InvalidModelError, UnsupportedModelError

rng = np.random.default_rng(0)


def _vi(name, shape, dtype=T.FLOAT):
    return h.make_tensor_value_info(name, dtype, shape)


def _f32(*shape):
    return rng.standard_normal(shape).astype(np.float32)


def _model(node, inputs, out_rank, inits=(), opset=17):
    graph = h.make_graph(
        [node],
        "g",
        [_vi(n, s) for n, s in inputs],
        [_vi(node.output[0], [None] * out_rank)],
        [nh.from_array(v, k) for k, v in inits],
    )
    return h.make_model(graph, opset_imports=[h.make_opsetid("", opset)])


# (case, model, node name, op type, words the message must hold)
CASES = [
    (
        "reshape_count",
        _model(
            h.make_node("Reshape", ["x", "s"], ["y"], name="reshape1"),
            [("x", [2, 3])],
            2,
            [("s", np.array([4, 2], np.int64))],
        ),
        "reshape1",
        "Reshape",
        ["6 elements", "[4, 2]"],
    ),
    (
        "conv_channels",
        _model(
            h.make_node("Conv", ["x", "w"], ["y"], name="conv1"), [("x", [1, 3, 8, 8])], 4, [("w", _f32(8, 4, 3, 3))]
        ),
        "conv1",
        "Conv",
        ["input X has 3 channels but W expects 4 (W shape [8, 4, 3, 3], group 1)"],
    ),
    (
        "conv_group",
        _model(
            h.make_node("Conv", ["x", "w"], ["y"], name="conv2", group=3),
            [("x", [1, 4, 8, 8])],
            4,
            [("w", _f32(6, 2, 3, 3))],
        ),
        "conv2",
        "Conv",
        ["group 3 does not divide the 4 input channels"],
    ),
    (
        "conv_bias",
        _model(
            h.make_node("Conv", ["x", "w", "b"], ["y"], name="conv3"),
            [("x", [1, 3, 8, 8])],
            4,
            [("w", _f32(8, 3, 3, 3)), ("b", _f32(5))],
        ),
        "conv3",
        "Conv",
        ["B has shape [5]", "length 8"],
    ),
    (
        "gemm_bias",
        _model(
            h.make_node("Gemm", ["a", "b", "c"], ["y"], name="fc1"),
            [("a", [2, 4])],
            2,
            [("b", _f32(4, 5)), ("c", _f32(3))],
        ),
        "fc1",
        "Gemm",
        ["C of shape [3] does not broadcast to the output shape [2, 5]"],
    ),
    (
        "layernorm_scale",
        _model(h.make_node("LayerNormalization", ["x", "s"], ["y"], name="ln1"), [("x", [2, 6])], 2, [("s", _f32(5))]),
        "ln1",
        "LayerNormalization",
        ["Scale has shape [5]", "[6]"],
    ),
    (
        "batchnorm_scale",
        _model(
            h.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], name="bn1"),
            [("x", [1, 3, 4, 4])],
            4,
            [("s", _f32(2)), ("b", _f32(3)), ("m", _f32(3)), ("v", np.ones(3, np.float32))],
        ),
        "bn1",
        "BatchNormalization",
        [],
    ),
    (
        "instancenorm_scale",
        _model(
            h.make_node("InstanceNormalization", ["x", "s", "b"], ["y"], name="in1"),
            [("x", [1, 3, 4, 4])],
            4,
            [("s", _f32(2)), ("b", _f32(3))],
        ),
        "in1",
        "InstanceNormalization",
        ["scale has shape [2]", "length 3"],
    ),
    (
        "gather_index",
        _model(
            h.make_node("Gather", ["t", "i"], ["y"], name="embed1"),
            [("t", [4, 3])],
            2,
            [("i", np.array([0, 5], np.int64))],
        ),
        "embed1",
        "Gather",
        ["constant index 5 is out of range [-4, 3]"],
    ),
    (
        "gather_elements_index",
        _model(
            h.make_node("GatherElements", ["t", "i"], ["y"], name="ge1", axis=1),
            [("t", [2, 3])],
            2,
            [("i", np.array([[0, 3], [1, 2]], np.int64))],
        ),
        "ge1",
        "GatherElements",
        ["constant index 3 is out of range [-3, 2]"],
    ),
    (
        "matmul_inner",
        _model(h.make_node("MatMul", ["a", "b"], ["y"], name="mm1"), [("a", [2, 4])], 2, [("b", _f32(5, 3))]),
        "mm1",
        "MatMul",
        [],
    ),
    (
        "concat_dims",
        _model(h.make_node("Concat", ["a", "b"], ["y"], name="cat1", axis=1), [("a", [2, 4]), ("b", [3, 4])], 2),
        "cat1",
        "Concat",
        [],
    ),
]


@pytest.mark.parametrize("case, model, node, op_type, words", CASES, ids=[c[0] for c in CASES])
def test_malformed_model_refused(tmp_path, capsys, case, model, node, op_type, words):
    with pytest.raises(InvalidModelError) as info:
        tritonnx.compile(model)
    message = str(info.value)
    assert message.startswith(f"node {node} ({op_type}, opset 17): "), message
    assert all(w in message for w in words), message
    path = tmp_path / f"{case}.onnx"
    onnx.save(model, path)
    assert cli.main(["compile", str(path), "-o", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: node ") and err.count("\n") == 1 and f"{node} ({op_type}" in err, err
    assert not (tmp_path / "out").exists()


def test_verifier_runs_as_a_pass_after_import():
    """tnx-verify is the pipeline's first step (before any pass reads a buffer)."""
    from tritonnx.compiler.pipeline import registry, stages

    assert stages()[0][0] == "tnx-verify" and "tnx-verify" in registry()


def test_valid_models_pass(tmp_path):
    ok = _model(
        h.make_node("Conv", ["x", "w", "b"], ["y"], name="conv1", group=2),
        [("x", [1, 4, 6, 6])],
        4,
        [("w", _f32(6, 2, 3, 3)), ("b", _f32(6))],
    )
    x = _f32(1, 4, 6, 6)
    import onnxruntime as ort

    want = ort.InferenceSession(ok.SerializeToString()).run(None, {"x": x})[0]
    np.testing.assert_allclose(tritonnx.compile(ok).run({"x": x})["y"], want, rtol=1e-4, atol=1e-4)


def _local_function_model(body, opset=17):
    fn = h.make_function("local", "MyBlock", ["a"], ["b"], body, [h.make_opsetid("", opset)])
    graph = h.make_graph(
        [
            h.make_node("Relu", ["x"], ["x1"], name="relu0"),
            h.make_node("MyBlock", ["x1"], ["y"], name="block1", domain="local"),
        ],
        "g",
        [_vi("x", [2, 3])],
        [_vi("y", [None, None])],
    )
    return h.make_model(graph, opset_imports=[h.make_opsetid("", opset), h.make_opsetid("local", 1)], functions=[fn])


def test_inlined_function_invalid_node_named_after_the_call(tmp_path, capsys):
    shape = h.make_node("Constant", [], ["s"], value=nh.from_array(np.array([4, 2], np.int64)))
    model = _local_function_model([shape, h.make_node("Reshape", ["a", "s"], ["b"])])
    with pytest.raises(InvalidModelError) as info:
        tritonnx.compile(model)
    assert str(info.value).startswith(
        "node block1 (MyBlock, expanded by the ONNX function inliner: Reshape, opset 17): data [2, 3] has 6 elements"
    )
    path = tmp_path / "m.onnx"
    onnx.save(model, path)
    assert cli.main(["compile", str(path), "-o", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert (
        err.startswith("error: node block1 (MyBlock, expanded by the ONNX function inliner: Reshape")
        and err.count("\n") == 1
    )


def test_inlined_schema_function_unsupported_op_named_after_the_user_node(tmp_path, capsys):
    graph = h.make_graph(
        [h.make_node("Bernoulli", ["x"], ["y"], name="drop1")], "g", [_vi("x", [2, 3])], [_vi("y", [2, 3])]
    )
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 17)])
    with pytest.raises(UnsupportedModelError) as info:
        tritonnx.compile(model)
    assert "drop1 (Bernoulli, expanded by the ONNX function inliner: RandomUniformLike, opset 17)" in str(info.value)
    assert "RandomUniformLike_0" not in str(info.value)
    assert info.value.nodes == [("drop1", "Bernoulli", 17)]
    path = tmp_path / "m.onnx"
    onnx.save(model, path)
    assert cli.main(["compile", str(path), "-o", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "drop1 (Bernoulli, expanded by the ONNX function inliner" in err and err.count("\n") == 1


def test_inlined_nodes_named_in_dumps(tmp_path):
    model = _local_function_model([h.make_node("Neg", ["a"], ["t"]), h.make_node("Abs", ["t"], ["b"])])
    x = _f32(2, 3)
    compiled = tritonnx.compile(model, tmp_path / "art", dump_ir=tmp_path / "ir")
    np.testing.assert_allclose(compiled.run({"x": x})["y"], np.abs(np.maximum(x, 0)))
    text = next((tmp_path / "ir").glob("*-outline.mlir")).read_text()
    assert 'tnx.nodes = ["relu0", "block1 (MyBlock): Neg_0", "block1 (MyBlock): Abs_1"]' in text
    kernels = "".join(p.read_text() for p in (tmp_path / "art" / "kernels").glob("*.py"))
    assert "block1 (MyBlock): Neg_0" in kernels
