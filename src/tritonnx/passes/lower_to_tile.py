"""lower-to-tile: rewrites each outlined kernel into tile IR, the body of one Triton program.

The kernel's anchor picks a template (implicit-GEMM conv, gemm and batched matmul, pool
window, reduction, normalization, softmax row, scan, top-k, or a flat pointwise loop).
Everything else in the group is evaluated by `index_maps.Emitter` on the template's tiles
of indices: views are index maps on loads, elementwise ops apply to tiles. Kernels become
destination-passing: `@kernel_N(inputs..., outputs...)` (a multi-output kernel, formed by
the fuse pass, stores several; `tnx.num_outputs` counts them); in @main each call gets its
outputs from `bufferization.alloc_tensor` (allocations, so cse keeps them apart).
A kernel with checked data indices (`tnx.index_check`, set by outline) also takes one
int64[2] check buffer per checked op, between its inputs and outputs (`tnx.checks`
describes them); each call gets them as allocations tagged `tnx.check`.
Index arithmetic is int32, or int64 in a kernel with a tensor of 2^31 elements or more
(`index_bits`, recorded as `tnx.index_bits`; dynamic sizes get run-time guards).
"""
from __future__ import annotations

import math

from mlir import ir
from mlir.dialects import func, scf

from tritonnx import symbolic
from tritonnx.dialects import onnx_op_type
from tritonnx.dialects.builders import attrs_of, operand, producer, shape_of, to_attr
from tritonnx.dialects.tile import TileBuilder, delinearize, elem, is_float, linearize, shape
from tritonnx.passes import elementwise, functions, ops
from tritonnx.passes.index_maps import Emitter, compute_type, known_tile
from tritonnx.passes.kernel_info import anchor_of, attention_ops, gemm_dims, node_name

NAME = "lower-to-tile"
NEG_INF = float("-inf")
LOWEST_F32 = -3.4028234663852886e38  # the online softmax's initial row maximum: finite, so it makes no NaN
NEG_INF = float("-inf")


def dot_inputs(kernel):
    """(convert, input_precision) for the dot products of `kernel`: `convert(b, tile)` gives
    a dot operand in the type the precision asks for (f32 by default and for tf32, where
    Triton's input_precision is "tf32"; the half type for fp16/bf16: tensor cores, fp32
    accumulation). Triton 3.9's interpreter multiplies bf16 tiles wrongly, so on the CPU a
    bf16 operand is rounded to bf16 and multiplied in fp32, which gives the same products."""
    precision = ir.StringAttr(kernel.attributes["tnx.precision"]).value if "tnx.precision" in kernel.attributes else "fp32"
    interpreter = "tnx.target" in kernel.attributes and ir.StringAttr(kernel.attributes["tnx.target"]).value == "interpreter"
    if precision in ("fp16", "bf16"):
        half = ir.F16Type.get() if precision == "fp16" else ir.BF16Type.get()
        if precision == "bf16" and interpreter:
            return (lambda b, x: b.convert(b.convert(x, half), b.f32)), "ieee"
        return (lambda b, x: b.convert(x, half)), "ieee"
    return (lambda b, x: b.convert(x, b.f32)), ("tf32" if precision == "tf32" else "ieee")


def _reindex(b, idx, idx_shape, shape):
    """`idx` (indices over `idx_shape`, or None: over `shape` already) as indices over
    `shape`, a reshape of it: the same linear positions."""
    if idx_shape is None or list(idx_shape) == list(shape):
        return idx
    lin = linearize(b, idx, list(idx_shape))
    return delinearize(b, lin, list(shape)) if lin is not None else [None] * len(shape)


def _out_mask_and_store(b, em, out_value, out_buf, idx, mask, idx_shape=None):
    """Evaluates one output of the kernel at `idx` (indices over `idx_shape`, the anchor's
    result shape, when reshapes lie between the anchor and the output) and stores it.
    Returns the stored tile, in the compute type."""
    idx = _reindex(b, idx, idx_shape, shape_of(out_value))
    val = em(out_value, idx, mask)
    offs = linearize(b, idx, shape_of(out_value))
    offs = b.broadcast(offs, em.shape) if offs is not None else b.const(0, em.shape, b.idx)
    want = ir.RankedTensorType(out_buf.type).element_type
    b.store(out_buf, offs, b.convert(val, want), b.broadcast(mask, em.shape))
    return val


def _store_outputs(b, em, args, idx, mask, idx_shape=None):
    """Stores every output of the kernel (`args["outs"]`: (value, buffer) pairs in result
    order) at the lanes `idx` over `idx_shape`. In a multi-output kernel (fuse's multi-output
    rule) a later output reads an earlier one at its own index, or through unit-step Slices:
    then it covers a window of the earlier one's index space and is stored where the lanes
    fall inside it. Either way each lane reads what it computed, so an output's tile is
    reused, not recomputed."""
    outs = args["outs"]
    windows: dict = {}  # output position -> (the output whose index space it is in, offsets)
    for i, (value, buf) in enumerate(outs):
        window = _window(value, [v for v, _ in outs[:i]], windows) if i else None
        windows[i] = window
        if window is None:
            val = _out_mask_and_store(b, em, value, buf, idx, mask, idx_shape)
        else:
            base, starts = window
            base_idx = _reindex(b, idx, idx_shape, shape_of(base))
            own, inside = [], []
            for j, (t, s0, n) in enumerate(zip(base_idx, starts, shape_of(value))):
                if s0 == 0 and n == shape_of(base)[j]:
                    own.append(t)
                    continue
                own.append(b.binary("sub", t, s0))
                inside += [b.cmp("ge", t, s0), b.cmp("lt", t, s0 + n)]
            val = _out_mask_and_store(b, em, value, buf, own, b.and_(mask, *inside) if inside else mask)
        if len(outs) > 1:
            em.known[value] = val


def _window(value: ir.Value, earlier: list[ir.Value], windows: dict) -> tuple[ir.Value, list[int]] | None:
    """(the output whose index space `value`'s is in, the offsets of `value`'s in it) when
    `value` reads an earlier output of its kernel through unit-step Slices, or reads one
    that is itself a window (`windows`: by position in `earlier`); None when it reads them
    at its own index."""
    def found(w, starts):
        j = next(k for k, e in enumerate(earlier) if w == e)
        if windows.get(j) is None:
            return (w, starts) if any(starts) or shape_of(w) != shape_of(value) else None
        base, offsets = windows[j]
        return base, [a + c for a, c in zip(starts, offsets)]

    stack, seen = [value], set()
    while stack:
        v = stack.pop()
        op = producer(v)
        if any(v == e for e in earlier):
            window = found(v, [0] * len(shape_of(v)))
            if window is not None:
                return window
            continue
        if op is None or any(v == x for x in seen):
            continue
        seen.add(v)
        if op.name == "tnx.slice":
            starts, w = [0] * len(shape_of(v)), v
            while producer(w) is not None and producer(w).name == "tnx.slice" and all(w != e for e in earlier):
                starts = [a + c for a, c in zip(starts, attrs_of(producer(w))["starts"])]
                w = producer(w).operands[0]
            if any(w == e for e in earlier):
                return found(w, starts)
        stack.extend(op.operands)
    return None


def _pointwise(b, kernel, args, out_value, cfg):
    block = cfg["BLOCK"]
    dims = shape_of(out_value)
    offs = b.binary("add", b.splat(b.binary("mul", b.program_id(0), b.const(block, [], b.idx)), [block]), b.arange(block))
    mask = b.cmp("lt", offs, math.prod(dims))
    em = Emitter(b, args, [block])
    idx = delinearize(b, offs, dims)
    _store_outputs(b, em, args, idx, mask, dims)


def _block_start(b, axis: int, size: int, n: int) -> ir.Value:
    """pid(axis) * size + arange(size), as a [n]-shaped tile of the index type."""
    base = b.binary("mul", b.program_id(axis), b.const(size, [], b.idx))
    return b.binary("add", b.splat(base, [n]), b.arange(n))


def _dot_kernel(b, kernel, args, out_value, cfg, anchor):
    kind = ir.StringAttr(kernel.attributes["tnx.kind"]).value
    bm, bn, bk = cfg["BLOCK_M"], cfg["BLOCK_N"], cfg["BLOCK_K"]
    m_size, n_size, k_size, groups = gemm_dims(kind, anchor)
    rm = b.expand(_block_start(b, 0, bm, bm), 1)  # [BM, 1]
    rn = b.expand(_block_start(b, 1, bn, bn), 0)  # [1, BN]
    m_ok, n_ok = b.cmp("lt", rm, m_size), b.cmp("lt", rn, n_size)
    a_attrs = attrs_of(anchor)
    x, w = anchor.operands[0], anchor.operands[1]
    if kind in ("conv", "conv_transpose"):  # any number of spatial dimensions
        out_dims = shape_of(anchor.results[0])
        x_dims, w_dims = shape_of(x), shape_of(w)
        spatial = len(out_dims) - 2
        ks, strides, dils = a_attrs["kernel_shape"], a_attrs["strides"], a_attrs["dilations"]
        pads = a_attrs["pads"][:spatial]
        c_in = x_dims[1]
        cg = (c_in if kind == "conv" else w_dims[0]) // groups  # input channels per group
        g = b.program_id(2)
        m_idx = delinearize(b, rm, [out_dims[0]] + out_dims[2:])  # nb, o_1..o_d: [BM, 1] each
        nb, outs = m_idx[0], [o if o is not None else b.const(0, [bm, 1], b.idx) for o in m_idx[1:]]
        co = b.binary("add", rn, b.binary("mul", b.splat(g, [1, bn]), n_size)) if groups > 1 else rn
    batch, a_batch, b_batch = [], [], []
    if kind == "mat_mul":  # batch dims broadcast NumPy-style; program_id(2) walks the output's
        out_dims = shape_of(anchor.results[0])
        batch = delinearize(b, b.program_id(2), out_dims[:-2]) if groups > 1 else [None] * (len(out_dims) - 2)

        def batch_of(v):
            dims = shape_of(v)[:-2]
            lead = len(batch) - len(dims)
            return [None if d == 1 else batch[lead + j] for j, d in enumerate(dims)]
        a_batch, b_batch = batch_of(x), batch_of(w)
    acc0 = b.const(0.0, [bm, bn], b.f32)
    loop = b.for_range(0, k_size, bk, [acc0])
    with ir.InsertionPoint(loop.body):
        k0 = b.splat(b.loop_index(loop.induction_variable), [bk])
        rk = b.binary("add", k0, b.arange(bk))
        ka, kb = b.expand(rk, 0), b.expand(rk, 1)  # [1, BK], [BK, 1]
        a_mask = b.and_(m_ok, b.cmp("lt", ka, k_size))
        b_mask = b.and_(b.cmp("lt", kb, k_size), n_ok)
        ea, eb = Emitter(b, args, [bm, bk]), Emitter(b, args, [bk, bn])
        if kind in ("conv", "conv_transpose"):
            k_idx = delinearize(b, ka, [cg] + ks)  # ci, k_1..k_d: [1, BK] each
            ci = k_idx[0] if k_idx[0] is not None else b.const(0, [1, bk], b.idx)
            taps = [k if k is not None else b.const(0, [1, bk], b.idx) for k in k_idx[1:]]
            src, inside = [], []
            for o, k, s, d, pad, n in zip(outs, taps, strides, dils, pads, x_dims[2:]):
                if kind == "conv":  # input position o * stride - pad + k * dilation
                    i = b.binary("add", b.binary("sub", b.binary("mul", o, s), pad), b.binary("mul", k, d))
                    inside += [b.cmp("ge", i, 0), b.cmp("lt", i, n)]
                else:  # the output o takes input i where i * stride = o + pad - k * dilation
                    t_ = b.binary("sub", b.binary("add", o, pad), b.binary("mul", k, d))
                    t0 = b.binary("max", t_, 0)
                    i = b.binary("div", t0, s)
                    inside += [b.cmp("ge", t_, 0), b.cmp("eq", b.binary("mod", t0, s), 0), b.cmp("lt", i, n)]
                src.append(i if n > 1 else None)
            if groups > 1:
                ci = b.binary("add", ci, b.binary("mul", b.splat(g, [1, bk]), cg))
            a_valid = b.and_(a_mask, *inside)
            a_tile = ea(x, [nb, ci if c_in > 1 else None] + src, a_valid)
            kb_idx = delinearize(b, kb, [cg] + ks)  # [BK, 1] each
            if kind == "conv":
                w_idx = [co] + kb_idx
            else:  # W is [C_in, C_out / group, k...]
                ci_b = kb_idx[0] if kb_idx[0] is not None else b.const(0, [bk, 1], b.idx)
                if groups > 1:
                    ci_b = b.binary("add", ci_b, b.binary("mul", b.splat(g, [bk, 1]), cg))
                w_idx = [ci_b, rn] + kb_idx[1:]
            b_tile = eb(w, [None if n == 1 else i for i, n in zip(w_idx, w_dims)], b_mask)
        else:
            a_valid = a_mask
            trans_a, trans_b = a_attrs.get("transA", 0), a_attrs.get("transB", 0)
            a_tile = ea(x, a_batch + ([ka, rm] if trans_a else [rm, ka]), a_mask)
            b_tile = eb(w, b_batch + ([rn, kb] if trans_b else [kb, rn]), b_mask)
            if shape(a_tile) != [bm, bk]:
                a_tile = b.broadcast(a_tile, [bm, bk])
        # a prologue computes on masked-off lanes too (zero padding is zero after it, not before)
        if x not in args:
            a_tile = b.select(b.broadcast(a_valid, [bm, bk]), a_tile, b.full_like(a_tile, 0))
        if w not in args:
            b_tile = b.select(b.broadcast(b_mask, [bk, bn]), b_tile, b.full_like(b_tile, 0))
        dt, prec = dot_inputs(kernel)
        acc = b.dot(dt(b, a_tile), dt(b, b_tile), loop.inner_iter_args[0], prec)
        scf.YieldOp([acc])
    acc = loop.results[0]
    out_mask = b.and_(m_ok, n_ok)
    em = Emitter(b, args, [bm, bn])
    if kind in ("conv", "conv_transpose"):
        idx = [nb, co] + m_idx[1:]
        bias = operand(anchor, "b")
        if bias is not None:
            acc = b.binary("add", acc, em(bias, [co], out_mask))
    else:
        idx = batch + [rm, rn]
        if kind == "gemm":
            alpha, beta = a_attrs.get("alpha", 1.0), a_attrs.get("beta", 1.0)
            if alpha != 1.0:
                acc = b.binary("mul", acc, alpha)
            c = operand(anchor, "c")
            if c is not None and beta != 0.0:
                cs = shape_of(c)
                lead = 2 - len(cs)
                c_idx = [None if d == 1 else idx[lead + j] for j, d in enumerate(cs)]
                ct = em(c, c_idx, out_mask)
                acc = b.binary("add", acc, ct if beta == 1.0 else b.binary("mul", ct, beta))
    em.known[anchor.results[0]] = known_tile(b, acc, anchor.results[0])
    idx = [None if d == 1 else i for i, d in zip(idx, shape_of(anchor.results[0]))]
    _store_outputs(b, em, args, idx, out_mask, shape_of(anchor.results[0]))


def _pool_kernel(b, kernel, args, out_value, cfg, anchor):
    """Max, average and Lp pooling over any number of spatial dimensions: BLOCK_P outputs x
    BLOCK_R window positions per step of a loop over the window."""
    bp, br = cfg["BLOCK_P"], cfg["BLOCK_R"]
    x = anchor.operands[0]
    x_dims = shape_of(x)
    spatial = len(x_dims) - 2
    out_dims = shape_of(anchor.results[0])
    a = attrs_of(anchor)
    kind = {"tnx.max_pool": "max", "tnx.global_max_pool": "max", "tnx.lp_pool": "lp",
            "tnx.global_lp_pool": "lp"}.get(anchor.name, "avg")
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
    p = _block_start(b, 0, bp, bp)  # [BP]
    p_ok = b.cmp("lt", p, total)
    idx1 = delinearize(b, p, out_dims)  # n, c, o_1..o_d as [BP]
    idx2 = [b.expand(i, 1) if i is not None else None for i in idx1]
    outs = [o if o is not None else b.const(0, [bp, 1], b.idx) for o in idx2[2:]]
    p_ok2 = b.expand(p_ok, 1)
    acc0 = b.const(NEG_INF if kind == "max" else 0.0, [bp], b.f32)
    inits = [acc0] if kind != "avg" else [acc0, b.const(0.0, [bp], b.f32)]
    loop = b.for_range(0, window, br, inits)
    with ir.InsertionPoint(loop.body):
        r = b.expand(b.binary("add", b.splat(b.loop_index(loop.induction_variable), [br]), b.arange(br)), 0)
        taps = [k if k is not None else b.const(0, [1, br], b.idx) for k in delinearize(b, r, list(ks))]
        in_window = b.and_(p_ok2, b.cmp("lt", r, window))
        src, inside, padded = [], [], []
        for d, (o, k) in enumerate(zip(outs, taps)):
            i = b.binary("add", b.binary("sub", b.binary("mul", o, strides[d]), pads[d]), b.binary("mul", k, dils[d]))
            inside += [b.cmp("ge", i, 0), b.cmp("lt", i, x_dims[2 + d])]
            padded.append(b.cmp("lt", i, x_dims[2 + d] + pads[spatial + d]))
            src.append(i if x_dims[2 + d] > 1 else None)
        valid = b.broadcast(b.and_(in_window, *inside), [bp, br])
        em = Emitter(b, args, [bp, br])
        tile = b.convert(em(x, idx2[:2] + src, valid), b.f32)
        if kind == "max":
            red = _reduce_extreme(b, b.select(valid, tile, NEG_INF), 1, "max")
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
    _store_outputs(b, em, args, idx1, p_ok, out_dims)


def _softmax_kernel(b, kernel, args, out_value, cfg, anchor):
    bp, br = cfg["BLOCK_P"], cfg["BLOCK_R"]
    dims = shape_of(anchor.results[0])
    axis = attrs_of(anchor)["axis"]
    n = dims[axis]
    inner = math.prod(dims[axis + 1:])
    rows = math.prod(dims) // n
    p = b.expand(_block_start(b, 0, bp, bp), 1)  # [BP, 1]
    j = b.expand(b.arange(br), 0)  # [1, BR]
    outer_i = b.binary("div", p, inner) if inner > 1 else p
    inner_i = b.binary("mod", p, inner) if inner > 1 else None
    idx = (delinearize(b, outer_i, dims[:axis]) + [j if n > 1 else None]
           + (delinearize(b, inner_i, dims[axis + 1:]) if inner_i is not None else [None] * len(dims[axis + 1:])))
    mask = b.broadcast(b.and_(b.cmp("lt", p, rows), b.cmp("lt", j, n)), [bp, br])
    em = Emitter(b, args, [bp, br])
    if anchor.name in ("tnx.cum_sum", "tnx.cum_prod"):
        a = attrs_of(anchor)
        src = idx[:]
        load_mask = mask
        step = b.binary("sub", j, 1) if a["exclusive"] else j  # exclusive: scan the row shifted by one
        if a["exclusive"]:
            load_mask = b.and_(mask, b.broadcast(b.cmp("ge", j, 1), [bp, br]))
        if n > 1:  # reverse: element j of the scan sits at n - 1 - j
            src[axis] = b.binary("sub", b.full_like(j, n - 1), step) if a["reverse"] else step
        v = em(anchor.operands[0], src, load_mask)
        prod = anchor.name == "tnx.cum_prod"
        v = b.select(load_mask, v, b.full_like(v, 1 if prod else 0))
        y = b.scan(v, 1, "prod" if prod else "sum")
        if a["reverse"] and n > 1:
            idx[axis] = b.binary("sub", b.full_like(j, n - 1), j)
        em.known[anchor.results[0]] = known_tile(b, y, anchor.results[0])
        _store_outputs(b, em, args, idx, mask, dims)
        return
    # masked lanes are -inf, so the row maximum is that of the row's own values: a row that
    # is all -inf has maximum -inf and gives NaN (-inf - -inf), as onnxruntime, torch and the
    # ONNX reference do, whatever the row's length against the block (Softmax-13)
    x = b.select(mask, b.convert(em(anchor.operands[0], idx, mask), b.f32), NEG_INF)
    mx = b.expand(b.reduce(x, 1, "max"), 1)
    e = b.select(mask, b.unary("math.exp", b.binary("sub", x, mx)), 0.0)
    s = b.expand(b.binary("max", b.reduce(e, 1, "sum"), 1.0), 1)  # a live row sums to >= 1
    if anchor.name == "tnx.log_softmax":
        y = b.binary("sub", b.binary("sub", x, mx), b.unary("math.log", s))
    elif anchor.name == "tnx.hardmax":  # one-hot of the first maximum
        jj = b.broadcast(j, [bp, br])
        first = b.reduce(b.select(b.and_(mask, b.cmp("eq", x, mx)), jj, b.full_like(jj, br)), 1, "min")
        y = b.convert(b.cmp("eq", jj, b.expand(first, 1)), b.f32)
    else:
        y = b.binary("div", e, s)
    em.known[anchor.results[0]] = known_tile(b, y, anchor.results[0])
    _store_outputs(b, em, args, idx, mask, dims)


def _reduce_extreme(b, v, axis: int, kind: str):
    """The max or min of `v` along `axis`, NaN where a NaN is among the values, as ONNX's
    reference and torch give for ReduceMax/ReduceMin and the max pools (tl.max and tl.min
    skip NaN: maxnumf). The sum of the NaN lanes (0 elsewhere) is NaN exactly then."""
    m = b.reduce(v, axis, kind)
    if not is_float(elem(v)):
        return m
    nans = b.reduce(b.select(b.cmp("ne", v, v), v, b.full_like(v, 0.0)), axis, "sum")
    return b.select(b.cmp("ne", nans, nans), nans, m)


def _extreme(b, et, largest: bool):
    """+inf / -inf, or the integer type's bounds."""
    if is_float(et):
        return float("inf") if largest else NEG_INF
    w = ir.IntegerType(et).width
    if w == 1:  # bool: true is the largest
        return 1 if largest else 0
    return (2 ** (w - 1) - 1) if largest else -(2 ** (w - 1))


def _reduce_kernel(b, kernel, args, out_value, cfg, anchor):
    """ReduceX and ArgMax/ArgMin over `axes`: BLOCK_P output elements x BLOCK_R reduced
    elements per step of a loop over the reduced extent."""
    bp, br = cfg["BLOCK_P"], cfg["BLOCK_R"]
    x = anchor.operands[0]
    dims = shape_of(x)
    a = attrs_of(anchor)
    axes = a["axes"]
    kind = anchor.name[len("tnx."):]
    kept = [d for d in range(len(dims)) if d not in axes]
    kdims, rdims = [dims[d] for d in kept], [dims[d] for d in axes]
    n_out, n_red = math.prod(kdims), math.prod(rdims)
    et = compute_type(ir.RankedTensorType(x.type).element_type)
    if isinstance(et, ir.IntegerType) and et.width == 1:
        et = b.i32  # bools reduce as 0 / 1
    p = _block_start(b, 0, bp, bp)
    p_ok = b.cmp("lt", p, n_out)
    kidx = [b.expand(i, 1) if i is not None else None for i in delinearize(b, p, kdims)]
    p_ok2 = b.expand(p_ok, 1)

    def chunks(inits, body):
        if n_red == 0:  # an empty reduction: the neutral element
            return inits
        loop = b.for_range(0, n_red, br, inits)
        with ir.InsertionPoint(loop.body):
            r = b.expand(b.binary("add", b.splat(b.loop_index(loop.induction_variable), [br]), b.arange(br)), 0)
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
        big = 2 ** 30

        def step(it, v, valid, r):
            best, where_ = it
            cm = b.reduce(filled(v, valid, _extreme(b, et, not largest)), 1, "max" if largest else "min")
            hit = b.and_(valid, b.cmp("eq", v, b.expand(cm, 1)))
            rr = b.broadcast(r, [bp, br])
            ci = (b.reduce(b.select(hit, rr, b.full_like(rr, -1)), 1, "max") if last
                  else b.reduce(b.select(hit, rr, b.full_like(rr, big)), 1, "min"))
            pred = ("ge" if last else "gt") if largest else ("le" if last else "lt")
            better = b.cmp(pred, cm, best)
            return [b.select(better, cm, best), b.select(better, ci, where_)]
        _, result = chunks([b.const(_extreme(b, et, not largest), [bp], et), b.const(0, [bp], b.idx)], step)
    elif kind == "reduce_log_sum_exp":
        (m,) = chunks([b.const(NEG_INF, [bp], et)], lambda it, v, valid, r: [
            b.binary("max", it[0], b.reduce(filled(v, valid, NEG_INF), 1, "max"))])
        # shift by the row maximum unless it is infinite: -inf (an all -inf or empty row) gives
        # log(0) = -inf, +inf gives log(inf) = +inf; shifting by it would make inf - inf = NaN
        safe_m = b.select(b.cmp("eq", b.unary("math.absf", m), float("inf")), b.full_like(m, 0.0), m)
        mb = b.expand(safe_m, 1)
        (s,) = chunks([b.const(0.0, [bp], et)], lambda it, v, valid, r: [
            b.binary("add", it[0], b.reduce(filled(b.unary("math.exp", b.binary("sub", v, mb)), valid, 0.0), 1, "sum"))])
        result = b.binary("add", b.unary("math.log", s), safe_m)
    else:
        prologue = {"reduce_l1": lambda v: elementwise.OPS["tnx.abs"](b, [v], {}),
                    "reduce_l2": lambda v: b.binary("mul", v, v),
                    "reduce_sum_square": lambda v: b.binary("mul", v, v)}.get(kind, lambda v: v)
        combine, neutral = {"reduce_max": ("max", _extreme(b, et, False)), "reduce_min": ("min", _extreme(b, et, True)),
                            "reduce_prod": ("prod", 1)}.get(kind, ("sum", 0))
        merge = {"max": "max", "min": "min", "prod": "mul", "sum": "add"}[combine]
        def reduce_chunk(v):
            if combine in ("max", "min"):  # NaN wins, and maximumf / minimumf carry it on
                return _reduce_extreme(b, v, 1, combine)
            return b.reduce(v, 1, combine)
        (acc,) = chunks([b.const(neutral, [bp], et)], lambda it, v, valid, r: [
            b.binary(merge, it[0], reduce_chunk(filled(prologue(v), valid, neutral)))])
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
    _store_outputs(b, em, args, delinearize(b, p, out_dims), p_ok, out_dims)


def _norm_kernel(b, kernel, args, out_value, cfg, anchor):
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
    p = _block_start(b, 0, bp, bp)
    p_ok2 = b.expand(b.cmp("lt", p, n_out), 1)
    kidx = [b.expand(i, 1) if i is not None else None for i in delinearize(b, p, kdims)]

    def loop(inits, body):
        f = b.for_range(0, n_red, br, inits)
        with ir.InsertionPoint(f.body):
            r = b.expand(b.binary("add", b.splat(b.loop_index(f.induction_variable), [br]), b.arange(br)), 0)
            ridx, ki, ri = delinearize(b, r, rdims), iter(kidx), None
            ri = iter(ridx)
            idx = [next(ri) if d in axes else next(ki) for d in range(len(dims))]
            valid = b.broadcast(b.and_(p_ok2, b.cmp("lt", r, n_red)), [bp, br])
            em = Emitter(b, args, [bp, br])
            v = b.convert(em(x, idx, valid), b.f32)
            scf.YieldOp(body(f.inner_iter_args, v, valid, idx, em))
        return f.results

    zero = b.const(0.0, [bp], b.f32)
    (s,) = loop([zero], lambda it, v, valid, idx, em: [
        b.binary("add", it[0], b.reduce(b.select(valid, v, b.full_like(v, 0.0)), 1, "sum"))])
    mean = b.expand(b.binary("div", s, float(n_red)), 1)
    (ss,) = loop([zero], lambda it, v, valid, idx, em: [b.binary("add", it[0], b.reduce(
        b.select(valid, b.binary("mul", b.binary("sub", v, mean), b.binary("sub", v, mean)), b.full_like(v, 0.0)), 1, "sum"))])
    rstd = b.expand(b.unary("math.rsqrt", b.binary("add", b.binary("div", ss, float(n_red)), a["epsilon"])), 1)

    def write(it, v, valid, idx, em):
        em.known[anchor.results[0]] = known_tile(b, b.binary("mul", b.binary("sub", v, mean), rstd), anchor.results[0])
        _store_outputs(b, em, args, idx, valid, dims)
        return [it[0]]
    loop([zero], write)


def _top_k_kernel(b, kernel, args, out_value, cfg, anchor):
    """TopK-11: K rounds over a row held in one block, each taking the largest (or
    smallest) remaining element, the lowest index first among equals, and storing it."""
    bp, br = cfg["BLOCK_P"], cfg["BLOCK_R"]
    a = attrs_of(anchor)
    x = anchor.operands[0]
    dims, out_dims = shape_of(x), shape_of(anchor.results[0])
    axis, k = a["axis"], a["k"]
    n, inner = dims[axis], math.prod(dims[axis + 1:])
    rows = math.prod(dims) // n
    p = b.expand(_block_start(b, 0, bp, bp), 1)
    j = b.expand(b.arange(br), 0)
    outer_i = b.binary("div", p, inner) if inner > 1 else p
    inner_i = b.binary("mod", p, inner) if inner > 1 else None
    head = delinearize(b, outer_i, dims[:axis])
    tail = delinearize(b, inner_i, dims[axis + 1:]) if inner_i is not None else [None] * len(dims[axis + 1:])
    mask = b.broadcast(b.and_(b.cmp("lt", p, rows), b.cmp("lt", j, n)), [bp, br])
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


def _attention_kernel(b, kernel, args, out_value, cfg, anchor):
    """Flash attention: one program per BLOCK_M queries of one (batch, head); a loop over
    BLOCK_N keys computes the scores tile Q K^T, applies the fused pointwise ops (scale,
    masks) to it, and folds it into a running max, sum and P V accumulator (online
    softmax), so the score matrix never reaches memory."""
    bm, bn, bd = cfg["BLOCK_M"], cfg["BLOCK_N"], cfg["BLOCK_D"]
    m1, m2 = attention_ops(anchor)
    scores = shape_of(anchor.results[0])
    sq, sk = scores[-2], scores[-1]
    d, dv = shape_of(m1.operands[0])[-1], shape_of(m2.results[0])[-1]
    batch = delinearize(b, b.program_id(1), scores[:-2]) if scores[:-2] else []

    def batch_of(v):
        dims = shape_of(v)[:-2]
        lead = len(batch) - len(dims)
        return [None if n == 1 else batch[lead + j] for j, n in enumerate(dims)]

    rm = b.expand(_block_start(b, 0, bm, bm), 1)  # [BM, 1] query rows
    dcol = b.expand(b.arange(bd), 0)  # [1, BD]
    drow = b.expand(b.arange(bd), 1)  # [BD, 1]
    m_ok = b.cmp("lt", rm, sq)
    q_mask = b.and_(m_ok, b.cmp("lt", dcol, d))
    q = b.convert(Emitter(b, args, [bm, bd])(m1.operands[0], batch_of(m1.operands[0]) + [rm, dcol], q_mask), b.f32)
    q = b.select(b.broadcast(q_mask, [bm, bd]), b.broadcast(q, [bm, bd]), 0.0)
    inits = [b.const(LOWEST_F32, [bm], b.f32), b.const(0.0, [bm], b.f32), b.const(0.0, [bm, bd], b.f32)]
    loop = b.for_range(0, sk, bn, inits)
    with ir.InsertionPoint(loop.body):
        m_i, l_i, acc = loop.inner_iter_args
        start = b.splat(b.loop_index(loop.induction_variable), [bn])
        keys = b.binary("add", start, b.arange(bn))
        kn_row, kn_col = b.expand(keys, 0), b.expand(keys, 1)  # [1, BN], [BN, 1]
        k_mask = b.and_(b.cmp("lt", drow, d), b.cmp("lt", kn_row, sk))
        kt = b.convert(Emitter(b, args, [bd, bn])(m1.operands[1], batch_of(m1.operands[1]) + [drow, kn_row], k_mask), b.f32)
        kt = b.select(b.broadcast(k_mask, [bd, bn]), b.broadcast(kt, [bd, bn]), 0.0)
        dt, prec = dot_inputs(kernel)
        s = b.dot(dt(b, q), dt(b, kt), b.const(0.0, [bm, bn], b.f32), prec)
        valid = b.broadcast(b.and_(m_ok, b.cmp("lt", kn_row, sk)), [bm, bn])
        em = Emitter(b, args, [bm, bn])
        em.known[m1.results[0]] = known_tile(b, s, m1.results[0])
        idx = batch + [rm, kn_row]
        idx = [None if n == 1 else i for i, n in zip(idx, scores)]
        x = b.select(valid, b.convert(em(anchor.operands[0], idx, valid), b.f32), LOWEST_F32)
        m_new = b.binary("max", m_i, b.reduce(x, 1, "max"))
        p = b.select(valid, b.unary("math.exp", b.binary("sub", x, b.expand(m_new, 1))), 0.0)
        alpha = b.unary("math.exp", b.binary("sub", m_i, m_new))
        l_new = b.binary("add", b.binary("mul", l_i, alpha), b.reduce(p, 1, "sum"))
        v_mask = b.and_(b.cmp("lt", kn_col, sk), b.cmp("lt", dcol, dv))
        v = b.convert(Emitter(b, args, [bn, bd])(m2.operands[1], batch_of(m2.operands[1]) + [kn_col, dcol], v_mask), b.f32)
        v = b.select(b.broadcast(v_mask, [bn, bd]), b.broadcast(v, [bn, bd]), 0.0)
        acc = b.dot(dt(b, p), dt(b, v), b.binary("mul", acc, b.expand(alpha, 1)), prec)
        scf.YieldOp([m_new, l_new, acc])
    m_i, l_i, acc = loop.results
    out = b.binary("div", acc, b.expand(b.binary("max", l_i, 1e-30), 1))
    em = Emitter(b, args, [bm, bd])
    em.known[m2.results[0]] = known_tile(b, out, m2.results[0])
    out_dims = shape_of(m2.results[0])
    idx = [None if n == 1 else i for i, n in zip(batch + [rm, dcol], out_dims)]
    _store_outputs(b, em, args, idx, b.and_(m_ok, b.cmp("lt", dcol, dv)), out_dims)


TEMPLATES = {"conv": _dot_kernel, "conv_transpose": _dot_kernel, "gemm": _dot_kernel, "mat_mul": _dot_kernel,
             "pool": _pool_kernel, "softmax": _softmax_kernel, "reduce": _reduce_kernel, "norm": _norm_kernel,
             "top_k": _top_k_kernel, "attention": _attention_kernel}


def lower_kernel(kernel: ir.Operation) -> None:
    """Replaces the tnx-level kernel `kernel` by its tile-level form, in place."""
    kind = ir.StringAttr(kernel.attributes["tnx.kind"]).value
    cfg = {k: ir.IntegerAttr(kernel.attributes["tnx.block"][k]).value
           for k in ("BLOCK", "BLOCK_M", "BLOCK_N", "BLOCK_K", "BLOCK_P", "BLOCK_R", "BLOCK_D")
           if k in ir.DictAttr(kernel.attributes["tnx.block"])}
    old_block = kernel.regions[0].blocks[0]
    ftype = ir.FunctionType(ir.TypeAttr(kernel.attributes["function_type"]).value)
    ret = ops(old_block)[-1]
    outputs = list(ret.operands)
    out_value = outputs[0]  # the index space: later outputs share it or are windows of it
    anchor = anchor_of(kernel)
    sym = ir.StringAttr(kernel.attributes["sym_name"]).value
    checked = [op for op in ops(old_block) if "tnx.index_check" in op.attributes
               and ir.StringAttr(op.attributes["tnx.index_check"]).value == "check"]
    check_type = ir.RankedTensorType.get([2], ir.IntegerType.get_signless(64))
    with ir.InsertionPoint(kernel), kernel.location:
        new = func.FuncOp(sym, (list(ftype.inputs) + [check_type] * len(checked) + list(ftype.results), []),
                          visibility="private")
        for name in kernel.attributes:
            if name.startswith("tnx."):
                new.operation.attributes[name] = kernel.attributes[name]
        if checked:  # check buffers (index_maps.checked_index): after the inputs, before the outputs
            new.operation.attributes["tnx.checks"] = ir.ArrayAttr.get([_check_attr(op) for op in checked])
        if len(outputs) > 1:  # a multi-output kernel: its last arguments are its outputs
            new.operation.attributes["tnx.num_outputs"] = ir.IntegerAttr.get(ir.IntegerType.get_signless(64), len(outputs))
        block = new.add_entry_block()
    args = {old: arg for old, arg in zip(old_block.arguments, block.arguments)}
    n_in = len(ftype.inputs)
    args["checks"] = {op.results[0]: arg for op, arg in zip(checked, list(block.arguments)[n_in:])}
    args["outs"] = list(zip(outputs, list(block.arguments)[n_in + len(checked):]))
    args["out"] = args["outs"][-1][1]
    bits = index_bits(kernel)
    new.operation.attributes["tnx.index_bits"] = ir.IntegerAttr.get(ir.IntegerType.get_signless(64), bits)
    b = TileBuilder(index_bits=bits)
    with ir.InsertionPoint(block), kernel.location:
        if math.prod(shape_of(out_value)) == 0:
            pass  # an empty output: nothing to compute (the tile pass gave it an empty grid)
        elif kind == "pointwise":
            _pointwise(b, kernel, args, out_value, cfg)
        else:
            TEMPLATES[kind](b, kernel, args, out_value, cfg, anchor)
        func.ReturnOp([])
    kernel.erase()


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
    types = [a.type for a in block.arguments]
    for op in ops(block):
        types += [r.type for r in op.results]
    limit = INDEX_LIMIT - BLOCK_MARGIN
    symbolic_sizes = []
    for t in types:
        if not isinstance(t, ir.RankedTensorType):
            continue
        n = math.prod(symbolic.recognize_shape(ir.RankedTensorType(t).shape))
        if symbolic.is_symbolic(n):
            symbolic_sizes.append(n.expr)
            n = int(n.expr.subs({s: 1 for s in n.expr.free_symbols}))
        if n > limit:
            return 64
    for e in symbolic_sizes:
        symbolic.guard(f"{symbolic.to_python(e)} <= {limit}",
                       "int32 index arithmetic: every tensor of a kernel has fewer than 2**31 elements")
    return 32


def _check_attr(op: ir.Operation) -> ir.Attribute:
    """What the plan says of a check buffer: the node (of the kernel's first call site), op
    type, axis and the axis's size."""
    data = op.operands[0]
    axis = attrs_of(op)["axis"]
    return ir.DictAttr.get({"node": ir.StringAttr.get(node_name(op)), "op_type": ir.StringAttr.get(onnx_op_type(op.name)),
                            "axis": to_attr(axis), "size": to_attr(int(shape_of(data)[axis]))})


def _candidate_clones(kernel: ir.Operation) -> None:
    """Copies of a kernel, one per autotune candidate of the tile pass, each with that
    candidate's tiling and `tnx.candidate_of` naming the kernel."""
    sym = ir.StringAttr(kernel.attributes["sym_name"]).value
    for i, cand in enumerate(ir.ArrayAttr(kernel.attributes["tnx.candidates"])):
        clone = kernel.clone(ip=ir.InsertionPoint.after(kernel))
        op = clone.operation
        op.attributes["sym_name"] = ir.StringAttr.get(f"{sym}_candidate{i}")
        for named in ir.DictAttr(cand):
            op.attributes[named.name] = named.attr
        op.attributes["tnx.candidate_of"] = ir.StringAttr.get(sym)
        del op.attributes["tnx.candidates"]
    del kernel.attributes["tnx.candidates"]


def run(module: ir.Operation, pass_=None) -> None:
    for k in [f for f in functions(module) if "tnx.candidates" in f.attributes]:
        _candidate_clones(k)
    kernels = [f for f in functions(module) if "tnx.kind" in f.attributes]
    with symbolic.collect_guards() as guards:  # index_bits: bounds on dynamic sizes of int32 kernels
        for k in kernels:
            lower_kernel(k)
    if guards:  # beside the tile pass's, in the order found
        old = list(ir.ArrayAttr(module.attributes["tnx.guards"])) if "tnx.guards" in module.attributes else []
        have = {ir.StringAttr(g).value for g in old}
        new = [ir.StringAttr.get(t) for t in dict.fromkeys(f"{c}: {r}" for c, r in guards) if t not in have]
        module.attributes["tnx.guards"] = ir.ArrayAttr.get(old + new)
    by_symbol = {ir.StringAttr(f.attributes["sym_name"]).value: f for f in functions(module)}
    for fn in functions(module):
        if "tnx.kind" in fn.attributes:
            continue
        for op in ops(fn.regions[0].blocks[0]):
            if op.name != "func.call":
                continue
            with ir.InsertionPoint(op), op.location:
                checks = _check_buffers(op, by_symbol[ir.FlatSymbolRefAttr(op.attributes["callee"]).value])
                empty = [ir.Operation.create("bufferization.alloc_tensor", results=[r.type]).results[0]
                         for r in op.results]
                call = func.CallOp([], ir.FlatSymbolRefAttr(op.attributes["callee"]), list(op.operands) + checks + empty)
                for name in ("tnx.nodes", "tnx.notes"):
                    if name in op.attributes:
                        call.operation.attributes[name] = op.attributes[name]
            for r, e in zip(op.results, empty):
                r.replace_all_uses_with(e)
            op.erase()


def _check_buffers(call: ir.Operation, kernel: ir.Operation) -> list[ir.Value]:
    """One int64[2] `bufferization.alloc_tensor` per check of `kernel` at this call site,
    tagged `tnx.check` with the node of this site (`tnx.check_nodes`, set by outline)."""
    if "tnx.checks" not in kernel.attributes:
        return []
    sites = list(ir.ArrayAttr(call.attributes["tnx.check_nodes"])) if "tnx.check_nodes" in call.attributes else []
    out = []
    for i, check in enumerate(ir.ArrayAttr(kernel.attributes["tnx.checks"])):
        entry = {a.name: a.attr for a in ir.DictAttr(check)}
        if i < len(sites):
            entry["node"] = sites[i]
        alloc = ir.Operation.create("bufferization.alloc_tensor",
                                    results=[ir.RankedTensorType.get([2], ir.IntegerType.get_signless(64))],
                                    attributes={"tnx.check": ir.DictAttr.get(entry)})
        out.append(alloc.results[0])
    return out
