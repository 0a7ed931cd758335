"""MeanVarianceNormalization: a 1-D grid of BLOCK_P kept elements, three loops over the
reduced extent in BLOCK_R elements (mean, variance, normalized output)."""

from __future__ import annotations

import math

from mlir import ir
from mlir.dialects import scf

from tritonnx.dialects.builders import attrs_of, shape_of
from tritonnx.dialects.tile import delinearize
from tritonnx.passes.index_maps import Emitter, known_tile
from tritonnx.passes.lower_to_tile.common import block_start
from tritonnx.passes.lower_to_tile.outputs import store_outputs


def norm_kernel(b, kernel, args, out_value, cfg, anchor):
    """MeanVarianceNormalization over `axes`, three loops over the reduced extent: the mean,
    the variance (two-pass, for accuracy), then the normalized values with the epilogue."""
    bp, br = cfg["BLOCK_P"], cfg["BLOCK_R"]
    x = anchor.operands[0]
    dims = shape_of(x)
    a = attrs_of(anchor)
    axes = a["axes"]
    kept = [d for d in range(len(dims)) if d not in axes]
    kdims, rdims = [dims[d] for d in kept], [dims[d] for d in axes]
    n_out, n_red = math.prod(kdims), math.prod(rdims)
    p = b.name(block_start(b, 0, bp, bp), "offs_p")  # [BP] rows
    p_ok2 = b.expand(b.cmp("lt", p, n_out), 1)
    kidx = [b.expand(i, 1) if i is not None else None for i in delinearize(b, p, kdims)]

    def loop(inits, body):
        f = b.for_range(0, n_red, br, inits)
        with ir.InsertionPoint(f.body):
            r = b.name(
                b.expand(b.binary("add", b.splat(b.loop_index(f.induction_variable), [br]), b.arange(br)), 0), "offs_r"
            )
            ridx, ki, ri = delinearize(b, r, rdims), iter(kidx), None
            ri = iter(ridx)
            idx = [next(ri) if d in axes else next(ki) for d in range(len(dims))]
            valid = b.broadcast(b.and_(p_ok2, b.cmp("lt", r, n_red)), [bp, br])
            em = Emitter(b, args, [bp, br])
            v = b.convert(em(x, idx, valid), b.f32)
            scf.YieldOp(body(f.inner_iter_args, v, valid, idx, em))
        return f.results

    zero = b.const(0.0, [bp], b.f32)
    (s,) = loop(
        [zero],
        lambda it, v, valid, idx, em: [
            b.binary("add", it[0], b.reduce(b.select(valid, v, b.full_like(v, 0.0)), 1, "sum"))
        ],
    )
    mean = b.expand(b.binary("div", s, n_red), 1)
    (ss,) = loop(
        [zero],
        lambda it, v, valid, idx, em: [
            b.binary(
                "add",
                it[0],
                b.reduce(
                    b.select(
                        valid, b.binary("mul", b.binary("sub", v, mean), b.binary("sub", v, mean)), b.full_like(v, 0.0)
                    ),
                    1,
                    "sum",
                ),
            )
        ],
    )
    rstd = b.expand(b.unary("math.rsqrt", b.binary("add", b.binary("div", ss, n_red), a["epsilon"])), 1)

    def write(it, v, valid, idx, em):
        em.known[anchor.results[0]] = known_tile(b, b.binary("mul", b.binary("sub", v, mean), rstd), anchor.results[0])
        store_outputs(b, em, args, idx, valid, dims)
        return [it[0]]

    loop([zero], write)
