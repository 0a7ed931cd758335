"""What several passes read off a fused or outlined kernel, kept apart from any one pass:
the ONNX node name of an op, a kernel's anchor op, the implicit GEMM of a dot anchor and
the two MatMuls around an attention's Softmax. Imports no pass."""

from __future__ import annotations

import math

from mlir import ir

from tritonnx.dialects.builders import attrs_of, shape_of
from tritonnx.dialects.ops import KERNEL_KIND, POINTWISE
from tritonnx.passes import ops


def node_name(op: ir.Operation) -> str:
    """The ONNX node name of `op` (its name location), else its op name (`tnx.conv`)."""
    loc = op.location
    return loc.name_str if loc.is_a_name() else op.name


def anchor_of(kernel: ir.Operation) -> ir.Operation | None:
    """The anchor op of an outlined kernel (`func.func` with `tnx.kind`): the op whose
    kernel kind (`dialects.ops.KERNEL_KIND`) is the kernel's, the Softmax marked
    `tnx.attention` of an attention kernel, None for a pointwise kernel. Raises
    StopIteration when the kernel has no such op."""
    kind = ir.StringAttr(kernel.attributes["tnx.kind"]).value
    if kind == "pointwise":
        return None
    if kind == "attention":
        return next(op for op in ops(kernel.regions[0].blocks[0]) if "tnx.attention" in op.attributes)
    return next(op for op in ops(kernel.regions[0].blocks[0]) if KERNEL_KIND.get(op.name) == kind)


def gemm_dims(kind: str, anchor: ir.Operation) -> tuple[int, int, int, int]:
    """(M, N, K, groups) of the implicit GEMM a dot kernel computes: N per group for a
    grouped Conv; for a batched MatMul, `groups` counts the batch (grid axis 2). Sizes are
    ints or symbolic sizes (`tritonnx.symbolic`)."""
    out = shape_of(anchor.results[0])
    if kind == "conv":
        w = shape_of(anchor.operands[1])
        groups = attrs_of(anchor)["group"]
        m = out[0] * math.prod(out[2:])
        return m, out[1] // groups, math.prod(w[1:]), groups
    if kind == "conv_transpose":  # W is [C_in, C_out / group, kH, kW]
        w = shape_of(anchor.operands[1])
        groups = attrs_of(anchor)["group"]
        return out[0] * math.prod(out[2:]), out[1] // groups, w[0] // groups * math.prod(w[2:]), groups
    a = shape_of(anchor.operands[0])
    trans_a = attrs_of(anchor).get("transA", 0)
    k = a[0] if trans_a else a[-1]
    return out[-2], out[-1], k, math.prod(out[:-2])


def attention_ops(softmax: ir.Operation) -> tuple[ir.Operation, ir.Operation]:
    """The two MatMuls (Q K^T, P V) of the attention around `softmax` (marked by the fuse pass).
    The scores run through the operand of the Softmax's shape that a pointwise op or the
    MatMul computes, as match-attention found them (a full-shape mask is a view or an input)."""
    v = softmax.operands[0]
    while v.owner.operation.name != "tnx.mat_mul":
        op = v.owner.operation
        v = next(
            o
            for o in op.operands
            if shape_of(o) == shape_of(softmax.results[0])
            and isinstance(o.owner, (ir.Operation, ir.OpView))
            and o.owner.operation.name in POINTWISE + ("tnx.mat_mul",)
        )
    m2 = next(iter(softmax.results[0].uses)).owner.operation
    return v.owner.operation, m2
