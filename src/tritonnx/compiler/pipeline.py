"""The pass pipeline, top to bottom. The list is the documentation of the compiler: each
entry is (dump name, pass). A name with a `:` prefix of `mlir` runs upstream MLIR passes.
Passes take no options of their own: they read the compile options
(`tritonnx.compiler.options.CompileOptions`) from `tritonnx.passes.current_session()`."""

from __future__ import annotations

import sys
from collections.abc import Callable

from tritonnx.passes import (
    autocast,
    canonicalize,
    choose_blocks,
    lower_to_tile,
    lower_to_triton,
    match_attention,
    merge_siblings,
    multi_output,
    outline,
    partition,
    split_k,
    verify,
)


def stages() -> list[tuple[str, object]]:
    """[(name, pass)] in order; a pass is a Python callable or an upstream pipeline string."""
    return [
        (verify.NAME, verify.run),  # operand shapes, dtypes, attributes per the ONNX spec
        (canonicalize.NAME, canonicalize.run),  # Identity/Dropout away, fold shape subgraphs and BN
        (autocast.NAME, autocast.run),  # fp32 / tf32 / fp16 / bf16 (options.precision)
        (split_k.NAME, split_k.run),  # GPU: few output blocks, long K -> partials + sum
        (
            merge_siblings.NAME,
            merge_siblings.run,
        ),  # Q/K/V MatMuls, Inception's 1x1 Convs: one op over concatenated weights
        (match_attention.NAME, match_attention.run),  # MatMul, score ops, Softmax, MatMul marked as flash attention
        (
            partition.NAME,
            partition.run,
        ),  # fusion groups: anchors + prologues + epilogues, pointwise chains; views as index maps
        (multi_output.NAME, multi_output.run),  # a lone pointwise group becomes a second output of its input's kernel
        (outline.NAME, outline.run),  # one private func per group, @main calls them; data-index checks marked
        (
            choose_blocks.NAME,
            choose_blocks.run,
        ),  # block sizes, grid, warps, stages for options.gpu (or the interpreter)
        (lower_to_tile.NAME, lower_to_tile.run),  # kernel bodies in tile + arith + scf
        ("canonicalize,cse", "canonicalize,cse"),  # upstream cleanups on the arith index math
        (lower_to_triton.NAME, lower_to_triton.run),  # print @triton.jit sources
    ]


FUSION_PASSES = (split_k, merge_siblings, match_attention, partition, multi_output)


def fuse(module, pass_=None) -> None:
    """fuse: the fusion passes in order (split-k, merge-siblings, match-attention, partition, multi-output)."""
    for p in FUSION_PASSES:
        p.run(module, pass_)


def _doc(obj: object) -> str:
    """`obj`'s docstring; every pass module and `fuse` has one."""
    doc = obj.__doc__
    assert doc is not None, f"{obj!r} has no docstring"
    return doc


def registry() -> dict[str, tuple[Callable[..., object], str]]:
    """`{pass name: (run function, one-line description)}` for every tritonnx pass of the
    pipeline (the description is the first line of its module's docstring, less its
    leading `name: `), and `fuse`,
    tritonnx-opt's shorthand for the five fusion passes in order."""
    passes: dict[str, tuple[Callable[..., object], str]] = {
        name: (run, _doc(sys.modules[run.__module__]).strip().splitlines()[0].removeprefix(f"{name}: "))
        for name, run in stages()
        if callable(run)
    }
    passes["fuse"] = (fuse, _doc(fuse).split(": ", 1)[1])
    return passes
