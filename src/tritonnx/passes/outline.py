"""outline: turns each fusion group into `func.func private @NAME` and replaces it in
@main by a `func.call` at the group's last op. The kernel returns the group's values read
outside it: one, or several for a multi-output group. View ops a kernel reads through
are cloned into the kernel (they are index maps, not buffers). The kernel's `tnx.kind`
says which template lowers it (conv, gemm, mat_mul, pool, softmax, attention, pointwise);
`tnx.nodes` and `tnx.op_types` list the ONNX nodes it covers. Kernels with identical
bodies are emitted once and called from every site. NAME says what the kernel computes
and ends in a digest of its body (`passes.naming`: `conv2d_relu_3x3_s1_f32_0021835f`).

Index checks: a Gather or GatherElements whose indices come from data (not only from
constants, which the importer verifies) gets `tnx.index_check`: "check" (lower-to-tile
masks its loads and reports an out-of-range index through a check buffer, see
`index_maps.checked_index`) or "mask" with `check_indices=False` (masked loads only). Each
call lists the checked nodes of its site in `tnx.check_nodes`, in kernel order."""

from __future__ import annotations

import math
import re

from mlir import ir
from mlir.dialects import func

from tritonnx.dialects import onnx_op_type
from tritonnx.dialects.builders import producer, shape_of
from tritonnx.dialects.ops import KERNEL_KIND, VIEWS
from tritonnx.passes import current_session, functions, ops
from tritonnx.passes.kernel_info import node_name
from tritonnx.passes.naming import kernel_name
from tritonnx.symbolic import is_symbolic

NAME = "outline"
NOTES = re.compile(r'tnx\.(folded|merged|split_k) = "[^"]*"')  # informational attributes


def is_size_constant(op: ir.Operation) -> bool:
    """A scalar `tnx.sizes`: a dynamic size as data (a shape computation's result, e.g. the
    sequence length in an index b * seq + s), computed in the kernel from its arguments."""
    return op.name == "tnx.sizes" and math.prod(shape_of(op.results[0])) == 1


CHECKED = (
    "tnx.gather",
    "tnx.gather_elements",
    "tnx.gather_nd",
    "tnx.scatter_elements",
    "tnx.scatter_nd",
)  # ops whose indices operand addresses memory


def _mark_index_checks(block: ir.Block, check_indices: bool) -> None:
    """Marks the gathers of `block` whose indices depend on data: on a graph input, on a
    dynamic size (`tnx.sizes`: positions Range(0, seq) index a table of fixed length, which
    a longer sequence overruns) or on an op with no operands that is not a tnx.constant (a
    random generator)."""
    data = {arg for arg in block.arguments}
    for op in ops(block):
        if op.name in CHECKED and op.operands[1] in data:
            op.attributes["tnx.index_check"] = ir.StringAttr.get("check" if check_indices else "mask")
        if (
            any(x in data for x in op.operands)
            or (not len(op.operands) and op.name != "tnx.constant")
            or (op.name == "tnx.range" and any(is_symbolic(d) for d in shape_of(op.results[0])))
        ):  # a Range of dynamic length runs to a dynamic size (canonicalize drops its limit operand)
            data.update(op.results)


def _clone(op: ir.Operation, operands: list[ir.Value]) -> ir.Operation:
    attrs = {n: op.attributes[n] for n in op.attributes if n not in ("tnx.group", "tnx.fusion", "tnx.why")}
    return ir.Operation.create(
        op.name, results=[r.type for r in op.results], operands=operands, attributes=attrs, loc=op.location
    )


def _kernel_body(members: list[ir.Operation]) -> tuple[list[ir.Operation], list[ir.Value]]:
    """The ops to clone into the kernel of a group and the kernel's inputs. The body is the
    group's `members` in order, each after the views it reads through and the dynamic-size
    constants it uses; the inputs are the other values the body reads, in first-use order."""
    member_set = set(members)
    body: list[ir.Operation] = []
    body_set: set[ir.Operation] = set()
    inputs: list[ir.Value] = []

    def visit_value(v: ir.Value) -> None:
        src = producer(v)
        if src is not None and (src in member_set or src in body_set):
            return
        if src is not None and is_size_constant(src):
            body_set.add(src)  # a dynamic size: computed in the kernel, not read from memory
            body.append(src)
            return
        if src is not None and src.name in VIEWS:
            for w in src.operands:
                visit_value(w)
            body_set.add(src)
            body.append(src)
            return
        if all(v != x for x in inputs):
            inputs.append(v)

    for m in members:
        for v in m.operands:
            visit_value(v)
        body.append(m)
        body_set.add(m)
    return body, inputs


def run(module: ir.Operation, pass_=None) -> None:
    check_indices = current_session().options.check_indices
    mains = [f for f in functions(module) if "sym_visibility" not in f.attributes]
    for fn in mains:
        _mark_index_checks(fn.regions[0].blocks[0], check_indices)
    module_body = module.regions[0].blocks[0]
    seen: dict[str, str] = {}  # kernel body text -> kernel symbol
    counter = 0
    for fn in mains:
        block = fn.regions[0].blocks[0]
        groups: dict[int, list[ir.Operation]] = {}
        for op in ops(block):
            if "tnx.group" in op.attributes:
                groups.setdefault(ir.IntegerAttr(op.attributes["tnx.group"]).value, []).append(op)
        for members in groups.values():
            symbol = f"kernel_{counter}"
            counter += 1
            member_set = set(members)
            body, inputs = _kernel_body(members)
            # the group's outputs: its values read outside it (one, or several for a
            # multi-output group formed by the fuse pass), in block order
            outs = [
                r for m in members for r in m.results if any(u.owner.operation not in member_set for u in r.uses)
            ] or [members[-1].results[0]]
            if any("tnx.attention" in m.attributes for m in members):
                kind = "attention"
            else:
                kind = next((KERNEL_KIND[m.name] for m in members if m.name in KERNEL_KIND), "pointwise")
            with ir.InsertionPoint(module_body), ir.Location.fused([m.location for m in members]):
                kfn = func.FuncOp(symbol, ([v.type for v in inputs], [v.type for v in outs]), visibility="private")
                kblock = kfn.add_entry_block()
            mapping = {}
            with ir.InsertionPoint(kblock):
                for v, arg in zip(inputs, kblock.arguments):
                    mapping[v] = arg
                for op in body:
                    new = _clone(op, [mapping[v] for v in op.operands])
                    mapping[op.results[0]] = new.results[0]
                func.ReturnOp([mapping[v] for v in outs])
            kop = kfn.operation
            kop.attributes["tnx.kind"] = ir.StringAttr.get(kind)
            nodes = ir.ArrayAttr.get([ir.StringAttr.get(node_name(m)) for m in members])
            # the body, not which nodes it came from nor the notes on how it was formed
            text = NOTES.sub("", str(kop).replace(f"@{symbol}(", "@K(", 1))
            kop.attributes["tnx.nodes"] = nodes
            kop.attributes["tnx.op_types"] = ir.ArrayAttr.get(
                [ir.StringAttr.get(onnx_op_type(m.name)) for m in members]
            )
            if text in seen:
                kop.erase()
                counter -= 1
                symbol = seen[text]
            else:
                anchor = next((m for m in members if m.name in KERNEL_KIND), None)
                symbol = kernel_name(kind, members, anchor, outs[0], text)
                kop.attributes["sym_name"] = ir.StringAttr.get(symbol)
                seen[text] = symbol
            loc = ir.Location.fused([m.location for m in members])
            with ir.InsertionPoint(members[-1]), loc:
                call = func.CallOp([v.type for v in outs], ir.FlatSymbolRefAttr.get(symbol), inputs)
                call.operation.attributes["tnx.nodes"] = nodes  # per call site: kernels are shared
                notes = [
                    f"{node_name(m)}: {ir.StringAttr(m.attributes['tnx.why']).value}"
                    for m in members
                    if "tnx.why" in m.attributes and "not fused" in ir.StringAttr(m.attributes["tnx.why"]).value
                ]
                checked = [
                    ir.StringAttr.get(node_name(op))
                    for op in body
                    if "tnx.index_check" in op.attributes
                    and ir.StringAttr(op.attributes["tnx.index_check"]).value == "check"
                ]
                if checked:  # the nodes behind the kernel's check buffers, at this site
                    call.operation.attributes["tnx.check_nodes"] = ir.ArrayAttr.get(checked)
                generated = [
                    ir.StringAttr.get(node_name(m))
                    for m in members
                    if "tnx.fusion" in m.attributes and ir.StringAttr(m.attributes["tnx.fusion"]).value == "generator"
                ]
                if generated:  # what this kernel computes from the dynamic sizes alone, for the report
                    call.operation.attributes["tnx.from_sizes"] = ir.ArrayAttr.get(generated)
                if notes:  # fusions that nearly happened, for `tritonnx report`
                    call.operation.attributes["tnx.notes"] = ir.ArrayAttr.get([ir.StringAttr.get(n) for n in notes])
            for v, r in zip(outs, call.results):
                v.replace_all_uses_with(r)
            for m in reversed(members):
                m.erase()
        # views read only by kernels, and sizes computed in them, are now dead
        for op in reversed(ops(block)):
            if (op.name in VIEWS or is_size_constant(op)) and all(len(list(r.uses)) == 0 for r in op.results):
                op.erase()
