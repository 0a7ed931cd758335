"""`tritonnx report`: the table fits 80 columns without cutting a cell, --wide shows every
column, --graph draws the fusion groups, --annotated-onnx tags each node with its kernel."""

from __future__ import annotations

import json
import shutil

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from rich.console import Console

from tritonnx.compiler import cli
from tritonnx.compiler import report as rep


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    """Conv+Relu (one kernel) then MatMul (another), with long node names."""
    import tritonnx

    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.random((4, 3, 3, 3), dtype=np.float32), "W")
    m = numpy_helper.from_array(rng.random((8, 8), dtype=np.float32), "M")
    nodes = [
        helper.make_node("Conv", ["x", "W"], ["c"], name="features/block_one/convolution_layer", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"], name="features/block_one/activation_relu"),
        helper.make_node("MatMul", ["r", "M"], ["y"], name="classifier/projection_matmul"),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])],
        [w, m],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    art = tmp_path_factory.mktemp("report") / "art"
    tritonnx.compile(model, art)
    return art


def _plan(art) -> dict:
    return json.loads((art / "plan.json").read_text())


def _render(art, wide: bool = False) -> str:
    console = Console(width=80, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    rep.report(art, wide=wide, console=console)
    console.file.close()
    return console.export_text()


def test_default_table_fits_80_columns(artifact):
    text = _render(artifact)
    assert all(len(line) <= 80 for line in text.splitlines()), text
    assert "…" not in text
    for launch in _plan(artifact)["launches"]:
        assert launch["kernel"] in text
    # nothing cropped at the right edge: the last column is there, whole, on every row
    rows = [line for line in text.splitlines() if any(k["kernel"] in line for k in _plan(artifact)["launches"])]
    assert rows and all(line.rstrip().endswith(("memory", "compute")) for line in rows), rows
    assert "Conv+Relu" in text and "MatMul" in text
    assert "convolution_layer" not in text  # node names only in --wide


def test_wide_shows_node_names(artifact):
    console = Console(width=400, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    rep.report(artifact, wide=True, console=console)
    console.file.close()
    text = console.export_text()
    assert "features/block_one/convolution_layer (Conv)" in text
    assert "classifier/projection_matmul (MatMul)" in text
    assert "warps" in text and "grid" in text and "mat_mul" in text


def test_graph(artifact, tmp_path, capsys):
    out = tmp_path / "graph.svg"
    assert cli.main(["report", str(artifact), "--graph", str(out)]) == 0
    dot = (tmp_path / "graph.dot").read_text()
    assert dot.startswith("digraph")
    for kernel in {launch["kernel"] for launch in _plan(artifact)["launches"]}:
        assert kernel in dot
    assert dot.count("subgraph cluster_") == len(_plan(artifact)["launches"])
    if shutil.which("dot"):
        assert "<svg" in out.read_text()
    else:
        assert "needs graphviz" in capsys.readouterr().out


def test_annotated_onnx(artifact, tmp_path):
    out = tmp_path / "annotated.onnx"
    assert cli.main(["report", str(artifact), "--annotated-onnx", str(out)]) == 0
    model = onnx.load(str(out))
    props = {n.name: {p.key: p.value for p in n.metadata_props} for n in model.graph.node}
    for i, launch in enumerate(_plan(artifact)["launches"]):
        for name in launch["nodes"]:
            assert props[name]["tritonnx.kernel"] == launch["kernel"]
            assert props[name]["tritonnx.launch"] == str(i)


@pytest.fixture(scope="module")
def unnamed(tmp_path_factory):
    """Unnamed nodes whose places change when the importer prepares the graph (a Constant
    folded away before them) and a model-local function that onnx's inliner expands."""
    import tritonnx

    act = helper.make_function(
        "local",
        "Act",
        ["a"],
        ["b"],
        [helper.make_node("Relu", ["a"], ["t"]), helper.make_node("Neg", ["t"], ["b"])],
        [helper.make_opsetid("", 17)],
    )
    nodes = [
        helper.make_node("Constant", [], ["k"], value=numpy_helper.from_array(np.full((1, 8), 0.5, np.float32))),
        helper.make_node("Add", ["x", "k"], ["s"]),
        helper.make_node("Act", ["s"], ["r"], domain="local"),
        helper.make_node("Softmax", ["r"], ["y"], axis=-1),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 8])],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("local", 1)], functions=[act]
    )
    art = tmp_path_factory.mktemp("unnamed") / "art"
    tritonnx.compile(model, art)
    return art


def test_unnamed_nodes_are_found(unnamed, tmp_path):
    """The plan, the report, the graph and the annotated model name an unnamed node alike
    (`<op_type>_<index>`, its index in the model as given): no op type is unknown and every
    computed node is tagged with its kernel."""
    from tritonnx.importers.onnx import node_names

    plan = _plan(unnamed)
    ops = rep._op_types(unnamed)
    assert set(ops) == {"Constant_0", "Add_1", "Act_2", "Softmax_3"}
    assert all("?" not in rep._op_summary(la["nodes"], ops) for la in plan["launches"])
    out = tmp_path / "annotated.onnx"
    rep.write_annotated_onnx(unnamed, out)
    model = onnx.load(str(out))
    tagged = {
        name
        for name, n in zip(node_names(model.graph), model.graph.node)
        if any(p.key == "tritonnx.kernel" for p in n.metadata_props)
    }
    assert tagged == {"Add_1", "Act_2", "Softmax_3"}  # the Constant is folded into a kernel's operand
    dot = rep.graph_dot(unnamed)
    for kernel in {la["kernel"] for la in plan["launches"]}:
        assert kernel in dot


def test_annotated_onnx_keeps_an_existing_data_file(artifact, tmp_path, monkeypatch):
    """A model saved with external data writes OUT.onnx.data; one that exists, which the
    user did not name, is refused and left as it was."""
    monkeypatch.setattr(rep, "PROTOBUF_LIMIT", 0)
    out = tmp_path / "annotated.onnx"
    (tmp_path / "annotated.onnx.data").write_bytes(b"the user's")
    with pytest.raises(Exception, match="exists"):
        rep.write_annotated_onnx(artifact, out)
    assert (tmp_path / "annotated.onnx.data").read_bytes() == b"the user's"
    assert not out.exists()
    (tmp_path / "annotated.onnx.data").unlink()
    rep.write_annotated_onnx(artifact, out)
    assert onnx.load(str(out)).graph.node[0].metadata_props
