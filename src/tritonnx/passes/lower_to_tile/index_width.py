"""The width of a kernel's index arithmetic: int32, or int64 when a tensor of the kernel
has 2^31 elements or more (dynamic sizes get run-time guards)."""

from __future__ import annotations

import math

from mlir import ir

from tritonnx import symbolic
from tritonnx.dialects.builders import type_shape
from tritonnx.passes import ops

INDEX_LIMIT = 2**31 - 1  # the largest int32
BLOCK_MARGIN = 1 << 16  # more lanes than any block: a block's last lanes run past its tensor's end


def index_bits(kernel: ir.Operation) -> int:
    """The width of `kernel`'s index arithmetic: 64 when some tensor of its body (an
    argument, a result, any intermediate value) has more than INDEX_LIMIT - BLOCK_MARGIN
    elements, else 32. Every index and offset a lane that is not masked off computes is below
    the element count of a tensor of the kernel, and a masked-off lane's iteration index
    (program_id * BLOCK + arange) runs less than a block past it, so int32 cannot wrap.

    A tensor whose size is symbolic (a dynamic compile) and over the limit already with every
    symbol at 1 makes the kernel int64 too. Any other symbolic size cannot be bounded at
    compile time: if the kernel stays int32 it records guards (`symbolic.guard`,
    plan["guards"]) that the runtime checks for every new set of sizes before launching
    anything, refusing sizes that reach the limit with an error that says to compile for
    those shapes (which gives int64 kernels where they are needed). The margin makes the
    choice independent of the block sizes, so every autotune candidate of a kernel has the
    same width."""
    block = kernel.regions[0].blocks[0]
    types = dict.fromkeys(a.type for a in block.arguments)  # distinct types, in order
    for op in ops(block):
        types.update(dict.fromkeys(r.type for r in op.results))
    limit = INDEX_LIMIT - BLOCK_MARGIN
    symbolic_sizes: dict = {}
    for t in types:
        if not isinstance(t, ir.RankedTensorType):
            continue
        n = math.prod(type_shape(t))
        if symbolic.is_symbolic(n):
            e = symbolic.expr_of(n)
            symbolic_sizes[e] = None
            n = symbolic.value_at(e, 1)
        if n > limit:
            return 64
    for e in symbolic_sizes:
        symbolic.guard(
            f"{symbolic.to_python(e)} <= {limit}",
            "int32 index arithmetic: every tensor of a kernel has fewer than 2**31 elements; compile for these shapes with `shapes=` (CLI --shape)",
        )
    return 32
