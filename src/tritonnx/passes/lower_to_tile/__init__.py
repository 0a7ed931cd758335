"""lower-to-tile: rewrites each outlined kernel into tile IR, the body of one Triton program.

The kernel's anchor picks a template (implicit-GEMM conv, gemm and batched matmul, pool
window, reduction, normalization, softmax row, scan, top-k, or a flat pointwise loop).
Everything else in the group is evaluated by `index_maps.Emitter` on the template's tiles
of indices: views are index maps on loads, elementwise ops apply to tiles. Kernels become
destination-passing: `@kernel_N(inputs..., outputs...)` (a multi-output kernel, formed by
the fuse pass, stores several; `tnx.num_outputs` counts them); in @main each call gets its
outputs from `tnx.empty` (allocations, so cse keeps them apart).
A kernel with checked data indices (`tnx.index_check`, set by outline) also takes one
int64[2] check buffer per checked op, between its inputs and outputs (`tnx.checks`
describes them); each call gets them as allocations tagged `tnx.check`.
Index arithmetic is int32, or int64 in a kernel with a tensor of 2^31 elements or more
(`index_bits`, recorded as `tnx.index_bits`; dynamic sizes get run-time guards).

One module per job: a module per template (`dot`, `pool`, `reduce`, `norm`, `softmax`,
`scan`, `top_k`, `recurrence`, `attention`, `pointwise`), `outputs` (storing outputs, multi-output
windows), `index_width`, `destination` (@main's calls and the check buffers) and `common`.
"""

from __future__ import annotations

import math

from mlir import ir
from mlir.dialects import func

from tritonnx import symbolic
from tritonnx.dialects.builders import shape_of
from tritonnx.dialects.tile import Block, TileBuilder
from tritonnx.passes import functions, ops
from tritonnx.passes.index_maps import SCATTER_METHOD, SCATTERS
from tritonnx.passes.kernel_info import anchor_of
from tritonnx.passes.lower_to_tile.arguments import argument_names, attention_roles
from tritonnx.passes.lower_to_tile.attention import attention_kernel
from tritonnx.passes.lower_to_tile.destination import check_attr, rewrite_calls
from tritonnx.passes.lower_to_tile.dot import dot_kernel, gemm_view
from tritonnx.passes.lower_to_tile.index_width import index_bits
from tritonnx.passes.lower_to_tile.norm import norm_kernel
from tritonnx.passes.lower_to_tile.pointwise import pointwise_kernel
from tritonnx.passes.lower_to_tile.pool import pool_kernel
from tritonnx.passes.lower_to_tile.recurrence import recurrence_kernel
from tritonnx.passes.lower_to_tile.reduce import reduce_kernel
from tritonnx.passes.lower_to_tile.softmax import softmax_kernel
from tritonnx.passes.lower_to_tile.top_k import top_k_kernel

__all__ = ["NAME", "TEMPLATES", "index_bits", "lower_kernel", "run"]

NAME = "lower-to-tile"

# tnx.kind -> template: (TileBuilder, kernel, args, out_value, cfg, anchor) -> None, which
# writes the program's body at the insertion point
TEMPLATES = {
    "conv": dot_kernel,
    "conv_transpose": dot_kernel,
    "gemm": dot_kernel,
    "mat_mul": dot_kernel,
    "pool": pool_kernel,
    "softmax": softmax_kernel,
    "reduce": reduce_kernel,
    "norm": norm_kernel,
    "top_k": top_k_kernel,
    "recurrence": recurrence_kernel,
    "attention": attention_kernel,
    "pointwise": pointwise_kernel,
}


def lower_kernel(kernel: ir.Operation) -> None:
    """Replaces the tnx-level kernel `kernel` by its tile-level form, in place."""
    kind = ir.StringAttr(kernel.attributes["tnx.kind"]).value
    cfg = {
        k: Block(ir.IntegerAttr(kernel.attributes["tnx.block"][k]).value, k)
        for k in ("BLOCK", "BLOCK_M", "BLOCK_N", "BLOCK_K", "BLOCK_P", "BLOCK_R", "BLOCK_D")
        if k in ir.DictAttr(kernel.attributes["tnx.block"])
    }
    old_block = kernel.regions[0].blocks[0]
    ftype = ir.FunctionType(ir.TypeAttr(kernel.attributes["function_type"]).value)
    ret = ops(old_block)[-1]
    outputs = list(ret.operands)
    out_value = outputs[0]  # the index space: later outputs share it or are windows of it
    anchor = anchor_of(kernel)
    sym = ir.StringAttr(kernel.attributes["sym_name"]).value
    checked = [
        op
        for op in ops(old_block)
        if "tnx.index_check" in op.attributes and ir.StringAttr(op.attributes["tnx.index_check"]).value == "check"
    ]
    check_type = ir.RankedTensorType.get([2], ir.IntegerType.get_signless(64))
    with ir.InsertionPoint(kernel), kernel.location:
        new = func.FuncOp(
            sym, (list(ftype.inputs) + [check_type] * len(checked) + list(ftype.results), []), visibility="private"
        )
        for name in kernel.attributes:
            if name.startswith("tnx."):
                new.operation.attributes[name] = kernel.attributes[name]
        if checked:  # check buffers (index_maps.checked_index): after the inputs, before the outputs
            new.operation.attributes["tnx.checks"] = ir.ArrayAttr.get([check_attr(op) for op in checked])
        if len(outputs) > 1:  # a multi-output kernel: its last arguments are its outputs
            new.operation.attributes["tnx.num_outputs"] = ir.IntegerAttr.get(
                ir.IntegerType.get_signless(64), len(outputs)
            )
        if kind in ("conv", "conv_transpose", "gemm", "mat_mul"):
            new.operation.attributes["tnx.gemm_view"] = ir.StringAttr.get(gemm_view(kind, anchor))
        if any(op.name in SCATTERS for op in ops(old_block)):  # said in the source's header
            new.operation.attributes["tnx.method"] = ir.StringAttr.get(SCATTER_METHOD)
        roles = attention_roles(anchor) if kind == "attention" else None
        names = argument_names(old_block, anchor, len(checked), len(outputs), roles)
        block = new.add_entry_block(arg_locs=[ir.Location.name(n, childLoc=kernel.location) for n in names])
    args = {old: arg for old, arg in zip(old_block.arguments, block.arguments)}
    n_in = len(ftype.inputs)
    args["checks"] = {op.results[0]: arg for op, arg in zip(checked, list(block.arguments)[n_in:])}
    args["outs"] = list(zip(outputs, list(block.arguments)[n_in + len(checked) :]))
    args["out"] = args["outs"][-1][1]
    bits = index_bits(kernel)
    new.operation.attributes["tnx.index_bits"] = ir.IntegerAttr.get(ir.IntegerType.get_signless(64), bits)
    b = TileBuilder(index_bits=bits)
    # the body's ops: at the kernel's nodes, fused (so no node name reads as a variable name)
    body_loc = ir.Location.fused([kernel.location], metadata=ir.StringAttr.get("tile"))
    with ir.InsertionPoint(block), body_loc:
        if math.prod(shape_of(out_value)) == 0:
            pass  # an empty output: nothing to compute (choose-blocks gave it an empty grid)
        else:
            TEMPLATES[kind](b, kernel, args, out_value, cfg, anchor)
        func.ReturnOp([])
    kernel.erase()


def _candidate_clones(kernel: ir.Operation) -> None:
    """Copies of a kernel, one per autotune candidate of choose-blocks, each with that
    candidate's tiling and `tnx.candidate_of` naming the kernel. lower-to-triton prints
    them, keeps each that prints to the kernel's own source as one of its configs
    (`tnx.configs`) and erases them all."""
    sym = ir.StringAttr(kernel.attributes["sym_name"]).value
    for i, cand in enumerate(ir.ArrayAttr(kernel.attributes["tnx.candidates"])):
        clone = kernel.clone(ip=ir.InsertionPoint.after(kernel))
        op = clone.operation
        op.attributes["sym_name"] = ir.StringAttr.get(f"{sym}_candidate{i}")
        for named in ir.DictAttr(cand):
            op.attributes[named.name] = named.attr
        op.attributes["tnx.candidate_of"] = ir.StringAttr.get(sym)
        del op.attributes["tnx.candidates"]
    del kernel.attributes["tnx.candidates"]


def run(module: ir.Operation, pass_=None) -> None:
    """Clones the autotune candidates, lowers every kernel of `module` to tile IR (recording
    `index_bits`' guards in `tnx.guards`), then rewrites @main's calls to destination-passing
    form (`destination.rewrite_calls`)."""
    for k in [f for f in functions(module) if "tnx.candidates" in f.attributes]:
        _candidate_clones(k)
    kernels = [f for f in functions(module) if "tnx.kind" in f.attributes]
    with symbolic.collect_guards() as guards:  # index_bits: bounds on dynamic sizes of int32 kernels
        for k in kernels:
            lower_kernel(k)
    if guards:  # beside choose-blocks', in the order found
        symbolic.add_guards(module, guards)
    rewrite_calls(module)
