"""CumSum and CumProd (tile kind "softmax"): a 1-D grid of BLOCK_P rows, each row held whole
in a BLOCK_R block and scanned (tl.cumsum, tl.cumprod), or, for a static row longer than
BLOCK_R or a symbolic one, scanned in BLOCK_R chunks with the running total carried from
chunk to chunk.

CumSum-14: https://onnx.ai/onnx/operators/onnx__CumSum.html (CumProd-26 likewise)
"""

from __future__ import annotations

from tritonnx.dialects.builders import attrs_of, shape_of
from tritonnx.passes.index_maps import compute_type, elem_type_of, known_tile
from tritonnx.passes.lower_to_tile.common import fits_one_block, row_chunks, row_space, row_tiles
from tritonnx.passes.lower_to_tile.outputs import store_outputs

SCANS = ("tnx.cum_sum", "tnx.cum_prod")


def scan_kernel(b, kernel, args, out_value, cfg, anchor):
    """The inclusive, exclusive or reverse running sum or product along `axis`: element j
    of the scan (j counted from the end when `reverse`) combines the elements before it
    (`exclusive`) or up to it."""
    bp, br = cfg["BLOCK_P"], cfg["BLOCK_R"]
    dims = shape_of(anchor.results[0])
    a = attrs_of(anchor)
    n = dims[a["axis"]]
    prod = anchor.name == "tnx.cum_prod"
    neutral = 1 if prod else 0
    et = compute_type(elem_type_of(anchor.operands[0]))  # the scan's type, and its carry's

    def chunk(j, idx, mask, em, carry=None):
        """The scan of positions `j` (in scan order) after `carry` (the combined elements of
        the chunks before); the chunk's own total comes back too, for the next chunk."""
        src = idx[:]
        load_mask = mask
        step = b.binary("sub", j, 1) if a["exclusive"] else j  # exclusive: scan the row shifted by one
        if a["exclusive"]:
            load_mask = b.and_(mask, b.broadcast(b.cmp("ge", j, 1), [bp, br]))
        if n > 1:  # reverse: element j of the scan sits at n - 1 - j
            src[a["axis"]] = b.binary("sub", b.full_like(j, n - 1), step) if a["reverse"] else step
        v = b.convert(em(anchor.operands[0], src, load_mask), et)
        v = b.select(load_mask, v, b.full_like(v, neutral))
        y = b.scan(v, 1, "prod" if prod else "sum")
        total = None
        if carry is not None:
            y = b.binary("mul" if prod else "add", y, b.expand(carry, 1))
            total = b.binary("mul" if prod else "add", carry, b.reduce(v, 1, "prod" if prod else "sum"))
        out_idx = idx[:]
        if a["reverse"] and n > 1:
            out_idx[a["axis"]] = b.binary("sub", b.full_like(j, n - 1), j)
        em.known[anchor.results[0]] = known_tile(b, y, anchor.results[0])
        store_outputs(b, em, args, out_idx, mask, dims)
        return total

    if fits_one_block(cfg, anchor):
        j, idx, mask, em = row_tiles(b, args, cfg, anchor)
        chunk(j, idx, mask, em)
        return
    init = b.name(b.const(neutral, [bp], et), "carry")
    row_chunks(
        b,
        args,
        cfg,
        anchor,
        row_space(b, cfg, anchor),
        [init],
        lambda it, j, idx, mask, em: [chunk(j, idx, mask, em, it[0])],
    )
