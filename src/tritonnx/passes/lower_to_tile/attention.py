"""Flash attention (MatMul, pointwise, Softmax, MatMul, marked by fuse): a program per
BLOCK_M queries of one (batch, head), a loop over BLOCK_N keys with BLOCK_D-wide Q, K and V tiles."""

from __future__ import annotations

from mlir import ir
from mlir.dialects import scf

from tritonnx.dialects.builders import shape_of
from tritonnx.dialects.tile import delinearize
from tritonnx.passes.index_maps import Emitter, known_tile
from tritonnx.passes.kernel_info import attention_ops
from tritonnx.passes.lower_to_tile.common import block_start, dot_inputs
from tritonnx.passes.lower_to_tile.outputs import store_outputs

LOWEST_F32 = -3.4028234663852886e38  # the online softmax's initial row maximum: finite, so it makes no NaN


def attention_kernel(b, kernel, args, out_value, cfg, anchor):
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

    rm = b.name(b.expand(block_start(b, 0, bm, bm), 1), "offs_m")  # [BM, 1] query rows
    dcol = b.name(b.expand(b.arange(bd), 0), "offs_d")  # [1, BD]
    drow = b.name(b.expand(b.arange(bd), 1), "offs_dt")  # [BD, 1]
    m_ok = b.name(b.cmp("lt", rm, sq), "mask_m")
    q_mask = b.name(b.and_(m_ok, b.cmp("lt", dcol, d)), "mask_q")
    q = b.convert(Emitter(b, args, [bm, bd])(m1.operands[0], batch_of(m1.operands[0]) + [rm, dcol], q_mask), b.f32)
    q = b.name(b.select(b.broadcast(q_mask, [bm, bd]), b.broadcast(q, [bm, bd]), 0.0), "q_tile")
    inits = [
        b.name(b.const(LOWEST_F32, [bm], b.f32), "m_i"),
        b.name(b.const(0.0, [bm], b.f32), "l_i"),
        b.name(b.const(0.0, [bm, bd], b.f32), "acc"),
    ]
    loop = b.for_range(0, sk, bn, inits)
    with ir.InsertionPoint(loop.body):
        m_i, l_i, acc = loop.inner_iter_args
        start = b.splat(b.loop_index(loop.induction_variable), [bn])
        keys = b.name(b.binary("add", start, b.arange(bn)), "offs_n")
        kn_row, kn_col = b.expand(keys, 0), b.expand(keys, 1)  # [1, BN], [BN, 1]
        k_mask = b.name(b.and_(b.cmp("lt", drow, d), b.cmp("lt", kn_row, sk)), "mask_k")
        kt = b.convert(
            Emitter(b, args, [bd, bn])(m1.operands[1], batch_of(m1.operands[1]) + [drow, kn_row], k_mask), b.f32
        )
        kt = b.name(b.select(b.broadcast(k_mask, [bd, bn]), b.broadcast(kt, [bd, bn]), 0.0), "k_tile")
        dt, prec = dot_inputs(kernel)
        s = b.name(b.dot(dt(b, q), dt(b, kt), b.const(0.0, [bm, bn], b.f32), prec), "qk")
        valid = b.name(b.broadcast(b.and_(m_ok, b.cmp("lt", kn_row, sk)), [bm, bn]), "mask_s")
        em = Emitter(b, args, [bm, bn])
        em.known[m1.results[0]] = known_tile(b, s, m1.results[0])
        idx = batch + [rm, kn_row]
        idx = [None if n == 1 else i for i, n in zip(idx, scores)]
        x = b.name(b.select(valid, b.convert(em(anchor.operands[0], idx, valid), b.f32), LOWEST_F32), "scores")
        m_new = b.name(b.binary("max", m_i, b.reduce(x, 1, "max")), "m_new")
        p = b.name(b.select(valid, b.unary("math.exp", b.binary("sub", x, b.expand(m_new, 1))), 0.0), "p")
        alpha = b.name(b.unary("math.exp", b.binary("sub", m_i, m_new)), "alpha")
        l_new = b.binary("add", b.binary("mul", l_i, alpha), b.reduce(p, 1, "sum"))
        v_mask = b.name(b.and_(b.cmp("lt", kn_col, sk), b.cmp("lt", dcol, dv)), "mask_v")
        v = b.convert(
            Emitter(b, args, [bn, bd])(m2.operands[1], batch_of(m2.operands[1]) + [kn_col, dcol], v_mask), b.f32
        )
        v = b.name(b.select(b.broadcast(v_mask, [bn, bd]), b.broadcast(v, [bn, bd]), 0.0), "v_tile")
        acc = b.dot(dt(b, p), dt(b, v), b.binary("mul", acc, b.expand(alpha, 1)), prec)
        scf.YieldOp([m_new, l_new, acc])
    m_i, l_i, acc = loop.results
    out = b.binary("div", acc, b.expand(b.binary("max", l_i, 1e-30), 1))
    em = Emitter(b, args, [bm, bd])
    em.known[m2.results[0]] = known_tile(b, out, m2.results[0])
    out_dims = shape_of(m2.results[0])
    idx = [None if n == 1 else i for i, n in zip(batch + [rm, dcol], out_dims)]
    store_outputs(b, em, args, idx, b.and_(m_ok, b.cmp("lt", dcol, dv)), out_dims)
