"""Models over 2 GB (issue 13): weights in ONNX external data are read by path, mapped
rather than loaded, written to the artifact without a second copy, and run and checked
against onnxruntime."""

import json
import math
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import tritonnx
from models import ort_run
from tritonnx.compiler import cache, cli
from tritonnx.importers import external
from tritonnx.importers.onnx import load

ROWS = 1024  # rows of a weight generated and written at a time


def write_mlp(path: Path, width: int, layers: int, batch: int = 1, seed: int = 0) -> int:
    """Writes at `path` an MLP of `layers` x (MatMul [width, width] fp32 -> Add bias -> Relu,
    no Relu after the last) whose weights and biases are external data in `path`.data,
    generated in chunks of ROWS rows by a seeded RNG and written straight to the file (no
    proto ever holds them). He-scaled normal weights keep activations near 1. Returns the
    weight bytes."""
    rng = np.random.default_rng(seed)
    data = path.with_name(path.name + ".data")
    inits, nodes, x = [], [], "x"
    with open(data, "wb") as f:

        def tensor(name: str, shape: list[int], scale: float) -> TensorProto:
            offset = f.tell()
            rows = shape[0] if len(shape) > 1 else 1
            for r in range(0, rows, ROWS):
                chunk = [min(ROWS, rows - r), *shape[1:]] if len(shape) > 1 else shape
                f.write((rng.standard_normal(chunk, dtype=np.float32) * np.float32(scale)).tobytes())
            t = TensorProto(name=name, dims=shape, data_type=TensorProto.FLOAT)
            t.data_location = TensorProto.EXTERNAL
            for key, value in (("location", data.name), ("offset", offset), ("length", f.tell() - offset)):
                t.external_data.add(key=key, value=str(value))
            return t

        for i in range(layers):
            inits += [tensor(f"w{i}", [width, width], math.sqrt(2.0 / width)), tensor(f"b{i}", [width], 0.01)]
            nodes += [
                helper.make_node("MatMul", [x, f"w{i}"], [f"m{i}"], name=f"matmul{i}"),
                helper.make_node("Add", [f"m{i}", f"b{i}"], [f"a{i}"], name=f"add{i}"),
            ]
            x = f"a{i}"
            if i < layers - 1:
                nodes.append(helper.make_node("Relu", [x], [f"r{i}"], name=f"relu{i}"))
                x = f"r{i}"
        size = f.tell()
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, width])],
        [helper.make_tensor_value_info(x, TensorProto.FLOAT, [batch, width])],
        inits,
    )
    onnx.save_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)]), path)
    return size


def test_external_weights_are_mapped_not_loaded(tmp_path):
    """load() reads the graph without the data; a big initializer stays external, and the
    importer's array is a copy-on-write mapping of the file's bytes."""
    write_mlp(tmp_path / "m.onnx", width=64, layers=2)
    proto = load(tmp_path / "m.onnx")
    w0 = next(t for t in proto.graph.initializer if t.name == "w0")
    b0 = next(t for t in proto.graph.initializer if t.name == "b0")
    assert external.is_external(w0) and not w0.raw_data
    assert not external.is_external(b0) and len(b0.raw_data) == 64 * 4  # small: read into the proto
    array = external.array(w0)
    assert isinstance(array, np.memmap) and array.shape == (64, 64) and array.flags.writeable
    expected = onnx.numpy_helper.to_array(onnx.load(str(tmp_path / "m.onnx")).graph.initializer[0])
    np.testing.assert_array_equal(array, expected)
    array[0, 0] = 1e9  # private: the file keeps its bytes
    np.testing.assert_array_equal(external.array(w0), expected)


def test_external_data_errors_name_the_tensor(tmp_path):
    write_mlp(tmp_path / "m.onnx", width=64, layers=1)
    data = tmp_path / "m.onnx.data"
    data.write_bytes(data.read_bytes()[:1000])  # truncated
    with pytest.raises(tritonnx.ModelLoadError, match="'w0'.*runs past the end"):
        load(tmp_path / "m.onnx")


def test_artifact_keeps_external_data_and_cache_keys_its_bytes(tmp_path, monkeypatch, capsys):
    """The artifact's model.onnx keeps its big weights in model.onnx.data (listed in the plan
    with their digest), `run --check` compares with onnxruntime, and a compile after the
    external file changed is not served from the cache."""
    monkeypatch.setenv("TRITONNX_CACHE_DIR", str(tmp_path / "cache"))
    model = tmp_path / "src" / "m.onnx"
    model.parent.mkdir()
    write_mlp(model, width=64, layers=2, batch=2)
    compiled = tritonnx.compile(str(model), tmp_path / "a")
    plan = json.loads((tmp_path / "a" / "plan.json").read_text())
    assert "model.onnx.data" in plan["files"]
    saved = onnx.load(str(tmp_path / "a" / "model.onnx"), load_external_data=False)
    assert {e.key: e.value for e in saved.graph.initializer[0].external_data}.keys() == {
        "location",
        "offset",
        "length",
    }
    x = np.random.default_rng(1).standard_normal((2, 64)).astype(np.float32)
    np.testing.assert_allclose(compiled(x), ort_run(str(model), {"x": x})[0], rtol=1e-4, atol=1e-5)
    assert cli.main(["run", str(tmp_path / "a"), "--check"]) == 0
    assert "check a1 against onnxruntime" in capsys.readouterr().out
    moved = tmp_path / "moved"
    shutil.copytree(model.parent, moved)
    assert tritonnx.compile(str(moved / "m.onnx"), tmp_path / "b").cached  # the same model elsewhere
    write_mlp(model, width=64, layers=2, batch=2, seed=5)  # same graph, other weights
    again = tritonnx.compile(str(model), tmp_path / "c")
    assert not again.cached
    np.testing.assert_allclose(again(x), ort_run(str(model), {"x": x})[0], rtol=1e-4, atol=1e-5)
    assert len([p for p in cache.cache_dir().iterdir() if (p / "manifest.json").is_file()]) == 2


COMPILE = textwrap.dedent(
    """
    import resource, sys
    import tritonnx
    tritonnx.compile(sys.argv[1], sys.argv[2], cache=False)
    print("maxrss_kib", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    """
)


@pytest.mark.slow
def test_model_over_2gb(tmp_path, capsys):
    """4 layers of 12000 x 12000 fp32 (2.3 GB of weights, over protobuf's 2 GB limit): the
    compile (in a subprocess, to measure its peak resident memory) stays under 1.5x the
    weight bytes, and the artifact runs and matches onnxruntime through `run --check`."""
    model = tmp_path / "src" / "mlp.onnx"
    model.parent.mkdir()
    out = tmp_path / "out"
    try:
        weight_bytes = write_mlp(model, width=12000, layers=4)
        assert weight_bytes > 2 << 30
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(tritonnx.__file__).parents[1])] + sys.path)}
        run = subprocess.run(
            [sys.executable, "-c", COMPILE, str(model), str(out)], env=env, capture_output=True, text=True
        )
        assert run.returncode == 0, run.stderr[-4000:]
        peak = int(run.stdout.split("maxrss_kib")[-1]) * 1024
        with capsys.disabled():
            print(f"\ncompile peak RSS {peak / 2**30:.2f} GiB for {weight_bytes / 2**30:.2f} GiB of weights")
        assert peak < 1.5 * weight_bytes, f"peak RSS {peak} bytes for {weight_bytes} bytes of weights"
        assert (out / "model.onnx.data").stat().st_size >= weight_bytes
        assert cli.main(["run", str(out), "--check"]) == 0
        assert "check a3 against onnxruntime" in capsys.readouterr().out
    finally:  # 7 GB on disk: not left for pytest's kept temporary directories
        shutil.rmtree(model.parent, ignore_errors=True)
        shutil.rmtree(out, ignore_errors=True)
