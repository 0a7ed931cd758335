"""`tritonnx-opt` round-trips the compiler's dumps: running pass P on dump `NN-x.mlir` gives
exactly the text of the next dump `NN+1-P.mlir`, source locations included. So a dump is
the whole state between two passes: nothing a pass needs lives outside the IR."""

import contextlib
import io
import re

import numpy as np
import onnx
import pytest
from onnx import helper as h
from onnx import numpy_helper

import tritonnx
from tritonnx.compiler import driver, opt
from tritonnx.compiler.pipeline import stages


def _w(rng, name, *shape):
    return numpy_helper.from_array((rng.standard_normal(shape) * 0.5).astype(np.float32), name)


def _cnn(channels: int) -> onnx.ModelProto:
    """Conv, BatchNormalization, Relu, MaxPool, Flatten, Gemm."""
    rng = np.random.default_rng(0)
    c = channels
    nodes = [
        h.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        h.make_node("BatchNormalization", ["c1", "s", "bb", "m", "v"], ["n1"], name="bn1"),
        h.make_node("Relu", ["n1"], ["r1"], name="relu1"),
        h.make_node("MaxPool", ["r1"], ["p1"], name="pool1", kernel_shape=[2, 2], strides=[2, 2]),
        h.make_node("Flatten", ["p1"], ["f"], name="flat"),
        h.make_node("Gemm", ["f", "w2", "b2"], ["y"], name="fc", transB=1),
    ]
    inits = [
        _w(rng, "w1", c, 1, 3, 3),
        _w(rng, "b1", c),
        _w(rng, "s", c),
        _w(rng, "bb", c),
        _w(rng, "m", c),
        numpy_helper.from_array(np.full(c, 0.8, np.float32), "v"),
        _w(rng, "w2", 3, 4 * c),
        _w(rng, "b2", 3),
    ]
    graph = h.make_graph(
        nodes,
        "cnn",
        [h.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 1, 4, 4])],
        [h.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 3])],
        inits,
    )
    return h.make_model(graph, opset_imports=[h.make_opsetid("", 17)])


def _reduction() -> onnx.ModelProto:
    """A Softmax, a ReduceMean with its prologue (Mul) and an epilogue (Sub)."""
    nodes = [
        h.make_node("Softmax", ["x"], ["sm"], name="soft", axis=1),
        h.make_node("Mul", ["sm", "x"], ["sq"], name="mul0"),
        h.make_node("ReduceMean", ["sq", "axes"], ["mean"], name="mean0", keepdims=1),
        h.make_node("Sub", ["x", "mean"], ["y"], name="sub0"),
    ]
    graph = h.make_graph(
        nodes,
        "red",
        [h.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [4, 6])],
        [h.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [4, 6])],
        [numpy_helper.from_array(np.array([1], np.int64), "axes")],
    )
    return h.make_model(graph, opset_imports=[h.make_opsetid("", 18)])


def _opt(path, pipeline: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = opt.main([str(path), f"--pass-pipeline={pipeline}", "--mlir-print-debuginfo"])
    return rc, out.getvalue(), err.getvalue()


def _pairs(dumps):
    """(earlier dump, later dump, the later one's pass as a pipeline string), in order."""
    files = sorted(dumps.glob("*.mlir"))
    names = {n.replace(",", "-"): n for n, _ in stages()}  # `canonicalize,cse` is dumped as canonicalize-cse
    assert [int(f.name.split("-", 1)[0]) for f in files] == list(range(len(files)))
    for before, after in zip(files, files[1:]):
        name = re.fullmatch(r"\d+-(.+)\.mlir", after.name).group(1)
        yield before, after, names.get(name, name)


@pytest.mark.parametrize("model", [_cnn(4), _reduction()], ids=["cnn", "reduction"])
def test_each_pass_reproduces_its_dump(model, tmp_path, monkeypatch):
    """Dumps that keep every weight (a limit above the models' largest blob, here and in
    tritonnx-opt): every pass, tnx-canonicalize's folding included, reproduces its dump."""
    monkeypatch.setattr(driver, "DUMP_RESOURCE_LIMIT", 1 << 20)
    tritonnx.compile(model, tmp_path / "art", dump_ir=tmp_path / "ir")
    pairs = list(_pairs(tmp_path / "ir"))
    assert len(pairs) == len(stages())
    for before, after, pipeline in pairs:
        rc, text, err = _opt(before, pipeline)
        assert rc == 0, f"{pipeline} on {before.name}: {err}"
        assert text == after.read_text(), f"{pipeline} on {before.name} differs from {after.name}"


def test_dumps_elide_weights_honestly(tmp_path):
    """At the dumps' own limit (blobs of more than 64 hex characters are elided), the passes after tnx-canonicalize (which read no
    weight values) still reproduce their dumps; tnx-canonicalize, which folds the
    BatchNormalization into the Conv's weights, says the weight was elided."""
    tritonnx.compile(_cnn(4), tmp_path / "art", dump_ir=tmp_path / "ir")
    pairs = list(_pairs(tmp_path / "ir"))
    assert "dense_resource<w1>" in pairs[0][0].read_text() and "w1:" not in pairs[0][0].read_text()
    for before, after, pipeline in pairs:
        rc, text, err = _opt(before, pipeline)
        if pipeline == "tnx-canonicalize":
            assert rc == 1 and "elided" in err
        else:
            assert rc == 0 and text == after.read_text(), f"{pipeline} on {before.name}: {err}"


def test_dump_locations_and_short_lines(tmp_path):
    tritonnx.compile(_cnn(4), tmp_path / "art", dump_ir=tmp_path / "ir")
    imported = (tmp_path / "ir" / "00-import.mlir").read_text()
    conv = next(line for line in imported.splitlines() if '"tnx.conv"' in line)
    assert conv.endswith('loc("conv1")') and "auto_pad" not in conv and "group" not in conv
    assert "strides" not in conv and "dilations" not in conv  # all ones: derived defaults
    fused = next((tmp_path / "ir").glob("*-partition.mlir")).read_text()
    assert "epilogue of conv1" in fused
    for f in (tmp_path / "ir").glob("*.mlir"):
        text = f.read_text()
        assert not re.search(r"\{-#\s*#-\}", text), f.name  # no empty resource trailer
    lowered = next((tmp_path / "ir").glob("*-lower-to-tile.mlir")).read_text()
    program_id = next(line for line in lowered.splitlines() if '"tile.program_id"' in line)
    assert re.search(r'fused<"tile">\[(fused\[)?"conv1"', program_id)  # tile-level IR keeps the nodes
    assert re.search(r'loc\("offs_m"\(', lowered)  # and names values as the printed kernel does
