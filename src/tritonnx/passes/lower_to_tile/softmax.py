"""Softmax, LogSoftmax and Hardmax: a 1-D grid of BLOCK_P rows, each row held whole in a
BLOCK_R block (a kernel of this kind anchored on CumSum / CumProd is a scan: `scan.py`)."""

from __future__ import annotations

from tritonnx.dialects.builders import shape_of
from tritonnx.passes.index_maps import known_tile
from tritonnx.passes.lower_to_tile.common import NEG_INF, row_tiles
from tritonnx.passes.lower_to_tile.outputs import store_outputs
from tritonnx.passes.lower_to_tile.scan import SCANS, scan_kernel


def softmax_kernel(b, kernel, args, out_value, cfg, anchor):
    """The row's softmax, log-softmax or hardmax along `axis`, or its scan."""
    if anchor.name in SCANS:
        scan_kernel(b, kernel, args, out_value, cfg, anchor)
        return
    bp, br = cfg["BLOCK_P"], cfg["BLOCK_R"]
    dims = shape_of(anchor.results[0])
    j, idx, mask, em = row_tiles(b, args, cfg, anchor)
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
    store_outputs(b, em, args, idx, mask, dims)
