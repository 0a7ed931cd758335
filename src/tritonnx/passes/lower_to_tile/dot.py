"""Implicit-GEMM Conv / ConvTranspose, Gemm and batched MatMul: a program per BLOCK_M x
BLOCK_N output tile (program_id(2): the group or the batch), a loop over K in BLOCK_K steps
accumulating tl.dot, then the bias or C and the epilogue."""

from __future__ import annotations

import math

from mlir import ir
from mlir.dialects import scf

from tritonnx.dialects.builders import attrs_of, operand, shape_of
from tritonnx.dialects.tile import delinearize, shape
from tritonnx.passes.index_maps import Emitter, known_tile
from tritonnx.passes.kernel_info import gemm_dims
from tritonnx.passes.lower_to_tile.common import always_inside, block_start, dot_inputs
from tritonnx.passes.lower_to_tile.outputs import store_outputs
from tritonnx.passes.naming import size_text


def _spatial(n: int) -> list[str]:
    """Letters of n spatial dimensions in names: w; h, w; d, h, w; then 1, 2, ..."""
    return ["d", "h", "w"][3 - n :] if n <= 3 else [str(i) for i in range(n)]


def gemm_view(kind: str, anchor: ir.Operation) -> str:
    """The GEMM a dot kernel computes, for its header: `implicit GEMM: M = 169 output
    pixels, N = 256 output channels, K = 576 = 64 channels x 3 x 3 taps`. A dynamic size
    is written as its expression (`M = 16*batch`)."""
    m, n, k, groups = (size_text(v) for v in gemm_dims(kind, anchor))
    if kind in ("conv", "conv_transpose"):
        out = shape_of(anchor.results[0])
        ks = attrs_of(anchor)["kernel_shape"]
        per_group = f" per group ({groups} groups)" if groups != "1" else ""
        channels = size_text(gemm_dims(kind, anchor)[2] // max(1, math.prod(ks)))
        return (
            f"implicit GEMM: M = {m} output pixels, N = {n} output channels{per_group}, "
            f"K = {k} = {channels} channels x {' x '.join(map(str, ks))} taps"
            f" (output {'x'.join(size_text(d) for d in out)})"
        )
    if kind == "mat_mul" and groups != "1":
        return f"batched GEMM: {groups} x (M = {m}, N = {n}, K = {k})"
    return f"GEMM: M = {m}, N = {n}, K = {k}"


def dot_kernel(b, kernel, args, out_value, cfg, anchor):
    kind = ir.StringAttr(kernel.attributes["tnx.kind"]).value
    bm, bn, bk = cfg["BLOCK_M"], cfg["BLOCK_N"], cfg["BLOCK_K"]
    m_size, n_size, k_size, groups = gemm_dims(kind, anchor)
    rm = b.name(b.expand(block_start(b, 0, bm, bm), 1), "offs_m")  # [BM, 1]
    rn = b.name(b.expand(block_start(b, 1, bn, bn), 0), "offs_n")  # [1, BN]
    m_ok, n_ok = b.name(b.cmp("lt", rm, m_size), "mask_m"), b.name(b.cmp("lt", rn, n_size), "mask_n")
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
        g = b.name(b.program_id(2), "group") if groups > 1 else None
        m_idx = delinearize(b, rm, [out_dims[0]] + out_dims[2:])  # nb, o_1..o_d: [BM, 1] each
        letters = _spatial(spatial)
        for i, name in zip(m_idx, ["nb"] + [f"o{c}" for c in letters]):
            if i is not None:
                b.name(i, name)
        nb, outs = m_idx[0], [o if o is not None else b.const(0, [int(bm), 1], b.idx) for o in m_idx[1:]]
        co = b.name(b.binary("add", rn, b.binary("mul", b.splat(g, [1, bn]), n_size)), "co") if groups > 1 else rn
    batch, a_batch, b_batch = [], [], []
    if kind == "mat_mul":  # batch dims broadcast NumPy-style; program_id(2) walks the output's
        out_dims = shape_of(anchor.results[0])
        batch = delinearize(b, b.program_id(2), out_dims[:-2]) if groups > 1 else [None] * (len(out_dims) - 2)

        def batch_of(v):
            dims = shape_of(v)[:-2]
            lead = len(batch) - len(dims)
            return [None if d == 1 else batch[lead + j] for j, d in enumerate(dims)]

        a_batch, b_batch = batch_of(x), batch_of(w)
    acc0 = b.name(b.const(0.0, [bm, bn], b.f32), "acc")
    loop = b.for_range(0, k_size, bk, [acc0])
    with ir.InsertionPoint(loop.body):
        k0 = b.splat(b.loop_index(loop.induction_variable), [bk])
        rk = b.name(b.binary("add", k0, b.arange(bk)), "offs_k")
        ka, kb = b.name(b.expand(rk, 0), "k_a"), b.name(b.expand(rk, 1), "k_b")  # [1, BK], [BK, 1]
        a_mask = b.name(b.and_(m_ok, b.cmp("lt", ka, k_size)), "mask_a")
        b_mask = b.name(b.and_(b.cmp("lt", kb, k_size), n_ok), "mask_b")
        ea, eb = Emitter(b, args, [bm, bk]), Emitter(b, args, [bk, bn])
        if kind in ("conv", "conv_transpose"):
            k_idx = delinearize(b, ka, [cg] + ks)  # ci, k_1..k_d: [1, BK] each
            for i, name in zip(k_idx, ["ci"] + [f"k{c}" for c in letters]):
                if i is not None:
                    b.name(i, name)
            ci = k_idx[0] if k_idx[0] is not None else b.const(0, [1, int(bk)], b.idx)
            taps = [k if k is not None else b.const(0, [1, int(bk)], b.idx) for k in k_idx[1:]]
            src, inside = [], []
            for o, k, s, d, pad, n, c, o_size, k_size_d in zip(
                outs, taps, strides, dils, pads, x_dims[2:], letters, out_dims[2:], ks
            ):
                if kind == "conv":  # input position o * stride - pad + k * dilation
                    i = b.binary("add", b.binary("sub", b.binary("mul", o, s), pad), b.binary("mul", k, d))
                    if not always_inside(pad, o_size, k_size_d, s, d, n):
                        inside += [b.cmp("ge", i, 0), b.cmp("lt", i, n)]
                else:  # the output o takes input i where i * stride = o + pad - k * dilation
                    t_ = b.binary("sub", b.binary("add", o, pad), b.binary("mul", k, d))
                    t0 = b.binary("max", t_, 0)
                    i = b.binary("div", t0, s)
                    inside += [b.cmp("ge", t_, 0), b.cmp("eq", b.binary("mod", t0, s), 0), b.cmp("lt", i, n)]
                src.append(b.name(i, f"i{c}") if n > 1 else None)
            if groups > 1:
                ci = b.binary("add", ci, b.binary("mul", b.splat(g, [1, bk]), cg))
            a_valid = b.name(b.and_(a_mask, *inside), "mask_x") if inside else a_mask
            a_tile = ea(x, [nb, ci if c_in > 1 else None] + src, a_valid)
            kb_idx = delinearize(b, kb, [cg] + ks)  # [BK, 1] each
            if kind == "conv":
                w_idx = [co] + kb_idx
            else:  # W is [C_in, C_out / group, k...]
                ci_b = kb_idx[0] if kb_idx[0] is not None else b.const(0, [int(bk), 1], b.idx)
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
    out_mask = b.name(b.and_(m_ok, n_ok), "mask")
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
    store_outputs(b, em, args, idx, out_mask, shape_of(anchor.results[0]))
