"""The flat pointwise template: a 1-D grid, each program BLOCK consecutive elements of the
output's index space (delinearized), the whole group evaluated on them."""

from __future__ import annotations

import math

from tritonnx.dialects.builders import shape_of
from tritonnx.dialects.tile import delinearize
from tritonnx.passes.index_maps import Emitter
from tritonnx.passes.lower_to_tile.common import block_start
from tritonnx.passes.lower_to_tile.outputs import store_outputs


def pointwise_kernel(b, kernel, args, out_value, cfg, anchor):
    block = cfg["BLOCK"]
    dims = shape_of(out_value)
    offs = b.name(block_start(b, 0, block, block), "offs")
    mask = b.name(b.cmp("lt", offs, math.prod(dims)), "mask")
    em = Emitter(b, args, [block])
    idx = delinearize(b, offs, dims)
    store_outputs(b, em, args, idx, mask, dims)
