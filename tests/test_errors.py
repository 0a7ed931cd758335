"""Bad input: a clear one-paragraph error, a non-zero exit, no partial artifact."""

import numpy as np
import onnx
from onnx import TensorProto, helper

from models import light_model_path, make_resnet
from tritonnx.compiler import cli


def _leftovers(tmp_path):
    return [p.name for p in tmp_path.iterdir() if p.name.startswith((".art", "art"))]


def test_truncated_file(tmp_path, capsys):
    bad = tmp_path / "cut.onnx"
    bad.write_bytes(open(light_model_path("squeezenet"), "rb").read()[:5000])
    assert cli.main(["compile", str(bad), "-o", str(tmp_path / "art")]) == 1
    err = capsys.readouterr().err
    assert "is not a valid ONNX model" in err and err.count("\n") == 1
    assert _leftovers(tmp_path) == []


def test_unsupported_ops_listed_at_once(tmp_path, capsys):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    nodes = [
        helper.make_node("Relu", ["x"], ["a"], name="relu0"),
        helper.make_node("MyOp", ["a"], ["b"], name="custom0", domain="com.example"),
        helper.make_node("Det", ["b"], ["y"], name="det1"),
    ]
    model = helper.make_model(
        helper.make_graph(nodes, "g", [x], [y]),
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)],
    )
    path = tmp_path / "m.onnx"
    onnx.save(model, path)
    assert cli.main(["compile", str(path), "-o", str(tmp_path / "art")]) == 1
    err = capsys.readouterr().err
    assert "custom0 (com.example.MyOp, opset 17)" in err and "det1 (Det, opset 17)" in err and "relu0" not in err
    assert _leftovers(tmp_path) == []


def test_unsupported_ops_inside_subgraphs_listed_with_their_paths(tmp_path, capsys):
    """An If whose then-branch holds a Det and whose else-branch holds a Loop with a custom
    op in its body: every unsupported node is named, at any depth, by its path."""
    square = helper.make_tensor_value_info("square", TensorProto.FLOAT, [3, 3])
    flag = helper.make_tensor_value_info("flag", TensorProto.BOOL, [])
    out = helper.make_tensor_value_info("keep", TensorProto.INT64, None)
    then_branch = helper.make_graph(
        [helper.make_node("Det", ["square"], ["t"])],
        "then",
        [],
        [helper.make_tensor_value_info("t", TensorProto.INT64, None)],
    )
    body = helper.make_graph(
        [
            helper.make_node("Identity", ["cond_in"], ["cond_out"]),
            helper.make_node("MyOp", ["carried"], ["u"], domain="com.example"),
            helper.make_node("Cast", ["u"], ["carried_out"], to=TensorProto.INT64),
        ],
        "body",
        [
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
            helper.make_tensor_value_info("carried", TensorProto.INT64, None),
        ],
        [
            helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("carried_out", TensorProto.INT64, None),
        ],
    )
    trips = helper.make_tensor("trips", TensorProto.INT64, [], [2])
    start = helper.make_tensor("start", TensorProto.INT64, [3], [1, 1, 2])
    else_branch = helper.make_graph(
        [helper.make_node("Loop", ["trips", "flag", "start"], ["e"], name="refine", body=body)],
        "else",
        [],
        [helper.make_tensor_value_info("e", TensorProto.INT64, None)],
        [trips, start],
    )
    graph = helper.make_graph(
        [helper.make_node("If", ["flag"], ["keep"], then_branch=then_branch, else_branch=else_branch)],
        "g",
        [square, flag],
        [out],
    )
    path = tmp_path / "m.onnx"
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)]
    onnx.save(helper.make_model(graph, opset_imports=opsets), path)
    assert cli.main(["compile", str(path), "-o", str(tmp_path / "art")]) == 1
    err = capsys.readouterr().err
    for listed in (
        "If_0/then_branch/Det_0 (Det, opset 17)",
        "If_0/else_branch/refine/body/MyOp_1 (com.example.MyOp, opset 17)",
    ):
        assert listed in err, err
    assert "Identity" not in err and "Cast" not in err
    assert "(If," not in err and "(Loop," not in err  # control flow is decided at compile time, or refused after
    assert _leftovers(tmp_path) == []


def test_wrong_input_shape(tmp_path, capsys):
    path = tmp_path / "r.onnx"
    onnx.save(make_resnet(), path)
    assert cli.main(["compile", str(path), "-o", str(tmp_path / "art")]) == 0
    np.savez(tmp_path / "in.npz", input=np.zeros((1, 3, 8, 8), np.float32))
    assert cli.main(["run", str(tmp_path / "art"), "--inputs", str(tmp_path / "in.npz")]) == 1
    err = capsys.readouterr().err
    assert "input 'input' has shape [1, 3, 8, 8]" in err and "expected shape [1, 3, 64, 64]" in err


def test_failed_compile_keeps_previous_artifact(tmp_path):
    path = tmp_path / "r.onnx"
    onnx.save(make_resnet(), path)
    assert cli.main(["compile", str(path), "-o", str(tmp_path / "art")]) == 0
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not an onnx file")
    assert cli.main(["compile", str(bad), "-o", str(tmp_path / "art")]) == 1
    assert (tmp_path / "art" / "plan.json").is_file()
    assert sorted(_leftovers(tmp_path)) == ["art"]


def test_op_that_needs_constants(tmp_path, capsys):
    """BatchNormalization folds into weights; with run-time statistics it is reported."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 3, 3])
    s = helper.make_tensor_value_info("s", TensorProto.FLOAT, [2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 3, 3])
    stats = [onnx.numpy_helper.from_array(np.ones(2, np.float32), n) for n in ("b", "m", "v")]
    graph = helper.make_graph(
        [helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], name="bn")], "g", [x, s], [y], stats
    )
    path = tmp_path / "g.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    assert cli.main(["compile", str(path), "-o", str(tmp_path / "art")]) == 1
    err = capsys.readouterr().err
    assert "node bn (BatchNormalization): scale, B, mean and var must be constants" in err and err.count("\n") == 1
    assert _leftovers(tmp_path) == []
