"""split-k: a Gemm or MatMul with few output blocks and a long K becomes partial products and a sum (GPU targets).

A 2-D Gemm or MatMul whose output gives fewer than a quarter of the SMs a program even with
16x32 blocks (the choose-blocks pass's smallest: a [1, 1000] classifier output is 32 programs for
132 SMs) while K is long (at least MIN_SPLIT_K) becomes a batched MatMul over S slices of K
([S, M, K/S] x [S, K/S, N], the slices as index maps) and a ReduceSum over the S partial
products, which carries alpha, the C input and the Gemm's epilogue (bias, Relu). Narrower
outputs with shorter K are left to the choose-blocks pass, which shrinks blocks instead of adding a
kernel. The partial MatMul says so in `tnx.split_k`. The SM count is the compile's first
GPU target's (`CompileOptions.gpu`); for the CPU interpreter (no targets, the default) the
pass does nothing.
"""

from __future__ import annotations

import numpy as np
from mlir import ir

from tritonnx.dialects.builders import attrs_of, create, np_dtype, operand, shape_of, tensor_type, to_attr
from tritonnx.passes import current_session, functions, ops
from tritonnx.passes.kernel_info import node_name

NAME = "split-k"
MIN_SPLIT_K = 8192  # a shorter reduction is not worth a second kernel


def run(module: ir.Operation, pass_=None) -> None:
    gpu = current_session().options.gpu
    if gpu is None:
        return
    for fn in functions(module):
        if "sym_visibility" not in fn.attributes:  # kernels are already outlined
            for op in ops(fn.regions[0].blocks[0]):
                if op.name in ("tnx.gemm", "tnx.mat_mul"):
                    _split(op, gpu.sms)


def _slices(op: ir.Operation, sms: int) -> int:
    """How many slices of K the 2-D Gemm or MatMul `op` is cut into for a GPU of `sms` SMs; 1 for none."""
    a = attrs_of(op)
    if len(shape_of(op.operands[0])) != 2 or a.get("transA", 0) or len(shape_of(op.operands[1])) != 2:
        return 1
    m, n = shape_of(op.results[0])
    k = shape_of(op.operands[0])[1]
    programs = -(-m // 16) * -(-n // 32)
    if k < MIN_SPLIT_K or programs * 4 > sms:
        return 1
    s = 1
    while s * 2 * programs <= sms and k % (s * 2) == 0 and k // (s * 2) >= 512:
        s *= 2
    return s


def _split(op: ir.Operation, sms: int) -> None:
    """Replaces `op` by its split-K form when `_slices` says so."""
    from tritonnx.passes.canonicalize import make_constant

    s = _slices(op, sms)
    if s < 2:
        return
    a = attrs_of(op)
    m, n = shape_of(op.results[0])
    k = shape_of(op.operands[0])[1]
    programs = -(-m // 16) * -(-n // 32)
    et = ir.RankedTensorType(op.results[0].type).element_type
    x, w, ks = op.operands[0], op.operands[1], k // s

    def tensor(shape):
        return tensor_type(shape, et)

    with ir.InsertionPoint(op), op.location:
        a3 = create("tnx.reshape", [x], [tensor([m, s, ks])]).result
        a3 = create("tnx.transpose", [a3], [tensor([s, m, ks])], {"perm": [1, 0, 2]}).result
        if a.get("transB", 0):  # W is [N, K]
            b3 = create("tnx.reshape", [w], [tensor([n, s, ks])]).result
            b3 = create("tnx.transpose", [b3], [tensor([s, ks, n])], {"perm": [1, 2, 0]}).result
        else:
            b3 = create("tnx.reshape", [w], [tensor([s, ks, n])]).result
        partial = create("tnx.mat_mul", [a3, b3], [tensor([s, m, n])]).operation
        partial.attributes["tnx.split_k"] = to_attr(
            f"split-K of {node_name(op)}: {m}x{n} outputs give {programs} programs for {sms} SMs; {s} slices of K = {k}"
        )
        y = create("tnx.reduce_sum", [partial.results[0]], [tensor([m, n])], {"axes": [0], "keepdims": 0}).result
        if a.get("alpha", 1.0) != 1.0:
            alpha = make_constant(np.array(a["alpha"], dtype=np_dtype(et)), "alpha")
            y = create("tnx.mul", [y, alpha], [tensor([m, n])]).result
        c = operand(op, "c") if op.name == "tnx.gemm" else None
        if c is not None and a.get("beta", 1.0) != 0.0:
            if a.get("beta", 1.0) != 1.0:
                beta = make_constant(np.array(a["beta"], dtype=np_dtype(et)), "beta")
                c = create("tnx.mul", [c, beta], [c.type]).result
            y = create("tnx.add", [y, c], [tensor([m, n])]).result
    op.results[0].replace_all_uses_with(y)
    op.erase()
