"""Transformers (BERT, DistilBERT, GPT-2, ViT from transformers' own classes, small configs,
random weights) exported by torch.onnx at opsets 17 and 18: compiled, run on the CPU
interpreter and checked against onnxruntime; attention is one flash-attention kernel per
layer and a layer takes at most 8 kernels."""

import numpy as np
import pytest

pytest.importorskip("transformers")

import transformer_models as tm  # noqa: E402
import tritonnx  # noqa: E402
from models import ort_run  # noqa: E402


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    return tmp_path_factory.mktemp("transformers")


@pytest.mark.parametrize("opset", [17, 18])
@pytest.mark.parametrize("name", tm.NAMES)
def test_transformer_matches_onnxruntime(name, opset, exports, tmp_path):
    path = tm.export(name, str(exports), opset=opset)
    feeds = tm.inputs(name, batch=2, seq=16)
    model = tritonnx.compile(path, tmp_path / "art")
    got = model.run(feeds)[model.output_names[0]]
    ref = ort_run(path, feeds)[0]
    assert float(np.abs(got - ref).max() / np.abs(ref).max()) < 1e-4
    kinds = [launch["kind"] for launch in model.launches]
    assert kinds.count("attention") == tm.LAYERS  # one flash-attention kernel per layer
    assert "softmax" not in kinds  # no score matrix materialized
    first_layer = kinds.index("attention")
    per_layer = (len(kinds) - first_layer + 1) / tm.LAYERS  # the QKV projection precedes attention
    assert per_layer <= 8, kinds


@pytest.mark.parametrize("precision, tolerance", [("fp16", 2e-2), ("bf16", 4e-2), ("tf32", 1e-3)])
@pytest.mark.parametrize("name", tm.NAMES)
def test_transformer_precision(name, precision, tolerance, exports, tmp_path):
    """Half precision against the fp32 reference: weights and activations in the half type,
    dot products accumulated in fp32; inputs and outputs keep the model's dtypes."""
    path = tm.export(name, str(exports), opset=17)
    feeds = tm.inputs(name, batch=2, seq=16)
    model = tritonnx.compile(path, tmp_path / "art", precision=precision)
    got = model.run(feeds)[model.output_names[0]]
    assert got.dtype == np.float32
    ref = ort_run(path, feeds)[0]
    assert float(np.abs(got - ref).max() / np.abs(ref).max()) < tolerance
    half = {"fp16": "float16", "bf16": "bfloat16"}.get(precision)
    weights = [b for b in model.plan["buffers"] if b["kind"] == "weight" and "float" in b["dtype"]]
    assert all(b["dtype"] == (half or "float32") for b in weights)
    dots = [launch for launch in model.launches if launch["kind"] in ("mat_mul", "gemm", "attention", "conv")]
    assert {launch["precision"] for launch in dots} == {precision}


def test_precision_report_shows_bytes_saved(exports, tmp_path):
    from tritonnx.compiler.cost import summarize

    path = tm.export("bert", str(exports), opset=17)
    full = summarize(tritonnx.compile(path, tmp_path / "fp32").plan)["totals"]
    half = summarize(tritonnx.compile(path, tmp_path / "fp16", precision="fp16").plan)["totals"]
    assert half["bytes_at_fp32"] == pytest.approx(full["bytes"], rel=0.05)
    assert half["bytes"] < 0.6 * full["bytes"]


@pytest.mark.parametrize("precision", ["fp32", "tf32", "fp16", "bf16"])
@pytest.mark.parametrize("name", tm.NAMES)
def test_transformer_cubins_every_precision(name, precision, exports, tmp_path):
    """Every kernel of every model compiles to sm_90 cubin in every precision."""
    path = tm.export(name, str(exports), opset=17)
    model = tritonnx.compile(path, tmp_path / "art", precision=precision, targets=("sm_90",))
    kernels = {launch["kernel"] for launch in model.launches}
    assert kernels and all((model.path / "kernels" / f"{k}.sm_90.cubin").stat().st_size > 0 for k in kernels)


def test_symbolic_dims_specialized_by_shapes(exports, tmp_path):
    """A model exported with symbolic batch and sequence compiles to one dynamic artifact
    by default; ``shapes=`` (``--shape``) specializes it; a contradiction names the input."""
    from tritonnx.compiler import cli

    path = tm.export("bert", str(exports), opset=17, dynamic=True)
    assert tritonnx.compile(path, tmp_path / "dyn").dynamic
    for batch, seq in [(1, 7), (3, 64)]:
        shapes = {"input_ids": [batch, seq], "attention_mask": [batch, seq]}
        model = tritonnx.compile(path, tmp_path / f"b{batch}s{seq}", shapes=shapes)
        assert not model.dynamic
        feeds = tm.inputs("bert", batch=batch, seq=seq)
        got = model.run(feeds)[model.output_names[0]]
        ref = ort_run(path, feeds)[0]
        assert float(np.abs(got - ref).max() / np.abs(ref).max()) < 1e-4
    with pytest.raises(ValueError, match="input 'input_ids' has rank 2"):
        tritonnx.compile(path, tmp_path / "bad", shapes={"input_ids": [1, 2, 3]})
    assert not (tmp_path / "bad").exists()
    assert (
        cli.main(
            ["compile", path, "-o", str(tmp_path / "cli"), "--shape", "input_ids=2,5", "--shape", "attention_mask=2,5"]
        )
        == 0
    )
    fixed = tm.export("bert", str(exports), opset=17)  # static [2, 16]
    with pytest.raises(ValueError, match="static size 16 in dimension 1; shapes gives 8"):
        tritonnx.compile(fixed, tmp_path / "bad2", shapes={"input_ids": [2, 8]})


@pytest.mark.parametrize("name", ["bert", "gpt2"])
def test_decomposed_layer_norm(name, exports, tmp_path):
    """At opset 14 the exporter spells LayerNormalization out (ReduceMean, Sub, Pow,
    ReduceMean, Add, Sqrt, Div, Mul, Add): it still becomes one normalization kernel."""
    import onnx

    path = tm.export(name, str(exports), opset=14)
    graph_ops = [n.op_type for n in onnx.load(path).graph.node]
    assert "LayerNormalization" not in graph_ops and graph_ops.count("ReduceMean") == 2 * (2 * tm.LAYERS + 1)
    feeds = tm.inputs(name, batch=2, seq=16)
    model = tritonnx.compile(path, tmp_path / "art")
    got = model.run(feeds)[model.output_names[0]]
    assert float(np.abs(got - ort_run(path, feeds)[0]).max() / np.abs(ort_run(path, feeds)[0]).max()) < 1e-4
    kinds = [launch["kind"] for launch in model.launches]
    assert kinds.count("norm") == 2 * tm.LAYERS + 1 and "reduce" not in kinds


def test_einsum_attention_is_one_kernel(tmp_path):
    """Attention written with Einsum (scores "bhqd,bhkd->bhqk", output "bhqk,bhkd->bhqd", as
    some exporters and hand-written models do) is the same flash-attention kernel."""
    import onnx
    from onnx import TensorProto, helper

    b, h, s, d = 2, 4, 16, 8
    io = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [b, h, s, d]) for n in "qkvy"]
    nodes = [
        helper.make_node("Einsum", ["q", "k"], ["s"], equation="bhqd,bhkd->bhqk"),
        helper.make_node("Mul", ["s", "scale"], ["ss"]),
        helper.make_node("Softmax", ["ss"], ["p"], axis=-1),
        helper.make_node("Einsum", ["p", "v"], ["y"], equation="bhqk,bhkd->bhqd"),
    ]
    graph = helper.make_graph(
        nodes, "einsum_attention", io[:3], io[3:], [helper.make_tensor("scale", TensorProto.FLOAT, [], [d**-0.5])]
    )
    path = str(tmp_path / "einsum_attention.onnx")
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=10), path)
    model = tritonnx.compile(path, tmp_path / "art")
    assert [launch["kind"] for launch in model.launches] == ["attention"]
    rng = np.random.default_rng(0)
    feeds = {n: rng.standard_normal((b, h, s, d)).astype(np.float32) for n in "qkv"}
    np.testing.assert_allclose(model.run(feeds)["y"], ort_run(path, feeds)[0], rtol=1e-5, atol=1e-5)
