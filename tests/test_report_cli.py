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
