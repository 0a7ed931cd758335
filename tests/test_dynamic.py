"""Dynamic shapes: a model with symbolic batch and sequence compiles once (`dynamic=True`);
its kernels take the sizes as arguments and the one artifact runs at any sizes, checked
against onnxruntime, with no recompilation."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import tritonnx
from models import ort_run
from tritonnx import symbolic
from tritonnx.compiler import driver
from tritonnx.runtime.format import evaluate


def test_symint_arithmetic_keeps_the_expression():
    with symbolic.scope({"batch": 13, "seq": 113}):
        m = symbolic.recognize(13 * 113 * 64)
        assert int(m) == 13 * 113 * 64 and str(m.expr) == "64*batch*seq"
        assert symbolic.recognize(64) == 64 and not symbolic.is_symbolic(symbolic.recognize(64))
        blocks = -(-m // 128)  # cdiv, as the choose-blocks pass writes it
        assert int(blocks) == -(-(13 * 113 * 64) // 128)
        assert evaluate(symbolic.to_python(blocks), {"batch": 3, "seq": 7}) == -(-(3 * 7 * 64) // 128)
        assert symbolic.to_python(m // 64) == "batch*seq"
        assert not symbolic.is_symbolic(m % 64)  # 64 divides every value of it
        assert symbolic.hint(m) == 64 * symbolic.HINT * symbolic.HINT
    assert symbolic.recognize(13 * 113) == 13 * 113 and not symbolic.is_symbolic(symbolic.recognize(13 * 113))


def test_samples_avoid_static_sizes():
    sets = symbolic.pick_samples(["batch", "seq"], {26, 64, 1000})  # 13 divides 26
    values = [v for s in sets for v in s.values()]
    assert len(set(values)) == 4 and 13 not in values
    assert all(26 % v and 1000 % v for v in values)


@pytest.fixture(scope="module")
def bert(tmp_path_factory):
    pytest.importorskip("transformers")
    import transformer_models as tm

    d = tmp_path_factory.mktemp("dynamic")
    return tm.export("bert", str(d), opset=17, dynamic=True), d


def test_bert_one_artifact_runs_at_every_size(bert, monkeypatch):
    import transformer_models as tm

    path, d = bert
    runs = []
    lower = driver._lower
    monkeypatch.setattr(driver, "_lower", lambda *a, **k: runs.append(1) or lower(*a, **k))
    model = tritonnx.compile(path, d / "art", dynamic=True, cache=False)
    compiled = len(runs)  # the compile and its check at a second set of sample sizes
    assert compiled == 2
    assert model.dynamic and set(model.plan["symbols"]) == {"batch", "seq"}
    assert [i["shape"] for i in model.plan["inputs"]] == [["batch", "seq"], ["batch", "seq"]]
    assert model.plan["outputs"][0]["shape"] == ["batch", "seq", tm.HIDDEN]
    kernels = sorted(p.name for p in (model.path / "kernels").iterdir())
    kinds = [launch["kind"] for launch in model.launches]
    assert kinds.count("attention") == tm.LAYERS and "softmax" not in kinds
    assert (len(kinds) - kinds.index("attention") + 1) / tm.LAYERS <= 8
    assert any(launch["symbols"] for launch in model.launches)
    for batch, seq in [(1, 7), (3, 64), (8, 128), (3, 7)]:
        feeds = tm.inputs("bert", batch=batch, seq=seq, seed=batch + seq)
        got = model.run(feeds)["last_hidden_state"]
        ref = ort_run(path, feeds)[0]
        assert got.shape == (batch, seq, tm.HIDDEN)
        assert float(np.abs(got - ref).max() / np.abs(ref).max()) < 1e-4, (batch, seq)
    assert len(runs) == compiled  # no recompilation
    assert sorted(p.name for p in (model.path / "kernels").iterdir()) == kernels
    assert len(model._plans) == 4  # one bound plan per set of sizes, from the one artifact

    with pytest.raises(ValueError, match=r"input 'attention_mask' has size 2 in dimension 0; expected batch = 3"):
        model.run({"input_ids": np.zeros((3, 5), np.int64), "attention_mask": np.ones((2, 5), np.int64)})
    with pytest.raises(ValueError, match="input 'input_ids' has shape \\[3\\]; expected rank 2"):
        model.run({"input_ids": np.zeros(3, np.int64), "attention_mask": np.ones((3, 5), np.int64)})


def test_bert_dynamic_kernels_compile_to_cubin(bert):
    path, d = bert
    model = tritonnx.compile(path, d / "gpu", dynamic=True, targets=("sm_90",), cache=False)
    for launch in model.launches:  # the sizes a kernel reads are i32 arguments after its buffers
        n, first = len(launch["symbols"]), len(launch["buffers"])
        assert launch["signature"][first : first + n] == ["i32"] * n
        assert launch["signature"][first + n :] == ["constexpr"] * len(launch["constexprs"])
    assert {s for launch in model.launches for s in launch["symbols"]} == {"batch", "seq"}
    assert all(
        (model.path / "kernels" / f"{k}.sm_90.cubin").stat().st_size > 0
        for k in {launch["kernel"] for launch in model.launches}
    )


def _padded(tmp_path):
    """x[n, 4] -> Pad by one row on each side -> Relu: a size n + 2, not a product."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["m", 4])
    pads = helper.make_tensor("pads", TensorProto.INT64, [4], [1, 0, 1, 0])
    graph = helper.make_graph(
        [helper.make_node("Pad", ["x", "pads"], ["p"]), helper.make_node("Relu", ["p"], ["y"])],
        "padded",
        [x],
        [y],
        [pads],
    )
    path = tmp_path / "padded.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)], ir_version=10), str(path))
    return str(path)


def test_size_that_is_not_a_product_is_refused(tmp_path):
    path = _padded(tmp_path)
    with pytest.raises(tritonnx.CompileError, match="compiled at n=13 and at n=113, a kernel differs"):
        tritonnx.compile(path, tmp_path / "art", dynamic=True, cache=False)
    assert not (tmp_path / "art").exists()
    model = tritonnx.compile(path, tmp_path / "static", shapes={"x": [5, 4]}, dynamic=True)  # nothing left dynamic
    assert not model.dynamic
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    np.testing.assert_allclose(model.run({"x": x})["y"], ort_run(path, {"x": x})[0])


def test_dynamic_cli(bert, tmp_path):
    from tritonnx.compiler import cli

    path, _ = bert
    assert cli.main(["compile", path, "-o", str(tmp_path / "cli"), "--dynamic"]) == 0
    assert tritonnx.runtime.CompiledModel(tmp_path / "cli").dynamic


@pytest.mark.parametrize("name", ["gpt2", "distilbert", "vit"])
def test_other_transformers_dynamic(name, tmp_path):
    """GPT-2 (causal mask from Range over the sequence), DistilBERT and ViT (batch only)."""
    pytest.importorskip("transformers")
    import transformer_models as tm

    path = tm.export(name, str(tmp_path), opset=17, dynamic=True)
    model = tritonnx.compile(path, tmp_path / "art", dynamic=True, cache=False)
    assert set(model.plan["symbols"]) == ({"batch"} if name == "vit" else {"batch", "seq"})
    for batch, seq in [(1, 7), (3, 20)]:
        feeds = tm.inputs(name, batch=batch, seq=seq)
        got = model.run(feeds)["last_hidden_state"]
        ref = ort_run(path, feeds)[0]
        assert got.shape == ref.shape and got.shape[0] == batch
        assert float(np.abs(got - ref).max() / np.abs(ref).max()) < 1e-4
