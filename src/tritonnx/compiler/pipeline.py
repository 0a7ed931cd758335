"""The pass pipeline, top to bottom. The list is the documentation of the compiler: each
entry is (dump name, pass). A name with a `:` prefix of `mlir` runs upstream MLIR passes.
Passes take no options of their own: they read the compile options
(`tritonnx.compiler.options.CompileOptions`) from `tritonnx.passes.current_session()`."""
from __future__ import annotations

import sys

from tritonnx.passes import autocast, canonicalize, fuse, lower_to_tile, lower_to_triton, outline, tile, verify


def stages() -> list[tuple[str, object]]:
    """[(name, pass)] in order; a pass is a Python callable or an upstream pipeline string."""
    return [
        (verify.NAME, verify.run),               # operand shapes, dtypes, attributes per the ONNX spec
        (canonicalize.NAME, canonicalize.run),   # Identity/Dropout away, fold shape subgraphs and BN
        (autocast.NAME, autocast.run),           # fp32 / tf32 / fp16 / bf16 (options.precision)
        (fuse.NAME, fuse.run),                   # fusion groups: anchors + epilogues; views as index maps
        (outline.NAME, outline.run),             # one private func per group, @main calls them; data-index checks marked
        (tile.NAME, tile.run),                   # block sizes, grid, warps, stages for options.gpu (or the interpreter)
        (lower_to_tile.NAME, lower_to_tile.run),  # kernel bodies in tile + arith + scf
        ("canonicalize,cse", "canonicalize,cse"),  # upstream cleanups on the arith index math
        (lower_to_triton.NAME, lower_to_triton.run),  # print @triton.jit sources
    ]


def registry() -> dict:
    """`{pass name: (run function, one-line description)}` for every tritonnx pass of the
    pipeline (the description is the first line of its module's docstring)."""
    return {name: (run, sys.modules[run.__module__].__doc__.strip().splitlines()[0])
            for name, run in stages() if callable(run)}
