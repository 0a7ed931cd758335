"""Attention-23/24 (importers/attention.py) against onnxruntime: 4D and 3D inputs, GQA,
causal, boolean and float masks, softcap, past key/value with the present outputs; the
kernel it compiles to (one flash-attention launch) and its sm_90 cubin."""

from collections import Counter

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import tritonnx
from models import ort_run

F, B = TensorProto.FLOAT, TensorProto.BOOL


def attention_model(q, k, v, mask=None, past=None, present=False, opset=23, **attrs) -> onnx.ModelProto:
    """One Attention node over float inputs Q, K, V of shapes `q`, `k`, `v`; `mask` is
    (shape, elem type), `past` the shapes of past_key and past_value."""
    inputs = [helper.make_tensor_value_info(n, F, s) for n, s in (("Q", q), ("K", k), ("V", v))]
    names = ["Q", "K", "V"]
    if mask is not None:
        inputs.append(helper.make_tensor_value_info("M", mask[1], mask[0]))
    names.append("M" if mask is not None else "")
    if past is not None:
        inputs += [helper.make_tensor_value_info(n, F, s) for n, s in zip(("PK", "PV"), past)]
        names += ["PK", "PV"]
    outputs = ["Y", "present_key", "present_value"] if present else ["Y"]
    node = helper.make_node("Attention", names[: 6 if past is not None else 4], outputs, name="attn", **attrs)
    graph = helper.make_graph([node], "g", inputs, [helper.make_empty_tensor_value_info(o) for o in outputs])
    return onnx.shape_inference.infer_shapes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]))


def feeds_of(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    feeds = {}
    for i in model.graph.input:
        shape = [d.dim_value for d in i.type.tensor_type.shape.dim]
        if i.type.tensor_type.elem_type == B:
            feeds[i.name] = rng.random(shape) > 0.3
        else:
            feeds[i.name] = rng.standard_normal(shape).astype(np.float32)
    return feeds


def check(tmp_path, model: onnx.ModelProto, reference: bool = False) -> Counter:
    """Compares every output with onnxruntime's (`reference`: onnx.reference's, for what
    onnxruntime 1.32 does not implement); returns the launches' kinds."""
    from onnx.reference import ReferenceEvaluator

    compiled = tritonnx.compile(model, tmp_path / "art")
    feeds = feeds_of(model)
    got = compiled.run(feeds)
    want = ReferenceEvaluator(model).run(None, feeds) if reference else ort_run(model, feeds)
    for out, w in zip(model.graph.output, want):
        np.testing.assert_allclose(got[out.name], w, rtol=1e-4, atol=1e-5)
    return Counter(launch["kind"] for launch in compiled.plan["launches"])


QKV = ([1, 2, 8, 16], [1, 2, 8, 16], [1, 2, 8, 16])

ONE_KERNEL = {  # the kernel applies: one flash-attention launch, no decomposition
    "4d": (QKV, {}),
    "4d_scale": (QKV, {"scale": 0.3}),
    "causal": (([1, 2, 8, 16], [1, 2, 12, 16], [1, 2, 12, 8]), {"is_causal": 1}),
    "gqa": (([2, 4, 8, 16], [2, 2, 8, 16], [2, 2, 8, 16]), {}),
    "gqa_causal": (([1, 6, 5, 16], [1, 2, 5, 16], [1, 2, 5, 16]), {"is_causal": 1}),
    "bool_mask": (QKV, {"mask": ([8, 8], B)}),
    "float_mask": (QKV, {"mask": ([1, 2, 8, 8], F)}),
    "float_mask_causal": (QKV, {"mask": ([2, 8, 8], F), "is_causal": 1}),
}


@pytest.mark.parametrize("case", ONE_KERNEL)
def test_one_attention_kernel(tmp_path, case):
    (q, k, v), attrs = ONE_KERNEL[case]
    assert check(tmp_path, attention_model(q, k, v, **attrs)) == Counter(attention=1)


def test_bool_mask_padded(tmp_path):
    """A mask shorter than the keys: the keys past it are not attended (onnx.reference;
    onnxruntime refuses such a mask). The full-shape mask is not taken for the scores."""
    model = attention_model([1, 2, 8, 16], [1, 2, 10, 16], [1, 2, 10, 16], mask=([1, 2, 8, 6], B))
    assert check(tmp_path, model, reference=True) == Counter(attention=1)


def test_3d_with_heads(tmp_path):
    """[batch, seq, heads * head size], GQA over 3D: one attention launch (the output's
    transpose back to 3D is a pointwise launch of its own)."""
    kinds = check(tmp_path, attention_model([2, 8, 64], [2, 8, 32], [2, 8, 32], q_num_heads=4, kv_num_heads=2))
    assert kinds["attention"] == 1


def test_past_and_present(tmp_path):
    """past_key/past_value in front of K and V (causal from the past's end); present_key
    and present_value are the concatenations."""
    model = attention_model(
        [1, 2, 4, 16], [1, 2, 4, 16], [1, 2, 4, 16], past=([1, 2, 5, 16], [1, 2, 5, 16]), present=True, is_causal=1
    )
    assert check(tmp_path, model)["attention"] == 1


def test_softcap(tmp_path):
    assert check(tmp_path, attention_model(*QKV, softcap=2.0)) == Counter(attention=1)


def test_fully_masked_row_is_zero(tmp_path):
    """A query row with no key to attend is 0 (the spec), not NaN."""
    model = attention_model(*QKV, mask=([8, 8], B))
    compiled = tritonnx.compile(model, tmp_path / "art")
    feeds = feeds_of(model)
    feeds["M"][3] = False
    y = compiled.run(feeds)["Y"]
    assert np.all(y[:, :, 3] == 0) and np.isfinite(y).all()


def test_qk_matmul_output_decomposed(tmp_path):
    """The 4th output (mode 3: the probabilities) is no single kernel's: the decomposition,
    compared with onnx.reference (a fully masked row is 0 there, as in Y)."""
    from onnx.reference import ReferenceEvaluator

    q, k, v = QKV
    inputs = [helper.make_tensor_value_info(n, F, s) for n, s in (("Q", q), ("K", k), ("V", v))]
    inputs.append(helper.make_tensor_value_info("M", B, [8, 8]))
    node = helper.make_node("Attention", ["Q", "K", "V", "M"], ["Y", "", "", "P"], qk_matmul_output_mode=3)
    graph = helper.make_graph([node], "g", inputs, [helper.make_empty_tensor_value_info(o) for o in ("Y", "P")])
    model = onnx.shape_inference.infer_shapes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 23)]))
    feeds = feeds_of(model)
    feeds["M"][2] = False
    compiled = tritonnx.compile(model, tmp_path / "art")
    got = compiled.run(feeds)
    want = ReferenceEvaluator(model).run(None, feeds)
    np.testing.assert_allclose(got["Y"], want[0], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(got["P"], want[1], rtol=1e-4, atol=1e-5)
    assert "attention" not in {launch["kind"] for launch in compiled.plan["launches"]}


def test_bad_head_counts_refused(tmp_path):
    from tritonnx.errors import InvalidModelError

    model = attention_model([1, 8, 48], [1, 8, 32], [1, 8, 32], q_num_heads=3, kv_num_heads=2)
    with pytest.raises(InvalidModelError, match=r"node attn \(Attention, opset 23\)"):
        tritonnx.compile(model, tmp_path / "art")


def test_dynamic_shape_refused(tmp_path):
    from tritonnx.errors import UnsupportedModelError

    inputs = [helper.make_tensor_value_info(n, F, [1, 2, "seq", 16]) for n in "QKV"]
    node = helper.make_node("Attention", ["Q", "K", "V"], ["Y"], name="attn", is_causal=1)
    graph = helper.make_graph([node], "g", inputs, [helper.make_tensor_value_info("Y", F, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 23)])
    with pytest.raises(
        UnsupportedModelError, match=r"node attn \(Attention, opset 23\): input 'Q' has no static shape"
    ):
        tritonnx.compile(model, tmp_path / "art")


def nonpad_model() -> onnx.ModelProto:
    """Attention-24 over a static cache: keys at or past nonpad_kv_seqlen[b] are padding,
    causal from each batch's end (offset nonpad_kv_seqlen[b] - q_len), 4 query heads over 2."""
    q, kv = [2, 4, 3, 16], [2, 2, 8, 16]
    inputs = [helper.make_tensor_value_info(n, F, s) for n, s in (("Q", q), ("K", kv), ("V", kv))]
    inputs.append(helper.make_tensor_value_info("N", TensorProto.INT64, [2]))
    node = helper.make_node("Attention", ["Q", "K", "V", "", "", "", "N"], ["Y"], name="attn", is_causal=1)
    graph = helper.make_graph([node], "g", inputs, [helper.make_empty_tensor_value_info("Y")])
    return onnx.shape_inference.infer_shapes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 24)]))


def test_nonpad_kv_seqlen(tmp_path):
    """One kernel; a batch whose queries see no key (nonpad 2 < q_len 3 in its first row) gives 0."""
    from onnx.reference import ReferenceEvaluator

    model = nonpad_model()
    feeds = feeds_of(model)
    feeds["N"] = np.array([8, 2], np.int64)
    compiled = tritonnx.compile(model, tmp_path / "art")
    np.testing.assert_allclose(
        compiled.run(feeds)["Y"], ReferenceEvaluator(model).run(None, feeds)[0], rtol=1e-4, atol=1e-5
    )
    assert Counter(launch["kind"] for launch in compiled.plan["launches"]) == Counter(attention=1)


@pytest.mark.parametrize("case", ["gqa_causal_mask", "nonpad"])
def test_attention_kernel_compiles_to_sm90(tmp_path, case):
    """The flash-attention kernel with its masks (a float mask and causal over GQA; the
    per-batch masks of nonpad_kv_seqlen) compiles to sm_90 cubin."""
    if case == "nonpad":
        model = nonpad_model()
    else:
        model = attention_model([1, 4, 8, 16], [1, 2, 8, 16], [1, 2, 8, 16], mask=([8, 8], F), is_causal=1)
    out = tmp_path / "art"
    compiled = tritonnx.compile(model, out, targets=("sm_90",))
    (launch,) = compiled.plan["launches"]
    assert launch["kind"] == "attention"
    assert (out / "kernels" / f"{launch['kernel']}.sm_90.cubin").read_bytes()[:4] == b"\x7fELF"


def test_computed_full_mask_guarded(tmp_path):
    """A boolean mask of the scores' shape that the graph computes (Not of an input) is not
    told apart from the scores by match-attention: the decomposition, whose guard gives a
    row with no key to attend 0 (not NaN), as onnx.reference does."""
    from onnx.reference import ReferenceEvaluator

    q, k, v = QKV
    inputs = [helper.make_tensor_value_info(n, F, s) for n, s in (("Q", q), ("K", k), ("V", v))]
    inputs.append(helper.make_tensor_value_info("M", B, [1, 2, 8, 8]))
    nodes = [
        helper.make_node("Not", ["M"], ["keep"]),
        helper.make_node("Attention", ["Q", "K", "V", "keep"], ["Y"], name="attn"),
    ]
    graph = helper.make_graph(nodes, "g", inputs, [helper.make_empty_tensor_value_info("Y")])
    model = onnx.shape_inference.infer_shapes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 23)]))
    feeds = feeds_of(model)
    feeds["M"][0, 1, 5] = True
    compiled = tritonnx.compile(model, tmp_path / "art")
    got = compiled.run(feeds)["Y"]
    np.testing.assert_allclose(got, ReferenceEvaluator(model).run(None, feeds)[0], rtol=1e-4, atol=1e-5)
    assert np.all(got[0, 1, 5] == 0)
