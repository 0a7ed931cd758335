"""Trust at the edges (issue 11), each case as a user hits it: output paths, the compile
cache, artifact integrity, threads, leftovers, Softmax of -inf rows, and clear errors."""

import json
import logging
import os
import stat
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import tritonnx
from models import make_resnet, ort_run
from tritonnx.compiler import cache, cli
from tritonnx.errors import ArtifactError, InputError, ModelLoadError, OutputPathError


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Each test its own compile cache, so entries can be found and damaged."""
    monkeypatch.setenv("TRITONNX_CACHE_DIR", str(tmp_path / "cache"))


def _entry() -> Path:
    entries = [p for p in cache.cache_dir().iterdir() if (p / "manifest.json").is_file()]
    assert len(entries) == 1
    return entries[0]


def _mlp(seed=0, bias=None) -> onnx.ModelProto:
    """x [4, 16] -> MatMul -> Add -> Relu -> MatMul -> Softmax: kernels with intermediates."""
    rng = np.random.default_rng(seed)
    w1 = numpy_helper.from_array(rng.standard_normal((16, 32)).astype(np.float32), "w1")
    b1 = numpy_helper.from_array(bias if bias is not None else rng.standard_normal(32).astype(np.float32), "b1")
    w2 = numpy_helper.from_array(rng.standard_normal((32, 8)).astype(np.float32), "w2")
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h"], name="mm1"),
        helper.make_node("Add", ["h", "b1"], ["hb"], name="add1"),
        helper.make_node("Relu", ["hb"], ["r"], name="relu1"),
        helper.make_node("MatMul", ["r", "w2"], ["z"], name="mm2"),
        helper.make_node("Softmax", ["z"], ["y"], axis=-1, name="softmax1"),
    ]
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 8])],
        [w1, b1, w2],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=10)


def _x(seed=0):
    return np.random.default_rng(seed).standard_normal((4, 16)).astype(np.float32)


def _save(model, path: Path) -> str:
    onnx.save(model, path)
    return str(path)


def _tree(root: Path) -> dict:
    """{relative path: bytes} of every file under root."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# -- output paths ------------------------------------------------------------------------


def test_output_dir_of_the_users_is_refused_and_untouched(tmp_path, capsys):
    src = _save(_mlp(), tmp_path / "m.onnx")
    mine = tmp_path / "work"
    mine.mkdir()
    (mine / "notes.txt").write_text("my notes")
    _save(_mlp(), mine / "m.onnx")
    before = _tree(mine)
    assert cli.main(["compile", src, "-o", str(mine)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "not a tritonnx artifact" in err
    assert _tree(mine) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", "work"]


def test_output_path_that_is_a_file_is_refused_and_untouched(tmp_path, capsys):
    src = _save(_mlp(), tmp_path / "m.onnx")
    target = tmp_path / "out"
    target.write_text("keep me")
    assert cli.main(["compile", src, "-o", str(target)]) == 1
    assert "is an existing file" in capsys.readouterr().err
    assert target.read_text() == "keep me"
    with pytest.raises(OutputPathError):
        tritonnx.compile(_mlp(), target)
    assert target.read_text() == "keep me"


def test_previous_artifact_and_empty_dir_are_replaced(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    first = tritonnx.compile(_mlp(seed=0), out, cache=False)
    y0 = first(_x())
    second = tritonnx.compile(_mlp(seed=1), out, cache=False)
    y1 = second(_x())
    np.testing.assert_allclose(y1, ort_run(_mlp(seed=1), {"x": _x()})[0], rtol=1e-4, atol=1e-6)
    assert not np.allclose(y0, y1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_dump_dir_of_the_users_is_refused(tmp_path, capsys):
    src = _save(_mlp(), tmp_path / "m.onnx")
    ir = tmp_path / "ir"
    assert cli.main(["compile", src, "-o", str(tmp_path / "a"), "--dump-ir", str(ir)]) == 0
    assert cli.main(["compile", src, "-o", str(tmp_path / "a"), "--dump-ir", str(ir)]) == 0  # over its own dump
    (ir / "notes.txt").write_text("mine")
    assert cli.main(["compile", src, "-o", str(tmp_path / "b"), "--dump-ir", str(ir)]) == 1
    assert "holds files that are not pass dumps (notes.txt)" in capsys.readouterr().err
    assert (ir / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "ir", "m.onnx"]  # no work dir left


def test_concurrent_compiles_into_one_output(tmp_path):
    """Two processes compiling into one -o at once: both succeed, one whole artifact stays."""
    src = _save(make_resnet(), tmp_path / "r.onnx")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "tritonnx.compiler.cli", "compile", src, "-o", str(out), "--no-cache"]
    for _ in range(2):
        procs = [subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True) for _ in range(2)]
        errs = [p.communicate()[1] for p in procs]
        assert [p.returncode for p in procs] == [0, 0], errs
        model = tritonnx.CompiledModel(out)
        x = np.random.default_rng(0).standard_normal((1, 3, 64, 64)).astype(np.float32)
        np.testing.assert_allclose(model(x), ort_run(make_resnet(), {"input": x})[0], rtol=1e-4, atol=1e-5)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "r.onnx"]


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_leftovers_of_a_killed_compile_are_reclaimed(tmp_path):
    """A killed compile leaves its work directory; the next compile beside it removes it,
    but not a live compile's, nor anything else."""
    dead = tmp_path / f".out.partial-{_dead_pid()}-abc123"
    dead.mkdir()
    (dead / "weights.safetensors").write_bytes(b"x" * 1000)
    live = tmp_path / f".out.partial-{os.getpid()}-def456"
    live.mkdir()
    other = tmp_path / f".other.partial-{_dead_pid()}-abc123"  # another output's: not ours to judge here
    other.mkdir()
    tritonnx.compile(_mlp(), tmp_path / "out", cache=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["out", live.name, other.name])


def test_really_killed_compile_then_recompile_leaves_nothing(tmp_path):
    src = _save(make_resnet(image=96), tmp_path / "r.onnx")
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tritonnx.compiler.cli", "compile", src, "-o", str(out), "--no-cache"]
    )
    import time

    deadline = time.time() + 120
    while not any(p.name.startswith(".out.partial-") for p in tmp_path.iterdir()):
        assert proc.poll() is None and time.time() < deadline, "the compile ended before its work dir was seen"
        time.sleep(0.01)
    proc.kill()
    proc.wait()
    assert any(p.name.startswith(".out.partial-") for p in tmp_path.iterdir())
    assert cli.main(["compile", src, "-o", str(out), "--no-cache"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "r.onnx"]


def test_compile_without_output_dir_leaks_nothing(tmp_path, monkeypatch):
    tmp_path = tmp_path / "tmp"
    tmp_path.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    for seed in range(3):
        model = tritonnx.compile(_mlp(seed))
        np.testing.assert_allclose(model(_x()), ort_run(_mlp(seed), {"x": _x()})[0], rtol=1e-4, atol=1e-6)
        del model
    import gc

    gc.collect()
    assert list(tmp_path.iterdir()) == []
    # a dead process's temporary artifact is reclaimed by the next compile
    stale = tmp_path / f"tritonnx-{_dead_pid()}-zz9"
    stale.mkdir()
    model = tritonnx.compile(_mlp())
    assert not stale.exists()
    assert [p for p in tmp_path.iterdir()] == [model.path]


# -- the compile cache ---------------------------------------------------------------------


def test_editing_an_artifact_does_not_poison_the_cache(tmp_path):
    x = _x()
    a = tritonnx.compile(_mlp(seed=7), tmp_path / "a")
    expected = a(x)
    weights = tmp_path / "a" / "weights.safetensors"
    assert weights.stat().st_nlink == 1  # a private copy, not a link into the cache
    data = bytearray(weights.read_bytes())
    data[-64:] = b"\x7f" * 64  # the user edits it in place
    with open(weights, "r+b") as f:
        f.write(data)
    b = tritonnx.compile(_mlp(seed=7), tmp_path / "b")
    assert b.cached
    np.testing.assert_array_equal(b(x), expected)
    with pytest.raises(ArtifactError, match="weights.safetensors does not match the SHA-256"):
        tritonnx.CompiledModel(tmp_path / "a").run({"x": x})


def test_cache_entries_are_read_only_private_copies(tmp_path):
    tritonnx.compile(_mlp(seed=8), tmp_path / "a")
    for f in _entry().rglob("*"):
        if f.is_file():
            assert f.stat().st_nlink == 1 and not f.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)


@pytest.mark.parametrize("damage", ["truncate plan", "remove weights", "remove kernel"])
def test_damaged_cache_entry_is_evicted_and_recompiled(tmp_path, damage, caplog):
    model = _mlp(seed=11)
    tritonnx.compile(model, tmp_path / "a")
    key = _entry()
    os.chmod(key, 0o700)
    if damage == "truncate plan":
        plan = key / "plan.json"
        os.chmod(plan, 0o600)
        plan.write_text(plan.read_text()[:100])
    elif damage == "remove weights":
        (key / "weights.safetensors").unlink()
    else:
        os.chmod(key / "kernels", 0o700)
        next((key / "kernels").glob("*.py")).unlink()
    with caplog.at_level(logging.WARNING, logger="tritonnx"):
        again = tritonnx.compile(model, tmp_path / "b")
    assert not again.cached
    assert any("compile cache entry" in r.getMessage() and "evicted" in r.getMessage() for r in caplog.records)
    np.testing.assert_allclose(again(_x()), ort_run(model, {"x": _x()})[0], rtol=1e-4, atol=1e-6)
    assert tritonnx.compile(model, tmp_path / "c").cached  # stored afresh


def test_dead_cache_temporaries_are_reclaimed_and_other_files_kept(tmp_path):
    root = cache.cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    stale = root / f".tmp-{_dead_pid()}-q1"
    stale.mkdir()
    (stale / "plan.json").write_text("{}")
    mine = root / "my-notes"
    mine.mkdir()
    tritonnx.compile(_mlp(seed=12), tmp_path / "a")
    assert not stale.exists() and mine.is_dir()


def test_external_data_is_keyed_by_its_bytes(tmp_path):
    """Weights in an external file: a compile after the file changed must see the new values."""
    x = _x()
    for value in (0.5, -3.0):
        model = _mlp(seed=3, bias=np.full(32, value, np.float32))
        saved = onnx.ModelProto()
        saved.CopyFrom(model)  # onnx.save moves the data out of the proto it saves
        onnx.save(
            saved,
            tmp_path / "m.onnx",
            save_as_external_data=True,
            all_tensors_to_one_file=True,
            location="m.data",
            size_threshold=0,
        )
        compiled = tritonnx.compile(str(tmp_path / "m.onnx"), tmp_path / f"out{value}")
        np.testing.assert_allclose(compiled(x), ort_run(model, {"x": x})[0], rtol=1e-4, atol=1e-6)


def test_model_proto_with_unloaded_external_data_is_refused(tmp_path, monkeypatch):
    onnx.save(_mlp(), tmp_path / "m.onnx", save_as_external_data=True, location="m.data", size_threshold=0)
    proto = onnx.load(str(tmp_path / "m.onnx"), load_external_data=False)
    monkeypatch.chdir(tmp_path)  # where onnx would otherwise resolve the file
    with pytest.raises(ModelLoadError, match="external file 'm.data', which was not loaded"):
        tritonnx.compile(proto, tmp_path / "out")


def test_cache_cli_info_and_clear(tmp_path, capsys):
    tritonnx.compile(_mlp(seed=13), tmp_path / "a")
    assert cli.main(["cache", "info"]) == 0
    out = capsys.readouterr().out
    assert str(cache.cache_dir()) in out and "entries:" in out
    (cache.cache_dir() / "keep.txt").write_text("not the cache's")
    assert cli.main(["cache", "clear"]) == 0
    assert cache.info()["entries"] == 0 and (cache.cache_dir() / "keep.txt").is_file()
    assert not tritonnx.compile(_mlp(seed=13), tmp_path / "b").cached


def test_default_cache_location_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.delenv("TRITONNX_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.cache_dir() == tmp_path / "xdg" / "tritonnx"


# -- artifact integrity --------------------------------------------------------------------


def _artifact(tmp_path) -> Path:
    out = tmp_path / "art"
    tritonnx.compile(_mlp(seed=5), out, cache=False)
    return out


def test_edited_kernel_is_not_imported(tmp_path, capsys):
    out = _artifact(tmp_path)
    kernel = next((out / "kernels").glob("*.py"))
    marker = tmp_path / "imported"
    kernel.write_text(kernel.read_text() + f"\nopen({str(marker)!r}, 'w').close()\n")
    with pytest.raises(ArtifactError, match="does not match the SHA-256"):
        tritonnx.CompiledModel(out).run({"x": _x()})
    assert cli.main(["run", str(out)]) == 1
    assert "does not match the SHA-256" in capsys.readouterr().err
    assert not marker.exists()


def test_kernel_name_outside_the_artifact_is_refused(tmp_path):
    out = _artifact(tmp_path)
    marker = tmp_path / "imported"
    (tmp_path / "x.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    plan = json.loads((out / "plan.json").read_text())
    plan["launches"][0]["kernel"] = "../../x"
    (out / "plan.json").write_text(json.dumps(plan))
    with pytest.raises(ArtifactError, match="not an identifier"):
        tritonnx.CompiledModel(out)
    assert not marker.exists()


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda p: p.update(version=99), "artifact format version 99"),
        (lambda p: p.pop("format"), 'no "format"'),
        (lambda p: p["launches"][0]["buffers"].append("nowhere"), "does not define"),
        (lambda p: p["buffers"][0].update(dtype="complex64"), "dtype 'complex64'"),
        (lambda p: p["buffers"][0].update(shape=["__import__('os')"]), "not integer size arithmetic"),
        (lambda p: p["files"].update({"../evil.py": "0" * 64}), "not an artifact path"),
        (lambda p: p["launches"][0].update(constexprs={"num_warps": 4}), "block sizes"),
        (lambda p: p["launches"][0].update(constexprs={"BLOCK": 0}), "block sizes"),
        (
            lambda p: p.update(checks=[{"buffer": "w0", "node": "n", "op_type": "Gather", "axis": 0, "size": 4}]),
            "names no check buffer",
        ),
    ],
)
def test_plan_is_validated(tmp_path, edit, message):
    out = _artifact(tmp_path)
    plan = json.loads((out / "plan.json").read_text())
    edit(plan)
    (out / "plan.json").write_text(json.dumps(plan))
    with pytest.raises(ArtifactError, match=message):
        tritonnx.CompiledModel(out)


def test_truncated_plan_is_a_clear_error(tmp_path, capsys):
    out = _artifact(tmp_path)
    (out / "plan.json").write_text((out / "plan.json").read_text()[:200])
    assert cli.main(["run", str(out)]) == 1
    err = capsys.readouterr().err
    assert "plan.json is damaged" in err and err.count("\n") == 1


# -- threads -------------------------------------------------------------------------------


@pytest.mark.slow
def test_one_model_from_eight_threads_gives_the_sequential_results(tmp_path):
    model = tritonnx.compile(make_resnet(widths=(8, 16, 16, 16), image=32), tmp_path / "r", cache=False)
    inputs = [np.random.default_rng(i).standard_normal((1, 3, 32, 32)).astype(np.float32) for i in range(160)]
    expected = [model(x) for x in inputs]
    results: dict[int, np.ndarray] = {}
    errors = []

    def work(t):
        try:
            for i in range(t, 160, 8):
                results[i] = model(inputs[i])
        except Exception as e:  # noqa: BLE001 - collected: an exception in a thread would not fail the test
            errors.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    wrong = [i for i in range(160) if not np.array_equal(results[i], expected[i])]
    assert wrong == []


# -- semantics -------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [5, 64, 300])
def test_softmax_of_an_all_minus_inf_row_is_nan(n):
    """Softmax-13 of [-inf, ..., -inf] is NaN in onnxruntime, torch and the ONNX reference,
    whatever the row's length against the kernel's block."""
    graph = helper.make_graph(
        [helper.make_node("Softmax", ["x"], ["y"], axis=-1)],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, n])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, n])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=10)
    x = np.random.default_rng(0).standard_normal((3, n)).astype(np.float32)
    x[1] = -np.inf
    x[2, ::2] = -np.inf
    y = tritonnx.compile(model, cache=False)(x)
    ref = ort_run(model, {"x": x})[0]
    assert np.isnan(ref[1]).all()
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-7)  # NaN positions must agree


# -- errors ----------------------------------------------------------------------------------


def test_run_with_npy_inputs(tmp_path, capsys):
    out = _artifact(tmp_path)
    np.save(tmp_path / "x.npy", _x())
    assert cli.main(["run", str(out), "--inputs", str(tmp_path / "x.npy"), "--check"]) == 0
    (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04 this is not a zip")
    assert cli.main(["run", str(out), "--inputs", str(tmp_path / "bad.npz")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: --inputs") and err.count("\n") == 1 and "internal error" not in err


def test_full_disk_is_an_environment_error(tmp_path, capsys):
    out = _artifact(tmp_path)
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full")
    assert cli.main(["run", str(out), "--output", "/dev/full"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: No space left on device") and err.count("\n") == 1


def test_none_input_names_the_input(tmp_path):
    model = tritonnx.CompiledModel(_artifact(tmp_path))
    with pytest.raises(InputError, match="input 'x' is NoneType, not an array"):
        model.run({"x": None})


def test_directory_as_model(tmp_path, capsys):
    assert cli.main(["compile", str(tmp_path), "-o", str(tmp_path / "out")]) == 1
    assert "is a directory; give the path of an .onnx file" in capsys.readouterr().err


def test_run_inputs_by_name_seed_and_benchmark(tmp_path, capsys):
    """`--inputs NAME=FILE.npy` (Polygraphy's form), the random inputs' seed printed, and
    `--benchmark` figures labelled as the interpreter's, not a GPU's."""
    out = _artifact(tmp_path)
    np.save(tmp_path / "x.npy", _x())
    assert cli.main(["run", str(out), "--inputs", f"x={tmp_path / 'x.npy'}", "--check"]) == 0
    assert "relative error" in capsys.readouterr().out
    assert cli.main(["run", str(out), "--inputs", f"nope={tmp_path / 'x.npy'}"]) == 1
    assert "no input 'nope'" in capsys.readouterr().err
    assert cli.main(["run", str(out), "--seed", "7", "--benchmark", "--warmup", "1", "--iterations", "3"]) == 0
    text = capsys.readouterr().out
    assert "--seed 7" in text and "3 iterations after 1 warmup" in text
    assert "not GPU figures" in text and "median" in text and "p90" in text and "runs/s" in text
