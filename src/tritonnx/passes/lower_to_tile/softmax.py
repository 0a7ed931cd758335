"""Softmax, LogSoftmax and Hardmax: a 1-D grid of BLOCK_P rows. A static row of at most
BLOCK_R elements is held whole in one block and read once; a longer or symbolic row (an
LLM's 50k-256k vocabulary) is read in chunks of BLOCK_R: a first loop keeps the running
maximum and the sum rescaled to it (online softmax), a second loop writes the outputs. A
kernel of this kind anchored on CumSum / CumProd is a scan: `scan.py`.

Softmax-13, LogSoftmax-13, Hardmax-13: https://onnx.ai/onnx/operators/onnx__Softmax.html
"""

from __future__ import annotations

from tritonnx.dialects.builders import shape_of
from tritonnx.passes.index_maps import known_tile
from tritonnx.passes.lower_to_tile.common import NEG_INF, fits_one_block, row_chunks, row_space, row_tiles
from tritonnx.passes.lower_to_tile.outputs import store_outputs
from tritonnx.passes.lower_to_tile.scan import SCANS, scan_kernel


def softmax_kernel(b, kernel, args, out_value, cfg, anchor):
    """The row's softmax, log-softmax or hardmax along `axis`, or its scan: in one block
    when the row fits one (`fits_one_block`), else in two loops over its chunks."""
    if anchor.name in SCANS:
        scan_kernel(b, kernel, args, out_value, cfg, anchor)
    elif not fits_one_block(cfg, anchor):
        (_hardmax_looped if anchor.name == "tnx.hardmax" else _softmax_looped)(b, args, cfg, anchor)
    else:
        _one_block(b, args, cfg, anchor)


def _row(b, em, anchor, idx, mask):
    """The row's values as f32, -inf in masked lanes: the row maximum is then that of the
    row's own values, and a row that is all -inf has maximum -inf and gives NaN (-inf - -inf),
    as onnxruntime, torch and the ONNX reference do, whatever the row's length against the
    block (Softmax-13)."""
    return b.select(mask, b.convert(em(anchor.operands[0], idx, mask), b.f32), NEG_INF)


def _one_block(b, args, cfg, anchor):
    bp, br = cfg["BLOCK_P"], cfg["BLOCK_R"]
    dims = shape_of(anchor.results[0])
    j, idx, mask, em = row_tiles(b, args, cfg, anchor)
    x = _row(b, em, anchor, idx, mask)
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
    store_outputs(b, em, args, idx, mask, dims)


def _softmax_looped(b, args, cfg, anchor):
    """Softmax / LogSoftmax of a row read in BLOCK_R chunks. The first loop keeps, per row,
    the running maximum m and the sum l of exp(x - m) over the chunks so far: with a chunk's
    maximum m' = max(m, max(chunk)), l becomes l * exp(m - m') + sum(exp(chunk - m')). The
    second loop writes exp(x - m) / l (Softmax) or x - m - log(l) (LogSoftmax).

    While every value so far is -inf (m' = -inf), the chunk is shifted by 0 instead of m',
    so exp(-inf - 0) = 0 adds nothing and exp(m - 0) = 0 clears the empty sum: a row whose
    first chunks are all -inf is exact, and a row that is all -inf gives NaN (m = -inf in
    the second loop), as the one-block form does."""
    bp = cfg["BLOCK_P"]
    dims = shape_of(anchor.results[0])
    rows = row_space(b, cfg, anchor)

    def online(it, j, idx, mask, em):
        m, total = it
        x = _row(b, em, anchor, idx, mask)
        m_new = b.name(b.binary("max", m, b.reduce(x, 1, "max")), "m_new")
        shift = b.name(b.select(b.cmp("eq", m_new, NEG_INF), 0.0, m_new), "shift")
        alpha = b.name(b.unary("math.exp", b.binary("sub", m, shift)), "alpha")  # rescales the old sum
        p = b.unary("math.exp", b.binary("sub", x, b.expand(shift, 1)))  # masked lanes: exp(-inf) = 0
        return [m_new, b.binary("add", b.binary("mul", total, alpha), b.reduce(p, 1, "sum"))]

    m, total = row_chunks(
        b,
        args,
        cfg,
        anchor,
        rows,
        [b.name(b.const(NEG_INF, [bp], b.f32), "m_i"), b.name(b.const(0.0, [bp], b.f32), "l_i")],
        online,
    )
    m = b.name(b.expand(m, 1), "row_max")
    s = b.name(b.expand(b.binary("max", total, 1.0), 1), "row_sum")  # a live row sums to >= 1
    log = anchor.name == "tnx.log_softmax"
    log_s = b.name(b.unary("math.log", s), "log_sum") if log else None

    def write(it, j, idx, mask, em):
        x = _row(b, em, anchor, idx, mask)
        if log:
            y = b.binary("sub", b.binary("sub", x, m), log_s)
        else:
            y = b.binary("div", b.unary("math.exp", b.binary("sub", x, m)), s)
        em.known[anchor.results[0]] = known_tile(b, y, anchor.results[0])
        store_outputs(b, em, args, idx, mask, dims)
        return []

    row_chunks(b, args, cfg, anchor, rows, [], write)


def _hardmax_looped(b, args, cfg, anchor):
    """Hardmax of a row read in BLOCK_R chunks: the first loop keeps the running maximum
    and the position of its first occurrence (a later chunk takes over only with a larger
    value), the second writes the one-hot of that position."""
    bp, br = cfg["BLOCK_P"], cfg["BLOCK_R"]
    dims = shape_of(anchor.results[0])
    rows = row_space(b, cfg, anchor)

    def find(it, j, idx, mask, em):
        m, first = it
        x = _row(b, em, anchor, idx, mask)
        cm = b.reduce(x, 1, "max")
        jj = b.broadcast(j, [bp, br])
        hit = b.and_(mask, b.cmp("eq", x, b.expand(cm, 1)))
        ci = b.reduce(b.select(hit, jj, b.full_like(jj, 2**30)), 1, "min")
        better = b.cmp("gt", cm, m)
        return [b.select(better, cm, m), b.select(better, ci, first)]

    _, first = row_chunks(
        b,
        args,
        cfg,
        anchor,
        rows,
        [b.name(b.const(NEG_INF, [bp], b.f32), "m_i"), b.name(b.const(0, [bp], b.idx), "first")],
        find,
    )
    first = b.expand(first, 1)

    def write(it, j, idx, mask, em):
        y = b.convert(b.cmp("eq", b.broadcast(j, [bp, br]), first), b.f32)
        em.known[anchor.results[0]] = known_tile(b, y, anchor.results[0])
        store_outputs(b, em, args, idx, mask, dims)
        return []

    row_chunks(b, args, cfg, anchor, rows, [], write)
