"""Max, average and Lp pooling (and their global forms): a 1-D grid of BLOCK_P outputs, a
loop over the window in BLOCK_R taps."""

from __future__ import annotations

import math

from mlir import ir
from mlir.dialects import scf

from tritonnx.dialects.builders import attrs_of, shape_of
from tritonnx.dialects.tile import delinearize
from tritonnx.passes.index_maps import Emitter, known_tile
from tritonnx.passes.lower_to_tile.common import NEG_INF, always_inside, block_start, reduce_extreme
from tritonnx.passes.lower_to_tile.outputs import store_outputs


def pool_kernel(b, kernel, args, out_value, cfg, anchor):
    """Max, average and Lp pooling over any number of spatial dimensions: BLOCK_P outputs x
    BLOCK_R window positions per step of a loop over the window."""
    bp, br = cfg["BLOCK_P"], cfg["BLOCK_R"]
    x = anchor.operands[0]
    x_dims = shape_of(x)
    spatial = len(x_dims) - 2
    out_dims = shape_of(anchor.results[0])
    a = attrs_of(anchor)
    kind = {"tnx.max_pool": "max", "tnx.global_max_pool": "max", "tnx.lp_pool": "lp", "tnx.global_lp_pool": "lp"}.get(
        anchor.name, "avg"
    )
    if anchor.name.startswith("tnx.global"):
        ks, strides, dils, pads = x_dims[2:], [1] * spatial, [1] * spatial, [0] * (2 * spatial)
        include_pad = True
    else:
        ks, strides = a["kernel_shape"], a["strides"]
        dils = a.get("dilations") or [1] * spatial
        pads = a["pads"]
        include_pad = bool(a.get("count_include_pad", 0))
    p_norm = float(a.get("p", 2))
    total, window = math.prod(out_dims), math.prod(ks)
    p = b.name(block_start(b, 0, bp, bp), "offs_p")  # [BP] output positions
    p_ok = b.cmp("lt", p, total)
    idx1 = delinearize(b, p, out_dims)  # n, c, o_1..o_d as [BP]
    idx2 = [b.expand(i, 1) if i is not None else None for i in idx1]
    outs = [o if o is not None else b.const(0, [int(bp), 1], b.idx) for o in idx2[2:]]
    p_ok2 = b.expand(p_ok, 1)
    acc0 = b.name(b.const(NEG_INF if kind == "max" else 0.0, [bp], b.f32), "acc")
    inits = [acc0] if kind != "avg" else [acc0, b.name(b.const(0.0, [bp], b.f32), "count")]
    loop = b.for_range(0, window, br, inits)
    with ir.InsertionPoint(loop.body):
        r = b.name(
            b.expand(b.binary("add", b.splat(b.loop_index(loop.induction_variable), [br]), b.arange(br)), 0), "offs_r"
        )
        taps = [k if k is not None else b.const(0, [1, int(br)], b.idx) for k in delinearize(b, r, list(ks))]
        in_window = b.and_(p_ok2, b.cmp("lt", r, window))
        src, inside, padded = [], [], []
        for d, (o, k) in enumerate(zip(outs, taps)):
            i = b.binary("add", b.binary("sub", b.binary("mul", o, strides[d]), pads[d]), b.binary("mul", k, dils[d]))
            if not always_inside(pads[d], out_dims[2 + d], ks[d], strides[d], dils[d], x_dims[2 + d]):
                inside += [b.cmp("ge", i, 0), b.cmp("lt", i, x_dims[2 + d])]
            padded.append(b.cmp("lt", i, x_dims[2 + d] + pads[spatial + d]))
            src.append(i if x_dims[2 + d] > 1 else None)
        valid = b.broadcast(b.and_(in_window, *inside), [bp, br])
        em = Emitter(b, args, [bp, br])
        tile = b.convert(em(x, idx2[:2] + src, valid), b.f32)
        if kind == "max":
            red = reduce_extreme(b, b.select(valid, tile, NEG_INF), 1, "max")
            scf.YieldOp([b.binary("max", loop.inner_iter_args[0], red)])  # maximumf: keeps a NaN
        elif kind == "lp":
            powed = b.unary("math.exp", b.binary("mul", b.unary("math.log", b.unary("math.absf", tile)), p_norm))
            red = b.reduce(b.select(valid, powed, 0.0), 1, "sum")
            scf.YieldOp([b.binary("add", loop.inner_iter_args[0], red)])
        else:
            red = b.reduce(b.select(valid, tile, 0.0), 1, "sum")
            counted = valid if not include_pad else b.broadcast(b.and_(in_window, *padded), [bp, br])
            cnt = b.reduce(b.convert(counted, b.f32), 1, "sum")
            scf.YieldOp([b.binary("add", loop.inner_iter_args[0], red), b.binary("add", loop.inner_iter_args[1], cnt)])
    if kind == "max":
        result = loop.results[0]
    elif kind == "lp":
        s = loop.results[0]
        result = b.select(b.cmp("eq", s, 0.0), s, b.unary("math.exp", b.binary("div", b.unary("math.log", s), p_norm)))
    else:
        result = b.binary("div", loop.results[0], b.binary("max", loop.results[1], 1.0))
    em = Emitter(b, args, [bp])
    em.known[anchor.results[0]] = known_tile(b, result, anchor.results[0])
    store_outputs(b, em, args, idx1, p_ok, out_dims)
