"""The pass pipeline, top to bottom. The list is the documentation of the compiler: each
entry is (dump name, pass). A name with a `:` prefix of `mlir` runs upstream MLIR passes."""
from __future__ import annotations

import functools

from tritonnx.passes import (autocast, canonicalize, lower_to_tile, lower_to_triton, match_attention, merge_siblings,
                             multi_output, outline, partition, split_k, tile, verify)


def stages(target: str = "interpreter", precision: str = "fp32", check_indices: bool = True) -> list[tuple[str, object]]:
    """[(name, pass)] in order; a pass is a Python callable or an upstream pipeline string."""
    return [
        (verify.NAME, verify.run),               # operand shapes, dtypes, attributes per the ONNX spec
        (canonicalize.NAME, canonicalize.run),   # Identity/Dropout away, fold shape subgraphs and BN
        (autocast.NAME, functools.partial(autocast.run, precision=precision)),  # fp32 / tf32 / fp16 / bf16
        (split_k.NAME, functools.partial(split_k.run, target=target)),  # GPU: few output blocks, long K -> partials + sum
        (merge_siblings.NAME, merge_siblings.run),  # Q/K/V MatMuls, Inception's 1x1 Convs: one op over concatenated weights
        (match_attention.NAME, match_attention.run),  # MatMul, score ops, Softmax, MatMul marked as flash attention
        (partition.NAME, partition.run),  # fusion groups: anchors + prologues + epilogues, pointwise chains; views as index maps
        (multi_output.NAME, multi_output.run),  # a lone pointwise group becomes a second output of its input's kernel
        (outline.NAME, functools.partial(outline.run, check_indices=check_indices)),  # one private func per group, @main calls them; data-index checks marked
        (tile.NAME, functools.partial(tile.run, target=target)),  # block sizes, grid, warps, stages
        (lower_to_tile.NAME, lower_to_tile.run),  # kernel bodies in tile + arith + scf
        ("canonicalize,cse", "canonicalize,cse"),  # upstream cleanups on the arith index math
        (lower_to_triton.NAME, lower_to_triton.run),  # print @triton.jit sources
    ]
