"""Helpers the templates share: dot operand types, a block's iteration indices, a
NaN-propagating max / min, and the rows of softmax and scan (held in one block, or looped
over in chunks)."""

from __future__ import annotations

import math

from mlir import ir
from mlir.dialects import scf

from tritonnx import symbolic
from tritonnx.dialects.builders import attrs_of, shape_of
from tritonnx.dialects.tile import delinearize, elem, is_float
from tritonnx.passes.index_maps import Emitter

NEG_INF = float("-inf")


def dot_inputs(kernel):
    """(convert, input_precision) for the dot products of `kernel`: `convert(b, tile)` gives
    a dot operand in the type the precision asks for (f32 by default and for tf32, where
    Triton's input_precision is "tf32"; the half type for fp16/bf16: tensor cores, fp32
    accumulation). Triton 3.9's interpreter multiplies bf16 tiles wrongly, so on the CPU a
    bf16 operand is rounded to bf16 and multiplied in fp32, which gives the same products."""
    precision = (
        ir.StringAttr(kernel.attributes["tnx.precision"]).value if "tnx.precision" in kernel.attributes else "fp32"
    )
    interpreter = (
        "tnx.target" in kernel.attributes and ir.StringAttr(kernel.attributes["tnx.target"]).value == "interpreter"
    )
    if precision in ("fp16", "bf16"):
        half = ir.F16Type.get() if precision == "fp16" else ir.BF16Type.get()
        if precision == "bf16" and interpreter:
            return (lambda b, x: b.convert(b.convert(x, half), b.f32)), "ieee"
        return (lambda b, x: b.convert(x, half)), "ieee"
    return (lambda b, x: b.convert(x, b.f32)), ("tf32" if precision == "tf32" else "ieee")


def block_start(b, axis: int, size: int, n: int) -> ir.Value:
    """pid(axis) * size + arange(size), as a [n]-shaped tile of the index type."""
    base = b.binary("mul", b.program_id(axis), b.const(size, [], b.idx))
    return b.binary("add", b.splat(base, [n]), b.arange(n))


def reduce_extreme(b, v, axis: int, kind: str):
    """The max or min of `v` along `axis`, NaN where a NaN is among the values, as ONNX's
    reference and torch give for ReduceMax/ReduceMin and the max pools (tl.max and tl.min
    skip NaN: maxnumf). The sum of the NaN lanes (0 elsewhere) is NaN exactly then."""
    m = b.reduce(v, axis, kind)
    if not is_float(elem(v)):
        return m
    nans = b.reduce(b.select(b.cmp("ne", v, v), v, b.full_like(v, 0.0)), axis, "sum")
    return b.select(b.cmp("ne", nans, nans), nans, m)


def row_space(b, cfg, anchor):
    """The rows of a row template (softmax, scan): a 1-D grid of BLOCK_P rows of `anchor`'s
    result along its `axis` (of any length, static or symbolic). Returns `at`, where `at(j)`,
    for a [1, BLOCK_R] tile `j` of positions in the row, gives (idx, mask): the indices of
    the result's dimensions and the [BLOCK_P, BLOCK_R] live lanes (row < rows, j < n). The
    row indices are computed once, so a loop over chunks of the row calls `at` per chunk."""
    bp, br = cfg["BLOCK_P"], cfg["BLOCK_R"]
    dims = shape_of(anchor.results[0])
    axis = attrs_of(anchor)["axis"]
    n = dims[axis]
    inner = math.prod(dims[axis + 1 :])
    rows = math.prod(dims) // n
    p = b.name(b.expand(block_start(b, 0, bp, bp), 1), "offs_p")  # [BP, 1] rows
    outer_i = b.binary("div", p, inner) if inner > 1 else p
    inner_i = b.binary("mod", p, inner) if inner > 1 else None
    head = delinearize(b, outer_i, dims[:axis])
    tail = delinearize(b, inner_i, dims[axis + 1 :]) if inner_i is not None else [None] * len(dims[axis + 1 :])
    row_ok = b.cmp("lt", p, rows)

    def at(j):
        idx = head + [j if n > 1 else None] + tail
        mask = b.name(b.broadcast(b.and_(row_ok, b.cmp("lt", j, n)), [bp, br]), "mask")
        return idx, mask

    return at


def row_tiles(b, args, cfg, anchor):
    """The tiles of a row held whole in BLOCK_R lanes (`row_space`). Returns (j, idx, mask,
    em): the [1, BLOCK_R] positions in the row, the indices of the result's dimensions, the
    [BLOCK_P, BLOCK_R] live lanes, and an Emitter on [BLOCK_P, BLOCK_R]."""
    at = row_space(b, cfg, anchor)
    j = b.name(b.expand(b.arange(cfg["BLOCK_R"]), 0), "offs_r")  # [1, BR] positions in the row
    idx, mask = at(j)
    return j, idx, mask, Emitter(b, args, [cfg["BLOCK_P"], cfg["BLOCK_R"]])


def row_chunks(b, args, cfg, anchor, at, inits, body):
    """A loop over `anchor`'s row in chunks of BLOCK_R positions (the row of any length,
    static or symbolic: the loop's bound is the kernel's size argument then), carrying
    `inits`; `at` is the rows' `row_space` (made once, before the loops of a kernel).
    `body(iter_args, j, idx, mask, em)` computes one chunk: `j` the [1, BLOCK_R] positions
    start + arange(BLOCK_R), `idx` and `mask` as `at(j)` gives them, `em` an Emitter on
    [BLOCK_P, BLOCK_R] inside the loop; it returns the new iter values. Returns the loop's
    results."""
    n = shape_of(anchor.results[0])[attrs_of(anchor)["axis"]]
    bp, br = cfg["BLOCK_P"], cfg["BLOCK_R"]
    loop = b.for_range(0, n, br, inits)
    with ir.InsertionPoint(loop.body):
        start = b.splat(b.loop_index(loop.induction_variable), [br])
        j = b.name(b.expand(b.binary("add", start, b.arange(br)), 0), "offs_r")
        idx, mask = at(j)
        scf.YieldOp(body(list(loop.inner_iter_args), j, idx, mask, Emitter(b, args, [bp, br])))
    return list(loop.results)


def fits_one_block(cfg, anchor) -> bool:
    """Whether `anchor`'s row (its `axis`) is static and no longer than BLOCK_R: then a row
    template holds it whole and reads it once; otherwise it loops over chunks (`row_chunks`)."""
    n = shape_of(anchor.results[0])[attrs_of(anchor)["axis"]]
    return not symbolic.is_symbolic(n) and n <= cfg["BLOCK_R"]


def always_inside(pad, outputs, taps, stride, dilation, n) -> bool:
    """Whether every input position o * stride - pad + k * dilation of an output o < outputs
    and a tap k < taps lies in [0, n): then the bounds check on it is dropped (a 1x1 or
    unpadded Conv). Lanes past those ranges are masked off by the M and K masks anyway."""
    if any(symbolic.is_symbolic(v) for v in (pad, outputs, taps, stride, dilation, n)):
        return False
    return pad == 0 and (outputs - 1) * stride + (taps - 1) * dilation < n
