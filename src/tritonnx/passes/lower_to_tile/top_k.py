"""TopK: a 1-D grid of BLOCK_P rows, each held whole in a BLOCK_R block, K rounds of
taking the extreme element."""

from __future__ import annotations

import math

from mlir import ir
from mlir.dialects import scf

from tritonnx.dialects.builders import attrs_of, shape_of
from tritonnx.dialects.tile import delinearize, linearize
from tritonnx.passes.index_maps import Emitter
from tritonnx.passes.lower_to_tile.common import NEG_INF, block_start


def top_k_kernel(b, kernel, args, out_value, cfg, anchor):
    """TopK-11: K rounds over a row held in one block, each taking the largest (or
    smallest) remaining element, the lowest index first among equals, and storing it."""
    bp, br = cfg["BLOCK_P"], cfg["BLOCK_R"]
    a = attrs_of(anchor)
    x = anchor.operands[0]
    dims, out_dims = shape_of(x), shape_of(anchor.results[0])
    axis, k = a["axis"], a["k"]
    n, inner = dims[axis], math.prod(dims[axis + 1 :])
    rows = math.prod(dims) // n
    p = b.name(b.expand(block_start(b, 0, bp, bp), 1), "offs_p")  # [BP, 1] rows
    j = b.name(b.expand(b.arange(br), 0), "offs_r")  # [1, BR] positions in the row
    outer_i = b.binary("div", p, inner) if inner > 1 else p
    inner_i = b.binary("mod", p, inner) if inner > 1 else None
    head = delinearize(b, outer_i, dims[:axis])
    tail = delinearize(b, inner_i, dims[axis + 1 :]) if inner_i is not None else [None] * len(dims[axis + 1 :])
    mask = b.name(b.broadcast(b.and_(b.cmp("lt", p, rows), b.cmp("lt", j, n)), [bp, br]), "mask")
    v = b.convert(Emitter(b, args, [bp, br])(x, head + [j if n > 1 else None] + tail, mask), b.f32)
    if not a["largest"]:
        v = b.unary("arith.negf", v)
    v = b.select(mask, v, NEG_INF)
    jj = b.broadcast(j, [bp, br])
    row_ok = b.cmp("lt", p, rows)
    loop = b.for_range(0, k, 1, [v])
    with ir.InsertionPoint(loop.body):
        cur = loop.inner_iter_args[0]
        best = b.expand(b.reduce(cur, 1, "max"), 1)
        first = b.expand(b.reduce(b.select(b.and_(mask, b.cmp("eq", cur, best)), jj, b.full_like(jj, br)), 1, "min"), 1)
        i = b.splat(b.loop_index(loop.induction_variable), [bp, 1])
        if a["output"] == 0:
            value = best if a["largest"] else b.unary("arith.negf", best)
        else:
            value = first
        idx = head + [i if out_dims[axis] > 1 else None] + tail
        offs = linearize(b, [None if d == 1 else t for t, d in zip(idx, out_dims)], out_dims)
        offs = offs if offs is not None else b.const(0, [bp, 1], b.idx)
        want = ir.RankedTensorType(args["out"].type).element_type
        b.store(args["out"], b.broadcast(offs, [bp, 1]), b.convert(value, want), row_ok)
        scf.YieldOp([b.select(b.cmp("eq", jj, first), b.full_like(cur, NEG_INF), cur)])
