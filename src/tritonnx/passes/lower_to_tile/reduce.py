"""ReduceX and ArgMax / ArgMin: a 1-D grid of BLOCK_P kept elements, a loop over the reduced
extent in BLOCK_R elements (two loops for ReduceLogSumExp: the maximum, then the sum)."""

from __future__ import annotations

import math

from mlir import ir
from mlir.dialects import scf

from tritonnx.dialects.builders import attrs_of, shape_of
from tritonnx.dialects.tile import delinearize, is_float
from tritonnx.passes import elementwise
from tritonnx.passes.index_maps import Emitter, compute_type, known_tile
from tritonnx.passes.lower_to_tile.common import NEG_INF, block_start, reduce_extreme
from tritonnx.passes.lower_to_tile.outputs import store_outputs


def _extreme(b, et, largest: bool):
    """+inf / -inf, or the integer type's bounds."""
    if is_float(et):
        return float("inf") if largest else NEG_INF
    w = ir.IntegerType(et).width
    if w == 1:  # bool: true is the largest
        return 1 if largest else 0
    return (2 ** (w - 1) - 1) if largest else -(2 ** (w - 1))


def reduce_kernel(b, kernel, args, out_value, cfg, anchor):
    """ReduceX and ArgMax/ArgMin over `axes`: BLOCK_P output elements x BLOCK_R reduced
    elements per step of a loop over the reduced extent."""
    bp, br = cfg["BLOCK_P"], cfg["BLOCK_R"]
    x = anchor.operands[0]
    dims = shape_of(x)
    a = attrs_of(anchor)
    axes = a["axes"]
    kind = anchor.name[len("tnx.") :]
    kept = [d for d in range(len(dims)) if d not in axes]
    kdims, rdims = [dims[d] for d in kept], [dims[d] for d in axes]
    n_out, n_red = math.prod(kdims), math.prod(rdims)
    et = compute_type(ir.RankedTensorType(x.type).element_type)
    if isinstance(et, ir.IntegerType) and et.width == 1:
        et = b.i32  # bools reduce as 0 / 1
    p = b.name(block_start(b, 0, bp, bp), "offs_p")  # [BP] output positions
    p_ok = b.name(b.cmp("lt", p, n_out), "mask_p")
    kidx = [b.expand(i, 1) if i is not None else None for i in delinearize(b, p, kdims)]
    p_ok2 = b.expand(p_ok, 1)

    def chunks(inits, body):
        if n_red == 0:  # an empty reduction: the neutral element
            return inits
        loop = b.for_range(0, n_red, br, inits)
        with ir.InsertionPoint(loop.body):
            r = b.name(
                b.expand(b.binary("add", b.splat(b.loop_index(loop.induction_variable), [br]), b.arange(br)), 0),
                "offs_r",
            )
            ridx = delinearize(b, r, rdims)
            idx, ki, ri = [], iter(kidx), iter(ridx)
            for d in range(len(dims)):
                idx.append(next(ri) if d in axes else next(ki))
            valid = b.broadcast(b.and_(p_ok2, b.cmp("lt", r, n_red)), [bp, br])
            v = b.convert(Emitter(b, args, [bp, br])(x, idx, valid), et)
            scf.YieldOp(body(loop.inner_iter_args, v, valid, r))
        return loop.results

    def filled(v, valid, value):
        return b.select(valid, v, b.full_like(v, value))

    if kind in ("arg_max", "arg_min"):
        largest = kind == "arg_max"
        last = a.get("select_last_index", 0)
        big = 2**30

        def step(it, v, valid, r):
            best, where_ = it
            cm = b.reduce(filled(v, valid, _extreme(b, et, not largest)), 1, "max" if largest else "min")
            hit = b.and_(valid, b.cmp("eq", v, b.expand(cm, 1)))
            rr = b.broadcast(r, [bp, br])
            ci = (
                b.reduce(b.select(hit, rr, b.full_like(rr, -1)), 1, "max")
                if last
                else b.reduce(b.select(hit, rr, b.full_like(rr, big)), 1, "min")
            )
            pred = ("ge" if last else "gt") if largest else ("le" if last else "lt")
            better = b.cmp(pred, cm, best)
            return [b.select(better, cm, best), b.select(better, ci, where_)]

        _, result = chunks([b.const(_extreme(b, et, not largest), [bp], et), b.const(0, [bp], b.idx)], step)
    elif kind == "reduce_log_sum_exp":
        (m,) = chunks(
            [b.const(NEG_INF, [bp], et)],
            lambda it, v, valid, r: [b.binary("max", it[0], b.reduce(filled(v, valid, NEG_INF), 1, "max"))],
        )
        # shift by the row maximum unless it is infinite: -inf (an all -inf or empty row) gives
        # log(0) = -inf, +inf gives log(inf) = +inf; shifting by it would make inf - inf = NaN
        safe_m = b.select(b.cmp("eq", b.unary("math.absf", m), float("inf")), b.full_like(m, 0.0), m)
        mb = b.expand(safe_m, 1)
        (s,) = chunks(
            [b.const(0.0, [bp], et)],
            lambda it, v, valid, r: [
                b.binary(
                    "add", it[0], b.reduce(filled(b.unary("math.exp", b.binary("sub", v, mb)), valid, 0.0), 1, "sum")
                )
            ],
        )
        result = b.binary("add", b.unary("math.log", s), safe_m)
    else:
        prologue = {
            "reduce_l1": lambda v: elementwise.OPS["tnx.abs"](b, [v], {}),
            "reduce_l2": lambda v: b.binary("mul", v, v),
            "reduce_sum_square": lambda v: b.binary("mul", v, v),
        }.get(kind, lambda v: v)
        combine, neutral = {
            "reduce_max": ("max", _extreme(b, et, False)),
            "reduce_min": ("min", _extreme(b, et, True)),
            "reduce_prod": ("prod", 1),
        }.get(kind, ("sum", 0))
        merge = {"max": "max", "min": "min", "prod": "mul", "sum": "add"}[combine]

        def reduce_chunk(v):
            if combine in ("max", "min"):  # NaN wins, and maximumf / minimumf carry it on
                return reduce_extreme(b, v, 1, combine)
            return b.reduce(v, 1, combine)

        (acc,) = chunks(
            [b.const(neutral, [bp], et)],
            lambda it, v, valid, r: [b.binary(merge, it[0], reduce_chunk(filled(prologue(v), valid, neutral)))],
        )
        result = acc
        if kind == "reduce_mean":
            result = b.binary("div", acc, n_red)
        elif kind == "reduce_l2":
            result = b.unary("math.sqrt", acc)
        elif kind == "reduce_log_sum":
            result = b.unary("math.log", acc)
    out_dims = shape_of(anchor.results[0])
    em = Emitter(b, args, [bp])
    em.known[anchor.results[0]] = known_tile(b, result, anchor.results[0])
    store_outputs(b, em, args, delinearize(b, p, out_dims), p_ok, out_dims)
