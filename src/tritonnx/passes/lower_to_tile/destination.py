"""Destination-passing calls: in @main each call of a kernel gets its outputs, and its
check buffers, as `tnx.empty` allocations (so cse keeps them apart)."""

from __future__ import annotations

from mlir import ir
from mlir.dialects import func

from tritonnx.dialects import onnx_op_type
from tritonnx.dialects.builders import attrs_of, shape_of, to_attr
from tritonnx.passes import functions, ops
from tritonnx.passes.kernel_info import node_name


def rewrite_calls(module: ir.Operation) -> None:
    """Rewrites every `func.call` of a kernel outside the kernels (in @main) to
    destination-passing form: the call takes its inputs, one int64[2] check buffer per check
    of the kernel, and one allocation per result, and has no results; the results' uses take
    the allocations. The call's `tnx.nodes`, `tnx.notes` and `tnx.from_sizes` carry over."""
    by_symbol = {ir.StringAttr(f.attributes["sym_name"]).value: f for f in functions(module)}
    for fn in functions(module):
        if "tnx.kind" in fn.attributes:
            continue
        for op in ops(fn.regions[0].blocks[0]):
            if op.name != "func.call":
                continue
            with ir.InsertionPoint(op), op.location:
                checks = check_buffers(op, by_symbol[ir.FlatSymbolRefAttr(op.attributes["callee"]).value])
                empty = [ir.Operation.create("tnx.empty", results=[r.type]).results[0] for r in op.results]
                call = func.CallOp(
                    [], ir.FlatSymbolRefAttr(op.attributes["callee"]), list(op.operands) + checks + empty
                )
                for name in ("tnx.nodes", "tnx.notes", "tnx.from_sizes"):
                    if name in op.attributes:
                        call.operation.attributes[name] = op.attributes[name]
            for r, e in zip(op.results, empty):
                r.replace_all_uses_with(e)
            op.erase()


def check_attr(op: ir.Operation) -> ir.Attribute:
    """What the plan says of a check buffer: the node (of the kernel's first call site), op
    type, axis and the axis's size; for GatherND and ScatterND, whose index tuples address
    several axes, the first of them and `sizes`, the size of each (word 0 of the buffer says
    which one a bad index was for)."""
    data = op.operands[0]
    a = attrs_of(op)
    axis = a.get("axis", a.get("batch_dims", 0)) % len(shape_of(data))
    entry = {
        "node": ir.StringAttr.get(node_name(op)),
        "op_type": ir.StringAttr.get(onnx_op_type(op.name)),
        "axis": to_attr(axis),
        "size": ir.StringAttr.get(str(shape_of(data)[axis])),  # an expression where dynamic
    }
    if op.name in ("tnx.gather_nd", "tnx.scatter_nd"):
        k = shape_of(op.operands[1])[-1]
        entry["sizes"] = ir.ArrayAttr.get([ir.StringAttr.get(str(d)) for d in shape_of(data)[axis : axis + k]])
    return ir.DictAttr.get(entry)


def check_buffers(call: ir.Operation, kernel: ir.Operation) -> list[ir.Value]:
    """One int64[2] `tnx.empty` per check of `kernel` at this call site,
    tagged `tnx.check` with the node of this site (`tnx.check_nodes`, set by outline)."""
    if "tnx.checks" not in kernel.attributes:
        return []
    sites = list(ir.ArrayAttr(call.attributes["tnx.check_nodes"])) if "tnx.check_nodes" in call.attributes else []
    out = []
    for i, check in enumerate(ir.ArrayAttr(kernel.attributes["tnx.checks"])):
        entry = {a.name: a.attr for a in ir.DictAttr(check)}
        if i < len(sites):
            entry["node"] = sites[i]
        alloc = ir.Operation.create(
            "tnx.empty",
            results=[ir.RankedTensorType.get([2], ir.IntegerType.get_signless(64))],
            attributes={"tnx.check": ir.DictAttr.get(entry)},
        )
        out.append(alloc.results[0])
    return out
