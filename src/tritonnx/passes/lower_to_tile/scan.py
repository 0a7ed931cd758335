"""CumSum and CumProd (tile kind "softmax"): a 1-D grid of BLOCK_P rows, each row held whole
in a BLOCK_R block and scanned (tl.cumsum, tl.cumprod)."""

from __future__ import annotations

from tritonnx.dialects.builders import attrs_of, shape_of
from tritonnx.passes.index_maps import known_tile
from tritonnx.passes.lower_to_tile.common import row_tiles
from tritonnx.passes.lower_to_tile.outputs import store_outputs

SCANS = ("tnx.cum_sum", "tnx.cum_prod")


def scan_kernel(b, kernel, args, out_value, cfg, anchor):
    """The inclusive, exclusive or reverse running sum or product along `axis`."""
    bp, br = cfg["BLOCK_P"], cfg["BLOCK_R"]
    dims = shape_of(anchor.results[0])
    axis = attrs_of(anchor)["axis"]
    n = dims[axis]
    j, idx, mask, em = row_tiles(b, args, cfg, anchor)
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
    store_outputs(b, em, args, idx, mask, dims)
