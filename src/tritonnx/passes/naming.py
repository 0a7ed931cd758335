"""Kernel names that say what a kernel computes, as Inductor and IREE name theirs:
`conv2d_relu_3x3_s1_f32_0021835f` (a 3x3 stride-1 Conv with a fused Relu, f32 output),
`matmul_add_128x768x3072_f32_...`, `softmax_f32_...`, `add_mul_tanh_f32_...` (a pointwise
chain). The suffix is a digest of the kernel's body, so identical fusion groups share one
kernel (and one file) and different ones never collide. Outline names each kernel; the
name is the function's symbol in every later dump, its file `kernels/<name>.py`, its
launches' `kernel` in plan.json and its row in the report."""

from __future__ import annotations

import hashlib
import math

from mlir import ir

from tritonnx import symbolic
from tritonnx.dialects import onnx_op_type
from tritonnx.dialects.builders import attrs_of, shape_of
from tritonnx.dialects.ops import KIND as OP_KINDS

MAX_FUSED = 3  # fused op types named; more are summarized as `_etc`
SHORT_TYPES = {
    "f32": "f32",
    "f16": "f16",
    "bf16": "bf16",
    "f64": "f64",
    "i64": "i64",
    "i32": "i32",
    "i16": "i16",
    "i8": "i8",
    "i1": "bool",
    "ui8": "u8",
    "ui16": "u16",
    "ui32": "u32",
    "ui64": "u64",
}


def snake(op_type: str) -> str:
    """`BatchNormalization` -> `batch_normalization`; `MatMul` -> `matmul`."""
    special = {
        "MatMul": "matmul",
        "ConvTranspose": "conv_transpose",
        "MaxPool": "maxpool",
        "AveragePool": "avgpool",
        "GlobalAveragePool": "global_avgpool",
        "GlobalMaxPool": "global_maxpool",
        "LpPool": "lppool",
        "GlobalLpPool": "global_lppool",
        "TopK": "topk",
        "ArgMax": "argmax",
        "ArgMin": "argmin",
    }
    if op_type in special:
        return special[op_type]
    out = []
    for i, ch in enumerate(op_type):
        if ch.isupper() and i and (not op_type[i - 1].isupper() or (i + 1 < len(op_type) and op_type[i + 1].islower())):
            out.append("_")
        out.append(ch.lower())
    return "".join(out)


def _sizes(values) -> str:
    return "x".join(_size(v) for v in values)


def size_text(v) -> str:
    """A size as text: the number, or a dynamic one's expression (`16*batch`)."""
    return symbolic.text(v.expr) if symbolic.is_symbolic(v) else str(int(v))


def _size(v) -> str:
    """A size in a name: the number, or the symbol of a dynamic one (`batch`; an expression
    of several is written `dyn`)."""
    text = size_text(v)
    return text if text.isidentifier() or text.isdigit() else "dyn"


def _anchor_part(kind: str, anchor: ir.Operation) -> tuple[str, str]:
    """(what the anchor is, its distinguishing sizes) for a kernel name."""
    a = attrs_of(anchor)
    op = snake(onnx_op_type(anchor.name))
    out = shape_of(anchor.results[0])
    if kind in ("conv", "conv_transpose"):
        ks, strides = a.get("kernel_shape") or [], a.get("strides") or []
        detail = _sizes(ks)
        if strides:
            detail += "_s" + (str(strides[0]) if len(set(strides)) == 1 else _sizes(strides))
        if a.get("group", 1) > 1:
            detail += f"_g{a['group']}"
        return f"{op}{len(out) - 2}d", detail
    if kind in ("gemm", "mat_mul"):
        x = shape_of(anchor.operands[0])
        k = x[0] if a.get("transA", 0) else x[-1]
        batch = math.prod(out[:-2]) if len(out) > 2 else 1
        return op, (f"b{_size(batch)}_" if batch > 1 else "") + _sizes([out[-2], out[-1], k])
    if kind == "pool" and not anchor.name.startswith("tnx.global"):
        strides = a.get("strides") or []
        detail = _sizes(a.get("kernel_shape") or [])
        if strides:
            detail += "_s" + (str(strides[0]) if len(set(strides)) == 1 else _sizes(strides))
        return f"{op}{len(out) - 2}d", detail
    return op, ""


def kernel_name(kind: str, members: list[ir.Operation], anchor: ir.Operation | None, out: ir.Value, body: str) -> str:
    """The symbol of a kernel: what it computes and a digest of `body` (its text)."""
    skip = {anchor.name} if anchor is not None else set()
    if kind == "attention":
        head = "attention"
        q = shape_of(out)
        detail = _sizes(q[-2:])
    elif anchor is not None:
        head, detail = _anchor_part(kind, anchor)
    else:
        head, detail = "", ""
    fused = []
    for m in members:
        if m.name in skip or m.name == "tnx.constant" or (anchor is not None and OP_KINDS.get(m.name) == "view"):
            continue  # views are index maps of the kernel's loads, not what it computes
        t = snake(onnx_op_type(m.name))
        if t not in fused:
            fused.append(t)
    if anchor is None and not head:
        head = "_".join(fused[: MAX_FUSED + 1]) or "copy"
        fused = fused[MAX_FUSED + 1 :] and ["etc"]
    elif len(fused) > MAX_FUSED:
        fused = fused[:MAX_FUSED] + ["etc"]
    et = str(ir.RankedTensorType(out.type).element_type)
    parts = [head] + fused + ([detail] if detail else []) + [SHORT_TYPES.get(et, et)]
    digest = hashlib.sha256(body.encode()).hexdigest()[:8]
    return "_".join(p for p in parts if p) + "_" + digest
