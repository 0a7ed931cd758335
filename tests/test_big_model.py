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
from tritonnx.compiler import cli
from tritonnx.importers import external
from tritonnx.importers.onnx import load

ROWS = 1024  # rows of a weight generated and written at a time


def write_model(path: Path, vocab: int, width: int, hidden: int, tokens: int = 2, seed: int = 0) -> int:
    """Writes at `path` a language-model-like net whose weights are all external data, in
    `path`.data: token ids int64 [1, tokens] -> Gather from an embedding fp32 [vocab, width]
    -> MatMul [width, hidden] -> Add -> Relu -> MatMul [hidden, width] -> Add -> fp32
    [1, tokens, width]. The weights are generated in chunks of ROWS rows by a seeded RNG
    and written straight to the file (no proto ever holds them); He-scaled normal values
    keep activations near 1. The embedding holds most of the bytes and the kernels read
    only `tokens` rows of it, so Triton's CPU interpreter runs the model in seconds.
    Returns the weight bytes."""
    rng = np.random.default_rng(seed)
    data = path.with_name(path.name + ".data")
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

        inits = [
            tensor("embedding", [vocab, width], 1.0),
            tensor("w0", [width, hidden], math.sqrt(2.0 / width)),
            tensor("b0", [hidden], 0.01),
            tensor("w1", [hidden, width], math.sqrt(2.0 / hidden)),
            tensor("b1", [width], 0.01),
        ]
        size = f.tell()
    nodes = [
        helper.make_node("Gather", ["embedding", "tokens"], ["e"], name="embed"),
        helper.make_node("MatMul", ["e", "w0"], ["m0"], name="up"),
        helper.make_node("Add", ["m0", "b0"], ["a0"], name="up_bias"),
        helper.make_node("Relu", ["a0"], ["r0"], name="relu"),
        helper.make_node("MatMul", ["r0", "w1"], ["m1"], name="down"),
        helper.make_node("Add", ["m1", "b1"], ["y"], name="down_bias"),
    ]
    graph = helper.make_graph(
        nodes,
        "lm",
        [helper.make_tensor_value_info("tokens", TensorProto.INT64, [1, tokens])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, tokens, width])],
        inits,
    )
    onnx.save_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)]), path)
    return size


def _tokens(vocab: int, n: int = 2, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, vocab, (1, n), dtype=np.int64)


def test_external_weights_are_mapped_not_loaded(tmp_path):
    """load() reads the graph without the data; a big initializer stays external, and the
    importer's array is a copy-on-write mapping of the file's bytes."""
    write_model(tmp_path / "m.onnx", vocab=100, width=64, hidden=32)
    proto = load(tmp_path / "m.onnx")
    inits = {t.name: t for t in proto.graph.initializer}
    assert external.is_external(inits["embedding"]) and not inits["embedding"].raw_data
    assert not external.is_external(inits["b0"]) and len(inits["b0"].raw_data) == 32 * 4  # small: in the proto
    array = external.array(inits["embedding"])
    assert isinstance(array, np.memmap) and array.shape == (100, 64) and array.flags.writeable
    expected = onnx.numpy_helper.to_array(onnx.load(str(tmp_path / "m.onnx")).graph.initializer[0])
    np.testing.assert_array_equal(array, expected)
    array[0, 0] = 1e9  # private: the file keeps its bytes
    np.testing.assert_array_equal(external.array(inits["embedding"]), expected)


def test_external_data_errors_name_the_tensor(tmp_path):
    write_model(tmp_path / "m.onnx", vocab=100, width=64, hidden=32)
    data = tmp_path / "m.onnx.data"
    data.write_bytes(data.read_bytes()[:1000])  # truncated
    with pytest.raises(tritonnx.ModelLoadError, match="'embedding'.*runs past the end"):
        load(tmp_path / "m.onnx")


def test_external_data_outside_the_model_directory_is_refused(tmp_path):
    """onnx's checker, run by path, refuses a location that leaves the model's directory."""
    (tmp_path / "sub").mkdir()
    write_model(tmp_path / "m.onnx", vocab=100, width=64, hidden=32)
    proto = onnx.load(str(tmp_path / "m.onnx"), load_external_data=False)
    for t in proto.graph.initializer:
        for e in t.external_data:
            if e.key == "location":
                e.value = "../m.onnx.data"
    onnx.save(proto, str(tmp_path / "sub" / "m.onnx"))
    with pytest.raises(tritonnx.ModelLoadError, match="points outside the directory"):
        load(tmp_path / "sub" / "m.onnx")


def test_artifact_keeps_external_data_and_cache_keys_its_bytes(tmp_path, monkeypatch, capsys):
    """The artifact's model.onnx keeps its big weights in model.onnx.data (listed in the plan
    with their digest), `run --check` compares with onnxruntime, the same model in another
    directory is served from the cache, and one whose external file changed is not."""
    monkeypatch.setenv("TRITONNX_CACHE_DIR", str(tmp_path / "cache"))
    model = tmp_path / "src" / "m.onnx"
    model.parent.mkdir()
    write_model(model, vocab=100, width=64, hidden=32)
    compiled = tritonnx.compile(str(model), tmp_path / "a")
    plan = json.loads((tmp_path / "a" / "plan.json").read_text())
    assert "model.onnx.data" in plan["files"]
    saved = onnx.load(str(tmp_path / "a" / "model.onnx"), load_external_data=False)
    entries = {e.key: e.value for e in saved.graph.initializer[0].external_data}
    assert entries["location"] == "model.onnx.data" and "basepath" not in entries
    tokens = _tokens(100)
    np.testing.assert_allclose(compiled(tokens), ort_run(str(model), {"tokens": tokens})[0], rtol=1e-4, atol=1e-5)
    np.savez(tmp_path / "in.npz", tokens=tokens)
    assert cli.main(["run", str(tmp_path / "a"), "--inputs", str(tmp_path / "in.npz"), "--check"]) == 0
    assert "check y against onnxruntime" in capsys.readouterr().out
    moved = tmp_path / "moved"
    shutil.copytree(model.parent, moved)
    assert tritonnx.compile(str(moved / "m.onnx"), tmp_path / "b").cached  # the same model elsewhere
    write_model(model, vocab=100, width=64, hidden=32, seed=5)  # the same graph, other weights
    again = tritonnx.compile(str(model), tmp_path / "c")
    assert not again.cached
    np.testing.assert_allclose(again(tokens), ort_run(str(model), {"tokens": tokens})[0], rtol=1e-4, atol=1e-5)


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
    """2.3 GB of fp32 weights (over protobuf's 2 GB limit; a 40000 x 12000 embedding and two
    12000 x 4096 MatMuls): the compile, in a subprocess so that its peak resident memory
    (ru_maxrss, mapped weight pages included) can be read, stays under 1.5x the weight bytes,
    and the artifact runs and matches onnxruntime through `run --check`."""
    if shutil.disk_usage(tmp_path).free < 8 << 30:
        pytest.skip("needs 8 GB of free disk for the model and its artifact")
    model = tmp_path / "src" / "lm.onnx"
    model.parent.mkdir()
    out = tmp_path / "out"
    try:
        weight_bytes = write_model(model, vocab=40000, width=12000, hidden=4096)
        assert weight_bytes > 2 << 30
        src = str(Path(tritonnx.__file__).parents[1])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")]))}
        run = subprocess.run(
            [sys.executable, "-c", COMPILE, str(model), str(out)], env=env, capture_output=True, text=True
        )
        assert run.returncode == 0, run.stderr[-4000:]
        peak = int(run.stdout.split("maxrss_kib")[-1]) * 1024
        with capsys.disabled():
            print(f"\ncompile peak RSS {peak / 2**30:.2f} GiB for {weight_bytes / 2**30:.2f} GiB of weights")
        assert peak < 1.5 * weight_bytes, f"peak RSS {peak} bytes for {weight_bytes} bytes of weights"
        assert (out / "model.onnx.data").stat().st_size >= weight_bytes
        np.savez(tmp_path / "in.npz", tokens=_tokens(40000))
        assert cli.main(["run", str(out), "--inputs", str(tmp_path / "in.npz"), "--check"]) == 0
        assert "check y against onnxruntime" in capsys.readouterr().out
    finally:  # 7 GB on disk: not left in pytest's kept temporary directories
        shutil.rmtree(model.parent, ignore_errors=True)
        shutil.rmtree(out, ignore_errors=True)
