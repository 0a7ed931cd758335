"""Dynamic shapes: a model with symbolic batch and sequence compiles once, by default;
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
from tritonnx.errors import ArtifactError, IndexOutOfRangeError, InputError, UnsupportedModelError
from tritonnx.runtime.format import evaluate


def test_symint_arithmetic_keeps_the_expression():
    with symbolic.scope({"batch": 4, "seq": 16}):
        m = symbolic.make("64*batch*seq")
        assert int(m) == 64 * 4 * 16 and str(m) == "64*batch*seq" and f"{m}" == "64*batch*seq"
        blocks = -(-m // 128)  # cdiv, as the choose-blocks pass writes it
        assert evaluate(symbolic.to_python(blocks), {"batch": 3, "seq": 7}) == -(-(3 * 7 * 64) // 128)
        assert symbolic.to_python(m // 64) == "batch*seq"
        assert not symbolic.is_symbolic(m % 64)  # 64 divides every value of it
        assert symbolic.hint(m) == 64 * 4 * 16
        conv = (symbolic.make("H") + 2 * 1 - 3) // 2 + 1  # a strided Conv's output size
        assert symbolic.parse(str(conv.expr)) == conv.expr  # the text in the IR reads back
        assert evaluate(symbolic.to_python(conv), {"H": 9}) == (9 + 2 - 3) // 2 + 1
        assert m != 64 * 4 * 16  # a symbolic size never equals a number, whatever its hint
        assert symbolic.make("seq") == symbolic.make("seq") and symbolic.smin(m, 5) != 5
        clamp = symbolic.smin(symbolic.make("seq"), 512) + symbolic.smax(symbolic.make("batch"), 2)
        assert evaluate(symbolic.to_python(clamp), {"batch": 1, "seq": 700}) == 512 + 2  # a plan reads min/max
        with pytest.raises(ArtifactError, match="not integer size arithmetic"):
            evaluate("abs(seq)", {"seq": 3})
        with pytest.raises(symbolic.SymbolicSizeError):
            float(m)  # a symbolic size used as a number is refused, never its hint
        with pytest.raises(symbolic.SymbolicSizeError):
            m / 3
    with pytest.raises(ValueError, match="not a size expression"):
        symbolic.parse("__import__('os')")


def test_dynamic_types_hold_their_expressions():
    from mlir import ir

    from tritonnx.dialects import make_context
    from tritonnx.dialects.builders import tensor_type, type_shape

    with make_context(), ir.Location.unknown():
        h = symbolic.make("floor(H/2 - 1/2) + 1")
        t = tensor_type([symbolic.make("batch"), 64, h, h], np.float32)
        assert str(t) == 'tensor<?x64x?x?xf32, ["batch", "floor(H/2 - 1/2) + 1", "floor(H/2 - 1/2) + 1"]>'
        assert type_shape(ir.Type.parse(str(t))) == [symbolic.make("batch"), 64, h, h]


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
    model = tritonnx.compile(path, d / "art", cache=False)  # dynamic by default
    compiled = len(runs)
    assert compiled == 1  # one pipeline run: nothing is sampled, nothing compiled twice
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
    model = tritonnx.compile(path, d / "gpu", targets=("sm_90",), cache=False)
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
    """x[n, 4] -> Pad by one row on each side -> Relu: a size n + 2."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)  # no shape: onnxruntime runs it
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


def test_sizes_that_are_not_products(tmp_path):
    """n + 2 (Pad) and a strided Conv's floor((H - 1)/2) + 1 are sizes like any other."""
    path = _padded(tmp_path)
    model = tritonnx.compile(path, tmp_path / "art", cache=False)
    assert model.plan["outputs"][0]["shape"] == ["(n + 2)", 4] or model.plan["outputs"][0]["shape"][0] == "(2 + n)"
    for n in (1, 6):
        x = np.random.default_rng(n).standard_normal((n, 4)).astype(np.float32)
        np.testing.assert_allclose(model.run({"x": x})["y"], ort_run(path, {"x": x})[0])
    static = tritonnx.compile(path, tmp_path / "static", shapes={"x": [5, 4]})  # nothing left dynamic
    assert not static.dynamic and static.plan["outputs"][0]["shape"] == [7, 4]


def test_strided_conv_over_a_dynamic_image(tmp_path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, "H", -1])  # -1: Paddle's dynamic size
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    w = onnx.numpy_helper.from_array(np.random.default_rng(0).standard_normal((8, 3, 3, 3)).astype(np.float32), "w")
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("MaxPool", ["c"], ["p"], kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1),
        helper.make_node("Relu", ["p"], ["y"]),
    ]
    graph = helper.make_graph(nodes, "conv", [x], [y], [w])
    path = str(tmp_path / "conv.onnx")
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    model = tritonnx.compile(path, tmp_path / "art", cache=False)
    assert set(model.plan["symbols"]) == {"N", "H", "x_3"}
    for shape in [(1, 3, 9, 9), (2, 3, 16, 11)]:
        x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
        got, ref = model.run({"x": x})["y"], ort_run(path, {"x": x})[0]
        assert got.shape == ref.shape
        np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)


def test_dynamic_cli(bert, tmp_path):
    from tritonnx.compiler import cli

    path, _ = bert
    assert cli.main(["compile", path, "-o", str(tmp_path / "cli"), "--size-hint", "seq=512"]) == 0
    assert tritonnx.runtime.CompiledModel(tmp_path / "cli").plan["symbols"] == {"batch": 128, "seq": 512}


@pytest.mark.parametrize("name", ["gpt2", "distilbert", "vit"])
def test_other_transformers_dynamic(name, tmp_path):
    """GPT-2 (causal mask from Range over the sequence), DistilBERT and ViT (batch only)."""
    pytest.importorskip("transformers")
    import transformer_models as tm

    path = tm.export(name, str(tmp_path), opset=17, dynamic=True)
    model = tritonnx.compile(path, tmp_path / "art", cache=False)
    assert set(model.plan["symbols"]) == ({"batch"} if name == "vit" else {"batch", "seq"})
    for batch, seq in [(1, 7), (3, 20)]:
        feeds = tm.inputs(name, batch=batch, seq=seq)
        got = model.run(feeds)["last_hidden_state"]
        ref = ort_run(path, feeds)[0]
        assert got.shape == ref.shape and got.shape[0] == batch
        assert float(np.abs(got - ref).max() / np.abs(ref).max()) < 1e-4


@pytest.mark.parametrize("name", ["bert", "gpt2"])
def test_sequence_longer_than_the_position_table_is_refused(name, tmp_path):
    """A sequence longer than the position table (MAX_POS rows) is invalid for the model
    (onnxruntime refuses it) and is never run off the table's end. BERT slices its position
    ids to Min(MAX_POS, seq), which onnxruntime's shape inference merges with seq: the plan
    keeps that as a guard, checked before anything runs. GPT-2 gathers rows Range(0, seq):
    the Gather's indices depend on a dynamic size, so they are checked."""
    pytest.importorskip("transformers")
    import transformer_models as tm

    path = tm.export(name, str(tmp_path), opset=17, dynamic=True)
    model = tritonnx.compile(path, tmp_path / "art", cache=False)
    feeds = tm.inputs(name, batch=1, seq=tm.MAX_POS + 8)
    with pytest.raises(Exception, match="Expand|Gather"):  # onnxruntime's own error
        ort_run(path, feeds)
    if name == "bert":
        assert [f"min({tm.MAX_POS}, seq) == seq"] == [g[0] for g in model.plan["guards"] if "==" in g[0]]
        with pytest.raises(InputError, match=rf"condition min\({tm.MAX_POS}, seq\) == seq"):
            model.run(feeds)
    else:
        with pytest.raises(IndexOutOfRangeError, match="node '/model/wpe/Gather'"):
            model.run(feeds)
    feeds = tm.inputs(name, batch=1, seq=tm.MAX_POS)  # the longest valid sequence runs
    got = model.run(feeds)["last_hidden_state"]
    ref = ort_run(path, feeds)[0]
    assert float(np.abs(got - ref).max() / np.abs(ref).max()) < 1e-4


def test_report_gives_dynamic_figures_as_expressions(bert, tmp_path):
    import json

    from tritonnx.compiler.report import report

    path, _ = bert
    tritonnx.compile(path, tmp_path / "art", size_hints={"seq": 64})
    summary = json.loads(report(tmp_path / "art", "json"))
    assert summary["sizes"] == {"batch": 128, "seq": 64}  # the concrete figures: at the size hints
    e = {k: symbolic.parse(v) for k, v in summary["expressions"].items()}
    assert {str(s) for s in e["bytes"].free_symbols} == {"batch", "seq"}
    at_hints = {symbolic.sym("batch"): 128, symbolic.sym("seq"): 64}
    assert int(e["flops"].subs(at_hints)) == summary["totals"]["flops"]  # the same figure, two forms


@pytest.mark.parametrize("name", ["bert", "gpt2"])
def test_dynamic_plan_launches_as_many_kernels_as_static(name, tmp_path):
    """What a static compile folds to constants (positions Range(0, seq), the padding and
    causal masks' index arithmetic) is computed inside the kernels that read it (generators,
    `tnx.fusion = "generator"`): the dynamic plan launches as many kernels as the static one,
    and the report names the nodes computed from the sizes and the kernel they are in."""
    pytest.importorskip("transformers")
    import json

    import transformer_models as tm
    from tritonnx.compiler.report import report

    path = tm.export(name, str(tmp_path), opset=17, dynamic=True)
    shapes = {n: [2, 16] for n in tm.input_names(name)}
    static = tritonnx.compile(path, tmp_path / "static", cache=False, shapes=shapes)
    dynamic = tritonnx.compile(path, tmp_path / "dynamic", cache=False)
    assert len(dynamic.launches) == len(static.launches)
    summary = json.loads(report(tmp_path / "dynamic", "json"))
    from_sizes = {n for k in summary["from_sizes"] for n in k["nodes"]}
    assert {"/model/Range", "/model/Range_1", "/model/Range_2"} <= from_sizes
    assert {k["kernel"] for k in summary["from_sizes"]} <= {launch["kernel"] for launch in dynamic.launches}
    assert not json.loads(report(tmp_path / "static", "json"))["from_sizes"]


def test_size_that_depends_on_data_is_refused_naming_the_node(tmp_path):
    """A Reshape whose target is an input's values: its output size depends on data, which
    no expression over the symbols gives. The compile refuses it naming the node, and
    writes nothing."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 4])
    target = helper.make_tensor_value_info("target", TensorProto.INT64, [2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    node = helper.make_node("Reshape", ["x", "target"], ["y"], name="reshape_by_data")
    proto = helper.make_model(
        helper.make_graph([node], "g", [x, target], [y]), opset_imports=[helper.make_opsetid("", 17)]
    )
    with pytest.raises(UnsupportedModelError, match=r"reshape_by_data.*cannot express over the model's symbols \(n\)"):
        tritonnx.compile(proto, tmp_path / "art")
    assert not (tmp_path / "art").exists()


def test_group_normalization_over_dynamic_extents(tmp_path):
    """GroupNormalization-21 over a dynamic batch, height and width: one normalization
    kernel over rows of C/G * h * w elements (a dynamic length, read in chunks). Its output
    has no shape in the file and onnx's inference gives it none at opset 21: the checker
    reads the rest of the model, onnxruntime and tritonnx run it."""
    from onnx import numpy_helper

    channels, groups = 8, 4
    rng = np.random.default_rng(0)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", channels, "h", "w"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    weights = [
        numpy_helper.from_array(rng.standard_normal(channels).astype(np.float32), name) for name in ("scale", "bias")
    ]
    node = helper.make_node("GroupNormalization", ["x", "scale", "bias"], ["y"], num_groups=groups, epsilon=1e-5)
    proto = helper.make_model(
        helper.make_graph([node], "g", [x], [y], weights), opset_imports=[helper.make_opsetid("", 21)]
    )
    model = tritonnx.compile(proto, tmp_path / "art", cache=False)
    assert set(model.plan["symbols"]) == {"n", "h", "w"} and len(model.launches) == 1
    for shape in ([1, channels, 5, 7], [2, channels, 33, 65]):
        feed = rng.standard_normal(shape).astype(np.float32)
        got, ref = model.run({"x": feed})["y"], ort_run(proto, {"x": feed})[0]
        assert float(np.abs(got - ref).max() / np.abs(ref).max()) < 1e-5
